"""Retention: the journal on disk within limits, logs rotated, and an audit log rotated with its chain kept.

Kernel audit rules (auditd) cannot be shown in containers, which share the host's kernel audit
subsystem: they are documented in roles/log_retention/README.md, not tested here.
"""

import json

testinfra_hosts = ["ansible://egress-repo", "ansible://egress-node12", "ansible://egress-node13"]

AUDIT = "/var/log/airgap-llm/audit.jsonl"


def test_journal_is_persistent_within_limits(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    for line in (
        "Storage=persistent",
        "SystemMaxUse=64M",
        "SystemKeepFree=256M",
        "SystemMaxFileSize=8M",
        "MaxRetentionSec=1year",
    ):
        assert line in config.splitlines(), line
    machine = host.check_output("cat /etc/machine-id")
    assert host.file(f"/var/log/journal/{machine}/system.journal").is_file
    assert "/var/log/journal" in host.check_output("journalctl --header --no-pager | grep -m1 'File path'")


def test_logs_are_rotated_daily(host):
    assert host.service("logrotate.timer").is_enabled
    assert host.service("logrotate.timer").is_running
    debug = host.run("logrotate --debug /etc/logrotate.conf")
    assert debug.rc == 0, debug.stderr
    patterns = debug.stdout + debug.stderr
    assert "rotating pattern: /var/log/chrony/*.log" in patterns
    if host.backend.get_hostname() == "egress-repo":
        assert "rotating pattern: /var/log/nginx/*.log" in patterns
        assert f"rotating pattern: {AUDIT}" in patterns
    else:
        assert "rotating pattern: /var/log/airgap-llm/egress/denied.log" in patterns


def audit_verified(run_module, path=AUDIT):
    return run_module("egress-repo", "airgap.llm.audit_log", {"path": path, "state": "verified"})


def test_a_rotated_audit_log_keeps_its_chain(node, run_module):
    repo = node("egress-repo")
    ok, before = audit_verified(run_module)
    assert ok, before
    assert before["entries"] >= 2
    last_before = json.loads(repo.check_output(f"tail -n 1 {AUDIT}"))

    repo.check_output("logrotate --force /etc/logrotate.d/airgap-llm-audit")
    rotated = repo.check_output(f"ls {AUDIT}-*").split()
    assert rotated and not repo.file(AUDIT).exists

    ok, appended = run_module(
        "egress-repo",
        "airgap.llm.audit_log",
        {
            "path": AUDIT,
            "action": "test",
            "outcome": "ok",
            "operator": "molecule",
            "detail": "after rotation",
        },
    )
    assert ok, appended
    first = json.loads(repo.check_output(f"head -n 1 {AUDIT}"))
    assert first["seq"] == last_before["seq"] + 1
    assert first["prev"] == last_before["hash"]

    ok, after = audit_verified(run_module)
    assert ok, after
    assert after["entries"] == before["entries"] + 1
    assert [f["path"] for f in after["files"]][-1] == AUDIT
    assert len(after["files"]) == len(before["files"]) + 1


def test_a_damaged_or_missing_rotated_file_is_found(node, run_module):
    """Negative controls, on a copy: the chain across files breaks where a rotated file is wrong."""
    repo = node("egress-repo")
    repo.check_output(
        f"rm -rf /root/audit-copy && mkdir /root/audit-copy && cp -p {AUDIT}* /root/audit-copy/"
    )
    copy = "/root/audit-copy/audit.jsonl"
    ok, whole = audit_verified(run_module, copy)
    assert ok and whole["broken_at"] is None

    oldest = sorted(repo.check_output(f"ls {copy}-*").split())[0]
    repo.check_output(f'sed -i \'1s/"molecule"/"mallory"/\' {oldest}')
    ok, result = audit_verified(run_module, copy)
    assert not ok and "altered" in result["msg"] and oldest.rsplit("/", 1)[1] in result["msg"]

    repo.check_output(f"rm {oldest}")
    ok, result = audit_verified(run_module, copy)
    assert not ok and "expected 1" in result["msg"]
    repo.check_output("rm -rf /root/audit-copy")
