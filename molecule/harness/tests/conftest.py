"""Helpers shared by the harness scenario's testinfra tests."""

import pytest
from ansible_collections.airgap.llm.tests.scenario import node

# The fixtures of these tests; node comes from tests/scenario.py, which every scenario shares.
__all__ = ["ipv4", "node"]


@pytest.fixture(scope="module")
def ipv4():
    """Return a function that lists a node's global IPv4 addresses."""

    def _addresses(host):
        out = host.check_output("ip -4 -o addr show scope global")
        return [line.split()[3].split("/")[0] for line in out.splitlines()]

    return _addresses
