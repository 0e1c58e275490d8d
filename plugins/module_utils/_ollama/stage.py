# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Staging: blobs are copied into a private directory inside ``blobs/``, hashed as they are
written, and renamed into place only when every one of them is verified."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    SizeMismatchError,
    copy_and_hash,
    default_jobs,
)
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    DestinationWriteError,
    Owner,
    SourceReadError,
    fsync_dir,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    BlobError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import Layer
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import STAGING_PREFIX

__all__ = ["COPY_CHUNK", "COPY_PIPELINE", "FILE_MODE", "Stager"]

COPY_CHUNK = 1024 * 1024
"""Buffer size for hash-while-copy; 1 MiB measured as fast as 4-8 MiB and kinder to the cache."""
COPY_PIPELINE = False
"""Copy each blob in one thread (read, hash, write) rather than a reader/hasher plus writer pair.

Measured on the shared 2-core machine: the two-thread pipeline was slower (0.59-1.28 s against
0.52-0.80 s per 512 MiB, 2.7 s against 3.3 s best for 4 x 512 MiB).  Parallelism comes from
copying several blobs at once instead (:meth:`Stager.add_all`)."""
FILE_MODE = 0o644


class Stager:
    """Copies blobs into a private staging directory inside ``blobs/``, hashing as it writes.

    The staging directory is named ``.airgap-llm-staging-XXXX``: Ollama's startup pruning only
    looks at plain files directly in ``blobs/`` (directories are skipped since v0.21 and cannot
    be removed while non-empty before that), so nothing in it is deleted mid-install.  Nothing
    becomes visible until :meth:`commit`; :meth:`abort` (or leaving the ``with`` block by an
    exception) removes every staged file.
    """

    def __init__(self, blobs_dir: str, owner: Owner) -> None:
        self.blobs_dir = blobs_dir
        self.owner = owner
        self.dir = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=blobs_dir)
        self.staged: List[Tuple[str, str, int]] = []  # (hex, staged path, fd)
        self.bytes_copied = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def add(self, model: str, layer: Layer, source: Any) -> None:
        """Copy one blob from ``source`` and verify it; raise :class:`BlobError` on any mismatch."""
        where = source.describe(layer)
        staged = os.path.join(self.dir, layer.blob_name)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with self._lock:
            self.staged.append((layer.hex, staged, fd))
        try:
            with source.open_blob(layer) as handle:
                hexdigest, size = copy_and_hash(
                    handle,
                    fd,
                    expected_size=layer.size,
                    src_name=where,
                    dest_name=staged,
                    chunk_size=COPY_CHUNK,
                    pipeline=COPY_PIPELINE,
                    start_writeback=True,
                )
        except SizeMismatchError as exc:
            actual = f"more than {layer.size} bytes" if exc.more else f"{exc.actual} bytes"
            raise BlobError(
                model,
                layer.digest,
                "size",
                expected=f"{layer.size} bytes",
                actual=actual,
                where=where,
                hint="the source copy is damaged (truncated or padded); export the model again from a "
                "verified store",
            ) from None
        except SourceReadError as exc:
            raise SourceError(f"model {model}: blob {layer.digest}: {exc}") from None
        except DestinationWriteError as exc:
            raise StoreError(
                f"model {model}: blob {layer.digest}: {exc}; the store was left unchanged. "
                f"What to do: free space "
                f"on the file system of {self.blobs_dir} (or fix its permissions) and run again"
            ) from None
        if hexdigest != layer.hex:
            raise BlobError(
                model,
                layer.digest,
                "digest",
                expected=layer.digest,
                actual="sha256:" + hexdigest,
                where=where,
                hint="the source copy is corrupt or was altered; do not use it, export the model again "
                "from a "
                "verified store and check the bundle signature",
            )
        self.owner.apply_fd(fd, FILE_MODE)
        with self._lock:
            self.bytes_copied += size

    def add_all(self, items: List[Tuple[str, Layer]], source: Any, jobs: Optional[int]) -> None:
        """Copy several blobs, ``jobs`` at a time (largest first); on failure raise the error of the
        first failing blob in ``items`` order, after the copies in flight have stopped.

        Each copy is read, hashed and written by one thread; ``hashlib``, ``readv`` and ``write``
        release the GIL, so two blobs copy on two cores at once.
        """
        workers = min(jobs or default_jobs(), len(items))
        if workers <= 1:
            for model, layer in items:
                self.add(model, layer, source)
            return
        order = sorted(range(len(items)), key=lambda i: -items[i][1].size)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {i: pool.submit(self.add, items[i][0], items[i][1], source) for i in order}
            done, pending = wait(list(futures.values()), return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                for future in pending:
                    future.cancel()
            wait(list(futures.values()))
        for index in range(len(items)):
            future = futures[index]
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def commit(self) -> List[str]:
        """fsync every staged file, rename them into ``blobs/``, fsync ``blobs/``; returns the hex digests."""
        for _hex, _path, fd in self.staged:
            os.fsync(fd)
        for _hex, _path, fd in self.staged:
            os.close(fd)
        done = []
        for hexdigest, path, _fd in self.staged:
            os.rename(path, os.path.join(self.blobs_dir, "sha256-" + hexdigest))
            done.append(hexdigest)
        self.staged = []
        fsync_dir(self.blobs_dir)
        os.rmdir(self.dir)
        return done

    def abort(self) -> None:
        for _hex, _path, fd in self.staged:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.staged = []
        shutil.rmtree(self.dir, ignore_errors=True)
