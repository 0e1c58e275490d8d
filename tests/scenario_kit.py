# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures a Molecule scenario's testinfra tests share: open any node, run a module on one.

A scenario's conftest.py offers them to its tests by importing them and naming them in ``__all__``:
``from ansible_collections.airgap.llm.tests.scenario_kit import node, run_module``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import testinfra

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
    """Run a module on a node with `ansible`; return (succeeded, result). Flags (--check) follow the args."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(host, module, args, *flags):
        argv = [os.path.join(BIN, "ansible"), host, "-i", inventory, "-m", module, "-a", json.dumps(args)]
        done = subprocess.run(
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
