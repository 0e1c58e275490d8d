# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ingest a bundle into the repository (high side).

The tarball (or its chunks) is read once: the stream is hashed as a whole and per chunk in a
background thread while :func:`extract.scan` stages each regular member under a numbered name in
``tmp/`` and hashes it. Then the checks run in this order, and the first failure refuses the
bundle: 1 outer digest, 2 chunks, 3 signatures (k of n trusted keys), 4 version newer than the last
one of the channel, 5 not expired, 6 every artifact digest and size, 7 safe extraction (nothing
unsafe, duplicated or unlisted). A refusal removes the staging directory, so the repository and
its ``current`` pointer stay exactly as they were, and appends a refusal event to the audit log.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex, sha256_file
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import ScanResult, scan
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import (
    INDEX_FORMAT,
    STATE_FORMAT,
    Repository,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (
    SignError,
    load_public_key,
    verify_threshold,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import (
    MANIFEST,
    MAX_MANIFEST,
    MAX_SIGNATURE,
    SIG_DIR,
    BundleError,
    format_time,
    parse_time,
    validate_manifest,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import PartsSource, StreamError

__all__ = ["STEPS", "IngestError", "IngestOptions", "Refused", "Verified", "ingest"]

SIG_RE = re.compile(r"^signatures/([0-9a-f]{16})\.sig$")
STEPS = ("outer digest", "chunks", "signatures", "version", "expiry", "artifact digests", "extraction")


class Refused(AirgapError):
    """The bundle failed a check; ``step`` names it and ``str()`` says what to do."""

    def __init__(self, step: str, message: str, key_ids: Optional[List[str]] = None) -> None:
        super().__init__(f"refused at check {STEPS.index(step) + 1} ({step}): {message}")
        self.step = step
        self.key_ids = key_ids or []


class IngestError(AirgapError):
    """Ingest could not run (bad options, unreadable media, repository problem)."""


class IngestOptions:
    """The options of one ``bundle_ingest`` task."""

    def __init__(
        self,
        *,
        src: str,
        sha256: str,
        repository: str,
        trusted_keys: Sequence[str],
        threshold: int,
        audit_log: str,
        operator: str,
        allow_rollback: bool = False,
        override_reason: Optional[str] = None,
        verify_reused: bool = False,
        lock_timeout: float = 60.0,
        now: Optional[datetime.datetime] = None,
    ) -> None:
        self.src = src
        self.sha256 = sha256
        self.repository = repository
        self.trusted_keys = list(trusted_keys)
        self.threshold = threshold
        self.audit_log = audit_log
        self.operator = operator
        self.allow_rollback = allow_rollback
        self.override_reason = override_reason
        self.verify_reused = verify_reused
        self.lock_timeout = lock_timeout
        self.now = now


def _read_listing(path: str) -> List[Tuple[str, str]]:
    """``sha256sum`` lines (digest, plain file name) from a small file on the media."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 20)
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read {path}: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        name = parts[1].strip().lstrip("*") if len(parts) == 2 else ""
        if len(parts) != 2 or not is_sha256_hex(parts[0]) or not name or "/" in name or name.startswith("."):
            raise IngestError(f"{path} line {number} is not '<sha256>  <file name>'")
        rows.append((parts[0], name))
    return rows


def _parts(options: IngestOptions) -> Tuple[List[str], Optional[List[str]]]:
    """Paths to read in order, and the expected digest of each part when the bundle is chunked."""
    src = options.src
    chunks_file = src + ".chunks.sha256"
    if os.path.isfile(src):
        return [src], None
    if os.path.isfile(chunks_file):
        rows = _read_listing(chunks_file)
        if not rows:
            raise Refused("chunks", f"{chunks_file} lists no chunks")
        directory = os.path.dirname(os.path.abspath(src))
        paths = [os.path.join(directory, name) for _digest, name in rows]
        for path in paths:
            if not os.path.isfile(path):
                raise Refused(
                    "chunks",
                    f"chunk {os.path.basename(path)} is missing from {directory}; copy every chunk listed "
                    f"in {os.path.basename(chunks_file)} from the media",
                )
        return paths, [digest for digest, _name in rows]
    raise IngestError(f"{src} does not exist (nor {os.path.basename(chunks_file)}); check src")


def _trusted(options: IngestOptions) -> List[Any]:
    keys = []
    for index, pem in enumerate(options.trusted_keys):
        try:
            keys.append(load_public_key(pem, f"trusted_keys[{index}]"))
        except SignError as exc:
            raise IngestError(str(exc)) from None
    if not keys:
        raise IngestError("trusted_keys is empty: pin the public keys of the bundle signers")
    return keys


def _keep_in_memory(name: str) -> int:
    if name == MANIFEST:
        return MAX_MANIFEST
    if name.startswith(SIG_DIR):
        return MAX_SIGNATURE
    return 0


class Verified:
    """A bundle that passed every check: its manifest, the signers and what was staged."""

    def __init__(
        self, manifest: Dict[str, Any], raw: bytes, key_ids: List[str], scan_result: ScanResult
    ) -> None:
        self.manifest = manifest
        self.raw = raw
        self.key_ids = key_ids
        self.scan = scan_result


def _check_digests(
    options: IngestOptions,
    expected_parts: Optional[List[str]],
    parts: List[str],
    digests: Tuple[str, List[str], List[int]],
) -> None:
    whole, part_digests, part_sizes = digests
    if expected_parts is None:
        if whole != options.sha256:
            raise Refused(
                "outer digest",
                f"{options.src} has sha256 {whole} but the value given out of band is {options.sha256}: "
                "the copy is damaged or is not the bundle you were told about; copy it again from the "
                "media and compare the digest with the low side",
            )
        return
    for path, expected, actual, size in zip(parts, expected_parts, part_digests, part_sizes):
        if actual != expected:
            raise Refused(
                "chunks",
                f"chunk {os.path.basename(path)} has sha256 {actual} ({size} bytes), the chunk list says "
                f"{expected}: it is truncated or damaged; copy it again from the media",
            )
    if whole != options.sha256:
        raise Refused(
            "chunks",
            f"the reassembled chunks hash to {whole} but the value given out of band is {options.sha256}: "
            "chunks are missing, reordered or from another bundle; copy the whole set again",
        )


def _check_signatures(
    options: IngestOptions, result: ScanResult, trusted: List[Any]
) -> Tuple[bytes, List[str]]:
    raw = result.memory.get(MANIFEST)
    if raw is None:
        why = f" ({result.archive_error})" if result.archive_error else ""
        raise Refused("signatures", f"the archive holds no bundle.json{why}; this is not a usable bundle")
    signatures = {}
    for name, data in result.memory.items():
        match = SIG_RE.match(name)
        if match:
            signatures[match.group(1)] = data
    try:
        key_ids = verify_threshold(raw, signatures, trusted, options.threshold)
    except SignError as exc:
        raise Refused("signatures", str(exc)) from None
    return raw, key_ids


def _parse_manifest(raw: bytes, key_ids: List[str]) -> Dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
        return validate_manifest(doc)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused("signatures", f"bundle.json is signed but not valid: {exc}", key_ids) from None
    except BundleError as exc:
        raise Refused("signatures", f"bundle.json is signed but not valid: {exc}", key_ids) from None


def _check_version(
    options: IngestOptions, manifest: Dict[str, Any], state: Dict[str, Any], key_ids: List[str]
) -> bool:
    """True when the version check passed only thanks to the audited override."""
    channel = manifest["channel"]
    last = state.get("high_water", {}).get(channel)
    if last is None or manifest["version"] > last:
        return False
    what = "an older" if manifest["version"] < last else "the same"
    if options.allow_rollback:
        if not options.override_reason:
            raise IngestError("allow_rollback needs override_reason (it is written to the audit log)")
        return True
    raise Refused(
        "version",
        f"bundle version {manifest['version']} of channel {channel} is {what} version as {last}, already "
        "ingested: rollback and replay are refused. Ask the low side for a newer bundle; only if you "
        "really mean to go back, rerun with allow_rollback=true and an override_reason (audited).",
        key_ids,
    )


def _check_expiry(options: IngestOptions, manifest: Dict[str, Any], key_ids: List[str]) -> None:
    now = options.now or datetime.datetime.now(datetime.timezone.utc)
    expires = parse_time(manifest["expires"], "expires")
    if now >= expires:
        raise Refused(
            "expiry",
            f"bundle version {manifest['version']} expired at {manifest['expires']} (now "
            f"{format_time(now)}); ask the low side for a fresh bundle, or check this host's clock",
            key_ids,
        )


def _check_files(
    options: IngestOptions, repo: Repository, manifest: Dict[str, Any], result: ScanResult, key_ids: List[str]
) -> None:
    for entry in manifest["files"]:
        path, digest, size = entry["path"], entry["sha256"], entry["size"]
        if entry["omitted"]:
            have = repo.blob_size(digest)
            if have != size:
                raise Refused(
                    "artifact digests",
                    f"{path} was left out of this differential bundle, but the repository "
                    + ("does not hold it" if have is None else f"holds {have} bytes, not {size}")
                    + f" (sha256 {digest}); build a full bundle, or a differential one from an inventory "
                    "exported from this repository",
                    key_ids,
                )
            if options.verify_reused:
                actual, _size = sha256_file(repo.blob_path(digest))
                if actual != digest:
                    raise Refused(
                        "artifact digests",
                        f"repository blob {digest} (needed by {path}) hashes to {actual}: the repository "
                        "is damaged; restore that blob from backup or ingest a full bundle",
                        key_ids,
                    )
            continue
        staged = result.files.get(path)
        if staged is None:
            raise Refused(
                "artifact digests", f"bundle.json lists {path} but the archive does not hold it", key_ids
            )
        if staged.size != size or staged.sha256 != digest:
            raise Refused(
                "artifact digests",
                f"{path}: sha256 {staged.sha256} and {staged.size} bytes, bundle.json says {digest} and "
                f"{size} bytes: the artifact was altered or damaged; do not use this bundle",
                key_ids,
            )


def _check_extraction(manifest: Dict[str, Any], result: ScanResult, key_ids: List[str]) -> None:
    problems = list(result.problems)
    listed = {e["path"] for e in manifest["files"] if not e["omitted"]}
    for name in result.files:
        if name not in listed:
            problems.append(f"archive entry {name!r} is not listed in bundle.json")
    for name in result.memory:
        if name != MANIFEST and not SIG_RE.match(name):
            problems.append(f"archive entry {name!r} is not listed in bundle.json")
    if result.archive_error:
        problems.append(f"the archive is damaged: {result.archive_error}")
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise Refused(
            "extraction",
            f"{problems[0]}{more}; nothing was extracted. The bundle was tampered with or built by "
            "another tool; do not use it",
            key_ids,
        )


def _index_entry(manifest: Dict[str, Any], art: Dict[str, Any], outer: str) -> Dict[str, Any]:
    by_path = {e["path"]: e for e in manifest["files"]}
    prefix = f"artifacts/{art['kind']}/{art['name']}/{art['version']}/"
    files = []
    for path in art["files"]:
        entry = by_path[path]
        if path.startswith(prefix):
            rel = path[len(prefix) :]
        elif path.startswith("models/"):
            rel = path[len("models/") :]
        else:
            rel = path
        files.append(
            {
                "path": rel,
                "sha256": entry["sha256"],
                "size": entry["size"],
                "blob": f"blobs/sha256/{entry['sha256']}",
            }
        )
    out = {
        "kind": art["kind"],
        "channel": manifest["channel"],
        "bundle_version": manifest["version"],
        "bundle_sha256": outer,
        "source": art["source"],
        "license": art.get("license"),
        "files": files,
    }
    if art.get("suites"):
        out["suites"] = art["suites"]
    if art["kind"] == "model":
        out["model"] = art.get("model")
        out["manifest_digest"] = art.get("manifest_digest")
    return out


def _new_state(
    state: Dict[str, Any],
    index: Dict[str, Any],
    manifest: Dict[str, Any],
    *,
    outer: str,
    meta_rel: str,
    now: str,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    channel = manifest["channel"]
    channels = dict(state.get("channels", {}))
    channels[channel] = {"version": manifest["version"], "sha256": outer, "bundle": meta_rel}
    high = dict(state.get("high_water", {}))
    high[channel] = max(manifest["version"], high.get(channel, 0))
    target_prev = f"states/{state['seq']:06d}" if state.get("seq") else None
    new_state = {
        "format": STATE_FORMAT,
        "seq": state.get("seq", 0) + 1,
        "created": now,
        "bundle": channels[channel],
        "channels": channels,
        "high_water": high,
        "previous": target_prev,
    }
    artifacts = {name: dict(versions) for name, versions in index.get("artifacts", {}).items()}
    for art in manifest["artifacts"]:
        artifacts.setdefault(art["name"], {})[art["version"]] = _index_entry(manifest, art, outer)
    return new_state, {"format": INDEX_FORMAT, "artifacts": artifacts}


def _already_ingested(state: Dict[str, Any], sha256: str) -> Optional[Dict[str, Any]]:
    for channel, info in state.get("channels", {}).items():
        if info.get("sha256") == sha256:
            return dict(info, channel=channel)
    return None


def _record(options: IngestOptions, outcome: str, detail: str, key_ids: Sequence[str]) -> Dict[str, Any]:
    return _audit.append(
        options.audit_log,
        action="ingest",
        outcome=outcome,
        operator=options.operator,
        bundle_sha256=options.sha256,
        key_ids=key_ids,
        detail=detail,
    )


def _verify(
    options: IngestOptions, repo: Repository, state: Dict[str, Any], stage: Optional[str]
) -> Tuple[Verified, bool]:
    trusted = _trusted(options)
    sha_file = options.src + ".sha256"
    if os.path.isfile(sha_file):
        rows = _read_listing(sha_file)
        if not rows or rows[0][0] != options.sha256:
            listed = rows[0][0] if rows else "nothing"
            raise Refused(
                "outer digest",
                f"{os.path.basename(sha_file)} on the media says {listed}, the value given out of band is "
                f"{options.sha256}: this media does not carry the bundle you were told about",
            )
    parts, expected_parts = _parts(options)
    source = PartsSource(parts)
    try:
        result = scan(source, stage, _keep_in_memory)
    except (OSError, FileError) as exc:
        source.close()
        raise IngestError(f"cannot stage the bundle in {repo.tmp}: {exc}") from None
    except StreamError as exc:
        source.close()
        raise IngestError(str(exc)) from None
    try:
        digests = source.close()
    except StreamError as exc:
        raise IngestError(str(exc)) from None
    _check_digests(options, expected_parts, parts, digests)
    raw, key_ids = _check_signatures(options, result, trusted)
    manifest = _parse_manifest(raw, key_ids)
    override = _check_version(options, manifest, state, key_ids)
    _check_expiry(options, manifest, key_ids)
    _check_files(options, repo, manifest, result, key_ids)
    _check_extraction(manifest, result, key_ids)
    return Verified(manifest, raw, key_ids, result), override


def _commit(
    options: IngestOptions, repo: Repository, state: Dict[str, Any], verified: Verified, override: bool
) -> Dict[str, Any]:
    manifest = verified.manifest
    stored = reused = 0
    stored_bytes = 0
    for entry in manifest["files"]:
        if entry["omitted"]:
            reused += 1
            continue
        staged = verified.scan.files[entry["path"]]
        if (
            staged.tmp_path
            and os.path.exists(staged.tmp_path)
            and repo.store_blob(staged.tmp_path, entry["sha256"])
        ):
            stored += 1
            stored_bytes += entry["size"]
        else:
            reused += 1
    now = _audit.utc_now()
    meta: Dict[str, bytes] = {MANIFEST: verified.raw}
    for name, data in verified.scan.memory.items():
        if SIG_RE.match(name):
            meta[name] = data
    meta["ingest.json"] = (
        json.dumps(
            {
                "bundle_sha256": options.sha256,
                "ingested_at": now,
                "operator": options.operator,
                "key_ids": verified.key_ids,
                "override_reason": options.override_reason if override else None,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    ).encode("utf-8")
    meta_rel = repo.write_bundle_meta(manifest["channel"], manifest["version"], options.sha256, meta)
    new_state, new_index = _new_state(
        state, repo.index(), manifest, outer=options.sha256, meta_rel=meta_rel, now=now
    )
    target = repo.commit_state(new_state, new_index)
    return {
        "state": new_state["seq"],
        "current": target,
        "stored_blobs": stored,
        "reused_blobs": reused,
        "stored_bytes": stored_bytes,
    }


def ingest(options: IngestOptions, check_mode: bool = False) -> Dict[str, Any]:
    """Verify and file away one bundle. Raises :class:`Refused` (audited) or :class:`IngestError`."""
    if not is_sha256_hex(options.sha256):
        raise IngestError("sha256 (the digest given out of band) must be 64 lower-case hex digits")
    if options.threshold < 1:
        raise IngestError("threshold must be at least 1")
    if options.allow_rollback and not options.override_reason:
        raise IngestError("allow_rollback needs override_reason (it is written to the audit log)")
    repo = Repository(options.repository)
    result: Dict[str, Any] = {"changed": False, "bundle_sha256": options.sha256, "repository": repo.root}
    if not check_mode:
        repo.init()
    lock = repo.lock(options.lock_timeout) if repo.exists() else contextlib.nullcontext()
    with lock:
        state = repo.state()
        known = _already_ingested(state, options.sha256)
        if known is not None:
            result.update(channel=known["channel"], version=known["version"], state=state["seq"])
            result["current"] = repo.current_target()
            result["msg"] = f"bundle {options.sha256} is already ingested (channel {known['channel']})"
            return result
        stage = None if check_mode else tempfile.mkdtemp(prefix="ingest-", dir=repo.tmp)
        try:
            try:
                verified, override = _verify(options, repo, state, stage)
            except Refused as exc:
                if not check_mode:
                    entry = _record(options, "refused", str(exc), exc.key_ids)
                    exc.audit_hash = entry["hash"]  # type: ignore[attr-defined]
                raise
            except IngestError as exc:
                if not check_mode:
                    _record(options, "failed", str(exc), [])
                raise
            manifest = verified.manifest
            result.update(
                changed=True,
                channel=manifest["channel"],
                version=manifest["version"],
                key_ids=verified.key_ids,
                files=len(manifest["files"]),
                artifacts=[
                    {"name": a["name"], "version": a["version"], "kind": a["kind"]}
                    for a in manifest["artifacts"]
                ],
                override=override,
            )
            if check_mode:
                return result
            result.update(_commit(options, repo, state, verified, override))
            detail = f"channel {manifest['channel']} version {manifest['version']} is current"
            detail += f" ({result['current']})"
            if override:
                detail += f"; version check overridden: {options.override_reason}"
            entry = _record(
                options, "accepted-override" if override else "accepted", detail, verified.key_ids
            )
            result["audit_hash"] = entry["hash"]
            return result
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
