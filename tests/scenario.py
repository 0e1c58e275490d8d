# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pytest fixtures for a Molecule scenario's testinfra tests, imported by its conftest.py.

    from ansible_collections.airgap.llm.tests.scenario import node, playbook, playbook_json, run_module

    # the fixtures it uses, so that linters see them used
    __all__ = ["node", "playbook", "playbook_json", "run_module"]

``node(name)`` opens any node of the scenario by its inventory name; ``playbook(path, *args)`` runs a
playbook (a path relative to the checkout, or absolute) against the scenario's inventory, as an
operator would, and returns its exit status and whole output; ``playbook_json(path, *args)`` also
returns the ansible.posix.json report; ``run_module(host, module, args, *flags)`` runs
one module on a node with ``ansible`` (become, as the inventory says) and returns (succeeded, result).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import testinfra

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def node(pytestconfig):
    """Return a function that opens any node of the scenario by its inventory name."""
    inventory = pytestconfig.option.ansible_inventory

    def _open(name):
        return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")

    return _open


@pytest.fixture(scope="module")
def playbook(pytestconfig):
    """Run a playbook (relative paths from the checkout) on the scenario's inventory; return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, timeout=900):
        path = os.fspath(path)
        if not os.path.isabs(path):
            path = os.path.join(ROOT, path)
        done = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        )
        return done.returncode, done.stdout + done.stderr

    return _run


@pytest.fixture(scope="module")
def playbook_json(pytestconfig):
    """Run a playbook (relative paths from the checkout) with the JSON callback; return (rc, report, text)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(path, *args, timeout=900):
        if not os.path.isabs(path):
            path = os.path.join(ROOT, path)
        done = subprocess.run(
            ["ansible-playbook", "-i", inventory, path, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1"),
        )
        try:
            report = json.loads(done.stdout)
        except ValueError:
            pytest.fail(
                f"ansible-playbook {path} printed no JSON report (rc {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.returncode, report, done.stdout + done.stderr

    return _run


@pytest.fixture(scope="module")
def run_module(pytestconfig):
    """Run a module on a node with `ansible`; return (succeeded, result). Flags (--check) follow the args."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(host, module, args, *flags, timeout=600):
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible"), host, "-i", inventory]
        done = subprocess.run(
            [*argv, "-m", module, "-a", json.dumps(args), *flags],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(
                os.environ,
                ANSIBLE_STDOUT_CALLBACK="minimal",
                ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0",
            ),
        )
        head, _sep, body = done.stdout.partition(" => ")
        assert body, done.stdout + done.stderr
        return ("SUCCESS" in head or "CHANGED" in head), json.loads(body[: body.rindex("}") + 1])

    return _run
