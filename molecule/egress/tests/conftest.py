"""Helpers of the egress scenario's tests: open nodes, run modules (tests/scenario_kit.py) and playbooks."""

import os
import subprocess
import sys

import pytest
from ansible_collections.airgap.llm.tests.scenario import node, run_module

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
# The shared fixtures, offered to the tests beside this scenario's own.
__all__ = ["node", "playbook", "run_module"]


@pytest.fixture(scope="module")
def playbook(pytestconfig):
    """Run a playbook against the scenario's inventory; return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, timeout=900):
        if not os.path.isabs(path):
            path = os.path.join(ROOT, path)
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [os.path.join(BIN, "ansible-playbook"), "-i", inventory, path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        )
        return done.returncode, done.stdout + done.stderr

    return _run
