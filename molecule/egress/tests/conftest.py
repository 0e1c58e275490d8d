"""Helpers of the egress scenario's testinfra tests: open nodes, run modules and playbooks, probe ports."""

import json
import os
import subprocess
import sys

import pytest
import testinfra

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def node(pytestconfig):
    """Return a function that opens any node of the scenario by its inventory name."""
    inventory = pytestconfig.option.ansible_inventory

    def _open(name):
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")

    return _open


@pytest.fixture(scope="module")
def run_module(pytestconfig):
    """Run a module on a node with `ansible`; return (succeeded, result)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(host, module, args, *flags):
        argv = [os.path.join(BIN, "ansible"), host, "-i", inventory, "-m", module, "-a", json.dumps(args)]
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [*argv, *flags],
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
