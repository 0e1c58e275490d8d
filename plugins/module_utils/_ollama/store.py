# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ollama model store on disk: layout, manifests in it, blobs, the lock and the record.

Layout of a store (``OLLAMA_MODELS``)::

    manifests/<host>/<namespace>/<model>/<tag>   manifest JSON, exactly four levels deep
    blobs/sha256-<64 hex>                         content-addressed blobs
    blobs/.airgap-llm-staging-XXXX/               our temporary files during an install (a
                                                  directory, so Ollama's pruning never deletes
                                                  files in it, see docs/ollama-integrity.md)
    .airgap-llm/lock                              flock: exclusive for writers, shared for readers
    .airgap-llm/verified.json                     verification record for ``mode: fast``
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    LockTimeout,
    NotRegularError,
    SourceReadError,
    StatKey,
    flock,
    read_bounded,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    InvalidNameError,
    LockTimeoutError,
    OllamaError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import (
    MANIFEST_MAX_BYTES,
    Manifest,
    parse_manifest,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._record import VerificationRecord

__all__ = [
    "LOCK_FILE",
    "RECORD_FILE",
    "STAGING_PREFIX",
    "STATE_DIR",
    "ManifestEntry",
    "Store",
    "check_jobs",
    "read_small",
    "record_blobs",
    "remove_stale_staging",
    "store_argument_spec",
]

STATE_DIR = ".airgap-llm"
LOCK_FILE = "lock"
RECORD_FILE = "verified.json"
STAGING_PREFIX = ".airgap-llm-staging-"


def _require_real_dir(path: str, advice: str) -> bool:
    """True if ``path`` is a real directory, False if it does not exist; a symlink or a file in
    its place raises StoreError (links inside the store are refused, never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"{path} is a symbolic link to {os.readlink(path)}; links inside the store are refused, {advice}"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path} is not a directory; remove it")
    return True


def read_small(path: str, limit: int, what: str) -> bytes:
    """Read a small regular file of the store (never through a link); ``FileNotFoundError`` passes."""
    try:
        return read_bounded(path, limit)
    except NotRegularError as exc:
        if "symbolic link" in exc.reason:
            raise StoreError(
                f"{what} {path} is a symbolic link; remove it (links out of the store are refused)"
            ) from None
        raise StoreError(f"{what} {path} is not a regular file; remove it") from None
    except SourceReadError as exc:
        raise StoreError(f"{what} {path}: {exc.reason}") from None


class ManifestEntry(NamedTuple):
    name: Optional[ModelName]
    relpath: str
    problem: Optional[str]


class Store:
    """An Ollama model store rooted at ``path`` (the directory holding ``manifests/`` and ``blobs/``)."""

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path:
            raise StoreError("the store path must be a non-empty string")
        self.given = path
        self.root = os.path.realpath(path)
        self.manifests_dir = os.path.join(self.root, "manifests")
        self.blobs_dir = os.path.join(self.root, "blobs")
        self.state_dir = os.path.join(self.root, STATE_DIR)
        self.record_path = os.path.join(self.state_dir, RECORD_FILE)
        self.lock_path = os.path.join(self.state_dir, LOCK_FILE)

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def check_layout(self, must_exist: bool = True, setting: str = "`path` (OLLAMA_MODELS)") -> None:
        """Refuse a store whose ``manifests``/``blobs`` are symlinks or not directories.

        ``setting`` names what the operator set to this path, for the message.
        """
        if not os.path.exists(self.root):
            if must_exist:
                raise StoreError(f"store {self.given} does not exist; check {setting}")
            return
        if not os.path.isdir(self.root):
            raise StoreError(f"store {self.given} is not a directory; check {setting}")
        for sub in (self.manifests_dir, self.blobs_dir, self.state_dir):
            _require_real_dir(sub, f"point {setting} at the real store")

    def manifest_path(self, name: ModelName) -> str:
        path = os.path.join(self.manifests_dir, name.host, name.namespace, name.model, name.tag)
        # Each directory on the way must be a real directory inside the store, never a symlink.
        current = self.manifests_dir
        for part in (name.host, name.namespace, name.model):
            current = os.path.join(current, part)
            if not _require_real_dir(current, "remove it"):
                break
        return path

    def blob_path(self, digest: str) -> str:
        hexdigest = digest[len("sha256:") :] if digest.startswith("sha256:") else digest
        if not is_sha256_hex(hexdigest):
            raise StoreError(f"{digest!r} is not a sha256 digest")
        return os.path.join(self.blobs_dir, "sha256-" + hexdigest)

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def read_manifest_bytes(self, name: ModelName) -> Optional[bytes]:
        """The manifest's bytes, or None if there is none; raises for symlinks and oversize files."""
        path = self.manifest_path(name)
        try:
            return read_small(path, MANIFEST_MAX_BYTES, f"model {name}: manifest")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"model {name}: cannot read manifest {path}: {exc.strerror}") from None

    def read_manifest(self, name: ModelName) -> Optional[Manifest]:
        raw = self.read_manifest_bytes(name)
        if raw is None:
            return None
        return parse_manifest(raw, str(name), self.rel(self.manifest_path(name)))

    def iter_manifests(self) -> List[ManifestEntry]:
        """Every file exactly four levels under ``manifests/`` (what Ollama lists), without following links.

        Hidden files at the tag level (our temporary manifest files) are skipped; symlinks and
        names Ollama would reject come back with ``problem`` set.
        """
        entries: List[ManifestEntry] = []
        if not os.path.isdir(self.manifests_dir):
            return entries

        def walk(directory: str, parts: Tuple[str, ...]) -> None:
            try:
                children = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                entries.append(ManifestEntry(None, self.rel(directory), f"cannot list it: {exc.strerror}"))
                return
            for child in children:
                rel = self.rel(child.path)
                if child.is_symlink():
                    entries.append(
                        ManifestEntry(
                            None, rel, f"it is a symbolic link to {os.readlink(child.path)}, refused"
                        )
                    )
                    continue
                if len(parts) < 3:
                    if child.is_dir(follow_symlinks=False):
                        walk(child.path, (*parts, child.name))
                    continue
                if child.name.startswith("."):
                    continue
                if child.is_dir(follow_symlinks=False):
                    entries.append(
                        ManifestEntry(None, rel, "it is a directory where a manifest file belongs")
                    )
                    continue
                if not child.is_file(follow_symlinks=False):
                    entries.append(ManifestEntry(None, rel, "it is not a regular file"))
                    continue
                try:
                    name = ModelName.from_parts((*parts, child.name))  # type: ignore[arg-type]
                except InvalidNameError as exc:
                    entries.append(
                        ManifestEntry(None, rel, f"Ollama would not accept its name: {exc.reason}")
                    )
                    continue
                entries.append(ManifestEntry(name, rel, None))

        walk(self.manifests_dir, ())
        return entries

    def model_names(self, limit: int = 50) -> str:
        """The models in the store as ``ollama list`` names them, for a message (``none`` when empty)."""
        names = sorted(str(e.name) for e in self.iter_manifests() if e.name is not None)
        shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
        return shown or "none"

    def all_manifests(self, skip: Optional[ModelName] = None) -> Tuple[Dict[ModelName, Manifest], List[str]]:
        """Parse every manifest (except ``skip``); returns (manifests, problems as text)."""
        manifests: Dict[ModelName, Manifest] = {}
        problems: List[str] = []
        for entry in self.iter_manifests():
            if entry.name is None:
                problems.append(f"{entry.relpath}: {entry.problem}")
                continue
            if skip is not None and entry.name == skip:
                continue
            try:
                manifest = self.read_manifest(entry.name)
            except (OllamaError, OSError) as exc:
                problems.append(str(exc))
                continue
            if manifest is not None:
                manifests[entry.name] = manifest
        return manifests, problems

    def blob_entries(self) -> List[os.DirEntry]:
        if not os.path.isdir(self.blobs_dir):
            return []
        return sorted(os.scandir(self.blobs_dir), key=lambda e: e.name)

    @contextlib.contextmanager
    def lock(self, exclusive: bool, timeout: float, create: bool = True) -> Iterator[None]:
        """Hold ``.airgap-llm/lock`` (flock) for the block: exclusive for writers, shared for readers.

        Waits up to ``timeout`` seconds, then raises :class:`LockTimeoutError`.  With
        ``create=False`` and no lock file (a store never written by this collection), nothing
        is locked.
        """
        if not os.path.isdir(self.state_dir):
            if not create:
                yield
                return
            os.makedirs(self.state_dir, 0o755, exist_ok=True)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(
                    flock(self.lock_path, exclusive=exclusive, timeout=timeout, create=create, mode=0o644)
                )
            except LockTimeout:
                raise LockTimeoutError(
                    f"store {self.given} is locked by another run (waited {timeout:g} s on "
                    f"{self.lock_path}); wait for it to finish or raise lock_timeout"
                ) from None
            except OSError as exc:
                raise StoreError(f"cannot open the store lock {self.lock_path}: {exc.strerror}") from None
            yield

    def load_record(self) -> VerificationRecord:
        return VerificationRecord.load(self.record_path)


def remove_stale_staging(store: Store) -> List[str]:
    """Remove staging directories left by an interrupted run (call only under the exclusive lock)."""
    removed = []
    for entry in store.blob_entries():
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(store.rel(entry.path))
    return removed


def record_blobs(store: Store, record: VerificationRecord, hexes: List[str]) -> None:
    """Note in ``record`` that the blobs ``hexes`` of ``store``, as they are now, hold their digests."""
    for hexdigest in hexes:
        with contextlib.suppress(OSError):
            record.add(StatKey.from_stat(os.lstat(store.blob_path(hexdigest))), hexdigest)


def store_argument_spec(verify: bool = False) -> Dict[str, Dict[str, Any]]:
    """The argument spec of the store options (doc fragment ``airgap.llm.ollama_store``, and its
    ``VERIFY`` part when ``verify``)."""
    spec: Dict[str, Dict[str, Any]] = {
        "path": {"type": "path", "required": True},
        "jobs": {"type": "int"},
        "lock_timeout": {"type": "float", "default": 60},
    }
    if verify:
        spec["verify"] = {"type": "str", "choices": ["fast", "full"], "default": "fast"}
    return spec


def check_jobs(jobs: Optional[int]) -> None:
    """Refuse a worker count below one (None means the CPU count)."""
    if jobs is not None and jobs < 1:
        raise StoreError(f"jobs must be at least 1, got {jobs}")
