# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Install, remove and export Ollama models: digest-first, staged, atomic.

Private module_utils of airgap.llm, used by the ollama_model and ollama_export modules.

Install order (see docs/ollama-integrity.md):

1. read and check the source manifest (and the ``manifest_digest`` pin);
2. under the store's exclusive lock, decide what is missing or damaged (``fast``: blobs whose
   stat matches the verification record are not read);
3. copy each needed blob into ``blobs/.airgap-llm-staging-XXXX/`` hashing the same bytes as they
   are written; a mismatch, a short or long source, or a full disk aborts and removes the staging
   directory, so the store is exactly as it was;
4. fsync the staged files, rename them to ``blobs/sha256-<hex>``, fsync ``blobs/``;
5. write the manifest last (temporary file, fsync, rename, fsync its directory).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import urllib.error
import urllib.parse
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DestinationWriteError,
    DigestError,
    SizeMismatchError,
    SourceReadError,
    StatKey,
    VerificationRecord,
    atomic_write,
    copy_and_hash,
    default_jobs,
    fsync_dir,
)
from ansible_collections.airgap.llm.plugins.module_utils._fetch import FetchError, FetchOptions, open_url
from ansible_collections.airgap.llm.plugins.module_utils._ollama import (
    HINTS,
    MANIFEST_MAX_BYTES,
    STAGING_PREFIX,
    BlobError,
    Layer,
    Manifest,
    ManifestError,
    ModelName,
    OllamaError,
    Store,
    StoreError,
    check_blobs,
    parse_manifest,
    read_bounded,
)

COPY_CHUNK = 1024 * 1024
"""Buffer size for hash-while-copy; 1 MiB measured as fast as 4-8 MiB and kinder to the cache."""
COPY_PIPELINE = False
"""Copy each blob in one thread (read, hash, write) rather than a reader/hasher plus writer pair.

Measured on the shared 2-core machine: the two-thread pipeline was slower (0.59-1.28 s against
0.52-0.80 s per 512 MiB, 2.7 s against 3.3 s best for 4 x 512 MiB).  Parallelism comes from
copying several blobs at once instead (:meth:`Stager.add_all`)."""
FILE_MODE = 0o644
DIR_MODE = 0o755
MODELS_JSON = "models.json"
EXPORT_FORMAT = 1


class SourceError(OllamaError):
    """The source (directory or URL) cannot deliver what was asked."""


class PinMismatchError(OllamaError):
    pass


class NoSpaceError(OllamaError):
    pass


# ------------------------------------------------------------------------------------------ sources


class LocalSource:
    """A directory in store layout (``manifests/...`` and ``blobs/sha256-<hex>``)."""

    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)
        self.label = path
        if not os.path.isdir(self.root):
            raise SourceError(
                f"source {path} is not a directory; give a directory in store layout or an https URL"
            )
        self.store = Store(self.root)

    def pending(self) -> Optional[str]:
        """Why the source cannot be read yet (see :meth:`HttpsSource.pending`): a directory can always."""
        return None

    def describe(self, layer: Layer) -> str:
        return os.path.join(self.label, "blobs", layer.blob_name)

    def manifest_bytes(self, name: ModelName) -> bytes:
        path = os.path.join(self.label, name.relpath)
        try:
            raw = self.store.read_manifest_bytes(name)
        except StoreError as exc:
            raise SourceError(f"model {name}: source {exc}") from None
        if raw is None:
            raise SourceError(f"model {name}: the source has no manifest {path}; check `name` and `src`")
        return raw

    @contextlib.contextmanager
    def open_blob(self, layer: Layer):
        path = self.store.blob_path(layer.hex)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise SourceError(f"cannot open source blob {self.describe(layer)}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SourceError(f"source blob {self.describe(layer)} is not a regular file")
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            yield fd
        finally:
            os.close(fd)


class HttpsSource:
    """An https URL of a directory in store layout (the artifact repository), stdlib only.

    Proxies from the environment are never used; redirects are followed only to https.
    """

    def __init__(self, url: str, ca_file: Optional[str], timeout: float, validate_certs: bool) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise SourceError(f"src {url!r} is neither a local directory nor an https:// URL")
        self.base = url if url.endswith("/") else url + "/"
        self.label = self.base
        self.options = FetchOptions(
            ca_file=ca_file, timeout=timeout, validate_certs=validate_certs, https_only=True
        )

    def pending(self) -> Optional[str]:
        """Why the source cannot be read yet, or None.

        On a new node in check mode, the CA file that an earlier task puts in place (predicted, not
        written) does not exist yet; without it no TLS connection to the repository can be made.
        """
        ca_file = self.options.ca_file
        if ca_file and not os.path.lexists(ca_file):
            return f"ca_file {ca_file} does not exist yet"
        return None

    def _url(self, relpath: str) -> str:
        return self.base + "/".join(urllib.parse.quote(p, safe="") for p in relpath.split("/"))

    def describe(self, layer: Layer) -> str:
        return self._url("blobs/" + layer.blob_name)

    def _open(self, url: str):
        try:
            return open_url(url, self.options)
        except FetchError as exc:
            raise SourceError(f"GET {exc}; check src, ca_file and the server") from None

    def manifest_bytes(self, name: ModelName) -> bytes:
        url = self._url(name.relpath)
        with self._open(url) as response:
            try:
                data = response.read(MANIFEST_MAX_BYTES + 1)
            except OSError as exc:
                raise SourceError(f"model {name}: reading {url} failed: {exc}") from None
        if len(data) > MANIFEST_MAX_BYTES:
            raise ManifestError(str(name), url, f"it is larger than {MANIFEST_MAX_BYTES} bytes")
        return data

    @contextlib.contextmanager
    def open_blob(self, layer: Layer):
        with self._open(self.describe(layer)) as response:
            yield response


def make_source(src: str, ca_file: Optional[str] = None, timeout: float = 60.0, validate_certs: bool = True):
    if src.startswith(("https://", "http://")) or "://" in src:
        return HttpsSource(src, ca_file, timeout, validate_certs)
    return LocalSource(src)


# ------------------------------------------------------------------------------------------ helpers


class Owner:
    """uid/gid to give new files and directories (-1 = leave as created)."""

    def __init__(self, uid: int = -1, gid: int = -1) -> None:
        self.uid = uid
        self.gid = gid

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


def make_dirs(path: str, owner: Owner, stop: str) -> List[str]:
    """mkdir -p ``path`` below ``stop`` with mode 0755 and ``owner``; returns what was created."""
    missing = []
    current = path
    while not os.path.isdir(current) and current not in (stop, os.path.dirname(current)):
        # isdir again: a concurrent run may have made it since the check above.
        if os.path.lexists(current) and not os.path.isdir(current):
            raise StoreError(f"{current} exists and is not a directory; remove it")
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
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


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

    def add(self, model: str, layer: Layer, source) -> None:
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
        os.fchmod(fd, FILE_MODE)
        if self.owner.uid != -1 or self.owner.gid != -1:
            os.fchown(fd, self.owner.uid, self.owner.gid)
        with self._lock:
            self.bytes_copied += size

    def add_all(self, items: List[Tuple[str, Layer]], source, jobs: Optional[int]) -> None:
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


def remove_stale_staging(store: Store) -> List[str]:
    """Remove staging directories left by an interrupted run (call only under the exclusive lock)."""
    removed = []
    for entry in store.blob_entries():
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(store.rel(entry.path))
    return removed


def _blob_plan(
    store: Store,
    model: str,
    manifest: Manifest,
    *,
    mode: str,
    jobs: Optional[int],
    record: VerificationRecord,
) -> Tuple[List[Layer], List[Dict[str, Any]], int]:
    """Which blobs must be copied (missing or damaged); refuses directories in the way."""
    wanted = {layer.hex: {layer.size} for layer in manifest.blobs}
    checks = check_blobs(store, wanted, mode, jobs, record)
    to_copy: List[Layer] = []
    reasons: List[Dict[str, Any]] = []
    for layer in manifest.blobs:
        check = checks[layer.hex]
        if check.state == "ok":
            continue
        path = store.blob_path(layer.hex)
        if check.state == "unreadable" and os.path.isdir(path) and not os.path.islink(path):
            raise StoreError(
                f"model {model}: blob {layer.digest} ({store.rel(path)}) is a directory, expected a regular "
                f"file of {layer.size} bytes; the store was left unchanged. What to do: remove that "
                "directory and run again"
            )
        to_copy.append(layer)
        reasons.append({"digest": layer.digest, "reason": check.state, "actual": check.actual})
    return to_copy, reasons, sum(c.hashed for c in checks.values())


def _describe_state(manifest: Optional[Manifest]) -> Dict[str, Any]:
    if manifest is None:
        return {"manifest_digest": None, "blobs": []}
    return {
        "manifest_digest": manifest.digest,
        "blobs": [f"{layer.digest} {layer.size}" for layer in manifest.blobs],
    }


def _record_blobs(store: Store, record: VerificationRecord, hexes: List[str]) -> None:
    for hexdigest in hexes:
        with contextlib.suppress(OSError):
            record.add(StatKey.from_stat(os.lstat(store.blob_path(hexdigest))), hexdigest)


# ------------------------------------------------------------------------------------------ install


def install_model(
    store: Store,
    name_text: str,
    source,
    *,
    pin: Optional[str] = None,
    owner: Optional[Owner] = None,
    check_mode: bool = False,
    mode: str = "fast",
    jobs: Optional[int] = None,
    lock_timeout: float = 60.0,
) -> Dict[str, Any]:
    """Make ``name`` present in ``store`` exactly as in ``source``; see the module docs.

    In check mode, a source that cannot be read yet (:meth:`HttpsSource.pending`: its CA file comes
    with an earlier task of the real run) is not contacted; with a pin the outcome is predicted
    from the store alone (see :func:`_predict_unread`).
    """
    name = ModelName.parse(name_text)
    model = str(name)
    warnings: List[str] = []
    pending = source.pending() if check_mode else None
    if pending is not None:
        raw, prediction = _predict_unread(store, name, pin, pending)
        if prediction is not None:
            return prediction
        warnings.append(
            f"model {model}: {pending}, so {source.label} was not read; the manifest in the store has "
            "the pinned digest and the prediction is made from it"
        )
    else:
        raw = source.manifest_bytes(name)
    manifest = parse_manifest(raw, model, f"{source.label} {name.relpath}")
    if pin is not None and pin != manifest.digest:
        raise PinMismatchError(
            f"model {model}: source manifest {name.relpath} has digest {manifest.digest}, expected the "
            f"pinned manifest_digest {pin}; nothing was changed. What to do: check that src holds the "
            "intended version, "
            "or update the pin after reviewing the new manifest"
        )
    store.check_layout(must_exist=False)
    if owner is None:
        owner = Owner()
        if store.exists():
            st = os.stat(store.root)
            owner = Owner(st.st_uid, st.st_gid)
    result: Dict[str, Any] = {
        "name": model,
        "fullname": name.fullname,
        "manifest_digest": manifest.digest,
        "size": manifest.size,
        "blobs_copied": [],
        "blobs_removed": [],
        "bytes_copied": 0,
        "bytes_hashed": 0,
        "changed": False,
    }
    if warnings:
        result["warnings"] = warnings
    if check_mode:
        lock = store.lock(exclusive=False, timeout=lock_timeout, create=False) if store.exists() else None
    else:
        make_dirs(os.path.dirname(store.root), Owner(), "/")  # parents stay the current user's
        make_dirs(store.root, owner, os.path.dirname(store.root))
        lock = store.lock(exclusive=True, timeout=lock_timeout)
    with lock or contextlib.nullcontext():
        exists = store.exists()
        record = store.load_record()
        current_raw = store.read_manifest_bytes(name) if exists else None
        current: Optional[Manifest] = None
        if current_raw is not None:
            with contextlib.suppress(ManifestError):
                current = parse_manifest(current_raw, model)
        if exists:
            to_copy, reasons, hashed = _blob_plan(store, model, manifest, mode=mode, jobs=jobs, record=record)
        else:
            to_copy, reasons, hashed = list(manifest.blobs), [], 0
        result["bytes_hashed"] = hashed
        write_manifest = current_raw != raw

        # Blobs of the previous version that nothing else references go when the manifest changes.
        obsolete: List[str] = []
        if write_manifest and current is not None:
            others, problems = store.all_manifests(skip=name)
            if not problems:
                keep = {layer.hex for layer in manifest.blobs}
                keep.update(layer.hex for m in others.values() for layer in m.blobs)
                obsolete = [layer.hex for layer in current.blobs if layer.hex not in keep]

        fix_meta: List[str] = []
        if exists:
            copy_set = {layer.hex for layer in to_copy}
            for layer in manifest.blobs:
                path = store.blob_path(layer.hex)
                if layer.hex not in copy_set and owner.wants(os.lstat(path), FILE_MODE):
                    fix_meta.append(path)
            manifest_path = store.manifest_path(name)
            if not write_manifest and owner.wants(os.lstat(manifest_path), FILE_MODE):
                fix_meta.append(manifest_path)

        stale = [e.name for e in store.blob_entries() if e.name.startswith(STAGING_PREFIX)] if exists else []
        result["blobs_copied"] = [layer.digest for layer in to_copy]
        result["blobs_removed"] = ["sha256:" + h for h in obsolete]
        result["copy_reasons"] = reasons
        result["permissions_fixed"] = [store.rel(p) for p in fix_meta]
        result["changed"] = bool(to_copy or write_manifest or obsolete or fix_meta or stale)
        result["diff"] = {
            "before": _describe_state(current) if current_raw is not None else _describe_state(None),
            "after": _describe_state(manifest),
        }
        if current_raw is not None and current is None:
            result["diff"]["before"]["manifest_digest"] = "unparsable manifest"
        if check_mode or not result["changed"]:
            if not check_mode:
                _record_blobs(store, record, [layer.hex for layer in manifest.blobs])
                with contextlib.suppress(OSError, DigestError):
                    record.save()
            return result

        remove_stale_staging(store)
        make_dirs(store.blobs_dir, owner, store.root)
        make_dirs(store.manifests_dir, owner, store.root)
        need = sum(layer.size for layer in to_copy)
        available = free_bytes(store.blobs_dir)
        if need > available:
            raise NoSpaceError(
                f"model {model}: needs {need} bytes in {store.blobs_dir} for {len(to_copy)} blobs, only "
                f"{available} are free; the store was left unchanged. What to do: free space or grow the "
                "file system, then run again"
            )
        if to_copy:
            with Stager(store.blobs_dir, owner) as stager:
                stager.add_all([(model, layer) for layer in to_copy], source, jobs)
                stager.commit()
            result["bytes_copied"] = stager.bytes_copied
        manifest_path = store.manifest_path(name)
        if write_manifest:
            make_dirs(os.path.dirname(manifest_path), owner, store.manifests_dir)
            atomic_write(manifest_path, raw, FILE_MODE, owner.uid, owner.gid)
        for path in fix_meta:
            owner.apply(path, FILE_MODE)
        for hexdigest in obsolete:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(store.blob_path(hexdigest))
            record.discard_digest(hexdigest)
        if obsolete:
            fsync_dir(store.blobs_dir)
        _record_blobs(store, record, [layer.hex for layer in manifest.blobs])
        with contextlib.suppress(OSError, DigestError):
            record.save()
    return result


def _predict_unread(
    store: Store, name: ModelName, pin: Optional[str], pending: str
) -> Tuple[bytes, Optional[Dict[str, Any]]]:
    """Check mode with a source that cannot be read yet: (manifest bytes to plan with, or a prediction).

    A manifest in the store whose digest is the pin is the pinned manifest byte for byte, so the run
    is planned from it (blobs checked as usual). Otherwise the real run writes the pinned manifest
    (or fails on a source that does not hold it): a change, whose blobs are not known until the
    source is read. Without a pin nothing can be predicted and the task fails as it would have.
    """
    model = str(name)
    current_raw = store.read_manifest_bytes(name) if store.exists() else None
    if pin is None:
        raise SourceError(
            f"model {model}: {pending}, so the source cannot be read in check mode, and without a "
            "manifest_digest pin nothing can be predicted. What to do: pin the model, or run the task "
            "that places ca_file first"
        )
    if current_raw is not None and "sha256:" + hashlib.sha256(current_raw).hexdigest() == pin:
        return current_raw, None
    current: Optional[Manifest] = None
    if current_raw is not None:
        with contextlib.suppress(ManifestError):
            current = parse_manifest(current_raw, model)
    before = _describe_state(current)
    if current_raw is not None and current is None:
        before["manifest_digest"] = "unparsable manifest"
    return b"", {
        "name": model,
        "fullname": name.fullname,
        "manifest_digest": pin,
        "size": None,
        "blobs_copied": [],
        "blobs_removed": [],
        "bytes_copied": 0,
        "bytes_hashed": 0,
        "copy_reasons": [],
        "permissions_fixed": [],
        "changed": True,
        "diff": {
            "before": before,
            "after": {"manifest_digest": pin, "blobs": ["(listed once the source can be read)"]},
        },
        "warnings": [
            f"model {model}: {pending}, so the source was not read in check mode; predicted: the pinned "
            f"manifest {pin} is installed (its blobs are listed once the source can be read)"
        ],
    }


def _prune_empty_dirs(start: str, stop: str) -> None:
    current = start
    while current != stop and current.startswith(stop + os.sep):
        try:
            os.rmdir(current)
        except OSError:
            return
        fsync_dir(os.path.dirname(current))
        current = os.path.dirname(current)


def remove_model(
    store: Store, name_text: str, *, check_mode: bool = False, lock_timeout: float = 60.0
) -> Dict[str, Any]:
    """Remove the manifest of ``name`` and the blobs no other manifest references."""
    name = ModelName.parse(name_text)
    model = str(name)
    result: Dict[str, Any] = {
        "name": model,
        "fullname": name.fullname,
        "manifest_digest": None,
        "size": 0,
        "blobs_copied": [],
        "blobs_removed": [],
        "bytes_copied": 0,
        "bytes_hashed": 0,
        "changed": False,
        "warnings": [],
    }
    store.check_layout(must_exist=False)
    if not store.exists():
        result["diff"] = {"before": _describe_state(None), "after": _describe_state(None)}
        return result
    with store.lock(exclusive=not check_mode, timeout=lock_timeout, create=not check_mode):
        raw = store.read_manifest_bytes(name)
        if raw is None:
            result["diff"] = {"before": _describe_state(None), "after": _describe_state(None)}
            return result
        current: Optional[Manifest] = None
        try:
            current = parse_manifest(raw, model)
        except ManifestError as exc:
            result["warnings"].append(f"{exc}; its blobs are kept because they cannot be known")
        others, problems = store.all_manifests(skip=name)
        remove: List[str] = []
        if current is not None:
            result["manifest_digest"] = current.digest
            result["size"] = current.size
            if problems:
                result["warnings"].append(
                    "blobs kept: other manifests could not be read, so what they reference is unknown: "
                    + "; ".join(problems)
                )
            else:
                keep: Set[str] = {layer.hex for m in others.values() for layer in m.blobs}
                remove = [layer.hex for layer in current.blobs if layer.hex not in keep]
        result["blobs_removed"] = ["sha256:" + h for h in remove]
        result["changed"] = True
        result["diff"] = {"before": _describe_state(current), "after": _describe_state(None)}
        if check_mode:
            return result
        manifest_path = store.manifest_path(name)
        os.unlink(manifest_path)
        fsync_dir(os.path.dirname(manifest_path))
        _prune_empty_dirs(os.path.dirname(manifest_path), store.manifests_dir)
        record = store.load_record()
        for hexdigest in remove:
            path = store.blob_path(hexdigest)
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            record.discard_digest(hexdigest)
        if remove:
            fsync_dir(store.blobs_dir)
        with contextlib.suppress(OSError, DigestError):
            record.save()
    return result


# ------------------------------------------------------------------------------------------- export


def _models_json_models(models: List[Tuple[ModelName, Manifest]]) -> List[Dict[str, Any]]:
    return [
        {
            "name": str(name),
            "fullname": name.fullname,
            "manifest_path": name.relpath,
            "manifest_digest": manifest.digest,
            "size": manifest.size,
            "blobs": [
                {"digest": b.digest, "size": b.size, "media_type": b.media_type} for b in manifest.blobs
            ],
        }
        for name, manifest in models
    ]


def export_models(
    store: Store,
    model_names: Optional[List[str]],
    dest: str,
    *,
    check_mode: bool = False,
    mode: str = "fast",
    jobs: Optional[int] = None,
    lock_timeout: float = 60.0,
    now: Optional[datetime.datetime] = None,
) -> Dict[str, Any]:
    """Export models from ``store`` into ``dest`` (store layout plus ``models.json``)."""
    store.check_layout(must_exist=True)
    dest_store = Store(dest)
    dest_store.check_layout(must_exist=False)
    if os.path.realpath(dest) == store.root:
        raise StoreError(f"dest {dest} is the source store itself; choose another directory")
    models_json_path = os.path.join(dest_store.root, MODELS_JSON)
    if dest_store.exists():
        entries = [e for e in os.listdir(dest_store.root) if e != ".airgap-llm"]
        if entries and not os.path.isfile(models_json_path):
            raise StoreError(
                f"dest {dest} is not empty and holds no {MODELS_JSON} from an earlier export; refusing to "
                "write "
                "into it. What to do: choose an empty or new directory"
            )
    with store.lock(exclusive=False, timeout=lock_timeout, create=False):
        if model_names:
            names = [ModelName.parse(text) for text in model_names]
        else:
            names = []
            for entry in store.iter_manifests():
                if entry.name is None:
                    raise ManifestError("?", entry.relpath, str(entry.problem))
                names.append(entry.name)
        selected: List[Tuple[ModelName, Manifest]] = []
        for name in dict.fromkeys(names):
            manifest = store.read_manifest(name)
            if manifest is None:
                raise SourceError(
                    f"model {name}: not in store {store.given} (no {name.relpath}); check `models` or pull "
                    "it first"
                )
            selected.append((name, manifest))

        layers: Dict[str, Tuple[str, Layer]] = {}
        for name, manifest in selected:
            for layer in manifest.blobs:
                layers.setdefault(layer.hex, (str(name), layer))
        document_models = _models_json_models(selected)
        result: Dict[str, Any] = {
            "dest": dest,
            "models": document_models,
            "blobs_copied": [],
            "blobs_removed": [],
            "bytes_copied": 0,
            "bytes_hashed": 0,
            "changed": False,
        }
        dest_exists = dest_store.exists()
        lock = (
            dest_store.lock(exclusive=not check_mode, timeout=lock_timeout, create=not check_mode)
            if dest_exists
            else contextlib.nullcontext()
        )
        if not dest_exists and not check_mode:
            make_dirs(dest_store.root, Owner(), "/")
            lock = dest_store.lock(exclusive=True, timeout=lock_timeout)
        with lock:
            record = dest_store.load_record()
            to_copy: List[Tuple[str, Layer]] = []
            if dest_exists:
                wanted = {h: {layer.size} for h, (_m, layer) in layers.items()}
                checks = check_blobs(dest_store, wanted, mode, jobs, record)
                result["bytes_hashed"] = sum(c.hashed for c in checks.values())
                for hexdigest, (model, layer) in layers.items():
                    check = checks[hexdigest]
                    if check.state == "ok":
                        continue
                    path = dest_store.blob_path(hexdigest)
                    if os.path.isdir(path) and not os.path.islink(path):
                        raise StoreError(f"dest blob {path} is a directory; remove it and run again")
                    to_copy.append((model, layer))
            else:
                to_copy = list(layers.values())
            manifests_to_write = []
            for name, manifest in selected:
                current = dest_store.read_manifest_bytes(name) if dest_exists else None
                if current != manifest.raw:
                    manifests_to_write.append((name, manifest))
            # Files from an earlier export that this export no longer contains.
            stale_manifests = []
            stale_blobs = []
            if dest_exists:
                wanted_names = {name for name, _m in selected}
                for entry in dest_store.iter_manifests():
                    if entry.name is not None and entry.name not in wanted_names:
                        stale_manifests.append(entry.name)
                for entry in dest_store.blob_entries():
                    if entry.name.startswith("sha256-") and entry.name[7:] not in layers:
                        stale_blobs.append(entry.name[7:])
            document: Dict[str, Any] = {"format": EXPORT_FORMAT, "models": document_models}
            old_document = None
            if os.path.isfile(models_json_path):
                with contextlib.suppress(ValueError, OSError, StoreError):
                    old_document = json.loads(read_bounded(models_json_path, 64 * 1024 * 1024, MODELS_JSON))
            json_changed = not (
                isinstance(old_document, dict)
                and old_document.get("format") == EXPORT_FORMAT
                and old_document.get("models") == document_models
            )
            result["blobs_copied"] = [layer.digest for _m, layer in to_copy]
            result["blobs_removed"] = ["sha256:" + h for h in stale_blobs]
            result["manifests_written"] = [str(n) for n, _m in manifests_to_write]
            result["manifests_removed"] = [str(n) for n in stale_manifests]
            result["changed"] = bool(
                to_copy or manifests_to_write or stale_manifests or stale_blobs or json_changed
            )
            if check_mode or not result["changed"]:
                return result

            remove_stale_staging(dest_store)
            owner = Owner()
            make_dirs(dest_store.blobs_dir, owner, dest_store.root)
            make_dirs(dest_store.manifests_dir, owner, dest_store.root)
            need = sum(layer.size for _m, layer in to_copy)
            available = free_bytes(dest_store.blobs_dir)
            if need > available:
                raise NoSpaceError(
                    f"export needs {need} bytes in {dest_store.blobs_dir}, only {available} are free; "
                    "dest was "
                    "left unchanged. What to do: free space or choose another dest"
                )
            source = LocalSource(store.root)
            source.label = store.given
            if to_copy:
                with Stager(dest_store.blobs_dir, owner) as stager:
                    stager.add_all(to_copy, source, jobs)
                    stager.commit()
                result["bytes_copied"] = stager.bytes_copied
            for name, manifest in manifests_to_write:
                path = dest_store.manifest_path(name)
                make_dirs(os.path.dirname(path), owner, dest_store.manifests_dir)
                atomic_write(path, manifest.raw, FILE_MODE)
            for name in stale_manifests:
                path = dest_store.manifest_path(name)
                os.unlink(path)
                _prune_empty_dirs(os.path.dirname(path), dest_store.manifests_dir)
            for hexdigest in stale_blobs:
                os.unlink(dest_store.blob_path(hexdigest))
                record.discard_digest(hexdigest)
            if json_changed:
                stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
                document["exported_at"] = stamp
                atomic_write(
                    models_json_path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
                )
            _record_blobs(dest_store, record, list(layers))
            with contextlib.suppress(OSError, DigestError):
                record.save()
    return result


__all__ = [
    "HINTS",
    "HttpsSource",
    "LocalSource",
    "NoSpaceError",
    "Owner",
    "PinMismatchError",
    "SourceError",
    "export_models",
    "install_model",
    "make_source",
    "remove_model",
]
