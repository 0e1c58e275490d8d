"""Helpers for the open_webui scenario's testinfra tests: open nodes, run a playbook like an operator."""

import os
import subprocess

import pytest
from ansible_collections.airgap.llm.tests.scenario import node

# Fixtures of the tests; node comes from tests/scenario.py, which every scenario shares.
__all__ = ["node", "playbook"]


@pytest.fixture(scope="module")
def playbook(pytestconfig):
    """Run a playbook file against the scenario's inventory; return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, timeout=600):
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["ansible-playbook", "-i", str(inventory), str(path), *args],  # noqa: S607 - from the virtualenv
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        )
        return done.returncode, done.stdout + done.stderr

    return _run
