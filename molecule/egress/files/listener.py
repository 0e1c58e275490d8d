"""A TCP listener that records every connection it accepts (the target of the egress scenario).

Usage: listener.py LOG PORT...  Appends "<peer address> <peer port> <local port>" to LOG, flushed,
for each connection, answers one line and closes it. Run under systemd by the scenario's converge.
"""

import selectors
import socket
import sys


def main() -> None:
    log_path, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    selector = selectors.DefaultSelector()
    for port in ports:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))  # noqa: S104 - it is the target: it must be reachable
        server.listen(16)
        selector.register(server, selectors.EVENT_READ, port)
    with open(log_path, "a", encoding="ascii", buffering=1) as log:
        while True:
            for key, _events in selector.select():
                conn, (address, peer_port) = key.fileobj.accept()
                log.write(f"{address} {peer_port} {key.data}\n")
                try:
                    conn.sendall(f"egress listener {key.data}\n".encode())
                finally:
                    conn.close()


if __name__ == "__main__":
    main()
