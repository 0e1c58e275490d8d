"""verify.yml on a site with its own CA: reports, audit events, and a failure below the threshold."""

import json

testinfra_hosts = ["ansible://stepca-repo"]

AUDIT_LOG = "/var/log/airgap-llm/audit.jsonl"


def audit_events(host):
    return [json.loads(line) for line in host.file(AUDIT_LOG).content_string.splitlines()]


def test_verify_reports_every_certificate_and_the_ca_and_audits_them(host, playbook_json, release, tmp_path):
    reports = tmp_path / "reports"
    rc, _report, text = playbook_json("playbooks/verify.yml", "-e", f"airgap_verify_report_dir={reports}")
    assert rc == 0, text[-4000:]
    ca = json.loads((reports / "stepca-ca-ca.json").read_text())
    assert ca["ok"] and ca["version"] == release["version"] and float(ca["exposure"]) <= 2.0
    assert int(ca["journal"]["issued"]) >= 3 and ca["root"]["days_left"] > 3000
    repo = json.loads((reports / "stepca-repo-certificates.json").read_text())
    assert repo["ok"]
    by_name = {c["name"]: c for c in repo["certificates"]}
    served = by_name["repository"]
    assert served["names"] == ["stepca-repo.dns.podman"] and served["served_serial"] == served["serial"]
    assert served["issuer"] == "CN=airgap.llm molecule CA Intermediate CA,O=airgap.llm molecule CA"
    assert served["renewals_24h"] >= 2  # the role's issuance and at least one renewal by the timer
    assert 0 < served["days_left"] < 0.003  # four-minute certificates
    for name in ("stepca-node1", "stepca-node2"):
        node = json.loads((reports / f"{name}-certificates.json").read_text())
        assert node["ok"] and node["certificates"][0]["names"] == [f"{name}.dns.podman"]
    events = audit_events(host)
    verified = [e for e in events if e["action"] == "verify"]
    assert any(
        "certificates issued over ACME" in e["detail"] and "step-ca " + release["version"] in e["detail"]
        for e in verified
    )
    assert any(
        # The repository host's own certificate (node) comes first, then the one nginx serves.
        "certificates node (stepca-repo.dns.podman) issuer" in e["detail"]
        and "; repository (stepca-repo.dns.podman) issuer" in e["detail"]
        and "days left" in e["detail"]
        for e in verified
    )
    for previous, entry in zip(events, events[1:]):
        assert entry["prev"] == previous["hash"]


def test_verify_fails_a_certificate_below_the_threshold(host, playbook_json):
    """No certificate can have 99% of its lifetime left two minutes after issuance; verify.yml must say so."""
    rc, _report, text = playbook_json(
        "playbooks/verify.yml", "--limit", "stepca-node1", "-e", "step_cert_verify_min_percent=99"
    )
    assert rc != 0
    assert (
        "stepca-node1 failed verification" in text and "node: lifetime" in text and "fails below 99%" in text
    )
    assert audit_events(host)[-1]["outcome"] == "failed"
