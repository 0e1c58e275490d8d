"""The client node: fetched the payload over the internal network and reaches nothing else."""

import hashlib

testinfra_hosts = ["ansible://harness-client"]

PAYLOAD = "airgap.llm harness payload: served from the repository node\n"

# Prints CONNECTED, or the errno name of the failed TCP connect to argv[1]:argv[2].
CONNECT_PROBE = """
import errno, socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("CONNECTED")
except OSError as e:
    print(errno.errorcode.get(e.errno, repr(e)))
"""


def test_payload_fetched_and_intact(host):
    f = host.file("/var/lib/harness/payload.txt")
    assert f.is_file
    assert f.mode == 0o644
    assert f.sha256sum == hashlib.sha256(PAYLOAD.encode()).hexdigest()
    # And the repository answers on the internal network right now.
    live = host.check_output("curl -sf --max-time 5 http://harness-repo/payload.txt")
    assert live + "\n" == PAYLOAD


def test_client_has_no_route_out(host, node, ipv4):
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""

    outside = node("harness-outside")
    repo = node("harness-repo")
    (target,) = ipv4(outside)
    url = f"http://{target}:8080/"

    # Positive control: the listener is up and reachable from the dual-homed repository node.
    assert repo.run(f"curl -sf -o /dev/null --max-time 5 {url}").rc == 0

    # The client cannot reach it: the kernel refuses the connection at once for want of a route
    # (ENETUNREACH), and the outside node's name does not resolve from the client's network.
    probe = host.run("python3 -c %s %s 8080", CONNECT_PROBE, target)
    assert probe.stdout.strip() == "ENETUNREACH", probe.stdout + probe.stderr
    assert host.run("getent hosts harness-outside").rc != 0
