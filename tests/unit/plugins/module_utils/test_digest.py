# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_digest: streaming hashes, hash-while-copy, parallel hashing, the verification record."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import subprocess

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _digest

SIZES = [0, 1, 4095, 4096, 4097, 3 * 4096 + 17]


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("size", SIZES)
def test_sha256_file_matches_hashlib_at_chunk_edges(tmp_path, size):
    data = os.urandom(size)
    path = _file(tmp_path, "f", data)
    assert _digest.sha256_file(path, chunk_size=4096) == (hashlib.sha256(data).hexdigest(), size)


def test_sha256_file_refuses_symlink_directory_and_missing(tmp_path):
    target = _file(tmp_path, "target", b"x")
    os.symlink(target, tmp_path / "link")
    with pytest.raises(_digest.SourceReadError, match="symbolic link"):
        _digest.sha256_file(str(tmp_path / "link"))
    assert _digest.sha256_file(str(tmp_path / "link"), follow_symlinks=True)[1] == 1
    (tmp_path / "dir").mkdir()
    with pytest.raises(_digest.SourceReadError, match="a directory"):
        _digest.sha256_file(str(tmp_path / "dir"))
    with pytest.raises(_digest.SourceReadError, match="No such file"):
        _digest.sha256_file(str(tmp_path / "missing"))


def test_hash_many_keeps_order_reports_errors_and_matches_serial(tmp_path):
    datas = [os.urandom(n) for n in (10, 70000, 0, 5000)]
    paths = [_file(tmp_path, f"f{i}", d) for i, d in enumerate(datas)]
    paths.insert(2, str(tmp_path / "missing"))
    parallel = _digest.hash_many(paths, jobs=2, chunk_size=4096)
    serial = _digest.hash_many(paths, jobs=1, chunk_size=4096)
    assert [o.hexdigest for o in parallel] == [o.hexdigest for o in serial]
    assert [o.path for o in parallel] == paths
    assert parallel[2].error is not None
    assert parallel[2].hexdigest is None
    ok = [o for o in parallel if o.error is None]
    assert [o.hexdigest for o in ok] == [hashlib.sha256(d).hexdigest() for d in datas]
    assert ok[1].stat == _digest.StatKey.from_stat(os.stat(paths[1]))
    assert _digest.hash_many([], jobs=4) == []


@pytest.mark.parametrize("pipeline", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_copy_and_hash_copies_exactly_and_hashes_the_same_bytes(tmp_path, pipeline, size):
    data = os.urandom(size)
    src = os.open(_file(tmp_path, "src", data), os.O_RDONLY)
    dest_path = str(tmp_path / "dest")
    dest = os.open(dest_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _digest.copy_and_hash(src, dest, expected_size=size, chunk_size=4096, pipeline=pipeline)
    finally:
        os.close(src)
        os.close(dest)
    assert result == (hashlib.sha256(data).hexdigest(), size)
    with open(dest_path, "rb") as handle:
        assert handle.read() == data


@pytest.mark.parametrize("pipeline", [True, False])
def test_copy_and_hash_stops_at_a_longer_source(tmp_path, pipeline):
    data = os.urandom(20000)
    dest_path = str(tmp_path / "dest")
    dest = os.open(dest_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(
            _digest.SizeMismatchError, match="expected 10000 bytes, got more than 10000"
        ) as info:
            _digest.copy_and_hash(
                io.BytesIO(data), dest, expected_size=10000, chunk_size=4096, pipeline=pipeline
            )
    finally:
        os.close(dest)
    assert info.value.more
    assert os.path.getsize(dest_path) <= 10000


@pytest.mark.parametrize("pipeline", [True, False])
def test_copy_and_hash_reports_a_short_source(tmp_path, pipeline):
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_digest.SizeMismatchError, match="expected 100 bytes, got 99"):
            _digest.copy_and_hash(io.BytesIO(b"a" * 99), dest, expected_size=100, pipeline=pipeline)
    finally:
        os.close(dest)


class _ReadOnly:
    """A stream with read() but no readinto()."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def read(self, size):
        return self._data.read(size)


def test_copy_and_hash_accepts_plain_read_streams(tmp_path):
    data = os.urandom(9000)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert (
            _digest.copy_and_hash(_ReadOnly(data), dest, chunk_size=4096)[0]
            == hashlib.sha256(data).hexdigest()
        )
    finally:
        os.close(dest)


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=False)
    if done.returncode != 0:
        pytest.fail("mounting a tmpfs failed; these tests run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("pipeline", [True, False])
def test_copy_and_hash_on_a_full_disk_raises_enospc(tmp_path, small_tmpfs, pipeline):
    data = os.urandom(1024 * 1024)
    dest = os.open(str(small_tmpfs / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_digest.DestinationWriteError, match="No space left on device") as info:
            _digest.copy_and_hash(
                io.BytesIO(data), dest, expected_size=len(data), chunk_size=65536, pipeline=pipeline
            )
    finally:
        os.close(dest)
    assert info.value.errno == errno.ENOSPC


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    _digest.atomic_write(str(target), b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_record_round_trip_and_stat_sensitivity(tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(b"content")
    hexdigest = hashlib.sha256(b"content").hexdigest()
    record_path = str(tmp_path / "state" / "verified.json")
    record = _digest.VerificationRecord.load(record_path)
    assert record.ignored_reason is None
    assert not record.entries
    key = _digest.StatKey.from_stat(os.stat(blob))
    record.add(key, hexdigest)
    record.save()
    assert oct(os.stat(record_path).st_mode & 0o777) == oct(0o644)
    again = _digest.VerificationRecord.load(record_path)
    assert again.is_verified(key, hexdigest)
    assert not again.is_verified(key, "0" * 64)
    os.chmod(blob, 0o600)  # metadata change: ctime moves, the record no longer vouches
    assert not again.is_verified(_digest.StatKey.from_stat(os.stat(blob)), hexdigest)
    st = os.stat(blob)
    blob.write_bytes(b"CONTENT")
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime faked back; ctime still moves
    assert _digest.StatKey.from_stat(os.stat(blob)).ctime_ns != st.st_ctime_ns
    again.retain([])
    again.save()
    assert _digest.VerificationRecord.load(record_path).entries == {}


def test_record_is_ignored_when_others_could_have_written_it(tmp_path):
    path = tmp_path / "verified.json"
    path.write_text(json.dumps({"format": 1, "entries": {"1:2:3:4:5": "a" * 64}}))
    os.chmod(path, 0o664)
    record = _digest.VerificationRecord.load(str(path))
    assert "writable by group or others" in record.ignored_reason
    assert not record.entries
    os.chmod(path, 0o644)
    os.chown(path, 65534, -1)
    record = _digest.VerificationRecord.load(str(path))
    assert "owned by uid 65534" in record.ignored_reason
    os.chown(path, 0, -1)
    assert _digest.VerificationRecord.load(str(path)).lookup(_digest.StatKey(1, 2, 3, 4, 5)) == "a" * 64


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"format": 2, "entries": {}}'])
def test_record_with_bad_content_is_ignored(tmp_path, content):
    path = tmp_path / "verified.json"
    path.write_bytes(content)
    record = _digest.VerificationRecord.load(str(path))
    assert record.ignored_reason in ("it is not valid JSON", "it has an unknown format")
    assert not record.entries


def test_is_sha256_hex():
    assert _digest.is_sha256_hex("a" * 64)
    assert not _digest.is_sha256_hex("A" * 64)
    assert not _digest.is_sha256_hex("a" * 63)
    assert not _digest.is_sha256_hex(None)


def _copy_into_file(tmp_path, data, **kwargs):
    """copy_and_hash ``data`` into a new file; check the file holds exactly ``data``."""
    dest_path = str(tmp_path / "dest")
    dest = os.open(dest_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _digest.copy_and_hash(io.BytesIO(data), dest, **kwargs)
        os.fsync(dest)
    finally:
        os.close(dest)
    with open(dest_path, "rb") as handle:
        assert handle.read() == data
    return result


@pytest.mark.parametrize("pipeline", [True, False])
def test_copy_and_hash_with_early_writeback_copies_exactly(tmp_path, monkeypatch, pipeline):
    monkeypatch.setattr(_digest, "WRITEBACK_WINDOW", 8192)
    data = os.urandom(100000)
    result = _copy_into_file(
        tmp_path, data, expected_size=len(data), chunk_size=4096, pipeline=pipeline, start_writeback=True
    )
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_writeback_is_started_on_each_window_of_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_digest, "WRITEBACK_WINDOW", 8192)
    calls = []
    real = _digest._sync_file_range
    assert real is not None, "sync_file_range is in every Linux libc"

    def recording(fd, offset, length, flags):
        calls.append((offset, length, flags))
        real(fd, offset, length, flags)

    monkeypatch.setattr(_digest, "_sync_file_range", recording)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(dest, b"p" * 1000)  # a resumed download appends after what it had
        _digest.copy_and_hash(io.BytesIO(b"x" * 40000), dest, chunk_size=4096, start_writeback=True)
    finally:
        os.close(dest)
    assert calls, "no writeback was started"
    assert calls[0][0] == 1000
    assert all(flags == _digest.SYNC_FILE_RANGE_WRITE for _o, _l, flags in calls)
    # back to back windows from the first byte written, each at least WRITEBACK_WINDOW long
    for (offset, length, _f), (next_offset, _l, _g) in zip(calls, calls[1:]):
        assert next_offset == offset + length
    assert all(length >= 8192 for _o, length, _f in calls)


def test_unsupported_writeback_is_left_to_the_final_fsync(tmp_path, monkeypatch):
    monkeypatch.setattr(_digest, "WRITEBACK_WINDOW", 4096)
    calls = []

    def unsupported(_fd, *_args):
        calls.append(1)
        raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))

    monkeypatch.setattr(_digest, "_sync_file_range", unsupported)
    data = os.urandom(50000)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _digest.copy_and_hash(io.BytesIO(data), dest, chunk_size=4096, start_writeback=True)
    finally:
        os.close(dest)
    assert result == (hashlib.sha256(data).hexdigest(), len(data))
    assert calls == [1], "hints must stop after the first unsupported call"


def test_a_failed_background_flush_is_reported_not_swallowed(tmp_path, monkeypatch):
    monkeypatch.setattr(_digest, "WRITEBACK_WINDOW", 4096)

    def failing_sync_file_range(_fd, *_args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_digest, "_sync_file_range", failing_sync_file_range)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_digest.DestinationWriteError, match="Input/output error") as info:
            _digest.copy_and_hash(io.BytesIO(b"x" * 50000), dest, chunk_size=4096, start_writeback=True)
    finally:
        os.close(dest)
    assert info.value.errno == errno.EIO


def _direct_flag(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


@pytest.mark.parametrize("pipeline", [True, False])
@pytest.mark.parametrize("size", [0, 4096 * 3, 4096 * 3 + 517, 1 << 20])
def test_direct_copy_writes_exactly_the_bytes_and_the_tail_through_the_page_cache(tmp_path, pipeline, size):
    data = os.urandom(size)
    flags_seen = []
    real_write = _digest._write_all

    def recording(fd, view, name):
        flags_seen.append((len(view), _direct_flag(fd)))
        real_write(fd, view, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_digest, "_write_all", recording)
        result = _copy_into_file(
            tmp_path, data, expected_size=size, chunk_size=8192, pipeline=pipeline, direct=True
        )
    assert result == (hashlib.sha256(data).hexdigest(), size)
    # Whole 4 KiB multiples went out with O_DIRECT (tmp_path is on a disk file system here);
    # a tail that is not a multiple went through the page cache.
    assert all(direct for length, direct in flags_seen if length % 4096 == 0 and length), flags_seen
    assert all(not direct for length, direct in flags_seen if length % 4096), flags_seen


def test_direct_copy_falls_back_where_the_file_system_refuses_o_direct(tmp_path, monkeypatch):
    real_fcntl = fcntl.fcntl

    def refusing(fd, cmd, arg=0):
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(_digest.fcntl, "fcntl", refusing)
    data = os.urandom(100000)
    result = _copy_into_file(tmp_path, data, chunk_size=8192, direct=True)
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_direct_write_refused_with_einval_is_written_again_through_the_page_cache(tmp_path, monkeypatch):
    real_write = _digest._write_all
    refused = []

    def refusing_direct(fd, view, name):
        if _direct_flag(fd):
            refused.append(len(view))
            raise _digest.DestinationWriteError(name, "Invalid argument", errno.EINVAL)
        real_write(fd, view, name)

    monkeypatch.setattr(_digest, "_write_all", refusing_direct)
    data = os.urandom(8192 * 5)
    result = _copy_into_file(tmp_path, data, chunk_size=8192, direct=True)
    assert refused == [8192], "only the first direct write is tried"
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_direct_write_that_fails_otherwise_is_reported(tmp_path, monkeypatch):
    def full(_fd, _view, name):
        raise _digest.DestinationWriteError(name, "No space left on device", errno.ENOSPC)

    monkeypatch.setattr(_digest, "_write_all", full)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_digest.DestinationWriteError, match="No space left") as info:
            _digest.copy_and_hash(io.BytesIO(b"x" * 65536), dest, chunk_size=8192, direct=True)
    finally:
        os.close(dest)
    assert info.value.errno == errno.ENOSPC
