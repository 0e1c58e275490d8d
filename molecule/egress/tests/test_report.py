"""verify.yml on the guarded nodes: the denied attempts since the last run, and a guard missing or open fails.

The reports are printed (pytest -s shows them) as the scenario's record of what a denied attempt looks like.
"""

import json

from probes import connect, ipv4

GUARDED = ("egress-node12", "egress-node13")
TARGET_PORT = 8080
ACCOUNTING = {
    "table": "airgap_egress",
    "log": "/var/log/airgap-llm/egress/denied.log",
    "state_file": "/var/lib/airgap-llm/egress_guard/accounting.json",
}


def reports(directory, kind):
    return {name: json.loads((directory / f"{name}.{kind}.json").read_text()) for name in GUARDED}


def run_verify(playbook, directory):
    return playbook(
        "playbooks/verify.yml",
        "--limit",
        "egress_guard:time_sync",
        "-e",
        f"airgap_verify_report_dir={directory}",
    )


def test_verify_reports_denied_attempts_since_the_last_run(node, playbook, run_module, tmp_path):
    target_ip = ipv4(node("egress-target"))
    # The look before: what the guards denied so far (the module verify.yml runs, which records it).
    since = {}
    for name in GUARDED:
        ok, look = run_module(name, "airgap.llm.egress_report", ACCOUNTING)
        assert ok and look["present"], look
        since[name] = look["time"]

    # Two attempts from egress-node12, none from egress-node13, then the next run.
    node12 = node("egress-node12")
    for _attempt in range(2):
        assert connect(node12, target_ip, TARGET_PORT)[0] == "EHOSTUNREACH"
    second = tmp_path / "second"
    rc, out = run_verify(playbook, second)
    assert rc == 0, out[-3000:]
    egress = reports(second, "egress_guard")
    print("verify.yml report of egress-node12 after two denied attempts:")
    print(json.dumps({k: v for k, v in egress["egress-node12"].items() if k != "checks"}, indent=1))

    report = egress["egress-node12"]
    assert report["ok"] is True
    assert report["since"] == since["egress-node12"]
    assert report["denied"]["out"]["since_last"] == 2
    assert report["denied"]["out"]["total"] >= 2
    assert report["destinations"] == [
        {
            "direction": "out",
            "protocol": "TCP",
            "address": target_ip,
            "port": TARGET_PORT,
            "count": 2,
            "uids": [0],
            "first": report["destinations"][0]["first"],
            "last": report["destinations"][0]["last"],
        }
    ]
    assert egress["egress-node13"]["denied"]["out"]["since_last"] == 0
    assert egress["egress-node13"]["destinations"] == []
    assert {c["check"] for c in report["checks"]} == {
        "guard_present",
        "policy_drop",
        "ruleset_confirmed",
        "no_default_route",
        "no_proxy",
        "log_running",
    }
    # The accounting is in the audit log too.
    audit = node("egress-repo").check_output("tail -n 20 /var/log/airgap-llm/audit.jsonl")
    details = [json.loads(line)["detail"] for line in audit.splitlines()]
    assert any(
        "egress guard on egress-node12: 2 outgoing" in d and f"{target_ip}:{TARGET_PORT}:2" in d
        for d in details
    )

    # Time: the internal server, within the offset.
    time_reports = reports(second, "time_sync")
    print("verify.yml time report of egress-node12:", json.dumps(time_reports["egress-node12"], indent=1))
    repo_ip = ipv4(node("egress-repo"))
    for name in GUARDED:
        assert time_reports[name]["ok"] is True
        assert time_reports[name]["source"] == repo_ip
        assert abs(time_reports[name]["offset"]) <= 1.0


def test_verify_fails_when_the_guard_is_missing_or_open(node, playbook, run_module, tmp_path):
    node12, node13 = node("egress-node12"), node("egress-node13")
    node12.check_output("nft delete table inet airgap_egress")
    node13.check_output("nft 'chain inet airgap_egress output { policy accept; }'")
    try:
        rc, out = run_verify(playbook, tmp_path)
        assert rc != 0
        egress = reports(tmp_path, "egress_guard")
        failed12 = {c["check"]: c["detail"] for c in egress["egress-node12"]["checks"] if not c["ok"]}
        failed13 = {c["check"]: c["detail"] for c in egress["egress-node13"]["checks"] if not c["ok"]}
        assert "guard_present" in failed12 and "policy_drop" in failed12, failed12
        assert "is missing" in failed12["guard_present"]
        assert set(failed13) == {"policy_drop", "ruleset_confirmed"}, failed13
        assert "output policy accept" in failed13["policy_drop"]
        assert "egress-node12 failed the egress guard checks" in out
        assert "egress-node13 failed the egress guard checks" in out
    finally:
        # What a reboot does: the boot unit loads the confirmed ruleset.
        for host in (node12, node13):
            host.check_output("systemctl restart airgap-egress-guard.service")
    for name, host in (("egress-node12", node12), ("egress-node13", node13)):
        chains = {
            i["chain"]["hook"]: i["chain"]["policy"]
            for i in json.loads(host.check_output("nft -j list table inet airgap_egress"))["nftables"]
            if "chain" in i
        }
        assert chains == {"output": "drop", "input": "drop", "forward": "drop"}
        ok, drift = run_module(
            name,
            "airgap.llm.nft_table",
            {"name": "airgap_egress", "src": "/etc/airgap-llm/egress_guard/ruleset.nft"},
            "--check",
        )
        assert ok and drift["changed"] is False, drift
