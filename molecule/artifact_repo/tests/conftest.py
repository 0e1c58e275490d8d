"""Helpers shared by the artifact_repo scenario's testinfra tests."""

import json

import pytest
from ansible_collections.airgap.llm.tests.scenario import node, run_module

# The fixtures of these tests; node comes from tests/scenario.py, which every scenario shares.
__all__ = ["index", "node", "run_module"]


@pytest.fixture(scope="module")
def index(node):
    """The repository index, as the repository host has it."""
    return json.loads(node("artifact-repo").file("/srv/airgap-llm/repo/current/index.json").content_string)
