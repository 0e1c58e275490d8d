# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_record: the verification record, trusted only when nobody else could have written it."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _io, _record


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_record_round_trip_and_stat_sensitivity(tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(b"content")
    hexdigest = hashlib.sha256(b"content").hexdigest()
    record_path = str(tmp_path / "state" / "verified.json")
    record = _record.VerificationRecord.load(record_path)
    assert record.ignored_reason is None
    assert not record.entries
    key = _io.StatKey.from_stat(os.stat(blob))
    record.add(key, hexdigest)
    record.save()
    assert oct(os.stat(record_path).st_mode & 0o777) == oct(0o644)
    again = _record.VerificationRecord.load(record_path)
    assert again.is_verified(key, hexdigest)
    assert not again.is_verified(key, "0" * 64)
    os.chmod(blob, 0o600)  # metadata change: ctime moves, the record no longer vouches
    assert not again.is_verified(_io.StatKey.from_stat(os.stat(blob)), hexdigest)
    st = os.stat(blob)
    blob.write_bytes(b"CONTENT")
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime faked back; ctime still moves
    assert _io.StatKey.from_stat(os.stat(blob)).ctime_ns != st.st_ctime_ns
    again.retain([])
    again.save()
    assert _record.VerificationRecord.load(record_path).entries == {}


def test_record_is_ignored_when_others_could_have_written_it(tmp_path):
    path = tmp_path / "verified.json"
    path.write_text(json.dumps({"format": 1, "entries": {"1:2:3:4:5": "a" * 64}}))
    os.chmod(path, 0o664)
    record = _record.VerificationRecord.load(str(path))
    assert "writable by group or others" in record.ignored_reason
    assert not record.entries
    os.chmod(path, 0o644)
    os.chown(path, 65534, -1)
    record = _record.VerificationRecord.load(str(path))
    assert "owned by uid 65534" in record.ignored_reason
    os.chown(path, 0, -1)
    assert _record.VerificationRecord.load(str(path)).lookup(_io.StatKey(1, 2, 3, 4, 5)) == "a" * 64


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"format": 2, "entries": {}}'])
def test_record_with_bad_content_is_ignored(tmp_path, content):
    path = tmp_path / "verified.json"
    path.write_bytes(content)
    record = _record.VerificationRecord.load(str(path))
    assert record.ignored_reason in ("it is not valid JSON", "it has an unknown format")
    assert not record.entries
