# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SHA-256, and nothing else: parse a digest, hash a file, hash many in parallel, hash while copying.

Where the bytes go once hashed (temporary names, fsync, ``O_DIRECT``) is :mod:`_io`'s business;
which files a full pass proved is :mod:`_record`'s.

Measured on the 2-core development machine (hot page cache, 4 x 512 MiB):

* ``hashlib.sha256`` is OpenSSL's SHA-256 (SHA-NI); fed 1-8 MiB buffers it runs at the speed of
  ``openssl dgst -sha256``.  A 4 MiB buffer is the default (larger gives nothing measurable).
* ``hashlib`` releases the GIL for updates larger than 2 KiB and ``os.readv``/``os.write`` release
  it too, so threads scale across cores: 2 threads hash 2 blobs in ~0.5x the serial time,
  the same as 2 processes, without fork/pickling costs.  :func:`hash_many` uses threads.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Iterable, List, NamedTuple, Optional, Protocol, Tuple, Union, cast

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    NotRegularError,
    SourceReadError,
    StatKey,
    Writer,
    advise_sequential,
    describe_oserror,
    open_regular,
)

__all__ = [
    "CHUNK_SIZE",
    "DigestError",
    "HashOutcome",
    "SizeMismatchError",
    "copy_and_hash",
    "default_jobs",
    "hash_many",
    "is_sha256_digest",
    "is_sha256_hex",
    "parse_sha256",
    "sha256_fd",
    "sha256_file",
]

CHUNK_SIZE = 4 * 1024 * 1024
"""Read size for hashing and copying (bytes)."""

SHA256_HEX_RE = re.compile(r"\A[0-9a-f]{64}\Z")
SHA256_DIGEST_RE = re.compile(r"\Asha256:[0-9a-f]{64}\Z")


class DigestError(AirgapError):
    """A value that should be a SHA-256 digest is not one."""


class SizeMismatchError(FileError):
    """The source held more or fewer bytes than the caller said it must."""

    def __init__(self, path: str, expected: int, actual: int, more: bool = False) -> None:
        actual_text = f"more than {expected}" if more else str(actual)
        super().__init__(f"{path}: expected {expected} bytes, got {actual_text}")
        self.path = path
        self.expected = expected
        self.actual = actual
        self.more = more


# ------------------------------------------------------------------------------------------ parsing


def is_sha256_hex(value: Any) -> bool:
    """True if ``value`` is a string of exactly 64 lowercase hexadecimal digits."""
    return isinstance(value, str) and SHA256_HEX_RE.match(value) is not None


def is_sha256_digest(value: Any) -> bool:
    """True if ``value`` is ``sha256:`` and 64 lowercase hexadecimal digits (the OCI and Ollama form)."""
    return isinstance(value, str) and SHA256_DIGEST_RE.match(value) is not None


def parse_sha256(value: Any, what: str = "sha256", hint: str = "") -> str:
    """The one parser of a SHA-256 given by an operator: 64 hex digits, optionally ``sha256:`` first.

    Case and surrounding white space do not matter; returns the 64 lowercase hex digits or raises
    :class:`DigestError` naming ``what``, saying what is wrong with the value (empty, how many
    digits, which characters are not hex digits) and, with ``hint``, where the right value is found.
    """
    text = "" if value is None else str(value).strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:") :]
    text = text.lower()
    if is_sha256_hex(text):
        return text
    if not text:
        why = "it is empty"
    elif any(c not in "0123456789abcdef" for c in text):
        bad = sorted({c for c in text if c not in "0123456789abcdef"})
        why = "it holds {}, which {} not hexadecimal digits".format(
            ", ".join(quote(c) for c in bad[:5]), "is" if len(bad) == 1 else "are"
        )
    else:
        why = f"it has {len(text)} hexadecimal digits, not 64"
    raise DigestError(
        f"{what} {quote('' if value is None else str(value).strip())} is not a SHA-256 digest: {why}. "
        "Give 64 hexadecimal digits, with or without 'sha256:' first" + (f" ({hint})" if hint else "")
    )


def default_jobs() -> int:
    """Worker count for :func:`hash_many`: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------- hashing


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
        raise SourceReadError(name, describe_oserror(exc)) from None
    finally:
        view.release()
    return digest.hexdigest(), total


def sha256_file(path: str, chunk_size: int = CHUNK_SIZE, follow_symlinks: bool = False) -> Tuple[str, int]:
    """Hash the regular file at ``path`` in one streaming pass; return ``(hex, size)``.

    Symbolic links are refused unless ``follow_symlinks``; anything that is not a regular file
    (directory, device, FIFO) raises :class:`SourceReadError`.
    """
    outcome = _hash_path(path, chunk_size, follow_symlinks)
    if outcome.error is not None:
        raise SourceReadError(path, outcome.error)
    return outcome.hexdigest or "", outcome.size


class HashOutcome(NamedTuple):
    """One result of :func:`hash_many`: ``error`` is None on success, else a reason."""

    path: str
    hexdigest: Optional[str]
    size: int
    stat: Optional[StatKey]
    error: Optional[str]


def _hash_path(path: str, chunk_size: int, follow_symlinks: bool) -> HashOutcome:
    try:
        fd, st_before = open_regular(path, follow_symlinks=follow_symlinks)
    except NotRegularError as exc:
        return HashOutcome(path, None, 0, None, exc.reason)
    except OSError as exc:
        return HashOutcome(path, None, 0, None, describe_oserror(exc))
    try:
        advise_sequential(fd)
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


# ------------------------------------------------------------------------------ hashing while copying


class ReadsInto(Protocol):
    """A stream that fills a buffer (``http.client.HTTPResponse``, a raw file, a resume reader)."""

    def readinto(self, buf: Any) -> Optional[int]: ...


Readable = Union[int, BinaryIO, ReadsInto]
"""What :func:`copy_and_hash` reads from: a descriptor, a binary file object or a ``readinto`` stream."""


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

    stream = cast(BinaryIO, src)

    def read_copy(buf: bytearray) -> int:
        data = stream.read(len(buf))
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
                return read(memoryview(buf)[:want])
            except OSError as exc:
                raise SourceReadError(src_name, describe_oserror(exc)) from None

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
