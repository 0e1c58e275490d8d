"""Strict tar scanning and the chunked stream helpers."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import extract as _extract
from ansible_collections.airgap.llm.plugins.module_utils._transfer import stream as _stream


def _tar(path, members, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def _reg(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _scan(path, stage=None, memory=("bundle.json",)):
    source = _stream.PartsSource([str(path)], block=4096)
    result = _extract.scan(source, str(stage) if stage else None, lambda n: 1024 if n in memory else 0)
    whole, _parts, sizes = source.close()
    return result, whole, sizes


def test_regular_files_staged_and_hashed(tmp_path):
    big = os.urandom(10000)
    _tar(tmp_path / "a.tar", [_reg("artifacts/x/big.bin", big), _reg("bundle.json", b"{}")])
    stage = tmp_path / "stage"
    stage.mkdir()
    result, whole, sizes = _scan(tmp_path / "a.tar", stage)
    assert result.problems == []
    assert result.archive_error is None
    staged = result.files["artifacts/x/big.bin"]
    assert staged.sha256 == hashlib.sha256(big).hexdigest()
    assert staged.size == len(big)
    with open(staged.tmp_path, "rb") as handle:
        assert handle.read() == big
    assert result.memory == {"bundle.json": b"{}"}
    data = (tmp_path / "a.tar").read_bytes()
    assert whole == hashlib.sha256(data).hexdigest()
    assert sizes == [len(data)]


def test_check_mode_writes_nothing(tmp_path):
    _tar(tmp_path / "a.tar", [_reg("f", b"abc")])
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert result.files["f"].tmp_path is None
    assert result.files["f"].sha256 == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    ("member", "needle"),
    [
        (_reg("/etc/passwd", b"x"), "absolute path"),
        (_reg("../escape", b"x"), "'..' component"),
        (_reg("a/../../escape", b"x"), "'..' component"),
        (_reg("a//b", b"x"), "empty or '.'"),
        (_reg("./a", b"x"), "empty or '.'"),
        (_special("link", tarfile.SYMTYPE, "/etc/shadow"), "symbolic link"),
        (_special("hard", tarfile.LNKTYPE, "bundle.json"), "hard link"),
        (_special("dev", tarfile.CHRTYPE), "character device"),
        (_special("blk", tarfile.BLKTYPE), "block device"),
        (_special("fifo", tarfile.FIFOTYPE), "FIFO"),
        (_special("dir", tarfile.DIRTYPE), "directory"),
    ],
)
def test_unsafe_entries_recorded_not_written(tmp_path, member, needle):
    _tar(tmp_path / "a.tar", [member, _reg("after", b"still read")])
    stage = tmp_path / "stage"
    stage.mkdir()
    result, _w, _s = _scan(tmp_path / "a.tar", stage)
    assert len(result.problems) == 1
    assert needle in result.problems[0]
    assert list(result.files) == ["after"]
    assert sorted(os.listdir(stage)) == ["000001"]


def test_duplicate_entry(tmp_path):
    _tar(tmp_path / "a.tar", [_reg("f", b"one"), _reg("f", b"two")])
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert result.problems == ["archive entry 'f' is a duplicate entry"]
    assert result.files["f"].sha256 == hashlib.sha256(b"one").hexdigest()


def test_long_names_gnu_and_pax(tmp_path):
    name = "d/" + "x" * 200
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        _tar(tmp_path / "a.tar", [_reg(name, b"abc")], fmt=fmt)
        result, _w, _s = _scan(tmp_path / "a.tar")
        assert list(result.files) == [name]


def test_oversized_memory_member(tmp_path):
    _tar(tmp_path / "a.tar", [_reg("bundle.json", b"x" * 2000)])
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert "more than 1024" in result.problems[0]


def test_truncated_archive(tmp_path):
    _tar(tmp_path / "a.tar", [_reg("f", os.urandom(5000))])
    data = (tmp_path / "a.tar").read_bytes()
    (tmp_path / "a.tar").write_bytes(data[:3000])
    result, whole, _s = _scan(tmp_path / "a.tar")
    assert "truncated" in result.archive_error
    assert whole == hashlib.sha256(data[:3000]).hexdigest()


def test_garbage_header(tmp_path):
    (tmp_path / "a.tar").write_bytes(os.urandom(2048))
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert "invalid tar header" in result.archive_error


def test_unsafe_name_helper():
    assert _extract.unsafe_name("artifacts/a/b") is None
    assert _extract.unsafe_name("a\\b") is not None
    assert _extract.unsafe_name("a\nb") is not None
    assert _extract.unsafe_name("") is not None


def test_chunked_sink_and_parts_source_roundtrip(tmp_path):
    data = os.urandom(10_000)
    sink = _stream.ChunkedSink(str(tmp_path / "b.tar"), chunk_size=4096)
    sink.write(data[:100])
    sink.write(data[100:])
    whole, chunks = sink.commit()
    assert whole == hashlib.sha256(data).hexdigest()
    assert [os.path.basename(c[0]) for c in chunks] == ["b.tar.part0000", "b.tar.part0001", "b.tar.part0002"]
    assert [c[2] for c in chunks] == [4096, 4096, 10_000 - 8192]
    for path, digest, _size in chunks:
        with open(path, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    source = _stream.PartsSource([c[0] for c in chunks], block=1000)
    assert source.read_exact(5000) == data[:5000]
    source.drain()
    total, parts, sizes = source.close()
    assert total == whole
    assert parts == [c[1] for c in chunks]
    assert sizes == [c[2] for c in chunks]


def test_chunked_sink_abort_leaves_nothing(tmp_path):
    sink = _stream.ChunkedSink(str(tmp_path / "b.tar"), chunk_size=1024)
    sink.write(os.urandom(5000))
    sink.abort()
    assert os.listdir(tmp_path) == []


def test_single_file_sink(tmp_path):
    sink = _stream.ChunkedSink(str(tmp_path / "b.tar"))
    sink.write(b"hello")
    whole, chunks = sink.commit()
    assert chunks == [(str(tmp_path / "b.tar"), whole, 5)]
    assert (tmp_path / "b.tar").read_bytes() == b"hello"


def test_missing_part_reported(tmp_path):
    source = _stream.PartsSource([str(tmp_path / "nope")])
    with pytest.raises(_stream.StreamError, match="cannot open"):
        source.read(10)
    source.close()


def _plain_tar(path, members) -> bytes:
    _tar(path, members)
    return path.read_bytes()


def test_zero_padding_after_the_end_marker_is_fine(tmp_path):
    data = _plain_tar(tmp_path / "a.tar", [_reg("f", b"abc")])
    (tmp_path / "a.tar").write_bytes(data + b"\x00" * 20480)
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert result.archive_error is None
    assert list(result.files) == ["f"]


def _end(data: bytes) -> int:
    """Offset of the end-of-archive marker (the first zero block at a header position)."""
    offset = 0
    while data[offset : offset + 512] != b"\x00" * 512:
        info = tarfile.TarInfo.frombuf(data[offset : offset + 512], "utf-8", "surrogateescape")
        offset += 512 + info.size + (-info.size) % 512
    return offset


def test_data_after_the_end_marker_is_refused(tmp_path):
    data = _plain_tar(tmp_path / "a.tar", [_reg("f", b"abc")])
    hidden = _plain_tar(tmp_path / "h.tar", [_reg("hidden.sh", b"#!/bin/sh\n")])
    end = _end(data)
    (tmp_path / "a.tar").write_bytes(data[: end + 1024] + hidden)
    result, whole, _s = _scan(tmp_path / "a.tar")
    assert result.archive_error == (
        f"data follows the end-of-archive marker at offset {end + 1024}: only zero padding may follow it"
    )
    assert whole == hashlib.sha256(data[: end + 1024] + hidden).hexdigest()
    (tmp_path / "a.tar").write_bytes(data + b"\x00" * 700 + b"x")
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert f"at offset {len(data) + 700}" in result.archive_error


def test_a_header_after_a_lone_zero_block_is_refused(tmp_path):
    data = _plain_tar(tmp_path / "a.tar", [_reg("f", b"abc")])
    hidden = _plain_tar(tmp_path / "h.tar", [_reg("hidden.sh", b"#!/bin/sh\n")])
    end = _end(data)
    (tmp_path / "a.tar").write_bytes(data[: end + 512] + hidden)
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert result.archive_error.startswith(f"a header follows a lone zero block at offset {end}")
    assert "hidden.sh" not in result.files


def test_a_lone_zero_block_at_the_end_is_a_truncated_archive(tmp_path):
    data = _plain_tar(tmp_path / "a.tar", [_reg("f", b"abc")])
    end = _end(data)
    (tmp_path / "a.tar").write_bytes(data[: end + 512])
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert "lone zero block" in result.archive_error
    assert "truncated" in result.archive_error


def test_names_in_problems_are_escaped_and_bounded(tmp_path):
    name = "evil\x1b[2J\n" + "\u202e" * 200_000
    _tar(tmp_path / "a.tar", [_special(name, tarfile.SYMTYPE, "/etc/" + "x" * 300_000)])
    result, _w, _s = _scan(tmp_path / "a.tar")
    (problem,) = result.problems
    assert problem.startswith("archive entry 'evil\\x1b[2J\\n\\u202e")
    assert "more characters" in problem
    assert len(problem) < 2500
    assert all(32 <= ord(c) < 127 for c in problem)


def test_problems_are_counted_but_only_the_first_kept(tmp_path):
    _tar(tmp_path / "a.tar", [_special(f"d{n}", tarfile.DIRTYPE) for n in range(_extract.MAX_PROBLEMS + 30)])
    result, _w, _s = _scan(tmp_path / "a.tar")
    assert len(result.problems) == _extract.MAX_PROBLEMS
    assert result.problem_count == _extract.MAX_PROBLEMS + 30


def test_metadata_members_kept_in_memory_are_bounded(tmp_path):
    members = [_reg(f"signatures/{n:016x}.sig", b"s") for n in range(_extract.MAX_MEMORY_MEMBERS + 5)]
    _tar(tmp_path / "a.tar", members)
    source = _stream.PartsSource([str(tmp_path / "a.tar")])
    result = _extract.scan(source, None, lambda n: 1024 if n.startswith("signatures/") else 0)
    source.close()
    assert len(result.memory) == _extract.MAX_MEMORY_MEMBERS
    assert result.problem_count == 5
    assert "one metadata member too many" in result.problems[0]


def test_headers_only_finds_the_metadata_and_the_end_without_reading_members(tmp_path, monkeypatch):
    big = os.urandom(50000)
    _tar(
        tmp_path / "a.tar",
        [_reg("artifacts/x/big.bin", big), _reg("bundle.json", b"{}"), _reg("s.sig", b"x")],
    )
    data = (tmp_path / "a.tar").read_bytes()
    # Split in two chunks in the middle of the big member: the seeking source crosses them.
    (tmp_path / "p0").write_bytes(data[:30000])
    (tmp_path / "p1").write_bytes(data[30000:])
    reads = []
    real_read = _stream.SeekingSource.read

    def counted(self, n):
        view = real_read(self, n)
        reads.append(len(view))
        return view

    monkeypatch.setattr(_stream.SeekingSource, "read", counted)
    source = _stream.SeekingSource([str(tmp_path / "p0"), str(tmp_path / "p1")])
    result = _extract.scan(source, None, lambda n: 1024 if n in ("bundle.json", "s.sig") else 0)
    assert result.memory == {"bundle.json": b"{}", "s.sig": b"x"}
    assert result.files["artifacts/x/big.bin"].size == len(big)
    assert result.files["artifacts/x/big.bin"].sha256 == ""  # skipped, not hashed
    assert result.end_offset == sum(512 + -(-len(d) // 512) * 512 for d in (big, b"{}", b"x"))
    assert data[result.end_offset :].count(0) == len(data) - result.end_offset
    assert sum(reads) < 8 * 1024  # headers and the two small members, never the big one
