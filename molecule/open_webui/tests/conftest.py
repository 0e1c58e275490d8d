"""Fixtures of the open_webui scenario's testinfra tests: open nodes, run a playbook like an operator."""

from ansible_collections.airgap.llm.tests.scenario import node, playbook

# The shared fixtures (tests/scenario.py), offered to the tests.
__all__ = ["node", "playbook"]
