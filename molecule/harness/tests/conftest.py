"""Helpers shared by the harness scenario's testinfra tests."""

import pytest
import testinfra


@pytest.fixture(scope="module")
def node(pytestconfig):
    """Return a function that opens any node of the scenario by its inventory name."""
    inventory = pytestconfig.option.ansible_inventory

    def _open(name):
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")

    return _open


@pytest.fixture(scope="module")
def ipv4():
    """Return a function that lists a node's global IPv4 addresses."""

    def _addresses(host):
        out = host.check_output("ip -4 -o addr show scope global")
        return [line.split()[3].split("/")[0] for line in out.splitlines()]

    return _addresses
