# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Byte streams for bundles: one pass, two cores.

A bundle tarball is hashed as a whole (the outer digest), per chunk, and per member file. The
member hash runs in the thread that moves the bytes; the outer and chunk hashes run in a
:class:`BackgroundHasher` thread that sees the same immutable blocks in order. ``hashlib``
releases the GIL on large updates, so both hashes proceed in parallel with the I/O.

:class:`PartsSource` reads a file or a sequence of chunk files as one stream.
:class:`ChunkedSink` writes one stream into a file or into chunks of a fixed size.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import queue
import re
import threading
from typing import Any, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, Writer, fsync_dir, read_bounded

__all__ = [
    "BLOCK",
    "MIN_CHUNK",
    "BackgroundHasher",
    "ChunkedSink",
    "PartsSource",
    "SeekingSource",
    "StreamError",
    "parse_size",
    "read_sums",
]

BLOCK = 1 << 20
MIN_CHUNK = 512
MAX_SUMS = 1 << 20
_SIZE_RE = re.compile(r"^([0-9]+)(?:\s*([KMGT])(I?)(B?))?$", re.IGNORECASE)
_UNIT_POWER = {"K": 1, "M": 2, "G": 3, "T": 4}


class StreamError(AirgapError):
    """Reading or writing a bundle stream failed."""


def read_sums(path: str) -> List[Tuple[str, str]]:
    """The ``sha256sum`` lines of a small digest file (``.sha256``, ``.chunks.sha256``): (digest, name).

    A name must be a plain file name (printable, no ``/``, not hidden, at most 255 characters), so
    that messages can show it as it is. Raises :class:`StreamError` naming the file and line.
    """
    try:
        text = read_bounded(path, MAX_SUMS).decode("utf-8")
    except (OSError, FileError, UnicodeDecodeError) as exc:
        raise StreamError(f"cannot read {path}: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        name = parts[1].strip().lstrip("*") if len(parts) == 2 else ""
        if (
            len(parts) != 2
            or not is_sha256_hex(parts[0])
            or not name
            or "/" in name
            or name.startswith(".")
            or len(name) > 255
            or not name.isprintable()
        ):
            raise StreamError(f"{path} line {number} is not '<sha256>  <file name>' (got {quote(line)})")
        rows.append((parts[0], name))
    return rows


def parse_size(value: object, what: str = "chunk_size") -> Tuple[int, str]:
    """A size an operator gives, in bytes, and a sentence saying how it was read.

    ``40MB``, ``40GB`` (and ``kB``, ``TB``) are decimal, as media are sold: 40,000,000 bytes.
    ``40M``, ``40MiB`` (``K``, ``G``, ``T``, with or without ``iB``) are binary: 41,943,040 bytes.
    A plain number is bytes. Anything else raises :class:`StreamError` naming ``what``.
    """
    text = str(value).strip()
    match = _SIZE_RE.match(text)
    if match is None:
        raise StreamError(
            f"{what} {quote(text)} is not a size: give bytes (40000000), a decimal size (40MB, 4GB: powers "
            "of 1000, as media are sold) or a binary one (40MiB or 40M, 4GiB or 4G: powers of 1024)"
        )
    number, unit, binary_i, byte = match.groups()
    count = int(number)
    if unit is None:
        size, how = count, "a plain number is bytes"
    elif binary_i or not byte:
        size = count * 1024 ** _UNIT_POWER[unit.upper()]
        how = f"binary: 1 {unit.upper()}iB = {1024 ** _UNIT_POWER[unit.upper()]:,} bytes"
        if not binary_i:
            how += f"; write {count}{unit.upper()}B for {count * 1000 ** _UNIT_POWER[unit.upper()]:,} bytes"
    else:
        size = count * 1000 ** _UNIT_POWER[unit.upper()]
        how = f"decimal: 1 {unit.upper()}B = {1000 ** _UNIT_POWER[unit.upper()]:,} bytes"
    if size < MIN_CHUNK:
        raise StreamError(f"{what} {quote(text)} is {size} bytes; give at least {MIN_CHUNK} bytes")
    return size, f"{what} {text} = {size:,} bytes ({how})"


class BackgroundHasher:
    """Applies ``update`` calls to hash objects in a worker thread, in the order fed."""

    def __init__(self, depth: int = 16) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="bundle-hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                data, targets = item
                if self._error is None:
                    for target in targets:
                        target.update(data)
            # Re-raised in flush() and close().
            except BaseException as exc:  # pylint: disable=broad-exception-caught
                self._error = exc
            finally:
                self._queue.task_done()

    def feed(self, data: Any, targets: Sequence[Any]) -> None:
        """Queue ``data`` (bytes or a view on bytes that nobody changes) for every target."""
        if targets and len(data):
            self._queue.put((data, tuple(targets)))

    def flush(self) -> None:
        """Wait until everything fed so far has been hashed."""
        self._queue.join()
        if self._error is not None:
            raise StreamError(f"hashing failed: {self._error}")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise StreamError(f"hashing failed: {self._error}")


class _Stream(abc.ABC):
    """What the tar reader needs of a stream besides ``read``: exactly ``n`` bytes, or fewer at its end."""

    @abc.abstractmethod
    def read(self, n: int) -> memoryview:
        """Up to ``n`` bytes; an empty view at the end of the stream."""

    def read_exact(self, n: int) -> bytes:
        pieces: List[bytes] = []
        need = n
        while need:
            view = self.read(need)
            if not len(view):
                break
            pieces.append(bytes(view))
            need -= len(view)
        return b"".join(pieces)


class PartsSource(_Stream):
    """Read ``parts`` (paths) back to back as one stream.

    The whole stream and each part are hashed in the background. :meth:`read` returns at most
    ``n`` bytes as a memoryview on an immutable block (valid until the caller drops it).
    """

    def __init__(self, parts: Sequence[str], block: int = BLOCK) -> None:
        self.parts = list(parts)
        self.block = block
        self.whole = hashlib.sha256()
        self._single = len(self.parts) == 1
        # One part: its digest is the whole digest, hashed once.
        self.part_hashes = [self.whole] if self._single else [hashlib.sha256() for _part in self.parts]
        self.part_sizes = [0] * len(self.parts)
        self.offset = 0
        self._hasher = BackgroundHasher()
        self._index = -1
        self._handle: Any = None
        self._view = memoryview(b"")
        self._closed = False

    def _next_block(self) -> bool:
        while True:
            if self._handle is None:
                self._index += 1
                if self._index >= len(self.parts):
                    return False
                try:
                    self._handle = open(self.parts[self._index], "rb", buffering=0)  # noqa: SIM115
                except OSError as exc:
                    raise StreamError(f"cannot open {self.parts[self._index]}: {exc}") from None
            try:
                data = self._handle.read(self.block)
            except OSError as exc:
                raise StreamError(f"cannot read {self.parts[self._index]}: {exc}") from None
            if data:
                targets = (self.whole,) if self._single else (self.whole, self.part_hashes[self._index])
                self._hasher.feed(data, targets)
                self.part_sizes[self._index] += len(data)
                self._view = memoryview(data)
                return True
            self._handle.close()
            self._handle = None

    def read(self, n: int) -> memoryview:
        if not len(self._view) and not self._next_block():
            return memoryview(b"")
        out = self._view[:n]
        self._view = self._view[n:]
        self.offset += len(out)
        return out

    def drain(self) -> None:
        """Read (and so hash) whatever is left."""
        while len(self.read(self.block)):
            pass

    def close(self) -> Tuple[str, List[str], List[int]]:
        """Stop; return the whole digest, the digest and byte count of each part."""
        if self._closed:
            raise StreamError("source closed twice")
        self._closed = True
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._hasher.close()
        return self.whole.hexdigest(), [h.hexdigest() for h in self.part_hashes], self.part_sizes


class SeekingSource(_Stream):
    """``parts`` (paths) as one stream for a reader that needs only headers: :meth:`skip` seeks.

    Nothing is hashed and :meth:`drain` reads nothing: what it reads proves nothing about the rest.
    """

    def __init__(self, parts: Sequence[str], block: int = BLOCK) -> None:
        self.block = block
        self.offset = 0
        self._parts: List[Tuple[str, int]] = []
        for path in parts:
            try:
                self._parts.append((path, os.stat(path).st_size))
            except OSError as exc:
                raise StreamError(f"cannot read {path}: {exc}") from None
        self.size = sum(size for _path, size in self._parts)

    def _locate(self, offset: int) -> Tuple[str, int, int]:
        """(path, offset inside it, bytes left in it) of stream ``offset``."""
        start = 0
        for path, size in self._parts:
            if offset < start + size:
                return path, offset - start, start + size - offset
            start += size
        return "", 0, 0

    def read(self, n: int) -> memoryview:
        path, inside, left = self._locate(self.offset)
        if not left:
            return memoryview(b"")
        try:
            with open(path, "rb", buffering=0) as handle:
                handle.seek(inside)
                data = handle.read(min(n, left))
        except OSError as exc:
            raise StreamError(f"cannot read {path}: {exc}") from None
        self.offset += len(data)
        return memoryview(data)

    def skip(self, n: int) -> bool:
        """Move ``n`` bytes on; False (at the end) when the stream holds fewer."""
        if self.offset + n > self.size:
            self.offset = self.size
            return False
        self.offset += n
        return True

    def drain(self) -> None:
        """Nothing: the rest is not read."""


class ChunkedSink:
    """Write one stream to ``path``, or to ``path.part0000``... of ``chunk_size`` bytes each.

    Files are written under temporary names in the same directory and renamed by :meth:`commit`
    after an fsync; :meth:`abort` removes them. The whole stream and every chunk are hashed in the
    background thread.
    """

    def __init__(self, path: str, chunk_size: Optional[int] = None) -> None:
        if chunk_size is not None and chunk_size < MIN_CHUNK:
            raise StreamError(f"chunk size must be at least {MIN_CHUNK} bytes, got {chunk_size}")
        self.path = path
        self.chunk_size = chunk_size
        self.whole = hashlib.sha256()
        self.size = 0
        self.chunks: List[Tuple[str, Any, int]] = []  # (final path, hash, size)
        self._hasher = BackgroundHasher()
        self._fd: Optional[int] = None
        self._writer: Optional[Writer] = None
        self._tmp: List[Tuple[str, str]] = []
        self._room = 0

    def _close_current(self) -> None:
        """Finish the file being written: its writeback, then fsync (short: most data is out)."""
        if self._fd is None:
            return
        try:
            if self._writer is not None:
                self._writer.close()
            os.fsync(self._fd)
        except FileError as exc:
            raise StreamError(str(exc)) from None
        finally:
            self._writer = None
            os.close(self._fd)
            self._fd = None

    def _open_next(self) -> None:
        self._close_current()
        final = self.path if self.chunk_size is None else f"{self.path}.part{len(self.chunks):04d}"
        tmp = os.path.join(os.path.dirname(final) or ".", f".{os.path.basename(final)}.tmp-{os.getpid()}")
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._writer = Writer(self._fd, tmp, start_writeback=True)
        self._tmp.append((tmp, final))
        # Without chunking the one file's digest is the whole digest, hashed once.
        self.chunks.append((final, self.whole if self.chunk_size is None else hashlib.sha256(), 0))
        self._room = self.chunk_size if self.chunk_size is not None else -1

    def write(self, data: Any) -> None:
        """Write bytes (or a view on bytes nobody changes afterwards)."""
        view = memoryview(data)
        while view:
            if self._fd is None or self._room == 0:
                self._open_next()
            piece = view if self._room < 0 else view[: self._room]
            final, digest, size = self.chunks[-1]
            self._hasher.feed(piece, (self.whole,) if self.chunk_size is None else (self.whole, digest))
            try:
                self._writer(piece)  # type: ignore[misc]
            except FileError as exc:
                raise StreamError(str(exc)) from None
            self.chunks[-1] = (final, digest, size + len(piece))
            self.size += len(piece)
            if self._room > 0:
                self._room -= len(piece)
            view = view[len(piece) :]

    def commit(self) -> Tuple[str, List[Tuple[str, str, int]]]:
        """fsync, rename into place; return the whole digest and (path, sha256, size) per file."""
        if self._fd is None:
            self._open_next()
        self._close_current()
        self._hasher.close()
        for tmp, final in self._tmp:
            os.replace(tmp, final)
        self._tmp = []
        fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return self.whole.hexdigest(), [(p, h.hexdigest(), s) for p, h, s in self.chunks]

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close(report=False)
            self._writer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(StreamError):
            self._hasher.close()
        for tmp, _final in self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._tmp = []
