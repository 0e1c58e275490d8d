# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hash-chained JSON-lines audit log.

Every line is one JSON object (sorted keys, no spaces) holding ``seq`` (1, 2, ...), ``prev``
(the ``hash`` of the line before, 64 zeros for the first), ``time`` (UTC, ISO 8601), ``operator``,
``action``, ``outcome``, ``bundle_sha256``, ``key_ids``, ``detail`` and ``hash``: the SHA-256 of
the canonical JSON of the entry without ``hash``. Changing, removing or reordering any line breaks
the chain at that line; :func:`verify` names the first broken entry.

Appends take an exclusive ``flock`` on ``<log>.lock``, check the last entry, write the new line
with a single ``write`` on an ``O_APPEND`` descriptor and ``fsync`` it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import flock, fsync_dir

__all__ = ["GENESIS", "AuditError", "append", "entry_hash", "make_entry", "utc_now", "verify"]

GENESIS = "0" * 64
MAX_LINE = 1 << 20
_FIELDS = (
    "action",
    "bundle_sha256",
    "detail",
    "hash",
    "key_ids",
    "operator",
    "outcome",
    "prev",
    "seq",
    "time",
)


class AuditError(AirgapError):
    """The log cannot be read, appended to, or its chain is broken."""


def _canonical(entry: Dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def entry_hash(entry: Dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``entry`` without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_entry(entry: Any, lineno: int, prev: str) -> Optional[str]:
    """Return why ``entry`` (line ``lineno``) breaks the chain after ``prev``, or None."""
    if not isinstance(entry, dict):
        return f"line {lineno} is not a JSON object"
    if sorted(entry) != sorted(_FIELDS):
        fields = ", ".join(sorted(entry))
        return f"line {lineno} has fields {fields}, expected {', '.join(_FIELDS)}"
    if entry["seq"] != lineno:
        return f"line {lineno} has seq {entry['seq']!r}, expected {lineno}"
    if entry["prev"] != prev:
        return "line {}: prev is {} but the entry before hashes to {}".format(lineno, entry["prev"], prev)
    actual = entry_hash(entry)
    if entry["hash"] != actual:
        return "line {}: recorded hash {}, content hashes to {} (entry altered)".format(
            lineno,
            entry["hash"],
            actual,
        )
    return None


def _parse(line: bytes, lineno: int) -> Any:
    if not line.endswith(b"\n"):
        raise AuditError(
            f"line {lineno} is incomplete (no newline): the log was truncated or a write was cut"
        )
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuditError(f"line {lineno} is not valid JSON: {exc}") from None


def verify(path: str) -> Dict[str, Any]:
    """Walk the whole log. Returns ``entries``, ``last_hash``, ``broken_at`` (line, or None), ``problem``."""
    result: Dict[str, Any] = {"entries": 0, "last_hash": GENESIS, "broken_at": None, "problem": None}
    if not os.path.exists(path):
        return result
    prev = GENESIS
    try:
        with open(path, "rb") as handle:
            for lineno, line in enumerate(handle, start=1):
                try:
                    entry = _parse(line, lineno)
                except AuditError as exc:
                    result.update(broken_at=lineno, problem=str(exc))
                    return result
                problem = _check_entry(entry, lineno, prev)
                if problem:
                    result.update(broken_at=lineno, problem=problem)
                    return result
                prev = entry["hash"]
                result["entries"] = lineno
                result["last_hash"] = prev
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc}") from None
    return result


def _tail(fd: int) -> List[bytes]:
    """The last line of the file open at ``fd`` (or [] when empty), read backwards in blocks."""
    end = os.fstat(fd).st_size
    if end == 0:
        return []
    pos = end
    data = b""
    while pos > 0 and data.count(b"\n") < 2 and len(data) <= MAX_LINE + 1:
        step = min(65536, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
    if not data.endswith(b"\n"):
        raise AuditError("the last line of the audit log is incomplete; run verify and repair it first")
    lines = data[:-1].split(b"\n")
    return [lines[-1] + b"\n"]


def _last_state(fd: int) -> Dict[str, Any]:
    """seq and hash of the last entry, checked for self-consistency (cheap: no full walk)."""
    tail = _tail(fd)
    if not tail:
        return {"seq": 0, "hash": GENESIS}
    try:
        entry = json.loads(tail[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AuditError("the last line of the audit log is not valid JSON; run verify") from None
    if (
        not isinstance(entry, dict)
        or entry.get("hash") != entry_hash(entry)
        or not isinstance(entry.get("seq"), int)
    ):
        raise AuditError("the last entry of the audit log does not match its hash; run verify")
    return {"seq": entry["seq"], "hash": entry["hash"]}


def make_entry(
    seq: int,
    prev: str,
    *,
    action: str,
    outcome: str,
    operator: str,
    bundle_sha256: Optional[str] = None,
    key_ids: Optional[Sequence[str]] = None,
    detail: Optional[str] = None,
    time: Optional[str] = None,
) -> Dict[str, Any]:
    if bundle_sha256 is not None and not is_sha256_hex(bundle_sha256):
        raise AuditError(f"bundle_sha256 must be 64 lower-case hex digits, got {bundle_sha256!r}")
    entry: Dict[str, Any] = {
        "seq": seq,
        "prev": prev,
        "time": time or utc_now(),
        "operator": operator,
        "action": action,
        "outcome": outcome,
        "bundle_sha256": bundle_sha256,
        "key_ids": sorted(key_ids or []),
        "detail": detail,
    }
    entry["hash"] = entry_hash(entry)
    return entry


def append(path: str, *, mode: int = 0o640, **event: Any) -> Dict[str, Any]:
    """Append one event under a lock, fsync it, and return the entry written.

    ``event`` holds the fields of :func:`make_entry` (``action``, ``outcome``, ``operator`` and
    optionally ``bundle_sha256``, ``key_ids``, ``detail``); ``seq``, ``prev`` and ``time`` are set here.
    """
    directory = os.path.dirname(os.path.abspath(path))
    with contextlib.ExitStack() as stack:
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            stack.enter_context(flock(path + ".lock"))
        except OSError as exc:
            raise AuditError(f"cannot open audit log lock {path}.lock: {exc}") from None
        created = not os.path.exists(path)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            last = _last_state(fd)
            entry = make_entry(last["seq"] + 1, last["hash"], **event)
            line = _canonical(entry) + b"\n"
            if os.write(fd, line) != len(line):
                raise AuditError(f"short write to audit log {path} (disk full?)")
            os.fsync(fd)
        except OSError as exc:
            raise AuditError(f"cannot append to audit log {path}: {exc}") from None
        finally:
            os.close(fd)
        if created:
            fsync_dir(directory)
        return entry
