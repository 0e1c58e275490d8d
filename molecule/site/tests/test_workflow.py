"""The operator's workflow on the converged site: verify, a failed upgrade, a roll-back, a repair.

Each test leaves site-node1 on the pinned release and models again.
"""

import json

testinfra_hosts = ["ansible://site-node1"]

ROLE_PLAY = """
- name: Switch site-node1 to another release
  hosts: site-node1
  gather_facts: false
  roles:
    - role: airgap.llm.ollama_binary
      ollama_binary_version: "{version}"
"""


def role_play(tmp_path, version):
    path = tmp_path / f"release-{version}.yml"
    path.write_text(ROLE_PLAY.format(version=version))
    return str(path)


def api_version(host):
    return json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/version"))["version"]


def test_verify_passes_and_is_audited(node, playbook, tmp_path):
    reports = tmp_path / "reports"
    rc, out = playbook("playbooks/verify.yml", "-e", f"airgap_verify_report_dir={reports}")
    assert rc == 0, out[-3000:]
    for name in ("site-node1", "site-node2"):
        report = json.loads((reports / f"{name}.json").read_text())
        assert report["ok"] is True
        assert report["models"]["bytes_hashed"] > 0  # full verification read every blob
        assert float(report["ollama"]["exposure"]) <= 2.0
    log = node("site-repo").file("/var/log/airgap-llm/audit.jsonl").content_string.splitlines()
    events = [json.loads(line) for line in log]
    assert {e["action"] for e in events} >= {"ingest", "deploy", "verify"}
    assert all(e["outcome"] == "ok" for e in events if e["action"] == "verify")
    for previous, entry in zip(events, events[1:]):
        assert entry["prev"] == previous["hash"]


def test_failed_upgrade_switches_back(host, playbook, tmp_path):
    rc, out = playbook(role_play(tmp_path, "0.33.2"))
    assert rc != 0
    assert "Ollama 0.33.2 failed its health check" in out
    assert "Switched back to 0.33.1, which is healthy and serving" in out
    assert host.file("/usr/local/bin/ollama").linked_to == "/opt/ollama/0.33.1/bin/ollama"
    assert api_version(host) == "0.33.1"
    assert host.service("ollama").is_running


def test_rollback_returns_to_the_recorded_release(host, playbook, tmp_path):
    rc, out = playbook(role_play(tmp_path, "0.33.0"))
    assert rc == 0, out[-3000:]
    assert api_version(host) == "0.33.0"
    fact = json.loads(host.file("/etc/ansible/facts.d/airgap_ollama_binary.fact").content_string)
    assert fact["previous"]["version"] == "0.33.1"
    rc, out = playbook("playbooks/rollback.yml", "-e", "rollback_target=binary", "--limit", "site-node1")
    assert rc == 0, out[-3000:]
    assert host.file("/usr/local/bin/ollama").linked_to == "/opt/ollama/0.33.1/bin/ollama"
    assert api_version(host) == "0.33.1"
    assert host.file("/opt/ollama/0.33.0/bin/ollama").exists  # kept side by side for the next roll-back


def test_tampered_blob_is_found_by_verify_and_repaired_by_site(host, playbook, pins):
    model = next(m for m in pins["models"] if m["name"].startswith("tinyllama"))
    manifest = json.loads(
        host.file("/var/lib/ollama/models/manifests/registry.ollama.ai/library/tinyllama/1b").content_string
    )
    assert (
        "sha256:"
        + host.check_output(
            "sha256sum /var/lib/ollama/models/manifests/registry.ollama.ai/library/tinyllama/1b"
        ).split()[0]
        == model["manifest_digest"]
    )
    weights = manifest["layers"][0]["digest"].replace(":", "-")
    blob = f"/var/lib/ollama/models/blobs/{weights}"
    host.check_output(f"printf 'X' | dd of={blob} bs=1 seek=4096 conv=notrunc status=none")
    assert host.file(blob).sha256sum != weights.split("-", 1)[1]

    rc, out = playbook("playbooks/verify.yml")
    assert rc != 0
    assert "site-node1 failed verification" in out
    assert f"blobs/{weights}" in out and "tinyllama:1b digest" in out

    rc, out = playbook("playbooks/site.yml")
    assert rc == 0, out[-3000:]
    assert host.file(blob).sha256sum == weights.split("-", 1)[1]
    rc, out = playbook("playbooks/verify.yml")
    assert rc == 0, out[-3000:]
