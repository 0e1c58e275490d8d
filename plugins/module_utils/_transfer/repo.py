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
    trust.json                             the trust policy: pinned keys and threshold (see trust.py)
    journal.json                           what a running ingest writes, until current has moved
    tmp/                                   staging of running ingests (same file system)
    .lock                                  flock held by ingest

A new state is a new directory; ``current`` is a symlink replaced atomically. Earlier states and
bundle metadata stay, so a later rollback only has to point ``current`` back. A new state takes
the number after the highest in ``states/`` (whatever ``current`` points at) and the high-water
marks of every state, so that a rolled-back repository still refuses replays.

Every JSON document here is read with the strict reader and checked field by field before use;
a damaged one is named with what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from typing import Any, Dict, Iterator, List, Optional

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    LockTimeout,
    Owner,
    atomic_write,
    flock,
    fsync_dir,
    make_dirs,
    settle,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import CHANNEL_RE

__all__ = [
    "INDEX_FORMAT",
    "INGEST_RECORD",
    "INVENTORY_FORMAT",
    "JOURNAL_FORMAT",
    "STATE_FORMAT",
    "RepoError",
    "Repository",
    "index_files",
]

STATE_FORMAT = "airgap.llm.repo-state"
INDEX_FORMAT = "airgap.llm.repo-index"
INVENTORY_FORMAT = "airgap.llm.inventory"
JOURNAL_FORMAT = "airgap.llm.ingest-journal"
INGEST_RECORD = "ingest.json"
MAX_JSON = 256 << 20
MAX_STATE = 16 << 20
STATE_RE = re.compile(r"^[0-9]{6,}$")
_JOURNAL_PATH_RE = re.compile(
    r"^(states/[0-9]{6,}|bundles/[a-z0-9][a-z0-9._-]{0,63}/[0-9]{6,}-[0-9a-f]{12})$"
)
DAMAGED = (
    "the repository is damaged: restore that file from a backup (or the state directory from another copy)"
)


class RepoError(AirgapError):
    """The repository is damaged, locked, or cannot be written."""


def _dumps(doc: Any) -> bytes:
    return _json.dumps(doc, indent=1)


def _expect(value: Any, kind: str, where: str) -> Any:
    try:
        return _json.expect(value, kind, where)
    except _json.JSONError as exc:
        raise RepoError(f"{exc}; {DAMAGED}") from None


def _check_state(doc: Dict[str, Any], path: str) -> Dict[str, Any]:
    seq = _expect(doc.get("seq"), "an integer", f"{path}: seq")
    if seq < 1:
        raise RepoError(f"{path}: seq must be a positive integer, got {seq}; {DAMAGED}")
    for channel, info in _expect(doc.get("channels"), "an object", f"{path}: channels").items():
        where = f"{path}: channels.{channel}"
        _expect(info, "an object", where)
        _expect(info.get("version"), "an integer", f"{where}.version")
        if not is_sha256_hex(info.get("sha256")):
            raise RepoError(f"{where}.sha256 must be a digest, got {describe(info.get('sha256'))}; {DAMAGED}")
    for channel, mark in _expect(doc.get("high_water"), "an object", f"{path}: high_water").items():
        _expect(mark, "an integer", f"{path}: high_water.{channel}")
    previous = doc.get("previous")
    if previous is not None and not (isinstance(previous, str) and previous.startswith("states/")):
        raise RepoError(f"{path}: previous must be null or states/<seq>, got {describe(previous)}; {DAMAGED}")
    return doc


def index_files(entry: Any, where: str) -> List[Dict[str, Any]]:
    """The files of one index entry (``artifacts.<name>.<version>``), each checked: path, sha256, size.

    ``where`` names the entry in messages. Raises :class:`RepoError` naming the field, what it must
    be and what it is (escaped and bounded), for every reader of an index: the listing, the lookup.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
        raise RepoError(f"{where} must be an object with a files list, got {describe(entry)}")
    files = []
    for number, item in enumerate(entry["files"]):
        at = f"{where}.files[{number}]"
        if not isinstance(item, dict):
            raise RepoError(f"{at} must be an object, got {describe(item)}")
        if not is_sha256_hex(item.get("sha256")):
            raise RepoError(f"{at}.sha256 must be a digest, got {describe(item.get('sha256'))}")
        size = item.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise RepoError(f"{at}.size must be a non-negative integer, got {describe(size)}")
        if not isinstance(item.get("path"), str):
            raise RepoError(f"{at}.path must be a string, got {describe(item.get('path'))}")
        files.append({"path": item["path"], "sha256": item["sha256"], "size": size})
    return files


def _check_index(doc: Dict[str, Any], path: str) -> Dict[str, Any]:
    for name, versions in _expect(doc.get("artifacts"), "an object", f"{path}: artifacts").items():
        for version, entry in _expect(versions, "an object", f"{path}: artifacts.{name}").items():
            _expect(entry, "an object", f"{path}: artifacts.{name}.{version}")
    return doc


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
        self.trust_path = os.path.join(self.root, "trust.json")
        self.journal_path = os.path.join(self.root, "journal.json")

    # -- layout ---------------------------------------------------------------------------------

    def exists(self) -> bool:
        return os.path.isdir(self.blobs)

    def init(self) -> bool:
        """Create the layout, and the directories above it on a fresh host; True if anything was created."""
        try:
            created = bool(make_dirs(os.path.dirname(self.root), Owner(), "/"))
        except FileError as exc:
            raise RepoError(f"cannot create the repository {self.root}: {exc}") from None
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

    def _read_json(self, path: str, fmt: Optional[str], limit: int = MAX_JSON) -> Dict[str, Any]:
        """A JSON object of the repository, strictly read; ``fmt``: its ``format`` (None: it has none)."""
        try:
            doc = _json.load_file(path, path, limit=limit, max_depth=8)
        except (OSError, FileError) as exc:
            raise RepoError(f"cannot read {path}: {exc}; {DAMAGED}") from None
        except _json.JSONError as exc:
            raise RepoError(f"{exc}; {DAMAGED}") from None
        if not isinstance(doc, dict) or (fmt is not None and doc.get("format") != fmt):
            raise RepoError(f"{path} is not a {fmt or 'JSON object'} document; {DAMAGED}")
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

    def _state_at(self, rel: str) -> Dict[str, Any]:
        path = os.path.join(self.root, rel, "state.json")
        return _check_state(self._read_json(path, STATE_FORMAT, MAX_STATE), path)

    def state(self) -> Dict[str, Any]:
        """The current state, or an empty one for a new repository."""
        target = self.current_target()
        if target is None:
            return {"format": STATE_FORMAT, "seq": 0, "channels": {}, "high_water": {}, "previous": None}
        return self._state_at(target)

    def index(self) -> Dict[str, Any]:
        target = self.current_target()
        if target is None:
            return {"format": INDEX_FORMAT, "artifacts": {}}
        path = os.path.join(self.root, target, "index.json")
        return _check_index(self._read_json(path, INDEX_FORMAT), path)

    def state_seqs(self) -> List[int]:
        """The numbers of the state directories in ``states/``, ascending (other names are not states)."""
        try:
            names = os.listdir(self.states)
        except FileNotFoundError:
            return []
        return sorted(int(name) for name in names if STATE_RE.match(name))

    def high_water(self) -> Dict[str, int]:
        """The highest version ever ingested per channel, over every state (a rollback keeps them)."""
        marks: Dict[str, int] = {}
        for seq in self.state_seqs():
            for channel, mark in self._state_at(f"states/{seq:06d}")["high_water"].items():
                marks[channel] = max(mark, marks.get(channel, mark))
        return marks

    def ingest_record(self, channel: str, version: int, digest: str) -> Optional[Dict[str, Any]]:
        """``ingest.json`` of a bundle (when and by whom it was ingested), or None when it is not kept."""
        if not (is_sha256_hex(digest) and isinstance(channel, str) and CHANNEL_RE.match(channel)):
            return None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            return None
        path = os.path.join(self.root, self.bundle_meta_rel(channel, version, digest), INGEST_RECORD)
        if not os.path.lexists(path):
            return None
        doc = self._read_json(path, None, MAX_STATE)
        for key in ("ingested_at", "operator"):
            _expect(doc.get(key), "a string", f"{path}: {key}")
        return doc

    def blob_path(self, digest: str) -> str:
        if not is_sha256_hex(digest):
            raise RepoError(f"{describe(digest)} is not a sha256 digest")
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

    def sync_blobs(self) -> None:
        fsync_dir(self.blobs)

    @staticmethod
    def bundle_meta_rel(channel: str, version: int, digest: str) -> str:
        return os.path.join("bundles", channel, f"{version:06d}-{digest[:12]}")

    def write_bundle_meta(self, rel: str, files: Dict[str, bytes]) -> bool:
        """Keep a bundle's metadata at ``rel``; False if it is there already."""
        final = os.path.join(self.root, rel)
        if os.path.isdir(final):
            return False
        os.makedirs(os.path.dirname(final), 0o755, exist_ok=True)
        tmp = os.path.join(self.tmp, f"bundle-{os.getpid()}-{os.path.basename(rel)}")
        os.makedirs(tmp, 0o755)
        for name, data in sorted(files.items()):
            path = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            atomic_write(path, data, mode=0o444)
        os.rename(tmp, final)
        fsync_dir(os.path.dirname(final))
        return True

    def write_state(self, state: Dict[str, Any], index: Dict[str, Any]) -> str:
        """Write ``states/<seq>`` (not yet current); returns its path relative to the root."""
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
        return rel

    def switch_current(self, rel: str) -> None:
        """Point ``current`` at ``rel`` with one rename.

        An ``OSError`` means ``current`` did not move. A :class:`RepoError` means it moved but the
        move could not be made durable (the directory fsync failed).
        """
        link = os.path.join(self.root, f".current-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(rel, link)
        try:
            os.replace(link, self.current)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(link)
            raise
        try:
            fsync_dir(self.root)
        except OSError as exc:
            raise RepoError(
                f"current now points at {rel}, but the switch could not be made durable ({exc.strerror}); "
                "run sync and check the file system"
            ) from None

    # -- the journal of a running ingest and recovery -------------------------------------------

    def read_journal(self) -> Optional[Dict[str, Any]]:
        """The journal an interrupted ingest left, checked; None when there is none."""
        if not os.path.lexists(self.journal_path):
            return None
        doc = self._read_json(self.journal_path, JOURNAL_FORMAT, MAX_STATE)
        path = self.journal_path
        for key in ("state", "bundle"):
            value = _expect(doc.get(key), "a string", f"{path}: {key}")
            if not _JOURNAL_PATH_RE.match(value):
                raise RepoError(f"{path}: {key} {describe(value)} is not a repository path; {DAMAGED}")
        for key in ("bundle_new", "trust_new"):
            _expect(doc.get(key), "a boolean", f"{path}: {key}")
        if not is_sha256_hex(doc.get("bundle_sha256")):
            raise RepoError(f"{path}: bundle_sha256 must be a digest; {DAMAGED}")
        blobs = _expect(doc.get("blobs"), "a list", f"{path}: blobs")
        if not all(is_sha256_hex(b) for b in blobs):
            raise RepoError(f"{path}: blobs must list digests; {DAMAGED}")
        return doc

    def write_journal(self, doc: Dict[str, Any]) -> None:
        atomic_write(self.journal_path, _dumps(dict(doc, format=JOURNAL_FORMAT)))

    def remove_journal(self) -> None:
        os.unlink(self.journal_path)
        fsync_dir(self.root)

    def undo(self, journal: Dict[str, Any]) -> List[str]:
        """Remove what the ingest of ``journal`` wrote (never what ``current`` serves); returns what went."""
        removed = []
        if self.current_target() == journal["state"]:
            raise RepoError(f"{journal['state']} is current; it cannot be undone")
        targets = [journal["state"]]
        if journal["bundle_new"]:
            targets.append(journal["bundle"])
        for rel in targets:
            path = os.path.join(self.root, rel)
            if os.path.lexists(path):
                shutil.rmtree(path)
                removed.append(rel)
        blobs = [d for d in journal["blobs"] if os.path.lexists(self.blob_path(d))]
        for digest in blobs:
            os.unlink(self.blob_path(digest))
        if blobs:
            removed.append(f"{len(blobs)} new blobs")
        if journal["trust_new"] and os.path.lexists(self.trust_path):
            os.unlink(self.trust_path)
            removed.append("trust.json")
        for directory in (self.states, self.blobs, self.root):
            fsync_dir(directory)
        return removed

    def leftovers(self) -> List[str]:
        """Staging an interrupted run left: everything in ``tmp/``, stray ``.current-*`` links."""
        found = []
        if os.path.isdir(self.tmp):
            found += [os.path.join("tmp", name) for name in sorted(os.listdir(self.tmp))]
        found += [name for name in sorted(os.listdir(self.root)) if name.startswith(".current-")]
        return found

    def remove(self, rel: str) -> None:
        path = os.path.join(self.root, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
