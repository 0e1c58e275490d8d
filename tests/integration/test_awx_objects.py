"""playbooks/awx_objects.yml run by ansible-playbook against the recording awx.awx stand-in
(tests/awx/double): every call checked against the real module's argument spec and AWX's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.airgap.llm.tests.module_runner import COLLECTIONS, ansible_env

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "awx" / "double"
SITE = {
    "airgap_awx_project": "airgap.llm",
    "airgap_awx_inventory": "site",
    "airgap_awx_ee_image": "registry.llm.internal/airgap-llm-ee:0.1.0",
    "airgap_awx_credentials": {
        "machine": "ops ssh",
        "known_hosts": "site host keys",
        "bundle_signing_key": "signer 1",
    },
}


def _run(tmp_path: Path, extra: dict) -> tuple[subprocess.CompletedProcess, list]:
    record = tmp_path / "record.jsonl"
    env = ansible_env()
    env.update(
        PYTHONPATH=COLLECTIONS,
        ANSIBLE_COLLECTIONS_PATH=f"{DOUBLE}:{COLLECTIONS}",
        AIRGAP_AWX_RECORD=str(record),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    done = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            str(ROOT / "playbooks" / "awx_objects.yml"),
            "-e",
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return done, calls


def test_objects_pass_the_modules_and_awx(tmp_path):
    done, calls = _run(tmp_path, SITE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    by = {}
    for call in calls:
        by.setdefault(call["module"], {})[call["params"]["name"]] = call["params"]
    assert len(by["credential_type"]) == 5 and len(by["job_template"]) == 5
    site = by["job_template"]["airgap.llm site"]
    # Empty credential roles are left out; the template's Jinja reached AWX untouched.
    assert site["credentials"] == ["ops ssh", "site host keys"]
    assert site["extra_vars"]["airgap_operator"].startswith("{{ awx_user_name")
    assert by["job_template"]["airgap.llm bundle build"]["credentials"][0] == "signer 1"
    injectors = by["credential_type"]["airgap.llm bundle signing key"]["injectors"]
    assert injectors["extra_vars"]["bundle_signing_keys"][0]["passphrase"] == "{{ passphrase }}"  # noqa: S105
    workflow = by["workflow_job_template"]["airgap.llm ingest and deploy"]
    assert [n["identifier"] for n in workflow["workflow_nodes"]] == ["ingest", "site-canary", "site-rest"]
    assert by["schedule"]["airgap.llm verify nightly"]["unified_job_template"] == "airgap.llm verify"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # The validation is shown able to fail: a definition AWX would refuse, and one the module would.
        (
            {
                "airgap_awx_credential_types": [
                    {
                        "name": "x",
                        "description": "d",
                        "kind": "cloud",
                        "inputs": {"fields": []},
                        "injectors": {"env": {"ANSIBLE_BECOME_PASS": "x"}},
                    }
                ]
            },
            "may affect Ansible configuration",
        ),
        (
            {
                "airgap_awx_credential_types": [
                    {
                        "name": "x",
                        "description": "d",
                        "kind": "cloud",
                        "inputs": "not a dict",
                        "injectors": {},
                    }
                ]
            },
            "inputs",
        ),
        (
            {"airgap_awx_verify_rrule": "DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=DAILY"},
            "INTERVAL required",
        ),
        ({"airgap_awx_credentials": {"machine": "m", "vault": "v"}}, "its keys can be"),
    ],
)
def test_bad_definitions_are_refused(tmp_path, override, expected):
    done, _calls = _run(tmp_path, {**SITE, **override})
    assert done.returncode != 0
    assert expected in done.stdout, done.stdout[-3000:]
