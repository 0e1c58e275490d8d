# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Install one model: digest-first, staged, atomic; planned first, then applied.

Order (see docs/ollama-integrity.md):

1. read and check the source manifest (and the ``manifest_digest`` pin);
2. under the store's exclusive lock, :func:`plan_install` decides what is missing or damaged
   (``fast``: blobs whose stat matches the verification record are not read); check mode stops
   here and reports the plan;
3. :func:`apply_install` copies each needed blob into ``blobs/.airgap-llm-staging-XXXX/`` hashing
   the same bytes as they are written; a mismatch, a short or long source, or a full disk aborts
   and removes the staging directory, so the store is exactly as it was;
4. fsyncs the staged files, renames them to ``blobs/sha256-<hex>``, fsyncs ``blobs/``;
5. writes the manifest last (temporary file, fsync, rename, fsync its directory).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    Owner,
    atomic_write,
    free_bytes,
    fsync_dir,
    make_dirs,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    ManifestError,
    NoSpaceError,
    PinMismatchError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import (
    Layer,
    Manifest,
    describe_state,
    manifest_digest,
    parse_manifest,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.stage import FILE_MODE, Stager
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import (
    STAGING_PREFIX,
    Store,
    record_blobs,
    remove_stale_staging,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import check_blobs
from ansible_collections.airgap.llm.plugins.module_utils._record import VerificationRecord

__all__ = ["InstallPlan", "apply_install", "install_model", "plan_install"]


class InstallPlan:
    """What installing one manifest changes in a store; ``result`` is the module result."""

    def __init__(self, name: ModelName, manifest: Manifest, owner: Owner, result: Dict[str, Any]) -> None:
        self.name = name
        self.manifest = manifest
        self.owner = owner
        self.result = result
        self.record: Optional[VerificationRecord] = None
        self.to_copy: List[Layer] = []
        self.write_manifest = False
        self.obsolete: List[str] = []
        self.fix_meta: List[str] = []

    @property
    def changed(self) -> bool:
        return bool(self.result["changed"])


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


def plan_install(store: Store, plan: InstallPlan, *, mode: str, jobs: Optional[int]) -> InstallPlan:
    """Decide, from the store as it is (under its lock), what :func:`apply_install` must change."""
    name, manifest, owner, result = plan.name, plan.manifest, plan.owner, plan.result
    model = str(name)
    exists = store.exists()
    plan.record = record = store.load_record()
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
    plan.to_copy = to_copy
    plan.write_manifest = current_raw != manifest.raw

    # Blobs of the previous version that nothing else references go when the manifest changes.
    if plan.write_manifest and current is not None:
        others, problems = store.all_manifests(skip=name)
        if not problems:
            keep = {layer.hex for layer in manifest.blobs}
            keep.update(layer.hex for m in others.values() for layer in m.blobs)
            plan.obsolete = [layer.hex for layer in current.blobs if layer.hex not in keep]

    if exists:
        copy_set = {layer.hex for layer in to_copy}
        for layer in manifest.blobs:
            path = store.blob_path(layer.hex)
            if layer.hex not in copy_set and owner.wants(os.lstat(path), FILE_MODE):
                plan.fix_meta.append(path)
        manifest_path = store.manifest_path(name)
        if not plan.write_manifest and owner.wants(os.lstat(manifest_path), FILE_MODE):
            plan.fix_meta.append(manifest_path)

    stale = [e.name for e in store.blob_entries() if e.name.startswith(STAGING_PREFIX)] if exists else []
    result["blobs_copied"] = [layer.digest for layer in to_copy]
    result["blobs_removed"] = ["sha256:" + h for h in plan.obsolete]
    result["copy_reasons"] = reasons
    result["permissions_fixed"] = [store.rel(p) for p in plan.fix_meta]
    result["changed"] = bool(to_copy or plan.write_manifest or plan.obsolete or plan.fix_meta or stale)
    result["diff"] = {
        "before": describe_state(current) if current_raw is not None else describe_state(None),
        "after": describe_state(manifest),
    }
    if current_raw is not None and current is None:
        result["diff"]["before"]["manifest_digest"] = "unparsable manifest"
    return plan


def apply_install(store: Store, plan: InstallPlan, source: Any, *, jobs: Optional[int]) -> None:
    """Carry out a changing plan under the store's exclusive lock; a failure leaves the store as it was."""
    model, owner, result = str(plan.name), plan.owner, plan.result
    record = plan.record if plan.record is not None else store.load_record()
    remove_stale_staging(store)
    make_dirs(store.blobs_dir, owner, store.root)
    make_dirs(store.manifests_dir, owner, store.root)
    need = sum(layer.size for layer in plan.to_copy)
    available = free_bytes(store.blobs_dir)
    if need > available:
        raise NoSpaceError(
            f"model {model}: needs {need} bytes in {store.blobs_dir} for {len(plan.to_copy)} blobs, only "
            f"{available} are free; the store was left unchanged. What to do: free space or grow the "
            "file system, then run again"
        )
    if plan.to_copy:
        with Stager(store.blobs_dir, owner) as stager:
            stager.add_all([(model, layer) for layer in plan.to_copy], source, jobs)
            stager.commit()
        result["bytes_copied"] = stager.bytes_copied
    manifest_path = store.manifest_path(plan.name)
    if plan.write_manifest:
        make_dirs(os.path.dirname(manifest_path), owner, store.manifests_dir)
        atomic_write(manifest_path, plan.manifest.raw, FILE_MODE, owner.uid, owner.gid)
    for path in plan.fix_meta:
        owner.apply(path, FILE_MODE)
    for hexdigest in plan.obsolete:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(store.blob_path(hexdigest))
        record.discard_digest(hexdigest)
    if plan.obsolete:
        fsync_dir(store.blobs_dir)
    _save_record(store, record, plan.manifest)


def _save_record(store: Store, record: VerificationRecord, manifest: Manifest) -> None:
    record_blobs(store, record, [layer.hex for layer in manifest.blobs])
    with contextlib.suppress(OSError, FileError):
        record.save()


def install_model(
    store: Store,
    name_text: str,
    source: Any,
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
        plan = plan_install(store, InstallPlan(name, manifest, owner, result), mode=mode, jobs=jobs)
        if check_mode:
            return result
        if not plan.changed:
            _save_record(store, plan.record or store.load_record(), manifest)
            return result
        apply_install(store, plan, source, jobs=jobs)
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
    if current_raw is not None and manifest_digest(current_raw) == pin:
        return current_raw, None
    current: Optional[Manifest] = None
    if current_raw is not None:
        with contextlib.suppress(ManifestError):
            current = parse_manifest(current_raw, model)
    before = describe_state(current)
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
