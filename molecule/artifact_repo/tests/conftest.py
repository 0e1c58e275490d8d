"""Helpers shared by the artifact_repo scenario's testinfra tests."""

import json
import os
import subprocess
import sys

import pytest
from ansible_collections.airgap.llm.tests.scenario import node

# The fixtures of these tests; node comes from tests/scenario.py, which every scenario shares.
__all__ = ["index", "node", "run_module"]

ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


@pytest.fixture(scope="module")
def run_module(pytestconfig):
    """Run a module on a node with `ansible`; return (succeeded, result). Never in check mode."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(host, module, args, *flags):
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [ANSIBLE, host, "-i", inventory, "-m", module, "-a", json.dumps(args), *flags],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=dict(
                os.environ,
                ANSIBLE_STDOUT_CALLBACK="minimal",
                ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                ANSIBLE_NOCOLOR="1",
            ),
        )
        head, _sep, body = done.stdout.partition(" => ")
        assert body, done.stdout + done.stderr
        return ("SUCCESS" in head or "CHANGED" in head), json.loads(body[: body.rindex("}") + 1])

    return _run


@pytest.fixture(scope="module")
def index(node):
    """The repository index, as the repository host has it."""
    return json.loads(node("artifact-repo").file("/srv/airgap-llm/repo/current/index.json").content_string)
