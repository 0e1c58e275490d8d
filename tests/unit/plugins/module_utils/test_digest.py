# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_digest: streaming hashes, hash-while-copy, parallel hashing, the SHA-256 parser."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import subprocess

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _digest, _io

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
    with pytest.raises(_io.SourceReadError, match="symbolic link"):
        _digest.sha256_file(str(tmp_path / "link"))
    assert _digest.sha256_file(str(tmp_path / "link"), follow_symlinks=True)[1] == 1
    (tmp_path / "dir").mkdir()
    with pytest.raises(_io.SourceReadError, match="a directory"):
        _digest.sha256_file(str(tmp_path / "dir"))
    with pytest.raises(_io.SourceReadError, match="No such file"):
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
    assert ok[1].stat == _io.StatKey.from_stat(os.stat(paths[1]))
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
        with pytest.raises(_io.DestinationWriteError, match="No space left on device") as info:
            _digest.copy_and_hash(
                io.BytesIO(data), dest, expected_size=len(data), chunk_size=65536, pipeline=pipeline
            )
    finally:
        os.close(dest)
    assert info.value.errno == errno.ENOSPC


def test_is_sha256_hex():
    assert _digest.is_sha256_hex("a" * 64)
    assert not _digest.is_sha256_hex("A" * 64)
    assert not _digest.is_sha256_hex("a" * 63)
    assert not _digest.is_sha256_hex(None)


@pytest.mark.parametrize("value", ["a" * 64, "A" * 64, "sha256:" + "a" * 64, " SHA256:" + "A" * 64 + "\n"])
def test_parse_sha256_accepts_the_forms_operators_write(value):
    assert _digest.parse_sha256(value) == "a" * 64


@pytest.mark.parametrize("value", ["", None, "a" * 63, "sha512:" + "a" * 64, "g" * 64])
def test_parse_sha256_names_what_is_wrong(value):
    with pytest.raises(_digest.DigestError, match=r"pin .* is not a SHA-256 digest: .*\. Give 64 hexadec"):
        _digest.parse_sha256(value, "pin")


HEX = "3b7c2e0f9a41d5c86e2f7d10b4a9c3e58f6d2a71c0e94b3f5a8d6c2e1f0b9a47"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (HEX[:-1], "it has 63 hexadecimal digits, not 64"),
        ("sha256:" + HEX + "0", "it has 65 hexadecimal digits, not 64"),
        ("", "it is empty"),
        (None, "it is empty"),
        (HEX[:-1] + "g", "it holds 'g', which is not hexadecimal digits"),
        ("sha512:" + HEX, "it holds ':', 'h', 's', which are not hexadecimal digits"),
    ],
)
def test_parse_sha256_says_what_is_wrong_and_names_the_variable(given, why):
    with pytest.raises(_digest.DigestError) as info:
        _digest.parse_sha256(given, "ingest_sha256", "as received out of band")
    message = str(info.value)
    assert message.startswith("ingest_sha256 ")
    assert f": {why}. Give 64 hexadecimal digits" in message
    assert "with or without 'sha256:' first (as received out of band)" in message
