# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Streaming SHA-256 for large files: hash, hash while copying, hash many in parallel.

Private module_utils of airgap.llm; the public API of this file (everything without a leading
underscore) is used by the Ollama modules and by the bundle/ingest code, so keep it stable.

Measured on the 2-core development machine (hot page cache, 4 x 512 MiB):

* ``hashlib.sha256`` is OpenSSL's SHA-256 (SHA-NI); fed 1-8 MiB buffers it runs at the speed of
  ``openssl dgst -sha256``.  A 4 MiB buffer is the default (larger gives nothing measurable).
* ``hashlib`` releases the GIL for updates larger than 2 KiB and ``os.readv``/``os.write`` release
  it too, so threads scale across cores: 2 threads hash 2 blobs in ~0.5x the serial time,
  the same as 2 processes, without fork/pickling costs.  :func:`hash_many` uses threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import mmap
import os
import queue
import re
import stat
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

CHUNK_SIZE = 4 * 1024 * 1024
"""Read size for hashing and copying (bytes)."""

SHA256_HEX_RE = re.compile(r"\A[0-9a-f]{64}\Z")

__all__ = [
    "CHUNK_SIZE",
    "DestinationWriteError",
    "DigestError",
    "HashOutcome",
    "SizeMismatchError",
    "SourceReadError",
    "StatKey",
    "VerificationRecord",
    "atomic_write",
    "copy_and_hash",
    "default_jobs",
    "fsync_dir",
    "hash_many",
    "is_sha256_hex",
    "sha256_fd",
    "sha256_file",
]


class DigestError(Exception):
    """Base class of every error raised here; ``str()`` is a complete sentence for an operator."""


class SourceReadError(DigestError):
    """The file or stream being hashed could not be opened or read."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


class DestinationWriteError(DigestError):
    """Writing the copy failed (for example ENOSPC: the destination file system is full)."""

    def __init__(self, path: str, reason: str, err: Optional[int] = None) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = err


class SizeMismatchError(DigestError):
    """The source held more or fewer bytes than the caller said it must."""

    def __init__(self, path: str, expected: int, actual: int, more: bool = False) -> None:
        actual_text = f"more than {expected}" if more else str(actual)
        super().__init__(f"{path}: expected {expected} bytes, got {actual_text}")
        self.path = path
        self.expected = expected
        self.actual = actual
        self.more = more


def is_sha256_hex(value: Any) -> bool:
    """True if ``value`` is a string of exactly 64 lowercase hexadecimal digits."""
    return isinstance(value, str) and SHA256_HEX_RE.match(value) is not None


def default_jobs() -> int:
    """Worker count for :func:`hash_many`: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _describe_oserror(exc: OSError) -> str:
    if exc.errno is not None:
        return f"{os.strerror(exc.errno)} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


def _advise_sequential(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def sha256_fd(fd: int, chunk_size: int = CHUNK_SIZE, name: str = "<fd>") -> Tuple[str, int]:
    """Hash everything readable from ``fd`` from its current offset; return ``(hex, size)``."""
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    digest = hashlib.sha256()
    total = 0
    try:
        while True:
            count = os.readv(fd, [buf])
            if not count:
                break
            digest.update(view[:count])
            total += count
    except OSError as exc:
        raise SourceReadError(name, _describe_oserror(exc)) from None
    finally:
        view.release()
    return digest.hexdigest(), total


def _open_regular(path: str, follow_symlinks: bool) -> Tuple[int, os.stat_result]:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise SourceReadError(path, "it is a symbolic link, not a regular file") from None
        raise SourceReadError(path, _describe_oserror(exc)) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise SourceReadError(path, _describe_oserror(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SourceReadError(path, f"it is {kind}")
    return fd, st


def sha256_file(path: str, chunk_size: int = CHUNK_SIZE, follow_symlinks: bool = False) -> Tuple[str, int]:
    """Hash the regular file at ``path`` in one streaming pass; return ``(hex, size)``.

    Symbolic links are refused unless ``follow_symlinks``; anything that is not a regular file
    (directory, device, FIFO) raises :class:`SourceReadError`.
    """
    outcome = _hash_path(path, chunk_size, follow_symlinks)
    if outcome.error is not None:
        raise SourceReadError(path, outcome.error)
    return outcome.hexdigest or "", outcome.size


class StatKey(NamedTuple):
    """The identity of a file's content as far as ``stat`` can tell.

    Any write changes ``mtime_ns`` and ``ctime_ns``; ``ctime`` cannot be set back by an
    unprivileged user (``utime`` can fake ``mtime`` but bumps ``ctime``); replacing the file
    changes ``ino``; another file system changes ``dev``.
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def from_stat(cls, st: os.stat_result) -> StatKey:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def encode(self) -> str:
        return ":".join(str(int(v)) for v in self)

    @classmethod
    def decode(cls, text: str) -> Optional[StatKey]:
        parts = text.split(":")
        if len(parts) != 5 or not all(p.isdigit() for p in parts):
            return None
        dev, ino, size, mtime_ns, ctime_ns = (int(p) for p in parts)
        return cls(dev, ino, size, mtime_ns, ctime_ns)


class HashOutcome(NamedTuple):
    """One result of :func:`hash_many`: ``error`` is None on success, else a reason."""

    path: str
    hexdigest: Optional[str]
    size: int
    stat: Optional[StatKey]
    error: Optional[str]


def _hash_path(path: str, chunk_size: int, follow_symlinks: bool) -> HashOutcome:
    try:
        fd, st_before = _open_regular(path, follow_symlinks)
    except SourceReadError as exc:
        return HashOutcome(path, None, 0, None, exc.reason)
    try:
        _advise_sequential(fd)
        try:
            hexdigest, size = sha256_fd(fd, chunk_size, path)
        except SourceReadError as exc:
            return HashOutcome(path, None, 0, None, exc.reason)
        st_after = os.fstat(fd)
    finally:
        os.close(fd)
    key_before = StatKey.from_stat(st_before)
    key_after = StatKey.from_stat(st_after)
    if key_before != key_after or size != st_after.st_size:
        return HashOutcome(path, None, size, None, "the file changed while it was being read")
    return HashOutcome(path, hexdigest, size, key_after, None)


def hash_many(
    paths: Iterable[str],
    jobs: Optional[int] = None,
    chunk_size: int = CHUNK_SIZE,
    follow_symlinks: bool = False,
) -> List[HashOutcome]:
    """Hash many files in parallel threads; results come back in the order of ``paths``.

    Never raises for a bad file: each :class:`HashOutcome` carries its own ``error``.  The
    largest files are started first so the workers finish together.  ``stat`` is the file's
    :class:`StatKey`, checked unchanged across the read (suitable for a verification record).
    """
    path_list = list(paths)
    if not path_list:
        return []
    workers = max(1, min(jobs or default_jobs(), len(path_list)))

    def size_of(path: str) -> int:
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0

    order = sorted(range(len(path_list)), key=lambda i: -size_of(path_list[i]))
    results: List[Optional[HashOutcome]] = [None] * len(path_list)
    if workers == 1:
        for index in order:
            results[index] = _hash_path(path_list[index], chunk_size, follow_symlinks)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                index: pool.submit(_hash_path, path_list[index], chunk_size, follow_symlinks)
                for index in order
            }
            for index, future in futures.items():
                results[index] = future.result()
    return [r for r in results if r is not None]


def _write_all(fd: int, view: memoryview, dest_name: str) -> None:
    offset = 0
    length = len(view)
    while offset < length:
        try:
            written = os.write(fd, view[offset:])
        except OSError as exc:
            raise DestinationWriteError(dest_name, _describe_oserror(exc), exc.errno) from None
        if written <= 0:
            raise DestinationWriteError(dest_name, "the write made no progress")
        offset += written


WRITEBACK_WINDOW = 32 * 1024 * 1024


SYNC_FILE_RANGE_WRITE = 2
# Errors that mean "no writeback hints here" (not Linux, a pipe, a file system without support),
# not "the data is lost": the caller's final fsync still decides.
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP, errno.EBADF)


def _load_sync_file_range():
    """libc's ``sync_file_range`` through ctypes, or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int

    def sync_file_range(fd: int, offset: int, length: int, flags: int) -> None:
        if function(fd, offset, length, flags) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return sync_file_range


_sync_file_range = _load_sync_file_range()


class _Flusher:
    """A helper thread that starts writeback of the ranges it is handed, in order.

    ``sync_file_range`` may block while the disk's queue is full; in this thread that costs the
    copy nothing. The first unsupported call stops the hints (the caller's final ``fsync`` still
    makes the file durable); an I/O error is kept for :meth:`close`.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.error: Optional[OSError] = None
        self._ranges: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="copy_and_hash-writeback", daemon=True)
        self._thread.start()

    def request(self, offset: int, length: int) -> None:
        self._ranges.put((offset, length))

    def _run(self) -> None:
        supported = True
        while True:
            item = self._ranges.get()
            if item is None:
                return
            if not supported or self.error is not None:
                continue
            try:
                _sync_file_range(self.fd, item[0], item[1], SYNC_FILE_RANGE_WRITE)  # type: ignore[misc]
            except OSError as exc:
                supported = False
                if exc.errno not in _UNSUPPORTED:
                    self.error = exc

    def close(self) -> Optional[OSError]:
        self._ranges.put(None)
        self._thread.join()
        return self.error


DIRECT_ALIGN = 4096


def _set_direct(fd: int, enable: bool) -> bool:
    """Switch ``O_DIRECT`` on or off for ``fd``; False where the file system refuses it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | direct) if enable else (flags & ~direct))
    except OSError:
        return False
    return True


class Writer:
    """Write all of a buffer to a descriptor; optionally start writeback of what is written.

    The one place where large files are written durably while they are produced: with
    ``start_writeback``, every :data:`WRITEBACK_WINDOW` bytes written are handed to the disk
    (``sync_file_range(SYNC_FILE_RANGE_WRITE)`` in a helper thread: no cache flush, no journal
    commit), so the data goes out during the copy and the caller's final ``fsync`` waits only for
    the tail. :meth:`close` must be called (it joins the helper and reports an I/O error).

    With ``direct`` the aligned pieces are written with ``O_DIRECT`` from the caller's page-aligned
    buffers: the disk reads them in place, with no copy into the page cache and almost nothing left
    for the final ``fsync``. The first unaligned piece (the tail of a file), a file system that
    refuses ``O_DIRECT`` or a refused write switch back to the page cache; the bytes written are
    the same either way.
    """

    def __init__(self, fd: int, name: str, start_writeback: bool, direct: bool = False) -> None:
        self.fd = fd
        self.name = name
        self.written = 0
        self.flushed = 0
        # Where the writes start: hints and alignment are about file offsets, and a resumed
        # download appends. A descriptor without offsets (a pipe) gets neither.
        self.base = 0
        if start_writeback or direct:
            try:
                self.base = os.lseek(fd, 0, os.SEEK_CUR)
            except OSError:
                start_writeback = direct = False
        self.flusher = _Flusher(fd) if start_writeback and _sync_file_range is not None else None
        self.direct = direct and _set_direct(fd, True)

    def _stop_direct(self) -> None:
        self.direct = False
        with contextlib.suppress(OSError):
            _set_direct(self.fd, False)

    def __call__(self, view: memoryview) -> None:
        if self.direct and (len(view) % DIRECT_ALIGN or (self.base + self.written) % DIRECT_ALIGN):
            self._stop_direct()  # an unaligned piece (the tail): the page cache from here on
        try:
            _write_all(self.fd, view, self.name)
        except DestinationWriteError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
            # The file system or the buffer does not allow direct I/O after all; nothing was
            # written by the refused call, so the same piece goes through the page cache.
            self._stop_direct()
            os.lseek(self.fd, self.base + self.written, os.SEEK_SET)
            _write_all(self.fd, view, self.name)
        self.written += len(view)
        if self.flusher is not None and self.written - self.flushed >= WRITEBACK_WINDOW:
            self.flusher.request(self.base + self.flushed, self.written - self.flushed)
            self.flushed = self.written

    def close(self, report: bool = True) -> None:
        if self.flusher is not None:
            error = self.flusher.close()
            self.flusher = None
            if error is not None and report:
                raise DestinationWriteError(self.name, _describe_oserror(error), error.errno)


Readable = Union[int, BinaryIO]


def _reader(src: Readable):
    if isinstance(src, int):

        def read_fd(buf: bytearray) -> int:
            return os.readv(src, [buf])

        return read_fd
    readinto = getattr(src, "readinto", None)
    if readinto is not None:

        def read_into(buf: bytearray) -> int:
            return readinto(buf) or 0

        return read_into

    def read_copy(buf: bytearray) -> int:
        data = src.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    return read_copy


def copy_and_hash(
    src: Readable,
    dest_fd: int,
    *,
    expected_size: Optional[int] = None,
    src_name: str = "<source>",
    dest_name: str = "<destination>",
    chunk_size: int = CHUNK_SIZE,
    pipeline: bool = True,
    start_writeback: bool = False,
    direct: bool = False,
) -> Tuple[str, int]:
    """Copy ``src`` to ``dest_fd`` and hash the same bytes in one read pass; return ``(hex, size)``.

    ``src`` is a file descriptor or a binary file object (``readinto`` is used when it exists,
    so an ``http.client.HTTPResponse`` streams without extra copies).  With ``expected_size``
    the copy stops as soon as the source proves longer (never writing more than that) and a short
    source raises :class:`SizeMismatchError`.  Write errors raise :class:`DestinationWriteError`
    (``errno`` ENOSPC for a full disk); read errors raise :class:`SourceReadError`.  The caller
    owns ``dest_fd`` (fsync, close, rename, cleanup on error).

    With ``pipeline`` reading, hashing and writing run in three threads over a few buffers
    (``hashlib``, ``readv``, TLS reads and ``write`` all release the GIL), so a copy costs about
    ``max(read, hash, write)`` instead of their sum.

    With ``start_writeback`` writeback of every 32 MiB written is started at once (see
    :class:`Writer`), so the data goes to disk while the copy goes on and the caller's final
    ``fsync`` waits only for the tail instead of the whole file. With ``direct`` the data is
    written with ``O_DIRECT`` where the file system allows it (see :class:`Writer`); ``dest_fd``
    must then be positioned at a multiple of 4096 for it to be used.
    """
    write = Writer(dest_fd, dest_name, start_writeback, direct=direct)
    try:
        read = _reader(src)
        limit = expected_size + 1 if expected_size is not None else None
        digest = hashlib.sha256()
        total = 0

        def next_chunk(buf: bytearray) -> int:
            want = len(buf) if limit is None else min(len(buf), limit - total)
            if want <= 0:
                return 0
            try:
                if want == len(buf):
                    return read(buf)
                return read(memoryview(buf)[:want])  # type: ignore[arg-type]
            except OSError as exc:
                raise SourceReadError(src_name, _describe_oserror(exc)) from None

        def check_total() -> None:
            if expected_size is not None and total > expected_size:
                raise SizeMismatchError(src_name, expected_size, total, more=True)

        if not pipeline:
            buf = _buffer(chunk_size, write.direct)
            view = memoryview(buf)
            try:
                while True:
                    count = next_chunk(buf)
                    if not count:
                        break
                    total += count
                    check_total()
                    digest.update(view[:count])
                    write(view[:count])
            finally:
                view.release()
        else:
            total = _pipelined_copy(
                next_chunk,
                digest,
                write,
                chunk_size=chunk_size,
                expected_size=expected_size,
                src_name=src_name,
                aligned=write.direct,
            )
    except BaseException:
        write.close(report=False)
        raise
    write.close()
    if expected_size is not None and total != expected_size:
        raise SizeMismatchError(src_name, expected_size, total, more=total > expected_size)
    return digest.hexdigest(), total


PIPELINE_BUFFERS = 4


def _buffer(size: int, aligned: bool) -> Any:
    """A read buffer; page-aligned (anonymous memory map) when the writer may use ``O_DIRECT``."""
    return mmap.mmap(-1, size) if aligned else bytearray(size)


def _pipelined_copy(next_chunk, digest, write, *, chunk_size, expected_size, src_name, aligned=False) -> int:
    """Read in this thread; hash and write each buffer in two helper threads at the same time.

    A buffer goes back to the reader once both helpers are done with it, so reading (a TLS
    decryption, for a download), hashing and writing overlap on separate cores, and a copy costs
    about the slowest of the three instead of their sum.
    """
    buffers = [_buffer(chunk_size, aligned) for _index in range(PIPELINE_BUFFERS)]
    cond = threading.Condition()
    free = list(range(PIPELINE_BUFFERS))
    users = [0] * PIPELINE_BUFFERS
    failure: List[BaseException] = []
    queues: List[queue.SimpleQueue] = [queue.SimpleQueue(), queue.SimpleQueue()]

    def release(index: int) -> None:
        with cond:
            users[index] -= 1
            if not users[index]:
                free.append(index)
                cond.notify_all()

    def consume(work: queue.SimpleQueue, action) -> None:
        while True:
            item = work.get()
            if item is None:
                return
            index, count = item
            try:
                if not failure:
                    with memoryview(buffers[index]) as view:
                        action(view[:count])
            except BaseException as exc:  # handed to the reader thread and re-raised there
                with cond:
                    failure.append(exc)
                    cond.notify_all()
            finally:
                release(index)

    threads = [
        threading.Thread(
            target=consume, args=(queues[0], digest.update), name="copy_and_hash-hasher", daemon=True
        ),
        threading.Thread(target=consume, args=(queues[1], write), name="copy_and_hash-writer", daemon=True),
    ]
    for thread in threads:
        thread.start()
    total = 0
    try:
        while True:
            with cond:
                while not free and not failure:
                    cond.wait()
                if failure:
                    break
                index = free.pop(0)
            count = next_chunk(buffers[index])
            if not count:
                with cond:
                    free.append(index)
                break
            total += count
            if expected_size is not None and total > expected_size:
                with cond:
                    free.append(index)
                raise SizeMismatchError(src_name, expected_size, total, more=True)
            with cond:
                users[index] = len(queues)
            for work in queues:
                work.put((index, count))
    finally:
        for work in queues:
            work.put(None)
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]
    return total


def fsync_dir(path: str) -> None:
    """fsync a directory so that renames and new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, uid: int = -1, gid: int = -1) -> None:
    """Replace ``path`` with ``data`` atomically: temp file in the same directory, fsync, rename, fsync dir.

    The temporary name starts with ``.`` and ends in ``.tmp``; it is removed on any error.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        try:
            _write_all(fd, memoryview(data), tmp)
            os.fchmod(fd, mode)
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


class VerificationRecord:
    """Which files a full pass proved to have which SHA-256, keyed by their :class:`StatKey`.

    ``mode: fast`` trusts a file whose current ``StatKey`` is in the record with the digest it
    must have, and reads nothing.  The record is JSON
    ``{"format": 1, "entries": {"<dev>:<ino>:<size>:<mtime_ns>:<ctime_ns>": "<hex>"}}``.

    A record is only trusted if it is a regular file owned by root or by the current user and
    not writable by group or others (see :meth:`load`); otherwise it is ignored (everything is
    hashed again) and :attr:`ignored_reason` says why.  :meth:`save` writes atomically.
    """

    FORMAT = 1
    MAX_BYTES = 64 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: Dict[StatKey, str] = {}
        self.ignored_reason: Optional[str] = None
        self._dirty = False

    @classmethod
    def load(cls, path: str) -> VerificationRecord:
        record = cls(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return record
        except OSError as exc:
            record.ignored_reason = f"cannot open it: {_describe_oserror(exc)}"
            return record
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                record.ignored_reason = "it is not a regular file"
                return record
            if st.st_uid not in (0, os.geteuid()):
                record.ignored_reason = f"it is owned by uid {st.st_uid}, not root or uid {os.geteuid()}"
                return record
            if st.st_mode & 0o022:
                record.ignored_reason = (
                    f"it is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
                )
                return record
            if st.st_size > cls.MAX_BYTES:
                record.ignored_reason = f"it is larger than {cls.MAX_BYTES} bytes"
                return record
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read(cls.MAX_BYTES + 1)
        finally:
            os.close(fd)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            record.ignored_reason = "it is not valid JSON"
            return record
        if (
            not isinstance(data, dict)
            or data.get("format") != cls.FORMAT
            or not isinstance(data.get("entries"), dict)
        ):
            record.ignored_reason = "it has an unknown format"
            return record
        for text, hexdigest in data["entries"].items():
            key = StatKey.decode(text) if isinstance(text, str) else None
            if key is not None and is_sha256_hex(hexdigest):
                record.entries[key] = hexdigest
        return record

    def lookup(self, key: StatKey) -> Optional[str]:
        """The digest a full pass proved for a file with exactly this ``StatKey``, or None."""
        return self.entries.get(key)

    def is_verified(self, key: StatKey, hexdigest: str) -> bool:
        return self.entries.get(key) == hexdigest

    def add(self, key: StatKey, hexdigest: str) -> None:
        if self.entries.get(key) != hexdigest:
            self.entries[key] = hexdigest
            self._dirty = True

    def discard_digest(self, hexdigest: str) -> None:
        for key in [k for k, v in self.entries.items() if v == hexdigest]:
            del self.entries[key]
            self._dirty = True

    def retain(self, keys: Iterable[StatKey]) -> None:
        """Forget every entry whose key is not in ``keys`` (files gone or changed)."""
        keep = set(keys)
        for key in [k for k in self.entries if k not in keep]:
            del self.entries[key]
            self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def save(self, dir_mode: int = 0o755) -> None:
        """Write the record atomically (mode 0644, owned by the current user) if it changed."""
        if not self._dirty:
            return
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, dir_mode)
        payload = {
            "format": self.FORMAT,
            "entries": {key.encode(): value for key, value in sorted(self.entries.items())},
        }
        atomic_write(self.path, (json.dumps(payload, indent=0, sort_keys=True) + "\n").encode("utf-8"))
        self._dirty = False
