# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.audit_log end to end: a bundle digest is taken as every module takes one."""

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
