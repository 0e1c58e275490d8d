# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Durable file I/O: the one place for atomic and durable writes, fsync, O_DIRECT, locks and owners.

* :func:`atomic_write` replaces a file with new bytes (temporary name in the same directory,
  fsync, rename, fsync of the directory); :func:`fsync_dir` makes renames durable.
* :class:`Writer` writes large files while they are produced: writeback started as it goes
  (``sync_file_range``) and ``O_DIRECT`` from page-aligned buffers where the file system allows.
* :func:`open_regular` opens a file only if it is a regular file (never through a symbolic link
  unless asked); :func:`read_bounded` reads a small one with a size limit.
* :func:`flock` holds a lock file, shared or exclusive, with a timeout.
* :class:`Owner` resolves user and group names and gives files their owner and mode;
  :func:`make_dirs` creates directories with them, durably.
* :class:`StatKey` is the identity of a file's content as far as ``stat`` can tell.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import grp
import os
import pwd
import queue
import stat
import tempfile
import threading
import time
from typing import Iterator, List, NamedTuple, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError

__all__ = [
    "DIRECT_ALIGN",
    "DIR_MODE",
    "WRITEBACK_WINDOW",
    "DestinationWriteError",
    "FileError",
    "LockTimeout",
    "NotRegularError",
    "Owner",
    "OwnerError",
    "SourceReadError",
    "StatKey",
    "Writer",
    "advise_sequential",
    "atomic_write",
    "classify",
    "describe_oserror",
    "flock",
    "free_bytes",
    "fsync_dir",
    "make_dirs",
    "open_regular",
    "read_bounded",
    "replacing",
    "settle",
    "write_all",
]


class FileError(AirgapError):
    """Base of the errors raised here; ``str()`` is a complete sentence for an operator."""


class _PathError(FileError):
    """A file could not be read or written; ``verb`` says which."""

    verb = "use"

    def __init__(self, path: str, reason: str, err: Optional[int] = None) -> None:
        super().__init__(f"cannot {self.verb} {path}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = err


class SourceReadError(_PathError):
    """The file or stream being read could not be opened or read."""

    verb = "read"


class NotRegularError(SourceReadError):
    """The path is a symbolic link, a directory or another kind of file where a regular file belongs."""


class DestinationWriteError(_PathError):
    """Writing failed (for example ENOSPC: the destination file system is full)."""

    verb = "write"


class LockTimeout(FileError):
    """Another process held the lock longer than the caller was willing to wait."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(f"{path} is locked by another run (waited {timeout:g} s)")
        self.path = path
        self.timeout = timeout


class OwnerError(FileError):
    """A user or group name that does not exist on this host."""


def describe_oserror(exc: OSError) -> str:
    """``strerror (ENAME)`` of an operating-system error, for messages."""
    if exc.errno is not None:
        return f"{os.strerror(exc.errno)} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc)


def advise_sequential(fd: int) -> None:
    """Tell the kernel that ``fd`` is read from start to end (larger read-ahead)."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


# ------------------------------------------------------------------------------------ regular files


def open_regular(
    path: str, *, follow_symlinks: bool = False, flags: int = os.O_RDONLY, mode: int = 0o600
) -> Tuple[int, os.stat_result]:
    """Open ``path`` and return ``(fd, fstat)`` if it is a regular file; the caller closes ``fd``.

    A symbolic link is refused unless ``follow_symlinks`` (``O_NOFOLLOW``, so the check cannot be
    raced), and so is anything else that is not a regular file: both raise
    :class:`NotRegularError`. Other failures (``FileNotFoundError``, permissions) are raised as
    the ``OSError`` they are, for the caller to word.
    """
    flags |= getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise NotRegularError(path, "it is a symbolic link, not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise NotRegularError(path, f"it is {kind}")
    return fd, st


def classify(path: str) -> Tuple[Optional[os.stat_result], Optional[str]]:
    """``lstat`` of ``path`` and, when it is not a regular file, what it is instead.

    ``(None, None)``: nothing there; ``(st, None)``: a regular file; ``(st, "a symbolic link to
    <target>")``, ``(st, "a directory")`` or ``(st, "not a regular file")`` otherwise. Other
    failures of ``lstat`` are raised.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if stat.S_ISREG(st.st_mode):
        return st, None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return st, f"a symbolic link to {target}"
    if stat.S_ISDIR(st.st_mode):
        return st, "a directory"
    return st, "not a regular file"


def read_bounded(path: str, limit: int, *, follow_symlinks: bool = False) -> bytes:
    """Read a small regular file (not through a symbolic link unless asked); refuse more than ``limit`` bytes.

    Raises :class:`NotRegularError`, :class:`SourceReadError` when the file is or grows larger than
    ``limit``, and ``OSError`` (``FileNotFoundError`` included) as :func:`open_regular` does.
    """
    fd, st = open_regular(path, follow_symlinks=follow_symlinks)
    try:
        if st.st_size > limit:
            raise SourceReadError(path, f"it is {st.st_size} bytes, more than the limit of {limit}")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise SourceReadError(path, f"it grew beyond the limit of {limit} bytes while being read")
    return data


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


# ------------------------------------------------------------------------------------------ writing


def write_all(fd: int, view: memoryview, dest_name: str) -> None:
    """Write every byte of ``view`` to ``fd``; raise :class:`DestinationWriteError` naming ``dest_name``."""
    offset = 0
    length = len(view)
    while offset < length:
        try:
            written = os.write(fd, view[offset:])
        except OSError as exc:
            raise DestinationWriteError(dest_name, describe_oserror(exc), exc.errno) from None
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
                _sync_file_range(self.fd, item[0], item[1], SYNC_FILE_RANGE_WRITE)
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
            write_all(self.fd, view, self.name)
        except DestinationWriteError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
            # The file system or the buffer does not allow direct I/O after all; nothing was
            # written by the refused call, so the same piece goes through the page cache.
            self._stop_direct()
            os.lseek(self.fd, self.base + self.written, os.SEEK_SET)
            write_all(self.fd, view, self.name)
        self.written += len(view)
        if self.flusher is not None and self.written - self.flushed >= WRITEBACK_WINDOW:
            self.flusher.request(self.base + self.flushed, self.written - self.flushed)
            self.flushed = self.written

    def close(self, report: bool = True) -> None:
        if self.flusher is not None:
            error = self.flusher.close()
            self.flusher = None
            if error is not None and report:
                raise DestinationWriteError(self.name, describe_oserror(error), error.errno)


def fsync_dir(path: str) -> None:
    """fsync a directory so that renames and new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle(fd: int, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Give an open file its mode (and owner, unless -1) and flush it to disk, before it is renamed."""
    os.fchmod(fd, mode)
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)
    os.fsync(fd)


@contextlib.contextmanager
def replacing(
    path: str, *, mode: int = 0o644, uid: int = -1, gid: int = -1, suffix: str = ".tmp"
) -> Iterator[Tuple[int, str]]:
    """Write the next version of ``path``: the one place for temporary name, fsync, rename.

    Yields ``(fd, temporary path)`` of a new file in the directory of ``path`` (named
    ``.<name>.XXXX<suffix>``). When the block ends normally the file gets ``mode`` and owner, is
    fsynced, closed and renamed over ``path``, and the directory is fsynced; when the block raises,
    the temporary file is removed and ``path`` is as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    try:
        try:
            yield fd, tmp
            settle(fd, mode, uid, gid)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def atomic_write(path: str, data: bytes, mode: int = 0o644, uid: int = -1, gid: int = -1) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`replacing`)."""
    with replacing(path, mode=mode, uid=uid, gid=gid) as (fd, tmp):
        write_all(fd, memoryview(data), tmp)


# -------------------------------------------------------------------------------------------- locks


@contextlib.contextmanager
def flock(
    path: str,
    *,
    exclusive: bool = True,
    timeout: Optional[float] = None,
    create: bool = True,
    mode: int = 0o600,
) -> Iterator[bool]:
    """Hold an ``flock`` on ``path`` for the block; yields whether a lock is held.

    ``timeout`` None waits as long as it takes; otherwise :class:`LockTimeout` is raised after
    ``timeout`` seconds. With ``create=False`` a missing lock file means nothing to lock (the block
    runs unlocked). The file is created with ``mode`` and never opened through a symbolic link.
    """
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    if create:
        flags |= os.O_CREAT
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError:
        if create:
            raise
        yield False
        return
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if timeout is None:
            fcntl.flock(fd, mode)
        else:
            deadline = time.monotonic() + max(0.0, timeout)
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise LockTimeout(path, timeout)
                time.sleep(0.05)
        yield True
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------- owners, directories


def _resolve(value: Optional[str], kind: str) -> int:
    if value is None or value == "":
        return -1
    try:
        if kind == "user":
            return pwd.getpwnam(value).pw_uid
        return grp.getgrnam(value).gr_gid
    except KeyError:
        if value.isdigit():
            return int(value)
        raise OwnerError(
            f"{kind} {value!r} is not a {kind} on this host; create it first or give a numeric id"
        ) from None


class Owner:
    """uid/gid to give files and directories (-1 = leave as created)."""

    def __init__(self, uid: int = -1, gid: int = -1) -> None:
        self.uid = uid
        self.gid = gid

    @classmethod
    def resolve(cls, user: Optional[str], group: Optional[str]) -> Owner:
        """Look up user and group names (a number is taken as an id); None or "" leaves it as is."""
        return cls(_resolve(user, "user"), _resolve(group, "group"))

    def wants(self, st: os.stat_result, mode: int) -> bool:
        """True if ``st`` needs a chown or chmod to match."""
        if stat.S_IMODE(st.st_mode) != mode:
            return True
        if self.uid not in (-1, st.st_uid):
            return True
        return self.gid not in (-1, st.st_gid)

    def apply(self, path: str, mode: int) -> None:
        os.chmod(path, mode, follow_symlinks=False)
        if self.uid != -1 or self.gid != -1:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def apply_fd(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)
        if self.uid != -1 or self.gid != -1:
            os.fchown(fd, self.uid, self.gid)


DIR_MODE = 0o755


def make_dirs(path: str, owner: Owner, stop: str) -> List[str]:
    """mkdir -p ``path`` below ``stop`` with mode 0755 and ``owner``, durably; returns what was created.

    Raises :class:`FileError` when something that is not a directory is in the way.
    """
    missing = []
    current = path
    while not os.path.isdir(current) and current not in (stop, os.path.dirname(current)):
        # isdir again: a concurrent run may have made it since the check above.
        if os.path.lexists(current) and not os.path.isdir(current):
            raise FileError(f"{current} exists and is not a directory; remove it")
        missing.append(current)
        current = os.path.dirname(current)
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if os.path.isdir(directory) and not os.path.islink(directory):
                continue  # a concurrent run made it
            raise
        owner.apply(directory, DIR_MODE)
        created.append(directory)
    for directory in created:
        fsync_dir(os.path.dirname(directory))
    return created


def free_bytes(path: str) -> int:
    """Bytes an unprivileged writer may still use on the file system of ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
