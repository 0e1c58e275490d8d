"""Probes the egress scenario's tests run on nodes: connects, addresses, the guard's counters, fresh SSH."""

import json
import os
import subprocess

SSH_CONFIG = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "ssh", "config")

# Prints "<errno name or CONNECTED> <milliseconds>" for a TCP connect to argv[1]:argv[2].
CONNECT_PROBE = """
import errno, socket, sys, time
s = socket.socket()
s.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 5)
start = time.monotonic()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    outcome = "CONNECTED"
except socket.timeout:
    outcome = "TIMEOUT"
except OSError as e:
    outcome = errno.errorcode.get(e.errno, repr(e))
print(outcome, round((time.monotonic() - start) * 1000, 1))
"""


def connect(host, address, port, timeout=5):
    """(outcome, milliseconds) of a TCP connect from ``host`` to ``address``:``port``."""
    out = host.check_output("python3 -c %s %s %s %s", CONNECT_PROBE, address, str(port), str(timeout))
    outcome, millis = out.split()
    return outcome, float(millis)


def ipv4(host):
    out = host.check_output("ip -4 -o addr show scope global")
    (address,) = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return address


def counter(host, name):
    """Packets the guard's named counter has counted."""
    doc = json.loads(host.check_output(f"nft -j list counter inet airgap_egress {name}"))
    (found,) = [item["counter"] for item in doc["nftables"] if "counter" in item]
    return found["packets"]


def fresh_ssh(name, command="true"):
    """Run ``command`` on ``name`` over a new SSH connection (no shared control socket)."""
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ssh", "-F", SSH_CONFIG, "-o", "ControlPath=none", "-o", "ConnectTimeout=5", name, command],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
