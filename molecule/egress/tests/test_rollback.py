"""A bad ruleset never costs the controller its way in: nft -c refuses a broken one, and one that cuts
new SSH sessions is rolled back by the timer it was applied under."""

import json
import time

from probes import fresh_ssh, ipv4

testinfra_hosts = ["ansible://egress-node13"]

TABLE = "nft -s list table inet airgap_egress"
CUT = """
- name: A ruleset that lets SSH in from the target only (not from the controller)
  hosts: egress-node13
  gather_facts: false
  roles:
    - role: airgap.llm.egress_guard
      egress_guard_admin_networks: ["{target}"]
      egress_guard_confirm_timeout: 30
"""


def test_a_broken_ruleset_is_refused_before_anything_changes(host, run_module):
    before = host.check_output(TABLE)
    host.check_output(
        "sed 's/policy drop/policy dorp/' /etc/airgap-llm/egress_guard/ruleset.nft > /root/broken.nft"
    )
    ok, result = run_module(
        "egress-node13", "airgap.llm.nft_table", {"name": "airgap_egress", "src": "/root/broken.nft"}
    )
    assert not ok
    assert "nft -c rejects the ruleset /root/broken.nft" in result["msg"]
    assert "Nothing was applied" in result["msg"]
    assert host.check_output(TABLE) == before


def test_a_ruleset_that_cuts_ssh_is_rolled_back_and_the_session_survives(
    host, node, playbook, tmp_path, run_module
):
    target = ipv4(node("egress-target"))
    before = host.check_output(TABLE)
    boot = host.file("/etc/airgap-llm/egress_guard/ruleset.nft").sha256sum
    play = tmp_path / "cut.yml"
    play.write_text(CUT.format(target=target))

    started = time.monotonic()
    rc, out = playbook(str(play))
    elapsed = time.monotonic() - started
    assert rc != 0, out[-3000:]
    assert "was not confirmed" in out, out[-3000:]
    assert "The rollback put the previous rules back after 30 s" in out, out[-3000:]
    assert elapsed >= 30

    # The session testinfra holds (opened before, kept open throughout) still works, a new one too.
    assert host.check_output("echo alive") == "alive"
    assert fresh_ssh("egress-node13", "true").returncode == 0
    # The previous table is live again, the boot ruleset never changed, and the rollback unit ran.
    assert host.check_output(TABLE) == before
    assert host.file("/etc/airgap-llm/egress_guard/ruleset.nft").sha256sum == boot
    assert "Finished" in host.check_output("journalctl -u airgap-egress-guard-rollback --no-pager -o cat")
    ok, result = run_module(
        "egress-node13",
        "airgap.llm.nft_table",
        {"name": "airgap_egress", "src": "/etc/airgap-llm/egress_guard/ruleset.nft"},
        "--check",
    )
    assert ok and result["changed"] is False, json.dumps(result)[:2000]
    # The cutting candidate is what it was: the admin network of the failed run.
    assert f"ip saddr {{ {target} }} tcp dport 22 accept" in host.check_output(
        "cat /etc/airgap-llm/egress_guard/candidate.nft"
    )
