# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The content-addressed artifact repository on the high side.

Layout (everything below ``root``)::

    blobs/sha256/<hex>                     every file ever ingested, stored once, read-only
    bundles/<channel>/<version>-<sha12>/   bundle.json, signatures/, ingest.json of each bundle
    states/<seq>/state.json                channels (last version, bundle digest), high-water marks
    states/<seq>/index.json                logical name -> version -> files (path, sha256, size, blob)
    current -> states/<seq>                the one commit point, switched with rename(2)
    tmp/                                   staging of running ingests (same file system)
    .lock                                  flock held by ingest

A new state is a new directory; ``current`` is a symlink replaced atomically. Earlier states and
bundle metadata stay, so a later rollback only has to point ``current`` back (keeping the
high-water marks, so that a rolled-back repository still refuses replays).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any, Dict, Iterator, Optional

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    LockTimeout,
    atomic_write,
    flock,
    fsync_dir,
    settle,
)

__all__ = ["INDEX_FORMAT", "INVENTORY_FORMAT", "STATE_FORMAT", "RepoError", "Repository"]

STATE_FORMAT = "airgap.llm.repo-state"
INDEX_FORMAT = "airgap.llm.repo-index"
INVENTORY_FORMAT = "airgap.llm.inventory"
MAX_JSON = 256 << 20


class RepoError(AirgapError):
    """The repository is damaged, locked, or cannot be written."""


def _dumps(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


class Repository:
    """The repository at ``root`` (see the layout above)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.bundles = os.path.join(self.root, "bundles")
        self.states = os.path.join(self.root, "states")
        self.tmp = os.path.join(self.root, "tmp")
        self.current = os.path.join(self.root, "current")
        self.lock_path = os.path.join(self.root, ".lock")

    # -- layout ---------------------------------------------------------------------------------

    def exists(self) -> bool:
        return os.path.isdir(self.blobs)

    def init(self) -> bool:
        """Create the layout; True if anything was created."""
        created = False
        for path in (self.root, os.path.dirname(self.blobs), self.blobs, self.bundles, self.states, self.tmp):
            try:
                os.mkdir(path, 0o755)
                created = True
            except FileExistsError:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    raise RepoError(f"{path} is not a directory; the repository layout is damaged") from None
        if created:
            fsync_dir(os.path.dirname(self.root) or "/")
        return created

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Hold the repository's exclusive lock (``.lock``) for the block, waiting up to ``timeout`` s."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(flock(self.lock_path, timeout=timeout))
            except LockTimeout:
                raise RepoError(
                    f"repository {self.root} is locked by another ingest (waited {timeout:g} s); "
                    "wait for it to finish"
                ) from None
            except OSError as exc:
                raise RepoError(f"cannot open the repository lock {self.lock_path}: {exc.strerror}") from None
            yield

    # -- reading --------------------------------------------------------------------------------

    def _read_json(self, path: str, fmt: str) -> Dict[str, Any]:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_JSON + 1)
            doc = json.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RepoError(f"cannot read {path}: {exc}; the repository is damaged") from None
        if not isinstance(doc, dict) or doc.get("format") != fmt:
            raise RepoError(f"{path} is not a {fmt} document; the repository is damaged")
        return doc

    def current_target(self) -> Optional[str]:
        try:
            return os.readlink(self.current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RepoError(
                f"{self.current} is not a symbolic link ({exc.strerror}); the repository is damaged"
            ) from None

    def state(self) -> Dict[str, Any]:
        """The current state, or an empty one for a new repository."""
        target = self.current_target()
        if target is None:
            return {"format": STATE_FORMAT, "seq": 0, "channels": {}, "high_water": {}, "previous": None}
        return self._read_json(os.path.join(self.root, target, "state.json"), STATE_FORMAT)

    def index(self) -> Dict[str, Any]:
        target = self.current_target()
        if target is None:
            return {"format": INDEX_FORMAT, "artifacts": {}}
        return self._read_json(os.path.join(self.root, target, "index.json"), INDEX_FORMAT)

    def blob_path(self, digest: str) -> str:
        if not is_sha256_hex(digest):
            raise RepoError(f"{digest!r} is not a sha256 digest")
        return os.path.join(self.blobs, digest)

    def blob_size(self, digest: str) -> Optional[int]:
        try:
            st = os.lstat(self.blob_path(digest))
        except FileNotFoundError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def inventory(self) -> Dict[str, Any]:
        """Digests and sizes of every stored blob (what a differential bundle may leave out)."""
        blobs: Dict[str, int] = {}
        if os.path.isdir(self.blobs):
            for entry in os.scandir(self.blobs):
                if is_sha256_hex(entry.name) and entry.is_file(follow_symlinks=False):
                    blobs[entry.name] = entry.stat(follow_symlinks=False).st_size
        state = self.state()
        return {
            "format": INVENTORY_FORMAT,
            "format_version": 1,
            "state": state.get("seq", 0),
            "channels": {c: v.get("version") for c, v in sorted(state.get("channels", {}).items())},
            "blobs": dict(sorted(blobs.items())),
        }

    # -- writing --------------------------------------------------------------------------------

    def store_blob(self, staged: str, digest: str) -> bool:
        """Move a verified staged file to ``blobs/sha256/<digest>``; False if it was already there."""
        target = self.blob_path(digest)
        if os.path.lexists(target):
            return False
        fd = os.open(staged, os.O_RDONLY | os.O_CLOEXEC)
        try:
            settle(fd, 0o444)
        finally:
            os.close(fd)
        os.rename(staged, target)
        return True

    def write_bundle_meta(self, channel: str, version: int, digest: str, files: Dict[str, bytes]) -> str:
        """Keep a bundle's metadata; returns its path relative to the root."""
        rel = os.path.join("bundles", channel, f"{version:06d}-{digest[:12]}")
        final = os.path.join(self.root, rel)
        if os.path.isdir(final):
            return rel
        os.makedirs(os.path.dirname(final), 0o755, exist_ok=True)
        tmp = os.path.join(self.tmp, f"bundle-{os.getpid()}-{digest[:12]}")
        os.makedirs(tmp, 0o755)
        for name, data in sorted(files.items()):
            path = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            atomic_write(path, data, mode=0o444)
        os.rename(tmp, final)
        fsync_dir(os.path.dirname(final))
        return rel

    def commit_state(self, state: Dict[str, Any], index: Dict[str, Any]) -> str:
        """Write ``states/<seq>`` and switch ``current`` to it atomically; returns the new target."""
        rel = os.path.join("states", f"{state['seq']:06d}")
        final = os.path.join(self.root, rel)
        if os.path.lexists(final):
            raise RepoError(f"{final} already exists; the repository state sequence is damaged")
        tmp = os.path.join(self.tmp, f"state-{os.getpid()}-{state['seq']}")
        os.makedirs(tmp, 0o755)
        atomic_write(os.path.join(tmp, "index.json"), _dumps(index))
        atomic_write(os.path.join(tmp, "state.json"), _dumps(state))
        os.rename(tmp, final)
        fsync_dir(self.states)
        link = os.path.join(self.root, f".current-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(rel, link)
        os.replace(link, self.current)
        fsync_dir(self.root)
        return rel
