# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Export models from a store into a directory in store layout plus ``models.json``; planned, then applied.

Each referenced blob is copied once, verified while it is copied; files of an earlier export that
this one no longer contains are removed; ``models.json`` is written last.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    Owner,
    atomic_write,
    free_bytes,
    make_dirs,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    ManifestError,
    NoSpaceError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import Layer, Manifest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.remove import prune_empty_dirs
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import LocalSource
from ansible_collections.airgap.llm.plugins.module_utils._ollama.stage import FILE_MODE, Stager
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import (
    Store,
    read_small,
    record_blobs,
    remove_stale_staging,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import check_blobs
from ansible_collections.airgap.llm.plugins.module_utils._record import VerificationRecord

__all__ = ["EXPORT_FORMAT", "MODELS_JSON", "ExportPlan", "apply_export", "export_models", "plan_export"]

MODELS_JSON = "models.json"
EXPORT_FORMAT = 1


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


class ExportPlan:
    """What an export changes in ``dest``; ``result`` is the module result."""

    def __init__(
        self, record: VerificationRecord, layers: Dict[str, Tuple[str, Layer]], result: Dict[str, Any]
    ):
        self.record = record
        self.layers = layers
        self.result = result
        self.to_copy: List[Tuple[str, Layer]] = []
        self.manifests_to_write: List[Tuple[ModelName, Manifest]] = []
        self.stale_manifests: List[ModelName] = []
        self.stale_blobs: List[str] = []
        self.document: Dict[str, Any] = {}
        self.json_changed = False


def plan_export(
    dest_store: Store,
    selected: List[Tuple[ModelName, Manifest]],
    result: Dict[str, Any],
    *,
    mode: str,
    jobs: Optional[int],
) -> ExportPlan:
    """Compare ``dest`` with the models to export (under its lock, when it exists)."""
    layers: Dict[str, Tuple[str, Layer]] = {}
    for name, manifest in selected:
        for layer in manifest.blobs:
            layers.setdefault(layer.hex, (str(name), layer))
    dest_exists = dest_store.exists()
    plan = ExportPlan(dest_store.load_record(), layers, result)
    if dest_exists:
        wanted = {h: {layer.size} for h, (_m, layer) in layers.items()}
        checks = check_blobs(dest_store, wanted, mode, jobs, plan.record)
        result["bytes_hashed"] = sum(c.hashed for c in checks.values())
        for hexdigest, (model, layer) in layers.items():
            if checks[hexdigest].state == "ok":
                continue
            path = dest_store.blob_path(hexdigest)
            if os.path.isdir(path) and not os.path.islink(path):
                raise StoreError(f"dest blob {path} is a directory; remove it and run again")
            plan.to_copy.append((model, layer))
    else:
        plan.to_copy = list(layers.values())
    for name, manifest in selected:
        current = dest_store.read_manifest_bytes(name) if dest_exists else None
        if current != manifest.raw:
            plan.manifests_to_write.append((name, manifest))
    # Files from an earlier export that this export no longer contains.
    if dest_exists:
        wanted_names = {name for name, _m in selected}
        for entry in dest_store.iter_manifests():
            if entry.name is not None and entry.name not in wanted_names:
                plan.stale_manifests.append(entry.name)
        for blob in dest_store.blob_entries():
            if blob.name.startswith("sha256-") and blob.name[7:] not in layers:
                plan.stale_blobs.append(blob.name[7:])
    plan.document = {"format": EXPORT_FORMAT, "models": result["models"]}
    models_json_path = os.path.join(dest_store.root, MODELS_JSON)
    old_document = None
    if os.path.isfile(models_json_path):
        # An unreadable or non-strict models.json is simply rewritten.
        with contextlib.suppress(_json.JSONError, OSError, StoreError):
            limit = 64 * 1024 * 1024
            old_document = _json.loads(
                read_small(models_json_path, limit, MODELS_JSON), MODELS_JSON, limit=limit
            )
    plan.json_changed = not (
        isinstance(old_document, dict)
        and old_document.get("format") == EXPORT_FORMAT
        and old_document.get("models") == result["models"]
    )
    result["blobs_copied"] = [layer.digest for _m, layer in plan.to_copy]
    result["blobs_removed"] = ["sha256:" + h for h in plan.stale_blobs]
    result["manifests_written"] = [str(n) for n, _m in plan.manifests_to_write]
    result["manifests_removed"] = [str(n) for n in plan.stale_manifests]
    result["changed"] = bool(
        plan.to_copy
        or plan.manifests_to_write
        or plan.stale_manifests
        or plan.stale_blobs
        or plan.json_changed
    )
    return plan


def apply_export(
    store: Store,
    dest_store: Store,
    plan: ExportPlan,
    *,
    jobs: Optional[int],
    now: Optional[datetime.datetime] = None,
) -> None:
    """Carry out a changing plan under ``dest``'s exclusive lock; a failure leaves ``dest`` as it was."""
    result, record = plan.result, plan.record
    remove_stale_staging(dest_store)
    owner = Owner()
    make_dirs(dest_store.blobs_dir, owner, dest_store.root)
    make_dirs(dest_store.manifests_dir, owner, dest_store.root)
    need = sum(layer.size for _m, layer in plan.to_copy)
    available = free_bytes(dest_store.blobs_dir)
    if need > available:
        raise NoSpaceError(
            f"export needs {need} bytes in {dest_store.blobs_dir}, only {available} are free; "
            "dest was "
            "left unchanged. What to do: free space or choose another dest"
        )
    source = LocalSource(store.root)
    source.label = store.given
    if plan.to_copy:
        with Stager(dest_store.blobs_dir, owner) as stager:
            stager.add_all(plan.to_copy, source, jobs)
            stager.commit()
        result["bytes_copied"] = stager.bytes_copied
    for name, manifest in plan.manifests_to_write:
        path = dest_store.manifest_path(name)
        make_dirs(os.path.dirname(path), owner, dest_store.manifests_dir)
        atomic_write(path, manifest.raw, FILE_MODE)
    for name in plan.stale_manifests:
        path = dest_store.manifest_path(name)
        os.unlink(path)
        prune_empty_dirs(os.path.dirname(path), dest_store.manifests_dir)
    for hexdigest in plan.stale_blobs:
        os.unlink(dest_store.blob_path(hexdigest))
        record.discard_digest(hexdigest)
    if plan.json_changed:
        stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = dict(plan.document, exported_at=stamp)
        atomic_write(
            os.path.join(dest_store.root, MODELS_JSON),
            _json.dumps(document, indent=2),
        )
    record_blobs(dest_store, record, list(plan.layers))
    with contextlib.suppress(OSError, FileError):
        record.save()


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
        result: Dict[str, Any] = {
            "dest": dest,
            "models": _models_json_models(selected),
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
            plan = plan_export(dest_store, selected, result, mode=mode, jobs=jobs)
            if check_mode or not result["changed"]:
                return result
            apply_export(store, dest_store, plan, jobs=jobs, now=now)
    return result
