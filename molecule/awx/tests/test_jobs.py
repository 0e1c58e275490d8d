"""Jobs run the way AWX runs them: the recorded objects, the workflow, verify as a job, surveys,
prompts, host key pinning, the container's network, and no secret left behind."""

import glob
import json
import os
import re
import shlex
import subprocess

from conftest import AWX_DIR, read_json

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Where a deploy or a job could leave something on a node (paths on the nodes, scanned read-only).
NODE_DIRS = ["/var/log", "/etc", "/home", "/root", "/srv/airgap-llm", "/var/lib/ollama", "/opt"]
NODE_DIRS += ["/tmp", "/var/tmp"]  # noqa: S108 - the nodes' temporary directories, scanned
# Run on a node as root: which of the words (JSON on stdin: label -> text) occur in files under the
# directories given, or in the journal as journalctl decompresses it. Prints "label path" lines, never
# a word: the words come on stdin, so that no command line (which sudo logs) carries them.
SCAN = r"""
import json, os, subprocess, sys
words = {k: v.encode() for k, v in json.load(sys.stdin).items()}
def look(where, data):
    for label, word in words.items():
        if word in data:
            print(label, where)
for root in sys.argv[1:]:
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "blobs"]
        for name in files:
            path = os.path.join(base, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 64 << 20:
                    continue
                with open(path, "rb") as handle:
                    look(path, handle.read())
            except OSError:
                continue
look("journal", subprocess.run(["journalctl", "-o", "export", "--no-pager"], capture_output=True).stdout)
"""


def scan_node(name, words):
    """Run SCAN on a node over SSH as the harness reaches it (admin account, sudo); its findings."""
    config = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ssh", "config")
    command = "sudo python3 -c " + shlex.quote(SCAN) + " " + shlex.join(NODE_DIRS)
    done = subprocess.run(  # noqa: S603 - fixed argv
        ["ssh", "-F", config, name, command],  # noqa: S607 - ssh from PATH, as the harness runs it
        input=json.dumps(words),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.splitlines()


def test_objects_recorded_and_checked():
    with open(os.path.join(AWX_DIR, "record.jsonl"), encoding="utf-8") as handle:
        calls = [json.loads(line) for line in handle]
    by_module = {}
    for call in calls:
        by_module.setdefault(call["module"], []).append(call["params"]["name"])
    assert sorted(by_module["credential_type"]) == sorted(
        [
            "airgap.llm bundle signing key",
            "airgap.llm step-ca password",
            "airgap.llm Open WebUI admin",
            "airgap.llm repository TLS",
            "airgap.llm SSH known hosts",
        ]
    )
    assert sorted(by_module["job_template"]) == sorted(
        [
            "airgap.llm site",
            "airgap.llm verify",
            "airgap.llm rollback",
            "airgap.llm ingest",
            "airgap.llm bundle build",
        ]
    )
    assert by_module["schedule"] == ["airgap.llm verify nightly"]
    assert by_module["workflow_job_template"] == ["airgap.llm ingest and deploy"]
    assert by_module["execution_environment"] == ["airgap.llm"]


def test_bundle_job_signed_with_its_credential():
    summary = read_json("bundle-job.json")
    (job,) = summary["jobs"]
    assert job["status"] == "successful" and job["left_behind"] == []
    # Negative control for every scan below: before AWX's clean-up the passphrase was in the job's
    # private data directory (the credential's extra vars file), so a scan can find it.
    assert summary["secrets_found_before_cleanup"].get("signing_passphrase"), summary[
        "secrets_found_before_cleanup"
    ]
    assert os.path.isfile(os.path.join(AWX_DIR, "bundle", "airgap-llm-stable-000001.tar"))


def test_workflow_ran_ingest_then_canary_then_the_rest():
    summary = read_json("workflow.json")
    nodes = [(j["node"], j["template"], j["limit"], j["status"], j["hosts"]) for j in summary["jobs"]]
    assert nodes == [
        ("ingest", "airgap.llm ingest", None, "successful", ["awx-repo"]),
        ("site-canary", "airgap.llm site", "repository:canary", "successful", ["awx-node1", "awx-repo"]),
        ("site-rest", "airgap.llm site", "all:!canary", "successful", ["awx-repo"]),
    ]
    # Molecule's idempotence and check steps ran ingest and site again over the whole site.
    for name in ("again.json", "again-check.json"):
        again = read_json(name)
        assert [(j["template"], j["status"], j["changed"]) for j in again["jobs"]] == [
            ("airgap.llm ingest", "successful", 0),
            ("airgap.llm site", "successful", 0),
        ], name
        assert again["jobs"][1]["hosts"] == ["awx-node1", "awx-repo"]


def test_job_container_joined_only_the_scenario_network():
    commands = read_json("workflow.json")["container_commands"]
    assert len(commands) == 3
    for command in commands:
        assert command[:2] == ["podman", "run"], command
        networks = [command[i + 1] for i, arg in enumerate(command) if arg == "--network"]
        networks += [arg.split("=", 1)[1] for arg in command if arg.startswith("--network=")]
        assert networks == ["airgap-awx"], command
        assert "--user=root" in command and "--pull=never" in command
        assert "localhost/airgap-llm-ee:latest" in command


def test_verify_runs_as_a_job(launch, nodes):
    rc, summary, (record,) = launch("airgap.llm verify")
    assert rc == 0 and summary["status"] == "successful", record["result_stdout"][-3000:]
    stdout = ANSI.sub("", record["result_stdout"])
    assert "awx-node1: OK" in stdout
    assert record["extra_vars"]["airgap_operator"].startswith("{{ awx_user_name")  # the template's Jinja...
    event = json.loads(nodes["awx-repo"].check_output("tail -n 1 /var/log/airgap-llm/audit.jsonl"))
    # ...rendered in the job with AWX's awx_user_name: the audit log names who launched it.
    assert (event["action"], event["operator"]) == ("verify", "airgap-operator")


def test_survey_answer_is_never_templated(launch):
    rc, summary, (record,) = launch(
        "airgap.llm rollback",
        "--limit",
        "awx-node1",
        answers={"rollback_target": "models", "rollback_models": "{{7*6}}"},
    )
    assert rc == 0 and summary["status"] == "failed"
    stdout = ANSI.sub("", record["result_stdout"])
    assert "no previous version recorded for {{7*6}}" in stdout, stdout[-3000:]
    assert "recorded for 42" not in stdout


def test_a_wrong_host_key_is_refused(launch):
    rc, summary, (record,) = launch(
        "airgap.llm verify", "--credential", "awx-test known hosts=awx-test wrong known hosts"
    )
    assert rc == 0 and summary["status"] == "failed"
    stdout = ANSI.sub("", record["result_stdout"])
    assert "UNREACHABLE" in stdout and "Host key verification failed" in stdout, stdout[-3000:]


def test_prompts_and_survey_rules_are_enforced(launch):
    rc, summary, records = launch("airgap.llm verify", "--job-type", "check")
    assert rc == 3 and "does not prompt for job_type" in summary["launch_error"] and records == []
    rc, summary, records = launch("airgap.llm ingest", answers={"ingest_src": "/srv/media/x.tar"})
    assert rc == 3 and "'ingest_sha256' value missing" in summary["launch_error"]
    rc, summary, records = launch(
        "airgap.llm ingest", answers={"ingest_src": "x", "ingest_sha256": "0" * 64, "ingest_force": True}
    )
    assert rc == 3 and "Variables ingest_force are not allowed on launch" in summary["launch_error"]
    assert records == []


def test_no_secret_left_behind(secrets):
    records = glob.glob(os.path.join(AWX_DIR, "jobs", "*.json"))
    assert len(records) >= 10
    for path in records:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        leaked = [label for label, value in secrets.items() if value in text]
        assert not leaked, f"{path} holds {leaked}"
    # AWX's clean-up: no private data directory on the control or execution node, no container.
    assert os.listdir(os.path.join(AWX_DIR, "isolation")) == []
    assert os.listdir(os.path.join(AWX_DIR, "execution-node")) == []
    containers = subprocess.run(
        ["podman", "ps", "-a", "--filter", "name=ansible_runner_", "--format", "{{.Names}}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert containers.strip() == ""
    # On the nodes: the passwords nowhere (the TLS key is meant to be on the repository host).
    words = {
        k: secrets[k] for k in ("signing_passphrase", "step_ca_password", "open_webui_password", "ssh_key")
    }
    for name in ("awx-repo", "awx-node1"):
        assert scan_node(name, words) == [], name
        # Negative control: the same scan finds what is there (the admin account's name).
        assert scan_node(name, {"admin": "airgap-admin"}), name
