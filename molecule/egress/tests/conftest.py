"""Fixtures of the egress scenario's tests: open nodes, run modules and playbooks (tests/scenario.py)."""

from ansible_collections.airgap.llm.tests.scenario import node, playbook, run_module

# The shared fixtures, offered to the tests.
__all__ = ["node", "playbook", "run_module"]
