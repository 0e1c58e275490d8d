"""The operator's workflow on the converged site: verify, a failed upgrade, roll-backs, a repair, a new node.

Each test leaves site-node1 on the pinned release and models again (the tests run in file order).
"""

import json

from ansible_collections.airgap.llm.tests.nodecheck import existing, sha256sums

testinfra_hosts = ["ansible://site-node1"]

MODELS_FACT = "/etc/ansible/facts.d/airgap_ollama_models.fact"
STORE = "/var/lib/ollama/models"
AUDIT_LOG = "/var/log/airgap-llm/audit.jsonl"
NEW_NODE = "site-node3"
# site-node3 is in no role group of the scenario's inventory: it joins the site through this one.
NEW_NODE_INVENTORY = f"""
ollama:
  hosts:
    {NEW_NODE}:
repository_clients:
  hosts:
    {NEW_NODE}:
"""
# Everything a deploy may write under these trees, with owner, mode, link target and content digest;
# the files podman manages for the container are left out.
FINGERPRINT = (
    "find /etc /opt /usr/local /srv /var/lib/dpkg/status -xdev "
    r"\( -path /etc/hosts -o -path /etc/hostname -o -path /etc/resolv.conf \) -prune -o "
    r"\( -printf '%p %y %m %u:%g %s %l\n' -type f -exec sha256sum {} + \) | sort"
)
# Both roles write their record through airgap.llm.artifact_release, whose "Create the local facts
# directory" check mode predicts for each of them and the real run needs only for the first. By name
# (what changed_tasks compares) that over-prediction is invisible: nothing is predicted but not done.
PREDICTED_TWICE: set = set()

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


def served_models(host):
    """What Ollama on ``host`` serves: model name -> manifest digest, from /api/tags."""
    tags = json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/tags"))
    return {m["name"]: "sha256:" + m["digest"] for m in tags["models"]}


def audit_events(node):
    return [json.loads(line) for line in node("site-repo").file(AUDIT_LOG).content_string.splitlines()]


def manifest_path(name):
    model, tag = name.split(":")
    return f"{STORE}/manifests/registry.ollama.ai/library/{model}/{tag}"


def changed_tasks(report, host):
    """Names (role-qualified) of the tasks and handlers that reported a change for ``host``."""
    return {
        task["task"]["name"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["hosts"].get(host, {}).get("changed")
        and not task["hosts"][host].get("skipped")
        and not task["hosts"][host].get("failed")
    }


def failures(report, host):
    """'task: message' for each task that failed for ``host``, for assertion messages."""
    return [
        f"{task['task']['name']}: {task['hosts'][host].get('msg')}"
        for play in report["plays"]
        for task in play["tasks"]
        if task["hosts"].get(host, {}).get("failed")
    ]


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


def test_models_rollback_returns_to_the_recorded_manifests(host, node, playbook, pins):
    first = {m["name"]: m["manifest_digest"] for m in pins["models"]}
    update = pins["model_updates"][0]
    name, second = update["name"], update["manifest_digest"]
    assert name in first and second != first[name]  # the fixtures carry a second version of one model
    assert served_models(host) == first

    # Pin the second manifest for site-node1 only, as an operator does for a canary node.
    lock = [update if m["name"] == name else m for m in pins["models"]]
    before = len(audit_events(node))
    rc, out = playbook(
        "playbooks/site.yml", "--limit", "site-node1", "-e", json.dumps({"ollama_models_list": lock})
    )
    assert rc == 0, out[-3000:]
    assert served_models(host) == {**first, name: second}
    recorded = json.loads(host.file(MODELS_FACT).content_string)["models"]
    assert recorded[name]["manifest_digest"] == second
    assert recorded[name]["previous"]["manifest_digest"] == first[name]
    deploys = [e for e in audit_events(node)[before:] if e["action"] == "deploy"]
    assert len(deploys) == 1 and f"{name}@{second}" in deploys[0]["detail"], deploys
    second_blobs = {
        layer["digest"] for layer in json.loads(host.file(manifest_path(name)).content_string)["layers"]
    }

    # A model without a previous version is refused by name, before anything changes.
    other = next(m["name"] for m in pins["models"] if m["name"] != name)
    asked = json.dumps({"rollback_target": "models", "rollback_models": other})
    rc, out = playbook("playbooks/rollback.yml", "-e", asked, "--limit", "site-node1")
    refusal = f"no previous version recorded for {other}; models it can roll back: {name}"
    assert rc != 0 and refusal in out, out[-3000:]
    assert served_models(host) == {**first, name: second}

    # The model named as an AWX survey answers (one name per line) is rolled back.
    before = len(audit_events(node))
    asked = json.dumps({"rollback_target": "models", "rollback_models": f"{name}\n"})
    rc, out = playbook("playbooks/rollback.yml", "-e", asked, "--limit", "site-node1")
    assert rc == 0, out[-3000:]
    assert "now runs ollama_models_list" in out and first[name] in out  # the pins to set are printed

    # The first manifest is back, byte for byte, and served; the other model was left alone.
    assert served_models(host) == first
    assert "sha256:" + host.file(manifest_path(name)).sha256sum == first[name]
    layers = json.loads(host.file(manifest_path(name)).content_string)["layers"]
    blobs = {f"{STORE}/blobs/{layer['digest'].replace(':', '-')}": layer["digest"] for layer in layers}
    assert {path: "sha256:" + hex for path, hex in sha256sums(host, blobs).items()} == blobs
    # Blobs only the second version used are gone from the store.
    gone = [f"{STORE}/blobs/{digest.replace(':', '-')}" for digest in second_blobs - set(blobs.values())]
    assert gone and existing(host, gone) == set()
    recorded = json.loads(host.file(MODELS_FACT).content_string)["models"]
    assert recorded[name]["manifest_digest"] == first[name]
    assert recorded[name]["previous"]["manifest_digest"] == second
    assert {n: m["manifest_digest"] for n, m in recorded.items()} == first  # as the inventory pins it

    events = audit_events(node)[before:]
    assert [(e["action"], e["outcome"]) for e in events] == [("rollback", "ok")], events
    assert "rollback.yml (models) on site-node1" in events[0]["detail"]
    assert f"{name}@{first[name]}" in events[0]["detail"]
    assert events[0]["prev"] == audit_events(node)[before - 1]["hash"]


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

    rc, out = playbook("playbooks/verify.yml", "--limit", "site-node1")
    assert rc != 0
    assert "site-node1 failed verification" in out
    assert f"blobs/{weights}" in out and "tinyllama:1b digest" in out

    rc, out = playbook("playbooks/site.yml", "--limit", "site-node1")
    assert rc == 0, out[-3000:]
    assert host.file(blob).sha256sum == weights.split("-", 1)[1]
    rc, out = playbook("playbooks/verify.yml", "--limit", "site-node1")
    assert rc == 0, out[-3000:]


def test_check_mode_on_a_new_node_predicts_the_real_run(node, playbook_json, pins, tmp_path):
    """An operator adds a node to the running site: --check --diff first, then the real run."""
    fresh = node(NEW_NODE)
    assert not fresh.user("ollama").exists  # converge left it alone: it is in no role group
    inventory = tmp_path / "new-node.yml"
    inventory.write_text(NEW_NODE_INVENTORY)
    limit = ("--limit", NEW_NODE)
    fingerprint = fresh.check_output(FINGERPRINT)
    sources = fresh.check_output("sha256sum /etc/apt/sources.list")
    events = len(audit_events(node))

    rc, check, stderr = playbook_json(
        "playbooks/site.yml", "--check", "--diff", *limit, inventories=[inventory]
    )
    assert rc == 0, (failures(check, NEW_NODE), stderr[-2000:])
    assert check["stats"][NEW_NODE]["failures"] == 0
    predicted = changed_tasks(check, NEW_NODE)

    # Check mode left the node as it was.
    assert fresh.check_output(FINGERPRINT) == fingerprint
    assert not fresh.user("ollama").exists and not fresh.group("ollama").exists
    untouched = (
        "/opt/ollama",
        "/usr/local/bin/ollama",
        "/var/lib/ollama",
        "/var/cache/airgap-llm",
        "/var/lib/airgap-llm",
        "/etc/systemd/system/ollama.service",
        "/etc/apt/sources.list.d/airgap-llm.sources",
        "/usr/local/share/ca-certificates/airgap-llm-ca.crt",
        "/etc/ansible/facts.d",
    )
    assert existing(fresh, untouched) == set()
    assert fresh.check_output("sha256sum /etc/apt/sources.list") == sources
    assert not fresh.package("zstd").is_installed
    assert len(audit_events(node)) == events  # the deploy was predicted, not recorded

    rc, real, stderr = playbook_json("playbooks/site.yml", "--diff", *limit, inventories=[inventory])
    assert rc == 0, (failures(real, NEW_NODE), stderr[-2000:])
    done = changed_tasks(real, NEW_NODE)
    assert done, "the real run changed nothing on a fresh node"
    assert done <= predicted, f"changed but not predicted by --check: {sorted(done - predicted)}"
    assert predicted - done == PREDICTED_TWICE, sorted(predicted - done)

    # The new node serves the pinned release and models, from the internal repository only.
    assert fresh.file("/usr/local/bin/ollama").linked_to == "/opt/ollama/0.33.1/bin/ollama"
    assert fresh.service("ollama").is_running and fresh.service("ollama").is_enabled
    assert api_version(fresh) == "0.33.1"
    assert served_models(fresh) == {m["name"]: m["manifest_digest"] for m in pins["models"]}
    assert not fresh.file("/etc/apt/sources.list").exists
    assert (
        "URIs: https://site-repo/apt"
        in fresh.file("/etc/apt/sources.list.d/airgap-llm.sources").content_string
    )
    deploys = [e for e in audit_events(node)[events:] if e["action"] == "deploy"]
    assert len(deploys) == 1 and f"site.yml on {NEW_NODE}" in deploys[0]["detail"], deploys
