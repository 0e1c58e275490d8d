# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Verify a store: every manifest parsed, every referenced blob checked, orphans found.

Problems come back as data (``model``, ``digest``, ``kind``, ``expected``, ``actual``, ``path``,
``hint``); only an unusable store raises.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import default_jobs, hash_many
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, StatKey, classify
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    HINTS,
    ManifestError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import Layer, Manifest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import STAGING_PREFIX, Store
from ansible_collections.airgap.llm.plugins.module_utils._record import VerificationRecord

__all__ = [
    "PROBLEM_KINDS",
    "BlobCheck",
    "check_blobs",
    "format_problem",
    "format_problems",
    "layer_problem",
    "problem",
    "verify_store",
]

PROBLEM_KINDS = ("missing", "size", "digest", "unreadable", "manifest", "orphan")

_BLOB_NAME_RE = re.compile(r"\Asha256-([0-9a-f]{64})\Z")


def problem(
    kind: str,
    model: Optional[str],
    digest: Optional[str],
    expected: Any,
    actual: Any,
    *,
    path: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "model": model,
        "digest": digest,
        "kind": kind,
        "expected": expected,
        "actual": actual,
        "path": path,
        "hint": HINTS[kind],
    }


def format_problem(item: Dict[str, Any]) -> str:
    subject = []
    if item.get("model"):
        subject.append(f"model {item['model']}")
    if item.get("digest"):
        subject.append(f"blob {item['digest']}")
    if item.get("path"):
        subject.append(f"({item['path']})")
    head = " ".join(subject) or "store"
    return (
        f"{head}: {item['kind']}: expected {item['expected']}, actual {item['actual']}. "
        f"What to do: {item['hint']}"
    )


def format_problems(problems: List[Dict[str, Any]], limit: int = 50) -> str:
    lines = [format_problem(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problems (see the `problems` return value)")
    return "; ".join(lines)


# -------------------------------------------------------------------------------------------- verify


def _classify(path: str) -> Tuple[Optional[os.stat_result], Optional[str]]:
    """lstat ``path``; returns (stat, None) for a regular file, else (stat or None, description)."""
    try:
        st, kind = classify(path)
    except OSError as exc:
        return None, f"cannot stat it: {exc.strerror}"
    if kind is None or kind == "not a regular file":
        return st, kind
    return st, f"{kind}, not a regular file"


class BlobCheck(NamedTuple):
    state: str  # ok | missing | size | digest | unreadable
    actual: Any
    stat: Optional[StatKey]
    hashed: int
    disk_size: Optional[int]


def check_blobs(
    store: Store,
    wanted: Dict[str, Set[int]],
    mode: str,
    jobs: Optional[int],
    record: VerificationRecord,
) -> Dict[str, BlobCheck]:
    """Check blobs ``{hex: declared sizes}``; hashes in parallel only what the record cannot vouch for.

    A blob whose size on disk is none of the declared sizes is not read (state ``size``).
    """
    results: Dict[str, BlobCheck] = {}
    to_hash: List[str] = []
    for hexdigest, sizes in wanted.items():
        path = store.blob_path(hexdigest)
        st, bad = _classify(path)
        if st is None and bad is None:
            results[hexdigest] = BlobCheck("missing", "no such file", None, 0, None)
        elif bad is not None or st is None:
            results[hexdigest] = BlobCheck("unreadable", bad, None, 0, None)
        elif st.st_size not in sizes:
            results[hexdigest] = BlobCheck("size", f"{st.st_size} bytes", None, 0, st.st_size)
        elif mode == "fast" and record.is_verified(StatKey.from_stat(st), hexdigest):
            results[hexdigest] = BlobCheck("ok", "sha256:" + hexdigest, StatKey.from_stat(st), 0, st.st_size)
        else:
            to_hash.append(hexdigest)
    outcomes = hash_many([store.blob_path(h) for h in to_hash], jobs or default_jobs())
    for hexdigest, outcome in zip(to_hash, outcomes):
        if outcome.error is not None:
            results[hexdigest] = BlobCheck("unreadable", outcome.error, None, outcome.size, None)
        elif outcome.hexdigest != hexdigest:
            results[hexdigest] = BlobCheck(
                "digest", f"sha256:{outcome.hexdigest}", None, outcome.size, outcome.size
            )
        else:
            results[hexdigest] = BlobCheck(
                "ok", "sha256:" + hexdigest, outcome.stat, outcome.size, outcome.size
            )
            if outcome.stat is not None:
                record.add(outcome.stat, hexdigest)
    return results


def layer_problem(store: Store, model: str, layer: Layer, check: BlobCheck) -> Optional[Dict[str, Any]]:
    """The problem (or None) of one layer of one model, given the check of its blob."""
    path = store.rel(store.blob_path(layer.hex))
    if check.state in ("missing", "unreadable"):
        expected = f"a regular file of {layer.size} bytes"
        return problem(check.state, model, layer.digest, expected, check.actual, path=path)
    if check.disk_size is not None and check.disk_size != layer.size:
        return problem(
            "size", model, layer.digest, f"{layer.size} bytes", f"{check.disk_size} bytes", path=path
        )
    if check.state == "digest":
        return problem("digest", model, layer.digest, layer.digest, check.actual, path=path)
    return None


def verify_store(
    store: Store,
    *,
    models: Optional[List[str]] = None,
    mode: str = "full",
    jobs: Optional[int] = None,
    orphans: str = "report",
    write_record: bool = True,
) -> Dict[str, Any]:
    """Verify manifests and blobs; returns ``{models, problems, bytes_hashed, warnings}``.

    Never raises for a bad blob or manifest (they become problems); raises :class:`StoreError`
    only when the store itself is unusable.  Full passes (and fast passes that had to hash)
    update the verification record unless ``write_record`` is false.
    """
    store.check_layout(must_exist=True)
    problems: List[Dict[str, Any]] = []
    warnings: List[str] = []
    record = store.load_record()
    if record.ignored_reason:
        warnings.append(f"verification record {store.record_path} ignored: {record.ignored_reason}")

    all_entries = store.iter_manifests()
    selected: List[Tuple[ModelName, str]] = []
    if models:
        for text in models:
            name = ModelName.parse(text)
            selected.append((name, name.relpath))
    else:
        for entry in all_entries:
            if entry.name is None:
                problems.append(
                    problem(
                        "manifest", None, None, "an Ollama manifest file", entry.problem, path=entry.relpath
                    )
                )
            else:
                selected.append((entry.name, entry.relpath))

    parsed: Dict[ModelName, Manifest] = {}
    for name, relpath in selected:
        try:
            manifest = store.read_manifest(name)
        except ManifestError as exc:
            problems.append(
                problem("manifest", str(name), None, "a valid Ollama manifest", exc.reason, path=relpath)
            )
            continue
        except (StoreError, OSError) as exc:
            problems.append(
                problem("manifest", str(name), None, "a readable manifest file", str(exc), path=relpath)
            )
            continue
        if manifest is None:
            problems.append(
                problem("missing", str(name), None, f"manifest {relpath}", "no such file", path=relpath)
            )
            continue
        parsed[name] = manifest

    wanted: Dict[str, Set[int]] = {}
    for manifest in parsed.values():
        for layer in manifest.blobs:
            wanted.setdefault(layer.hex, set()).add(layer.size)
    checks = check_blobs(store, wanted, mode, jobs, record)
    bytes_hashed = sum(c.hashed for c in checks.values())

    result_models = []
    for name, manifest in parsed.items():
        blobs = []
        for layer in manifest.blobs:
            found = layer_problem(store, str(name), layer, checks[layer.hex])
            if found is not None:
                problems.append(found)
            status = found["kind"] if found else "ok"
            blobs.append(
                {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type, "status": status}
            )
        result_models.append(
            {
                "name": str(name),
                "fullname": name.fullname,
                "manifest_digest": manifest.digest,
                "size": manifest.size,
                "blobs": blobs,
                "ok": all(b["status"] == "ok" for b in blobs),
            }
        )

    if orphans != "ignore":
        if models:
            referenced_all, other_problems = store.all_manifests()
            referenced = {layer.hex for m in referenced_all.values() for layer in m.blobs}
            unsure = bool(other_problems)
        else:
            referenced = set(wanted)
            unsure = any(p["kind"] == "manifest" for p in problems)
        if unsure:
            warnings.append(
                "orphans not reported: some manifests could not be read, so their blobs are unknown"
            )
        else:
            for blob in store.blob_entries():
                match = _BLOB_NAME_RE.match(blob.name)
                if match and match.group(1) in referenced:
                    continue
                rel = store.rel(blob.path)
                if blob.name.startswith(STAGING_PREFIX):
                    actual = "a staging directory left by an interrupted install"
                elif match:
                    try:
                        actual = f"unreferenced ({blob.stat(follow_symlinks=False).st_size} bytes)"
                    except OSError:
                        actual = "unreferenced"
                else:
                    actual = "a file whose name is not sha256-<64 hex>"
                digest = "sha256:" + match.group(1) if match else None
                problems.append(problem("orphan", None, digest, "referenced by a manifest", actual, path=rel))

    if write_record and record.ignored_reason is None:
        if not models:
            record.retain(c.stat for c in checks.values() if c.state == "ok" and c.stat is not None)
        try:
            record.save()
        except (OSError, FileError) as exc:
            warnings.append(f"could not write the verification record {store.record_path}: {exc}")
    return {"models": result_models, "problems": problems, "bytes_hashed": bytes_hashed, "warnings": warnings}
