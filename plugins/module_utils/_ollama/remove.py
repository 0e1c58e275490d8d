# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remove one model: its manifest and only the blobs no other manifest references; planned, then applied."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, List, Optional, Set

from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, fsync_dir
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import ManifestError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import (
    Manifest,
    describe_state,
    parse_manifest,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store

__all__ = ["apply_remove", "plan_remove", "prune_empty_dirs", "remove_model"]


def prune_empty_dirs(start: str, stop: str) -> None:
    """Remove ``start`` and its parents up to (not including) ``stop`` while they are empty."""
    current = start
    while current != stop and current.startswith(stop + os.sep):
        try:
            os.rmdir(current)
        except OSError:
            return
        fsync_dir(os.path.dirname(current))
        current = os.path.dirname(current)


def plan_remove(store: Store, name: ModelName, result: Dict[str, Any]) -> Optional[List[str]]:
    """The blobs (hex) that go with the manifest, or None when there is no manifest to remove."""
    model = str(name)
    raw = store.read_manifest_bytes(name)
    if raw is None:
        result["diff"] = {"before": describe_state(None), "after": describe_state(None)}
        return None
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
    result["diff"] = {"before": describe_state(current), "after": describe_state(None)}
    return remove


def apply_remove(store: Store, name: ModelName, remove: List[str]) -> None:
    """Remove the manifest first (the model is gone at once), then its blobs (under the exclusive lock)."""
    manifest_path = store.manifest_path(name)
    os.unlink(manifest_path)
    fsync_dir(os.path.dirname(manifest_path))
    prune_empty_dirs(os.path.dirname(manifest_path), store.manifests_dir)
    record = store.load_record()
    for hexdigest in remove:
        path = store.blob_path(hexdigest)
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        record.discard_digest(hexdigest)
    if remove:
        fsync_dir(store.blobs_dir)
    with contextlib.suppress(OSError, FileError):
        record.save()


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
        result["diff"] = {"before": describe_state(None), "after": describe_state(None)}
        return result
    with store.lock(exclusive=not check_mode, timeout=lock_timeout, create=not check_mode):
        remove = plan_remove(store, name, result)
        if remove is not None and not check_mode:
            apply_remove(store, name, remove)
    return result
