# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ingest a bundle into the repository (high side).

The tarball (or its chunks) is read once: the stream is hashed as a whole and per chunk in a
background thread while :func:`extract.scan` stages each regular member under a numbered name in
``tmp/`` and hashes it. Then the checks run in this order, and the first failure refuses the
bundle: 1 outer digest, 2 chunks, 3 signatures (k of n trusted keys), 4 version newer than the last
one of the channel, 5 not expired, 6 every artifact digest and size, 7 safe extraction (nothing
unsafe, duplicated, unlisted or otherwise not covered by a check). A refusal removes the staging
directory, so the repository and its ``current`` pointer stay exactly as they were, and appends
a refusal event to the audit log: nothing else is written for a refused bundle.

Signatures are checked against the repository's trust policy (:mod:`trust`): the keys and the
threshold recorded when the repository was set up. A first ingest into a repository without a
policy records the keys and threshold it was given explicitly; a later ingest asking for less is
refused unless it carries an override reason, which the audit log keeps with the operator's name.

Accepting a bundle is one ordered transaction under the repository lock: a journal naming
everything the ingest will write, the new blobs, the bundle's metadata and the new state
directory, then the ``accepted`` event, durable in the audit log, and only then the switch of
``current``; last the journal goes. When the event cannot be written, or ``current`` cannot be
switched, what was written is removed again and the message says which state is served. An
ingest that was interrupted (a crash, a kill) is finished or undone by the next one, before
anything else and under the same lock, from its journal; staging left in ``tmp/`` is removed;
both are recorded in the audit log (action ``recover``). State numbers continue after the highest
in ``states/``, even when ``current`` was pointed back at an older state.

Every value from the media that enters a message or an audit event is quoted, escaped and
bounded (:func:`_errors.quote`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DigestError,
    parse_sha256,
    sha256_file,
)
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, read_bounded
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import ScanResult, scan
from ansible_collections.airgap.llm.plugins.module_utils._transfer.listing import (
    format_rows,
    human_size,
    ingest_summary,
    list_repository,
    same_content,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import (
    INDEX_FORMAT,
    INGEST_RECORD,
    STATE_FORMAT,
    RepoError,
    Repository,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import SignError, verify_threshold
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import (
    MANIFEST,
    MAX_MANIFEST,
    MAX_SIGNATURE,
    SIG_DIR,
    BundleError,
    format_time,
    parse_manifest,
    parse_time,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import (
    PartsSource,
    StreamError,
    read_sums,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.trust import (
    Trust,
    TrustError,
    load_policy,
    save_policy,
)

__all__ = [
    "SIG_RE",
    "STEPS",
    "IngestError",
    "IngestOptions",
    "Refused",
    "Verified",
    "check_extraction",
    "check_files",
    "ingest",
    "keep_in_memory",
]

SIG_RE = re.compile(r"^signatures/([0-9a-f]{16})\.sig$")
_NO_PASTE = (
    "Read the digest again from the low side (phone, paper); never take it from the media or from a "
    "message: only the value received out of band proves which bundle this is"
)
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
    """The options of one ``bundle_ingest`` task.

    ``trusted_keys`` and ``threshold`` may be left out (empty, None): the repository's trust policy
    is used. Given, they must ask for at least as much as the policy, unless
    ``trust_override_reason`` says why not (audited). Into a repository without a policy they must
    both be given, and are recorded as its policy.
    """

    def __init__(
        self,
        *,
        src: str,
        sha256: str,
        repository: str,
        audit_log: str,
        operator: str,
        trusted_keys: Sequence[str] = (),
        threshold: Optional[int] = None,
        trust_override_reason: Optional[str] = None,
        allow_rollback: bool = False,
        override_reason: Optional[str] = None,
        verify_reused: bool = False,
        lock_timeout: float = 60.0,
        now: Optional[datetime.datetime] = None,
    ) -> None:
        self.src = src
        self.sha256 = sha256
        self.repository = repository
        self.trusted_keys = list(trusted_keys or ())
        self.threshold = threshold
        self.trust_override_reason = trust_override_reason
        self.audit_log = audit_log
        self.operator = operator
        self.allow_rollback = allow_rollback
        self.override_reason = override_reason
        self.verify_reused = verify_reused
        self.lock_timeout = lock_timeout
        self.now = now


class TrustUse:
    """The trust one ingest checks signatures against, and how it relates to the recorded policy."""

    def __init__(self, trust: Trust, *, establish: bool, override: Optional[str]) -> None:
        self.trust = trust
        self.establish = establish
        self.override = override

    def note(self) -> Optional[str]:
        """What the audit event says about trust (None when the policy was used as recorded)."""
        if self.establish:
            return f"trust policy recorded by this first ingest: {self.trust.describe()}"
        return self.override


def _read_listing(path: str) -> List[Tuple[str, str]]:
    try:
        return read_sums(path)
    except StreamError as exc:
        raise IngestError(f"{exc}; copy it again from the media") from None


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


def _trust(options: IngestOptions, repo: Repository) -> TrustUse:
    """The trust this ingest uses: the policy, stricter, or weaker with an audited override."""
    try:
        policy = load_policy(repo.trust_path)
        if policy is None:
            if not options.trusted_keys or options.threshold is None:
                raise IngestError(
                    f"repository {repo.root} has no trust policy yet: record the pinned signer keys and the "
                    "threshold with airgap.llm.repo_trust, or give both trusted_keys and threshold "
                    "explicitly "
                    "on this first ingest (they are recorded as the policy, and audited)"
                )
            trust = Trust.from_pems(options.trusted_keys, options.threshold, "trusted_keys")
            return TrustUse(trust, establish=True, override=None)
        pems = options.trusted_keys or [policy.pems[kid] for kid in policy.key_ids]
        threshold = policy.threshold if options.threshold is None else options.threshold
        trust = Trust.from_pems(
            pems, threshold, "trusted_keys" if options.trusted_keys else "the policy's keys"
        )
    except TrustError as exc:
        raise IngestError(str(exc)) from None
    weaker = trust.weaker_than(policy)
    if not weaker:
        return TrustUse(trust, establish=False, override=None)
    if not options.trust_override_reason:
        raise Refused(
            "signatures",
            f"this ingest asks for less trust than the repository's policy ({policy.describe()}): "
            f"{'; '.join(weaker)}. Leave trusted_keys and threshold out to use the policy; only if trust "
            "must "
            "be lowered for this one bundle, rerun with trust_override_reason (audited with your name); to "
            "change the policy for good, use airgap.llm.repo_trust",
        )
    override = (
        f"trust lowered for this ingest by {options.operator} ({'; '.join(weaker)}; used {trust.describe()}, "
        f"policy {policy.describe()}): {options.trust_override_reason}"
    )
    return TrustUse(trust, establish=False, override=override)


def keep_in_memory(name: str) -> int:
    """How much of a member the scan keeps in memory: bundle.json and signatures, nothing else."""
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
                f"{options.src} does not have the sha256 given out of band ({options.sha256}): the copy is "
                f"damaged, is not the bundle you were told about, or the digest was mistyped. {_NO_PASTE}",
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
            f"every chunk matches its list, but together they do not have the sha256 given out of band "
            f"({options.sha256}): chunks are missing, reordered or from another bundle, or the digest was "
            f"mistyped. Copy the whole set again. {_NO_PASTE}",
        )


def _check_signatures(result: ScanResult, trust: Trust) -> Tuple[bytes, List[str]]:
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
        key_ids = verify_threshold(raw, signatures, list(trust.keys.values()), trust.threshold)
    except SignError as exc:
        raise Refused("signatures", str(exc)) from None
    return raw, key_ids


def _parse_manifest(raw: bytes, key_ids: List[str]) -> Dict[str, Any]:
    try:
        return parse_manifest(raw)
    except BundleError as exc:
        raise Refused(
            "signatures",
            f"bundle.json is signed but not valid: {exc}. Do not use this bundle; ask the low side to build "
            "it again with this collection's bundle_build",
            key_ids,
        ) from None


def _check_version(
    options: IngestOptions, manifest: Dict[str, Any], high_water: Dict[str, int], key_ids: List[str]
) -> bool:
    """True when the version check passed only thanks to the audited override."""
    channel = manifest["channel"]
    last = high_water.get(channel)
    if last is None or manifest["version"] > last:
        return False
    what = f"older than version {last}" if manifest["version"] < last else f"the same version as {last}"
    if options.allow_rollback:
        if not options.override_reason:
            raise IngestError("allow_rollback needs override_reason (it is written to the audit log)")
        return True
    raise Refused(
        "version",
        f"bundle version {manifest['version']} of channel {channel} is {what}, already "
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


def check_files(
    manifest: Dict[str, Any],
    result: ScanResult,
    key_ids: List[str],
    repo: Optional[Repository] = None,
    verify_reused: bool = False,
) -> None:
    """Check 6: every file bundle.json lists is in the archive with its digest and size; the files
    a differential bundle left out are in ``repo`` (not checked without one: a signer on the low
    side has no repository)."""
    for entry in manifest["files"]:
        path, digest, size = entry["path"], entry["sha256"], entry["size"]
        if entry["omitted"]:
            if repo is None:
                continue
            have = repo.blob_size(digest)
            if have != size:
                raise Refused(
                    "artifact digests",
                    f"{quote(path)} was left out of this differential bundle, but the repository "
                    + ("does not hold it" if have is None else f"holds {have} bytes, not {size}")
                    + f" (sha256 {digest}); build a full bundle, or a differential one from an inventory "
                    "exported from this repository",
                    key_ids,
                )
            if verify_reused:
                actual, _size = sha256_file(repo.blob_path(digest))
                if actual != digest:
                    raise Refused(
                        "artifact digests",
                        f"repository blob {digest} (needed by {quote(path)}) hashes to {actual}: the "
                        "repository "
                        "is damaged; restore that blob from backup or ingest a full bundle",
                        key_ids,
                    )
            continue
        staged = result.files.get(path)
        if staged is None:
            raise Refused(
                "artifact digests",
                f"bundle.json lists {quote(path)} but the archive does not hold it",
                key_ids,
            )
        if staged.size != size or staged.sha256 != digest:
            raise Refused(
                "artifact digests",
                f"{quote(path)}: sha256 {staged.sha256} and {staged.size} bytes, bundle.json says {digest} "
                "and "
                f"{size} bytes: the artifact was altered or damaged; do not use this bundle",
                key_ids,
            )


def check_extraction(manifest: Dict[str, Any], result: ScanResult, key_ids: List[str]) -> None:
    """Every member must be covered by a check: listed (digest checked), bundle.json, a verified signature."""
    problems = list(result.problems)
    count = result.problem_count
    listed = {e["path"] for e in manifest["files"] if not e["omitted"]}
    for name in result.files:
        if name not in listed:
            problems.append(f"archive entry {quote(name)} is not listed in bundle.json")
            count += 1
    for name in result.memory:
        match = SIG_RE.match(name)
        if match and match.group(1) not in key_ids:
            problems.append(
                f"archive entry {quote(name)} is a signature by key {match.group(1)}, which is not trusted "
                "here, so no check covers it (pin that key with airgap.llm.repo_trust, or have the low side "
                "leave its signature out)"
            )
            count += 1
        elif name != MANIFEST and not match:
            problems.append(f"archive entry {quote(name)} is not listed in bundle.json")
            count += 1
    if result.archive_error:
        problems.append(f"the archive is damaged: {result.archive_error}")
        count += 1
    if problems:
        more = f" (and {count - 1} more problems)" if count > 1 else ""
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
    seq: int,
    previous: Optional[str],
    high_water: Dict[str, int],
    outer: str,
    meta_rel: str,
    now: str,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    channel = manifest["channel"]
    channels = dict(state.get("channels", {}))
    channels[channel] = {"version": manifest["version"], "sha256": outer, "bundle": meta_rel}
    high = dict(high_water)
    high[channel] = max(manifest["version"], high.get(channel, 0))
    new_state = {
        "format": STATE_FORMAT,
        "seq": seq,
        "created": now,
        "bundle": channels[channel],
        "channels": channels,
        "high_water": high,
        "previous": previous,
    }
    artifacts = {name: dict(versions) for name, versions in index.get("artifacts", {}).items()}
    for key, entry in _entries(manifest, outer).items():
        versions = artifacts.setdefault(key[0], {})
        if not same_content(versions.get(key[1]), entry):
            versions[key[1]] = entry  # what is already served keeps the bundle that brought it
    return new_state, {"format": INDEX_FORMAT, "artifacts": artifacts}


def _entries(manifest: Dict[str, Any], outer: str) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """The index entry of each artifact of a verified bundle, by (name, version)."""
    return {(a["name"], a["version"]): _index_entry(manifest, a, outer) for a in manifest["artifacts"]}


def _summary(
    options: IngestOptions,
    repo: Repository,
    index: Dict[str, Any],
    manifest: Dict[str, Any],
    *,
    when: Optional[str],
    head: str,
    blobs: str = "",
) -> Dict[str, Any]:
    """What the bundle adds, finds already there and replaces, as rows (and lines) like repo_list's."""
    entries = _entries(manifest, options.sha256)
    sorted_rows = ingest_summary(repo, index, entries, when=when, who=options.operator)
    counts = ", ".join(f"{k.replace('_', ' ')} {len(v)}" for k, v in sorted_rows.items())
    rows = [(k.replace("_", " "), row) for k, v in sorted_rows.items() for row in v]
    lines = [head, counts + (f"; {blobs}" if blobs else "")]
    lines += format_rows([r for _s, r in rows], [s for s, _r in rows])
    return dict(sorted_rows, already_ingested=False, lines=lines)


def _repeat_summary(options: IngestOptions, repo: Repository, known: Dict[str, Any]) -> Dict[str, Any]:
    """A bundle ingested before: its artifacts as the repository serves them, all already there."""
    record = repo.ingest_record(known["channel"], known["version"], options.sha256) or {}
    when = f" on {record['ingested_at']} by {record['operator']}" if record else ""
    head = (
        f"Bundle {options.sha256} (channel {known['channel']} version {known['version']}) is already "
        f"ingested{when}; the repository serves {repo.current_target()}: nothing was changed"
    )
    meta = os.path.join(repo.root, repo.bundle_meta_rel(known["channel"], known["version"], options.sha256))
    try:
        manifest = parse_manifest(read_bounded(os.path.join(meta, MANIFEST), MAX_MANIFEST))
    except (OSError, FileError, BundleError):
        return {"added": [], "already_there": [], "replaced": [], "already_ingested": True, "lines": [head]}
    listed = {(a["name"], a["version"]) for a in manifest["artifacts"]}
    rows = [r for r in list_repository(repo.root)["artifacts"] if (r["name"], r["version"]) in listed]
    lines = [head, f"already there {len(rows)}", *format_rows(rows, ["already there"] * len(rows))]
    return {"added": [], "already_there": rows, "replaced": [], "already_ingested": True, "lines": lines}


def _already_ingested(state: Dict[str, Any], sha256: str) -> Optional[Dict[str, Any]]:
    for channel, info in state.get("channels", {}).items():
        if info.get("sha256") == sha256:
            return dict(info, channel=channel)
    return None


def _record(
    options: IngestOptions, outcome: str, detail: str, key_ids: Sequence[str], action: str = "ingest"
) -> Dict[str, Any]:
    return _audit.append(
        options.audit_log,
        action=action,
        outcome=outcome,
        operator=options.operator,
        bundle_sha256=options.sha256,
        key_ids=key_ids,
        detail=detail,
    )


def _recovery_plan(repo: Repository) -> Tuple[Optional[Dict[str, Any]], List[str]]:
    """What an interrupted run left: its journal (or None) and the staging leftovers."""
    return repo.read_journal(), repo.leftovers()


def _recover(options: IngestOptions, repo: Repository) -> List[str]:
    """Finish or undo an interrupted ingest and remove staging leftovers; audit what was done."""
    journal, leftovers = _recovery_plan(repo)
    done: List[str] = []
    if journal is not None:
        what = f"the interrupted ingest of bundle {journal['bundle_sha256']}"
        if repo.current_target() == journal["state"]:
            done.append(f"{what} had made {journal['state']} current: finished it (journal removed)")
        else:
            removed = repo.undo(journal)
            served = repo.current_target() or "no state"
            done.append(
                f"{what} never made {journal['state']} current: undid it (removed "
                f"{', '.join(removed) or 'nothing left'}); the repository serves {served}"
            )
        repo.remove_journal()
    for rel in leftovers:
        repo.remove(rel)
    if leftovers:
        shown = ", ".join(leftovers[:10]) + (
            f" and {len(leftovers) - 10} more" if len(leftovers) > 10 else ""
        )
        done.append(f"removed staging left by an interrupted run: {shown}")
    if done:
        _audit.append(
            options.audit_log,
            action="recover",
            outcome="cleaned",
            operator=options.operator,
            detail="; ".join(done),
        )
    return done


def _verify(
    options: IngestOptions,
    repo: Repository,
    high_water: Dict[str, int],
    stage: Optional[str],
    trust: Trust,
) -> Tuple[Verified, bool]:
    sha_file = options.src + ".sha256"
    if os.path.isfile(sha_file):
        rows = _read_listing(sha_file)
        if not rows or rows[0][0] != options.sha256:
            raise Refused(
                "outer digest",
                f"{os.path.basename(sha_file)} on the media lists another sha256 than the one given out of "
                f"band ({options.sha256}): this media does not carry the bundle you were told about, or the "
                f"digest was mistyped. {_NO_PASTE}",
            )
    parts, expected_parts = _parts(options)
    source = PartsSource(parts)
    try:
        result = scan(source, stage, keep_in_memory)
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
    raw, key_ids = _check_signatures(result, trust)
    manifest = _parse_manifest(raw, key_ids)
    override = _check_version(options, manifest, high_water, key_ids)
    _check_expiry(options, manifest, key_ids)
    check_files(manifest, result, key_ids, repo, options.verify_reused)
    check_extraction(manifest, result, key_ids)
    return Verified(manifest, raw, key_ids, result), override


def _meta(
    options: IngestOptions, verified: Verified, override: bool, use: TrustUse, now: str
) -> Dict[str, bytes]:
    meta: Dict[str, bytes] = {MANIFEST: verified.raw}
    for name, data in verified.scan.memory.items():
        match = SIG_RE.match(name)
        if match and match.group(1) in verified.key_ids:
            meta[name] = data
    meta[INGEST_RECORD] = _json.dumps(
        {
            "bundle_sha256": options.sha256,
            "ingested_at": now,
            "operator": options.operator,
            "key_ids": verified.key_ids,
            "override_reason": options.override_reason if override else None,
            "trust": use.note(),
        }
    )
    return meta


def _trust_result(use: TrustUse) -> Dict[str, Any]:
    return {
        "key_ids": use.trust.key_ids,
        "threshold": use.trust.threshold,
        "recorded": use.establish,
        "override": use.override is not None,
    }


class _Transaction:
    """The writes of one accepted ingest, in order, with the journal that lets them be undone."""

    def __init__(self, repo: Repository, journal: Dict[str, Any]) -> None:
        self.repo = repo
        self.journal = journal

    def undo(self) -> str:
        """Remove what was written; returns a sentence for the message (what is served now)."""
        served = self.repo.current_target() or "no state (the repository is empty)"
        try:
            self.repo.undo(self.journal)
            self.repo.remove_journal()
        except (OSError, RepoError) as exc:
            return (
                f"undoing its writes failed too ({exc}); the repository still serves {served}, and the next "
                "ingest finishes the clean-up from journal.json"
            )
        return f"everything it wrote was removed; the repository still serves {served}"


def _commit(
    options: IngestOptions,
    repo: Repository,
    *,
    state: Dict[str, Any],
    index: Dict[str, Any],
    high_water: Dict[str, int],
    verified: Verified,
    override: bool,
    use: TrustUse,
) -> Dict[str, Any]:
    manifest = verified.manifest
    now = _audit.utc_now()
    previous = repo.current_target()
    seqs = repo.state_seqs()
    seq = (seqs[-1] if seqs else 0) + 1
    meta_rel = repo.bundle_meta_rel(manifest["channel"], manifest["version"], options.sha256)
    new_state, new_index = _new_state(
        state,
        index,
        manifest,
        seq=seq,
        previous=previous,
        high_water=high_water,
        outer=options.sha256,
        meta_rel=meta_rel,
        now=now,
    )
    stored = reused = stored_bytes = 0
    new_blobs: List[str] = []
    for entry in manifest["files"]:
        if (
            not entry["omitted"]
            and not os.path.lexists(repo.blob_path(entry["sha256"]))
            and entry["sha256"] not in new_blobs
        ):
            new_blobs.append(entry["sha256"])
    state_rel = f"states/{seq:06d}"
    transaction = _Transaction(
        repo,
        {
            "bundle_sha256": options.sha256,
            "started": now,
            "state": state_rel,
            "previous": previous,
            "bundle": meta_rel,
            "bundle_new": not os.path.isdir(os.path.join(repo.root, meta_rel)),
            "blobs": new_blobs,
            "trust_new": use.establish,
        },
    )
    repo.write_journal(transaction.journal)
    try:
        for entry in manifest["files"]:
            staged = verified.scan.files.get(entry["path"])
            if (
                entry["omitted"]
                or staged is None
                or not staged.tmp_path
                or not os.path.exists(staged.tmp_path)
            ):
                reused += 1
            elif repo.store_blob(staged.tmp_path, entry["sha256"]):
                stored += 1
                stored_bytes += entry["size"]
            else:
                reused += 1
        repo.sync_blobs()
        if use.establish:
            save_policy(
                repo.trust_path, use.trust, recorded_at=now, recorded_by=options.operator, reason=None
            )
        repo.write_bundle_meta(meta_rel, _meta(options, verified, override, use, now))
        repo.write_state(new_state, new_index)
    except (OSError, AirgapError) as exc:
        raise IngestError(f"filing the bundle failed ({exc}); {transaction.undo()}") from None
    served = f"{state_rel} (was {previous or 'empty'})"
    detail = f"channel {manifest['channel']} version {manifest['version']} accepted; current -> {served}"
    if previous is not None and seqs and previous != f"states/{seqs[-1]:06d}":
        detail += (
            f"; current pointed at {previous}, older than the newest state states/{seqs[-1]:06d} (a "
            "rollback): "
            f"numbering continues at {state_rel}, high-water marks kept"
        )
    if override:
        detail += f"; version check overridden: {options.override_reason}"
    if use.note():
        detail += f"; {use.note()}"
    outcome = "accepted-override" if override or use.override else "accepted"
    try:
        entry = _record(options, outcome, detail, verified.key_ids)
    except (OSError, AirgapError) as exc:
        raise IngestError(
            f"the accepted event could not be written to the audit log ({exc}), so the bundle was not made "
            f"current: {transaction.undo()}"
        ) from None
    try:
        repo.switch_current(state_rel)
    except OSError as exc:
        tail = transaction.undo()
        with contextlib.suppress(OSError, AirgapError):
            _record(
                options,
                "failed",
                f"{state_rel} could not be made current ({exc.strerror}); the accepted event "
                f"{entry['hash']} did not take effect: {tail}",
                verified.key_ids,
            )
        raise IngestError(f"{state_rel} could not be made current ({exc.strerror}): {tail}") from None
    except RepoError as exc:
        raise IngestError(str(exc)) from None
    # current has moved: a journal that cannot be removed now is finished by the next ingest.
    with contextlib.suppress(OSError):
        repo.remove_journal()
    msg = (
        f"bundle {options.sha256} accepted: channel {manifest['channel']} version {manifest['version']}; "
        f"the repository serves {state_rel}"
    )
    blobs = f"new blobs {stored} ({human_size(stored_bytes)}), reused {reused}"
    return {
        "state": seq,
        "current": state_rel,
        "stored_blobs": stored,
        "reused_blobs": reused,
        "stored_bytes": stored_bytes,
        "audit_hash": entry["hash"],
        "trust": _trust_result(use),
        "msg": msg,
        **_summary(options, repo, index, manifest, when=now, head=msg[0].upper() + msg[1:], blobs=blobs),
    }


def ingest(options: IngestOptions, check_mode: bool = False) -> Dict[str, Any]:
    """Verify and file away one bundle. Raises :class:`Refused` (audited) or :class:`IngestError`."""
    try:
        options.sha256 = parse_sha256(options.sha256, "sha256", "the bundle's digest received out of band")
    except DigestError as exc:
        raise IngestError(str(exc)) from None
    if options.threshold is not None and options.threshold < 1:
        raise IngestError("threshold must be at least 1")
    if options.allow_rollback and not options.override_reason:
        raise IngestError("allow_rollback needs override_reason (it is written to the audit log)")
    repo = Repository(options.repository)
    result: Dict[str, Any] = {"changed": False, "bundle_sha256": options.sha256, "repository": repo.root}
    if not repo.exists() and (not options.trusted_keys or options.threshold is None):
        message = (
            f"repository {repo.root} does not exist yet and has no trust policy: record the pinned signer "
            "keys "
            "and the threshold with airgap.llm.repo_trust first, or give both trusted_keys and threshold "
            "explicitly on this first ingest (they are recorded as the policy, and audited)"
        )
        if not check_mode:
            _record(options, "failed", message, [])
        raise IngestError(message)
    if not check_mode:
        repo.init()
    lock = repo.lock(options.lock_timeout) if repo.exists() else contextlib.nullcontext()
    with lock:
        if check_mode:
            journal, leftovers = _recovery_plan(repo) if repo.exists() else (None, [])
            pending = [f"would finish or undo the ingest of {journal['bundle_sha256']}"] if journal else []
            result["recovered"] = pending + [f"would remove {rel}" for rel in leftovers]
        else:
            result["recovered"] = _recover(options, repo)
        state = repo.state()
        known = _already_ingested(state, options.sha256)
        if known is not None:
            result.update(channel=known["channel"], version=known["version"], state=state["seq"])
            result["current"] = repo.current_target()
            result["msg"] = f"bundle {options.sha256} is already ingested (channel {known['channel']})"
            result.update(_repeat_summary(options, repo, known))
            return result
        stage = None if check_mode else tempfile.mkdtemp(prefix="ingest-", dir=repo.tmp)
        use: Optional[TrustUse] = None
        try:
            try:
                use = _trust(options, repo)
                high_water = repo.high_water()
                index = repo.index()
                verified, override = _verify(options, repo, high_water, stage, use.trust)
            except Refused as exc:
                if not check_mode:
                    detail = str(exc)
                    if use is not None and use.note():
                        detail += f" ({use.note()})"
                    entry = _record(options, "refused", detail, exc.key_ids)
                    exc.audit_hash = entry["hash"]  # type: ignore[attr-defined]
                raise
            except RepoError as exc:
                if not check_mode:
                    _record(options, "failed", str(exc), [])
                raise IngestError(str(exc)) from None
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
                result["trust"] = _trust_result(use)
                result["msg"] = (
                    f"bundle {options.sha256} passed every check (check mode: nothing was written); channel "
                    f"{manifest['channel']} version {manifest['version']}"
                )
                result.update(_summary(options, repo, index, manifest, when=None, head=result["msg"]))
                return result
            result.update(
                _commit(
                    options,
                    repo,
                    state=state,
                    index=index,
                    high_water=high_water,
                    verified=verified,
                    override=override,
                    use=use,
                )
            )
            return result
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
