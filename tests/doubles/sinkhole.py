# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A sinkhole for phone-home proofs: every name resolves to it, every attempt to reach it is recorded.

    python3 sinkhole.py ADDRESS LOG      (as root, on a test node of the scenario's own internal network)

* DNS on ADDRESS:53 (UDP and TCP): every A query is answered with ADDRESS, every other type with an
  empty answer (so clients fall back to IPv4); each query is recorded as
  ``{"kind": "dns", "client", "name", "type"}``.
* Every IPv4 packet that opens a conversation with ADDRESS on any other port (a TCP SYN, a UDP
  datagram, an ICMP echo) is seen on a packet socket and recorded as
  ``{"kind": "tcp"|"udp"|"icmp", "client", "port"}``, whether anything listens there or not.
* TCP 80 and 443 also accept, so that a client goes on to say what it wanted: the HTTP Host and
  request line, or the TLS server name, are recorded as ``{"kind": "http"|"tls", "client", ...}``;
  the connection is then closed.

Records are JSON lines with a UTC time, appended (and flushed) to LOG. Nothing is ever sent
anywhere but back to the client that asked. The tests read LOG over SSH.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import struct
import sys
import threading

ETH_P_IP = 0x0800
TYPES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS", 12: "PTR"}


class Log:
    def __init__(self, path: str) -> None:
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
        self.lock = threading.Lock()

    def record(self, **fields: object) -> None:
        fields["time"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.lock:
            self.handle.write(json.dumps(fields, sort_keys=True) + "\n")
            self.handle.flush()


def parse_question(packet: bytes):
    """(id, flags, name, qtype, end of question) of a DNS query, or None."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1:
        return None
    labels, offset = [], 12
    while offset < len(packet):
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length > 63 or offset + length > len(packet):
            return None
        labels.append(packet[offset : offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype = struct.unpack("!H", packet[offset : offset + 2])[0]
    return ident, flags, ".".join(labels), qtype, offset + 4


def answer(packet: bytes, address: str):
    parsed = parse_question(packet)
    if parsed is None:
        return None, None
    ident, flags, name, qtype, end = parsed
    question = packet[12:end]
    answers = b""
    count = 0
    if qtype == 1:
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
        count = 1
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0080  # response, recursion desired as asked, available
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, count, 0, 0)
    return header + question + answers, (name, TYPES.get(qtype, str(qtype)))


def serve_dns_udp(address: str, log: Log) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        packet, client = sock.recvfrom(4096)
        reply, asked = answer(packet, address)
        if reply is None:
            continue
        log.record(kind="dns", client=client[0], name=asked[0], type=asked[1], transport="udp")
        sock.sendto(reply, client)


def serve_dns_tcp(address: str, log: Log) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 53))
    server.listen(16)
    while True:
        conn, client = server.accept()
        with conn:
            conn.settimeout(5)
            try:
                length = struct.unpack("!H", conn.recv(2))[0]
                packet = conn.recv(length)
            except (OSError, struct.error):
                continue
            reply, asked = answer(packet, address)
            if reply is None:
                continue
            log.record(kind="dns", client=client[0], name=asked[0], type=asked[1], transport="tcp")
            with contextlib.suppress(OSError):
                conn.sendall(struct.pack("!H", len(reply)) + reply)


def tls_server_name(data: bytes):
    """The SNI of a TLS ClientHello, or None."""
    try:
        if data[0] != 0x16 or data[5] != 0x01:
            return None
        offset = 5 + 4 + 2 + 32
        offset += 1 + data[offset]
        offset += 2 + struct.unpack("!H", data[offset : offset + 2])[0]
        offset += 1 + data[offset]
        end = offset + 2 + struct.unpack("!H", data[offset : offset + 2])[0]
        offset += 2
        while offset + 4 <= end:
            kind, length = struct.unpack("!HH", data[offset : offset + 4])
            offset += 4
            if kind == 0:
                name_length = struct.unpack("!H", data[offset + 3 : offset + 5])[0]
                return data[offset + 5 : offset + 5 + name_length].decode("ascii", "replace")
            offset += length
    except (IndexError, struct.error):
        return None
    return None


def serve_listener(address: str, port: int, log: Log) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(64)
    while True:
        conn, client = server.accept()
        with conn:
            conn.settimeout(3)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if port == 443 or data[:1] == b"\x16":
                log.record(kind="tls", client=client[0], port=port, server_name=tls_server_name(data))
            else:
                lines = data.decode("latin-1").split("\r\n")
                host = next((line[5:].strip() for line in lines if line.lower().startswith("host:")), None)
                log.record(kind="http", client=client[0], port=port, request=lines[0][:200], host=host)


def sniff(address: str, log: Log) -> None:
    """Record every TCP SYN, UDP datagram and ICMP echo sent to ``address`` (DNS on 53 excepted)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    own = socket.inet_aton(address)
    while True:
        frame = sock.recv(65535)
        packet = frame[14:]
        if len(packet) < 20 or packet[16:20] != own:
            continue
        header = (packet[0] & 0x0F) * 4
        protocol = packet[9]
        client = socket.inet_ntoa(packet[12:16])
        if protocol == 6 and len(packet) >= header + 14:
            port = struct.unpack("!H", packet[header + 2 : header + 4])[0]
            flags = packet[header + 13]
            if flags & 0x02 and not flags & 0x10 and port != 53:  # SYN without ACK: a new connection
                log.record(kind="tcp", client=client, port=port)
        elif protocol == 17 and len(packet) >= header + 4:
            port = struct.unpack("!H", packet[header + 2 : header + 4])[0]
            if port != 53:
                log.record(kind="udp", client=client, port=port)
        elif protocol == 1 and len(packet) > header and packet[header] == 8:
            log.record(kind="icmp", client=client, port=None)


def main(argv) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: sinkhole.py ADDRESS LOG\n")
        return 2
    address, path = argv[1], argv[2]
    log = Log(path)
    workers = [
        threading.Thread(target=serve_dns_udp, args=(address, log), daemon=True),
        threading.Thread(target=serve_dns_tcp, args=(address, log), daemon=True),
        threading.Thread(target=serve_listener, args=(address, 80, log), daemon=True),
        threading.Thread(target=serve_listener, args=(address, 443, log), daemon=True),
        threading.Thread(target=sniff, args=(address, log), daemon=True),
    ]
    for worker in workers:
        worker.start()
    log.record(kind="start", client=address, port=None)
    for worker in workers:
        worker.join()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
