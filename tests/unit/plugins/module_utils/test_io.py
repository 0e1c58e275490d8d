# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_io: atomic writes, writeback started as the copy goes, O_DIRECT with its fallbacks."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _digest, _io


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    _io.atomic_write(str(target), b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


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
    monkeypatch.setattr(_io, "WRITEBACK_WINDOW", 8192)
    data = os.urandom(100000)
    result = _copy_into_file(
        tmp_path, data, expected_size=len(data), chunk_size=4096, pipeline=pipeline, start_writeback=True
    )
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_writeback_is_started_on_each_window_of_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "WRITEBACK_WINDOW", 8192)
    calls = []
    real = _io._sync_file_range
    assert real is not None, "sync_file_range is in every Linux libc"

    def recording(fd, offset, length, flags):
        calls.append((offset, length, flags))
        real(fd, offset, length, flags)

    monkeypatch.setattr(_io, "_sync_file_range", recording)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(dest, b"p" * 1000)  # a resumed download appends after what it had
        _digest.copy_and_hash(io.BytesIO(b"x" * 40000), dest, chunk_size=4096, start_writeback=True)
    finally:
        os.close(dest)
    assert calls, "no writeback was started"
    assert calls[0][0] == 1000
    assert all(flags == _io.SYNC_FILE_RANGE_WRITE for _o, _l, flags in calls)
    # back to back windows from the first byte written, each at least WRITEBACK_WINDOW long
    for (offset, length, _f), (next_offset, _l, _g) in zip(calls, calls[1:]):
        assert next_offset == offset + length
    assert all(length >= 8192 for _o, length, _f in calls)


def test_unsupported_writeback_is_left_to_the_final_fsync(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "WRITEBACK_WINDOW", 4096)
    calls = []

    def unsupported(_fd, *_args):
        calls.append(1)
        raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))

    monkeypatch.setattr(_io, "_sync_file_range", unsupported)
    data = os.urandom(50000)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _digest.copy_and_hash(io.BytesIO(data), dest, chunk_size=4096, start_writeback=True)
    finally:
        os.close(dest)
    assert result == (hashlib.sha256(data).hexdigest(), len(data))
    assert calls == [1], "hints must stop after the first unsupported call"


def test_a_failed_background_flush_is_reported_not_swallowed(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "WRITEBACK_WINDOW", 4096)

    def failing_sync_file_range(_fd, *_args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_io, "_sync_file_range", failing_sync_file_range)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_io.DestinationWriteError, match="Input/output error") as info:
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
    real_write = _io.write_all

    def recording(fd, view, name):
        flags_seen.append((len(view), _direct_flag(fd)))
        real_write(fd, view, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_io, "write_all", recording)
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

    monkeypatch.setattr(_io.fcntl, "fcntl", refusing)
    data = os.urandom(100000)
    result = _copy_into_file(tmp_path, data, chunk_size=8192, direct=True)
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_direct_write_refused_with_einval_is_written_again_through_the_page_cache(tmp_path, monkeypatch):
    real_write = _io.write_all
    refused = []

    def refusing_direct(fd, view, name):
        if _direct_flag(fd):
            refused.append(len(view))
            raise _io.DestinationWriteError(name, "Invalid argument", errno.EINVAL)
        real_write(fd, view, name)

    monkeypatch.setattr(_io, "write_all", refusing_direct)
    data = os.urandom(8192 * 5)
    result = _copy_into_file(tmp_path, data, chunk_size=8192, direct=True)
    assert refused == [8192], "only the first direct write is tried"
    assert result == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_direct_write_that_fails_otherwise_is_reported(tmp_path, monkeypatch):
    def full(_fd, _view, name):
        raise _io.DestinationWriteError(name, "No space left on device", errno.ENOSPC)

    monkeypatch.setattr(_io, "write_all", full)
    dest = os.open(str(tmp_path / "dest"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(_io.DestinationWriteError, match="No space left") as info:
            _digest.copy_and_hash(io.BytesIO(b"x" * 65536), dest, chunk_size=8192, direct=True)
    finally:
        os.close(dest)
    assert info.value.errno == errno.ENOSPC


def test_replacing_leaves_the_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), _io.replacing(str(target), mode=0o600) as (fd, _tmp):
        os.write(fd, b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    with _io.replacing(str(target), mode=0o600) as (fd, _tmp):
        os.write(fd, b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)


def test_open_regular_refuses_links_and_directories(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    with pytest.raises(_io.NotRegularError, match="symbolic link"):
        _io.open_regular(str(tmp_path / "link"))
    with pytest.raises(_io.NotRegularError, match="a directory"):
        _io.open_regular(str(tmp_path / "dir"))
    with pytest.raises(FileNotFoundError):
        _io.open_regular(str(tmp_path / "missing"))


def test_owner_names_an_unknown_user_or_group():
    assert _io.Owner.resolve(None, "").uid == -1
    assert _io.Owner.resolve("root", "0").gid == 0
    with pytest.raises(_io.OwnerError, match="user 'no-such-user-xyz' is not a user on this host"):
        _io.Owner.resolve("no-such-user-xyz", None)
