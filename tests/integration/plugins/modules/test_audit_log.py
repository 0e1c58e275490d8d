# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.audit_log end to end across a rotation: check, real, verified; a damaged rotated file."""

from __future__ import annotations

import json

from ansible_collections.airgap.llm.tests.module_runner import ansible


def event(path, detail):
    return {"path": str(path), "action": "deploy", "outcome": "ok", "operator": "tester", "detail": detail}


def test_the_chain_goes_on_in_a_new_file_and_verifies_across_both(tmp_path):
    log = tmp_path / "audit.jsonl"
    for n in range(2):
        ok, result = ansible("audit_log", event(log, f"before {n}"))
        assert ok and result["changed"] and result["entry"]["seq"] == n + 1
    last = json.loads(log.read_text().splitlines()[-1])
    rotated = tmp_path / "audit.jsonl-20261129-1764417600"
    log.rename(rotated)  # what logrotate does with nocreate

    ok, predicted = ansible("audit_log", event(log, "after"), "--check")
    assert ok and predicted["changed"]
    assert (predicted["entry"]["seq"], predicted["entry"]["prev"]) == (3, last["hash"])
    assert not log.exists()

    ok, written = ansible("audit_log", event(log, "after"))
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
