# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.ca_material end to end: check, real, check, real; refusals; nothing secret in any output."""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.airgap.llm.plugins.module_utils import _pki
from ansible_collections.airgap.llm.tests.module_runner import ansible, ansible_env

PASSWORD = "integration-ca-password"  # noqa: S105 - test CA password


def layout(tmp_path):
    for sub in ("certs", "secrets"):
        (tmp_path / sub).mkdir(exist_ok=True)
    return str(tmp_path)


def run_raw(args, *flags):
    """Everything the module returned, diff and invocation included (JSON callback), as text.

    Used to prove that nothing secret is in it. (ansible-core echoes an ad-hoc command's own arguments
    in its error report: that is the operator's command line, not the module's output, and the JSON
    callback leaves it out.)
    """
    env = dict(ansible_env(), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    done = subprocess.run(
        ["ansible", "localhost", "-m", "airgap.llm.ca_material", "-a", json.dumps(args), "--diff", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    hidden = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert result["invocation"]["module_args"]["password"] == hidden
    return json.dumps(result)


def test_generate_check_real_check_real(tmp_path):
    path = layout(tmp_path)
    args = {"path": path, "mode": "generate", "password": PASSWORD, "name": "Integration CA"}
    ok, first = ansible("ca_material", args, "--check", "--diff")
    assert ok and first["changed"] and first["action"] == "create"
    assert "(a new root and intermediate, made on the CA host)" in run_raw(args, "--check")
    assert not os.listdir(os.path.join(path, "certs"))
    ok, second = ansible("ca_material", args, "--diff")
    assert ok and second["changed"] and second["action"] == "create"
    assert second["root_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    for flags in (("--check",), ()):
        ok, again = ansible("ca_material", args, *flags)
        assert ok and not again["changed"] and again["action"] == "none"
        assert again["root_fingerprint"] == second["root_fingerprint"]
    key = (tmp_path / "secrets" / "intermediate_ca_key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key
    output = run_raw(dict(args, password="a wrong password"))  # noqa: S106 - a test value
    assert "password does not decrypt the CA material in" in output
    assert "a wrong password" not in output and PASSWORD not in output
    assert key.decode().splitlines()[1] not in output


def test_import_check_on_the_controller_refuses_a_foreign_intermediate(tmp_path):
    mine = _pki.generate_material("Mine", PASSWORD, root_days=30, intermediate_days=20).files()
    theirs = _pki.generate_material("Theirs", PASSWORD, root_days=30, intermediate_days=20).files()
    good = {
        "mode": "import",
        "password": PASSWORD,
        "root_certificate": mine["root"].decode(),
        "intermediate_certificate": mine["intermediate"].decode(),
        "intermediate_key": mine["intermediate_key"].decode(),
    }
    ok, checked = ansible("ca_material", good, "--check")
    assert ok and not checked["changed"] and checked["root_subject"] == "CN=Mine Root CA,O=Mine"
    bad = dict(
        good,
        intermediate_certificate=theirs["intermediate"].decode(),
        intermediate_key=theirs["intermediate_key"].decode(),
    )
    output = run_raw(bad, "--check")
    assert "does not chain to the given root certificate (CN=Mine Root CA,O=Mine)" in output
    assert theirs["intermediate_key"].decode().splitlines()[1] not in output and PASSWORD not in output
    imported = run_raw(dict(good, path=layout(tmp_path)))
    assert "root: CN=Mine Root CA,O=Mine sha256" in imported and "written: " in imported
    assert mine["intermediate_key"].decode().splitlines()[1] not in imported and PASSWORD not in imported
    ok, missing = ansible("ca_material", dict(good, password=""), "--check")
    assert not ok and "CA password is empty" in missing["msg"]
