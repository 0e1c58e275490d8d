"""Fixtures for the end-to-end tests: a loopback HTTP server, test certificates, a playbook runner."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from typing import Dict, List

import pytest
from ansible_collections.airgap.llm.tests.certs import make_certificates
from ansible_collections.airgap.llm.tests.module_runner import COLLECTIONS, ansible_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_TIMEOUT = 120


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    timeout = 10

    def log_message(self, format, *args):
        return


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """A directory served on 127.0.0.1 (never anything else), stopped after the session."""
    root = tmp_path_factory.mktemp("upstream")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield {"root": root, "url": f"http://127.0.0.1:{server.server_address[1]}"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def certs(tmp_path):
    """A throw-away CA with server and client certificates for loopback HTTPS (tests/certs.py)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    return make_certificates(str(directory))


def _env() -> Dict[str, str]:
    env = ansible_env()
    env.update(
        PYTHONPATH=COLLECTIONS,
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    return env


@pytest.fixture(scope="session")
def playbook():
    """Run ``ansible-playbook playbooks/<name>`` on localhost with extra vars; returns the process."""

    def run(name: str, extra: Dict[str, object], args: List[str] = ()) -> subprocess.CompletedProcess:
        command = [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            os.path.join(REPO_ROOT, "playbooks", name),
            "-e",
            json.dumps(extra),
            *args,
        ]
        return subprocess.run(
            command,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=PLAYBOOK_TIMEOUT,
            check=False,
            cwd=REPO_ROOT,
        )

    return run
