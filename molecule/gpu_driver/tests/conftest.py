"""Helpers for the gpu_driver scenario's tests: nodes, playbooks and modules, run as an operator would."""

import glob
import os
import re
import subprocess
import sys

import pytest
from ansible_collections.airgap.llm.tests.scenario import node, run_module

HERE = os.path.dirname(os.path.abspath(__file__))
ANSIBLE_BIN = os.path.dirname(sys.executable)
ENV = {"ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}

# Fixtures of the tests; node and run_module come from tests/scenario.py, which every scenario shares.
__all__ = ["kernel12", "kernel13", "node", "playbook", "run_module"]


@pytest.fixture(scope="module")
def playbook(pytestconfig):
    """Run one of the scenario's playbooks against its inventory; return (rc, output)."""
    inventory = pytestconfig.option.ansible_inventory

    def _run(name, *args, timeout=900):
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                os.path.join(ANSIBLE_BIN, "ansible-playbook"),
                "-i",
                inventory,
                os.path.join(HERE, "..", name),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ, **ENV),
        )
        return done.returncode, done.stdout + done.stderr

    return _run


def _headers_kernel(suite):
    """The kernel of the carried-in headers package of a suite (linux-headers-<kernel>_*.deb)."""
    root = os.environ["AIRGAP_TEST_DEBS_ROOT"]
    for path in sorted(glob.glob(os.path.join(root, "nvidia", suite, "linux-headers-*-amd64_*.deb"))):
        match = re.match(r"linux-headers-(.+-amd64)_", os.path.basename(path))
        if match:
            return match.group(1)
    raise AssertionError(f"no linux-headers-<kernel>-amd64 .deb in {root}/nvidia/{suite}")


@pytest.fixture(scope="session")
def kernel13():
    return _headers_kernel("trixie")


@pytest.fixture(scope="session")
def kernel12():
    return _headers_kernel("bookworm")
