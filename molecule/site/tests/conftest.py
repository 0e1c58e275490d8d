"""Helpers for the site scenario's testinfra tests: open nodes, run playbooks like an operator."""

import json
import os
import subprocess

import pytest
from ansible_collections.airgap.llm.tests.scenario import node

# The fixtures of these tests; node comes from tests/scenario.py, which every scenario shares.
__all__ = ["node", "pins", "playbook", "playbook_json"]

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


@pytest.fixture(scope="module")
def pins():
    """The pins the fixtures wrote on the controller (release digests, model manifest digests)."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "site", "fixtures", "pins.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _ansible_playbook(inventory, path, args, *, inventories, timeout, env):
    if not os.path.isabs(path):
        path = os.path.join(ROOT, path)
    sources = [item for extra in (inventory, *inventories) for item in ("-i", str(extra))]
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ansible-playbook", *sources, path, *args],  # noqa: S607 - from the virtualenv
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", **env),
    )


@pytest.fixture(scope="module")
def playbook(pytestconfig):
    """Run a playbook against the scenario's inventory (and extra ones); return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, inventories=(), timeout=900):
        done = _ansible_playbook(inventory, path, args, inventories=inventories, timeout=timeout, env={})
        return done.returncode, done.stdout + done.stderr

    return _run


@pytest.fixture(scope="module")
def playbook_json(pytestconfig):
    """Run a playbook with the ansible.posix.json callback; return (rc, report, stderr).

    The report is the callback's document: ``plays`` -> ``tasks`` -> ``task.name`` and ``hosts``
    (each host's result), and ``stats`` per host.
    """
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, inventories=(), timeout=900):
        env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
        done = _ansible_playbook(inventory, path, args, inventories=inventories, timeout=timeout, env=env)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            pytest.fail(
                f"ansible-playbook {path} printed no JSON report (rc {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.returncode, report, done.stderr

    return _run
