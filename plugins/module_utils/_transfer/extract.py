# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Strict, streaming reader for bundle tarballs.

Nothing in the archive is trusted: entry names never become file system paths. Regular files are
copied to numbered temporary files in a staging directory (or only hashed, in check mode) while
their SHA-256 is computed; small metadata members are kept in memory. Every entry that is not a
plain regular file with a safe relative name is recorded as a problem and its data skipped:
absolute paths, ``..`` or empty components, symbolic and hard links, devices, FIFOs, directories,
global or sparse headers, and duplicate names. The archive ends with its end-of-archive marker
(two zero blocks) followed by nothing but zero padding: a header after a lone zero block, or any
other data after the marker, is an error (``tar -i`` would read it as more members). The caller
decides, after the whole stream has been read (so that outer and chunk digests are complete),
which check failed first.

Names and link targets from the archive enter a problem only through :func:`_errors.quote`
(bounded, escaped); at most :data:`MAX_PROBLEMS` problems are kept (the rest are counted), and at
most :data:`MAX_MEMORY_MEMBERS` members are kept in memory.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import Writer
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import BackgroundHasher, PartsSource

__all__ = [
    "ArchiveError",
    "ScanResult",
    "StagedFile",
    "scan",
    "unsafe_name",
]

BLOCKSIZE = 512
MAX_PAX = 1 << 20
MAX_PROBLEMS = 20
MAX_MEMORY_MEMBERS = 64
_ZERO_BLOCK = b"\x00" * BLOCKSIZE

_TYPE_NAMES = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.DIRTYPE: "a directory",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
    tarfile.XGLTYPE: "a global pax header",
}


class ArchiveError(AirgapError):
    """The archive cannot be parsed any further."""


class StagedFile:
    __slots__ = ("name", "sha256", "size", "tmp_path")

    def __init__(self, name: str, tmp_path: Optional[str], size: int, sha256: str) -> None:
        self.name = name
        self.tmp_path = tmp_path
        self.size = size
        self.sha256 = sha256


class ScanResult:
    def __init__(self) -> None:
        self.files: Dict[str, StagedFile] = {}
        self.memory: Dict[str, bytes] = {}
        self.problems: List[str] = []
        self.problem_count = 0
        self.archive_error: Optional[str] = None
        self.entries = 0
        self.end_offset: Optional[int] = None
        """Where the end-of-archive marker starts (None when the archive ended otherwise)."""

    def problem(self, text: str) -> None:
        """Record a problem (the first :data:`MAX_PROBLEMS` are kept, the others counted)."""
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def unsafe_name(name: str) -> Optional[str]:
    """Why ``name`` cannot be a bundle member path, or None."""
    if not name:
        return "has an empty name"
    if "\x00" in name or any(ord(c) < 32 for c in name):
        return "has control characters in its name"
    if name.startswith("/"):
        return "has an absolute path"
    if "\\" in name:
        return "has a backslash in its name"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' path component"
    return None


def _parse_pax(data: bytes) -> Dict[str, str]:
    out: Dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos : pos + 1] == b"\x00":
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise ArchiveError("malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ArchiveError("malformed pax header length") from None
        if length <= space - pos + 1 or pos + length > len(data):
            raise ArchiveError("malformed pax header record")
        record = data[space + 1 : pos + length]
        if not record.endswith(b"\n") or b"=" not in record:
            raise ArchiveError("malformed pax header record")
        key, value = record[:-1].split(b"=", 1)
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _padding(size: int) -> int:
    return (-size) % BLOCKSIZE


def _end_of_archive(source: Any, padding: bool = True) -> None:
    """After a zero block: the second zero block, then (``padding``) nothing but zero padding to the end."""
    offset = source.offset - BLOCKSIZE
    second = source.read_exact(BLOCKSIZE)
    if len(second) < BLOCKSIZE:
        raise ArchiveError(
            f"a lone zero block at offset {offset} ends the archive without the end-of-archive marker "
            "(two zero blocks): the archive is truncated"
        )
    if second != _ZERO_BLOCK:
        raise ArchiveError(
            f"a header follows a lone zero block at offset {offset}: tar -i would read more members there "
            "than this reader does"
        )
    while padding:
        start = source.offset
        view = source.read(source.block)
        if not len(view):
            return
        data = bytes(view)
        if data.count(0) != len(data):
            where = start + len(data) - len(data.lstrip(b"\x00"))
            raise ArchiveError(
                f"data follows the end-of-archive marker at offset {where}: only zero padding may follow it"
            )


def _skip(source: Any, size: int) -> None:
    if hasattr(source, "skip"):  # a source that seeks (headers only): nothing is read or hashed
        if not source.skip(size):
            raise ArchiveError("archive ends inside an entry (truncated)")
        return
    left = size
    while left:
        view = source.read(min(left, source.block))
        if not len(view):
            raise ArchiveError("archive ends inside an entry (truncated)")
        left -= len(view)


def _copy(source: PartsSource, size: int, write: Optional[Writer], hasher: BackgroundHasher) -> str:
    """Copy one member through ``write``; its digest runs in ``hasher``'s thread meanwhile.

    The writer starts writeback as it goes, so the fsync before the rename into the repository
    finds the data already on the disk.
    """
    digest = hashlib.sha256()
    left = size
    while left:
        view = source.read(min(left, source.block))
        if not len(view):
            raise ArchiveError("archive ends inside an entry (truncated)")
        hasher.feed(view, (digest,))
        if write is not None:
            write(view)
        left -= len(view)
    hasher.flush()
    return digest.hexdigest()


def scan(
    source: Any,
    stage_dir: Optional[str],
    keep_in_memory: Callable[[str], int],
) -> ScanResult:
    """Read the whole archive from ``source`` (a :class:`PartsSource`).

    ``keep_in_memory(name)`` returns the largest size to keep that member in memory (0: stage it
    as a file). ``stage_dir`` None hashes without writing (check mode). Problems are collected,
    not raised; a stream that cannot be parsed sets ``archive_error``. The source is always read
    to its end so that its digests cover every byte.

    A :class:`stream.SeekingSource` reads headers only: members not kept in memory are skipped
    (their ``sha256`` is empty) and nothing after the end-of-archive marker is read. That finds
    ``bundle.json`` and the signatures of a large bundle without reading it; it checks nothing else.
    """
    headers_only = hasattr(source, "skip")
    result = ScanResult()
    pax: Dict[str, str] = {}
    long_name: Optional[str] = None
    counter = 0
    hasher = BackgroundHasher()
    try:
        while True:
            header = source.read_exact(BLOCKSIZE)
            if len(header) == 0:
                raise ArchiveError("archive ends without the end-of-archive marker (truncated)")
            if len(header) < BLOCKSIZE:
                raise ArchiveError("archive ends inside a header (truncated)")
            if header == _ZERO_BLOCK:
                result.end_offset = source.offset - BLOCKSIZE
                _end_of_archive(source, padding=not headers_only)
                break
            try:
                info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise ArchiveError(
                    f"invalid tar header at offset {source.offset - BLOCKSIZE}: {quote(str(exc))}"
                ) from None
            size = info.size
            if info.type == tarfile.XHDTYPE:
                if size > MAX_PAX:
                    raise ArchiveError(f"pax header of {size} bytes is too large")
                pax = _parse_pax(source.read_exact(size + _padding(size))[:size])
                continue
            if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                if size > MAX_PAX:
                    raise ArchiveError(f"GNU long name of {size} bytes is too large")
                data = source.read_exact(size + _padding(size))[:size]
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.rstrip(b"\x00").decode("utf-8", "surrogateescape")
                continue
            name = info.name
            if long_name is not None:
                name = long_name
            if "path" in pax:
                name = pax["path"]
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise ArchiveError(f"pax size of {quote(name)} is not a number") from None
                if size < 0:
                    raise ArchiveError(f"pax size of {quote(name)} is negative") from None
            sparse = any(k.startswith("GNU.sparse") for k in pax)
            pax = {}
            long_name = None
            result.entries += 1
            problem = None
            if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not sparse:
                problem = unsafe_name(name)
                if problem is None and (name in result.files or name in result.memory):
                    problem = "is a duplicate entry"
            else:
                what = _TYPE_NAMES.get(info.type, f"of unsupported type {quote(info.type)}")
                if sparse:
                    what = "a sparse file"
                problem = f"is {what}"
                if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    problem += f" (to {quote(info.linkname)})"
            if problem is not None:
                result.problem(f"archive entry {quote(name)} {problem}")
                _skip(source, size + _padding(size))
                continue
            limit = keep_in_memory(name)
            if limit:
                if size > limit or len(result.memory) >= MAX_MEMORY_MEMBERS:
                    why = (
                        f"is {size} bytes, more than {limit}"
                        if size > limit
                        else f"is one metadata member too many (at most {MAX_MEMORY_MEMBERS})"
                    )
                    result.problem(f"archive entry {quote(name)} {why}")
                    _skip(source, size + _padding(size))
                    continue
                data = source.read_exact(size)
                if len(data) < size:
                    raise ArchiveError("archive ends inside an entry (truncated)")
                result.memory[name] = data
                _skip(source, _padding(size))
                continue
            if headers_only:
                result.files[name] = StagedFile(name, None, size, "")
                _skip(source, size + _padding(size))
                continue
            tmp_path = None
            fd = None
            if stage_dir is not None:
                counter += 1
                tmp_path = os.path.join(stage_dir, f"{counter:06d}")
                fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            write = Writer(fd, tmp_path or "", start_writeback=True) if fd is not None else None
            try:
                digest = _copy(source, size, write, hasher)
                if write is not None:
                    write.close()  # a failed background writeback is reported here
            finally:
                if write is not None:
                    write.close(report=False)
                if fd is not None:
                    os.close(fd)
            result.files[name] = StagedFile(name, tmp_path, size, digest)
            _skip(source, _padding(size))
    except ArchiveError as exc:
        result.archive_error = str(exc)
    finally:
        hasher.close()
    source.drain()
    return result
