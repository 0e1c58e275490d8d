"""The guarded nodes: only what the site declares gets out; the rest fails at once, counted and logged."""

import json
import time

from probes import connect, counter, fresh_ssh, ipv4

testinfra_hosts = ["ansible://egress-node12", "ansible://egress-node13"]

TARGET_PORT = 8080
CA_PORT = 9000
LISTENER_LOG = "/var/log/egress-listener/connections.log"
DENIED_LOG = "/var/log/airgap-llm/egress/denied.log"
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "no_proxy", "ftp_proxy")


def peers(host):
    """Addresses the listener on ``host`` has recorded connections from."""
    text = host.run(f"cat {LISTENER_LOG} 2>/dev/null").stdout
    return [line.split()[0] for line in text.splitlines()]


def test_the_guard_is_the_only_table_with_drop_policies(host):
    print(f"The ruleset {host.backend.get_hostname()} ends with (nft list ruleset):")
    print(host.check_output("nft list ruleset"))
    ruleset = json.loads(host.check_output("nft -j list ruleset"))["nftables"]
    tables = [(i["table"]["family"], i["table"]["name"]) for i in ruleset if "table" in i]
    assert tables == [("inet", "airgap_egress")]
    chains = {i["chain"]["hook"]: i["chain"]["policy"] for i in ruleset if "chain" in i}
    assert chains == {"output": "drop", "input": "drop", "forward": "drop"}
    rules = [i["rule"] for i in ruleset if "rule" in i and i["rule"]["chain"] == "output"]
    last = rules[-1]["expr"]
    assert {"counter": "denied_out"} in last
    assert {"reject": {"type": "icmpx", "expr": "admin-prohibited"}} in last
    assert any("log" in e for e in rules[-2]["expr"]) and any("limit" in e for e in rules[-2]["expr"])
    # The same ruleset is loaded at boot, before the network.
    assert host.service("airgap-egress-guard").is_enabled
    assert host.file("/etc/airgap-llm/egress_guard/ruleset.nft").mode == 0o600


def test_what_the_site_declares_is_reachable(host, node):
    repo = node("egress-repo")
    repo_ip = ipv4(repo)
    assert host.run("getent hosts egress-repo").rc == 0  # the declared resolver answers
    https = host.run("curl -sS -o /dev/null -w '%{http_code}' --max-time 5 https://egress-repo/apt/")
    assert https.rc == 0 and https.stdout in {"200", "403", "404"}, https.stderr
    assert connect(host, repo_ip, CA_PORT)[0] == "CONNECTED"
    assert ipv4(host) in peers(repo)  # the CA stand-in saw the connection


def test_an_undeclared_address_fails_at_once_is_counted_logged_and_never_arrives(host, node):
    target, repo = node("egress-target"), node("egress-repo")
    target_ip, me = ipv4(target), ipv4(host)
    before = counter(host, "denied_out")

    outcome, millis = connect(host, target_ip, TARGET_PORT)
    assert outcome == "EHOSTUNREACH", outcome  # icmpx admin-prohibited: no timeout
    assert millis < 500, millis
    assert counter(host, "denied_out") >= before + 1
    deadline = time.monotonic() + 5
    logged = []
    while not logged and time.monotonic() < deadline:
        logged = [
            line
            for line in host.check_output(f"tail -n 50 {DENIED_LOG}").splitlines()
            if f"SRC={me} DST={target_ip} " in line and f"DPT={TARGET_PORT} " in line
        ]
        time.sleep(0.2)
    assert logged and "airgap-egress-out" in logged[-1]
    assert me not in peers(target)

    # Positive control: the listener records connections, from a node no guard holds.
    assert connect(repo, target_ip, TARGET_PORT)[0] == "CONNECTED"
    assert ipv4(repo) in peers(target)
    assert me not in peers(target)


def test_only_the_admin_network_gets_in(host, node):
    target = node("egress-target")
    before = counter(host, "denied_in")
    outcome, _millis = connect(target, ipv4(host), 22, timeout=2)
    assert outcome == "TIMEOUT"  # dropped, not refused
    assert counter(host, "denied_in") >= before + 1
    # Positive control: the controller opens a new session (the admin network).
    assert fresh_ssh(host.backend.get_hostname(), "true").returncode == 0
    # And sshd is there for anyone the rules let in: the node reaches its own port.
    assert connect(host, ipv4(host), 22)[0] == "CONNECTED"


def test_no_default_route_and_no_proxy(host):
    # converge planted both before the guard came (the marker), so this shows them removed.
    assert host.file("/var/lib/egress-test/planted").exists
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""
    assert host.service("airgap-no-default-route").is_enabled
    assert host.check_output("sysctl -n net.ipv6.conf.default.accept_ra_defrtr") == "0"
    environment = host.file("/etc/environment").content_string
    assert not [p for p in PROXIES if p + "=" in environment]
    manager = host.check_output("systemctl show-environment")
    assert not [p for p in PROXIES if p + "=" in manager]
    login = host.check_output("env http_proxy=http://x:3128 bash -lc env").splitlines()
    assert not [line for line in login if line.startswith("http_proxy=")]


def test_units_score_at_most_2(host):
    for unit in ("airgap-egress-guard", "airgap-egress-guard-rollback", "airgap-egress-log"):
        out = host.check_output(f"systemd-analyze security --no-pager {unit}.service | tail -n 1")
        assert float(out.split(":")[1].split()[0]) <= 2.0, out
    assert host.check_output("systemctl show --value -p User airgap-egress-log") == "ulog"
    assert host.service("airgap-egress-log").is_running
