# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.audit_log end to end: a bundle digest is taken as every module takes one; the chain
across a rotation (check, real, verified; a damaged rotated file)."""

from __future__ import annotations

import json

from ansible_collections.airgap.llm.tests.module_runner import ansible

DIGEST = "3b7c2e0f9a41d5c86e2f7d10b4a9c3e58f6d2a71c0e94b3f5a8d6c2e1f0b9a47"


def test_a_bundle_digest_with_its_prefix_is_recorded_bare_and_a_short_one_is_named(tmp_path):
    log = str(tmp_path / "audit.jsonl")
    event = {"path": log, "action": "rollback", "outcome": "ok", "operator": "alice", "detail": "CHG-1"}
    ok, result = ansible("audit_log", dict(event, bundle_sha256="sha256:" + DIGEST.upper()))
    assert ok, result
    assert json.loads((tmp_path / "audit.jsonl").read_text())["bundle_sha256"] == DIGEST
    ok, result = ansible("audit_log", dict(event, bundle_sha256=DIGEST[:-1]))
    assert not ok
    assert (
        "bundle_sha256 '3b7c2e0f" in result["msg"] and "it has 63 hexadecimal digits, not 64" in result["msg"]
    )
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 1


def deploy_event(path, detail):
    return {"path": str(path), "action": "deploy", "outcome": "ok", "operator": "tester", "detail": detail}


def test_the_chain_goes_on_in_a_new_file_and_verifies_across_both(tmp_path):
    log = tmp_path / "audit.jsonl"
    for n in range(2):
        ok, result = ansible("audit_log", deploy_event(log, f"before {n}"))
        assert ok and result["changed"] and result["entry"]["seq"] == n + 1
    last = json.loads(log.read_text().splitlines()[-1])
    rotated = tmp_path / "audit.jsonl-20261129-1764417600"
    log.rename(rotated)  # what logrotate does with nocreate

    ok, predicted = ansible("audit_log", deploy_event(log, "after"), "--check")
    assert ok and predicted["changed"]
    assert (predicted["entry"]["seq"], predicted["entry"]["prev"]) == (3, last["hash"])
    assert not log.exists()

    ok, written = ansible("audit_log", deploy_event(log, "after"))
    assert ok and (written["entry"]["seq"], written["entry"]["prev"]) == (3, last["hash"])
    ok, verified = ansible("audit_log", {"path": str(log), "state": "verified"})
    assert ok and not verified["changed"]
    assert (verified["entries"], verified["last_seq"]) == (3, 3)
    assert verified["last_hash"] == written["entry"]["hash"]
    assert [f["path"] for f in verified["files"]] == [str(rotated), str(log)]

    # A changed rotated file breaks the chain; the task names that file and line.
    rotated.write_text(rotated.read_text().replace("before 0", "before X"))
    ok, broken = ansible("audit_log", {"path": str(log), "state": "verified"})
    assert not ok
    assert f"audit log {rotated} breaks at line 1" in broken["msg"]
