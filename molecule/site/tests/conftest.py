"""Helpers for the site scenario's testinfra tests: open nodes, run playbooks like an operator."""

import json
import os
import subprocess

import pytest
import testinfra

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


@pytest.fixture(scope="module")
def node(pytestconfig):
    """Return a function that opens any node of the scenario by its inventory name."""
    inventory = pytestconfig.option.ansible_inventory

    def _open(name):
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")

    return _open


@pytest.fixture(scope="module")
def pins():
    """The pins the fixtures wrote on the controller (release digests, model manifest digests)."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "site", "fixtures", "pins.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def playbook(pytestconfig, tmp_path_factory):
    """Run a playbook against the scenario's inventory; return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, timeout=900):
        if not os.path.isabs(path):
            path = os.path.join(ROOT, path)
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["ansible-playbook", "-i", inventory, path, *args],  # noqa: S607 - from the virtualenv
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        )
        return done.returncode, done.stdout + done.stderr

    return _run
