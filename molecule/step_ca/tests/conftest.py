"""Helpers for the step_ca scenario's testinfra tests: open nodes, run playbooks like an operator."""

import json
import os

import pytest
from ansible_collections.airgap.llm.tests.scenario import node, playbook_json

# The fixtures of these tests; node and playbook_json come from tests/scenario.py (shared by every scenario).
__all__ = ["node", "playbook_json", "release"]

WORK = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "stepca")


@pytest.fixture(scope="module")
def release():
    """The step-ca build under test (molecule/image/step-ca.sh wrote it; converge copied it)."""
    with open(os.path.join(WORK, "release.json"), encoding="utf-8") as handle:
        return json.load(handle)
