"""Helpers for the awx scenario's tests: the test site's files and jobs launched as AWX launches them."""

import json
import os
import subprocess
import sys

import pytest
import testinfra

AWX_DIR = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "awx")


@pytest.fixture(scope="module")
def nodes(pytestconfig):
    """The scenario's nodes by name, reached as testinfra hosts through Molecule's inventory."""
    inventory = pytestconfig.option.ansible_inventory
    names = ("awx-repo", "awx-node1")
    return {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}") for name in names}


def read_json(name):
    with open(os.path.join(AWX_DIR, name), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def secrets():
    return read_json("secrets.json")


@pytest.fixture(scope="module")
def launch():
    """Launch a job template as AWX does (tests/awx/launch.py); return (rc, summary, job records)."""

    def _run(template, *args, answers=None, timeout=600):
        argv = [
            sys.executable,
            "-m",
            "ansible_collections.airgap.llm.tests.awx.launch",
            os.path.join(AWX_DIR, "site.json"),
            os.path.join(AWX_DIR, "record.jsonl"),
            os.path.join(AWX_DIR, "jobs"),
            "--template",
            template,
            "--inspect",
            os.path.join(AWX_DIR, "secrets.json"),
            "--answers",
            json.dumps({template: answers or {}}),
            *args,
        ]
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.stdout.strip(), done.stderr[-3000:]
        summary = json.loads(done.stdout)
        records = [read_json(os.path.join("jobs", f"{job['id']}.json")) for job in summary.get("jobs", [])]
        return done.returncode, summary, records

    return _run
