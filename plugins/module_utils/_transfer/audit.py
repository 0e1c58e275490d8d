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

Every field is bounded when the entry is made (``detail`` at :data:`MAX_DETAIL` characters, the
others far less), so no line is longer than :data:`MAX_LINE` bytes whatever a refusal quotes. The
readers (:func:`verify`, and the check of the last entry before an append) accept lines up to
:data:`MAX_READ_LINE` bytes, far more than any writer of this collection has produced, and both
judge an entry by the same rules (:func:`_entry_problem`): what ``verify`` calls sound, an append
accepts, and the other way round.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe
from ansible_collections.airgap.llm.plugins.module_utils._io import flock, fsync_dir

__all__ = [
    "GENESIS",
    "MAX_DETAIL",
    "MAX_LINE",
    "MAX_READ_LINE",
    "AuditError",
    "append",
    "bound",
    "entry_hash",
    "make_entry",
    "utc_now",
    "verify",
]

GENESIS = "0" * 64
MAX_DETAIL = 4096
"""Characters of ``detail`` kept in an entry; a longer detail is cut and says how much was cut."""
MAX_FIELD = 256
"""Characters kept of ``operator``, ``action`` and ``outcome``."""
MAX_KEY_IDS = 64
MAX_LINE = 64 << 10
"""No entry the writer makes is longer (``ensure_ascii`` escapes take at most 6 bytes a character)."""
MAX_READ_LINE = 64 << 20
"""The longest line the readers accept: far above :data:`MAX_LINE` and above any line an earlier
version of the writer produced, so an old log stays readable."""
_BLOCK = 64 << 10
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
    return _json.canonical(entry)


def bound(text: Optional[str], limit: int = MAX_DETAIL) -> Optional[str]:
    """``text`` cut to ``limit`` characters, saying how many were cut (None stays None)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters cut)"


def entry_hash(entry: Dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``entry`` without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry_problem(entry: Any, where: str) -> Optional[str]:
    """Why ``entry`` is not a sound entry on its own (fields, types, its hash), or None.

    The one rule for both readers: :func:`verify` adds the chain (``seq`` and ``prev``), which the
    check of the last line before an append cannot see.
    """
    if not isinstance(entry, dict):
        return f"{where} is not a JSON object"
    if sorted(entry) != sorted(_FIELDS):
        fields = ", ".join(describe(k, 40) for k in sorted(entry)[: len(_FIELDS) + 2])
        return f"{where} has fields {fields}, expected {', '.join(_FIELDS)}"
    seq = entry["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        return f"{where} has seq {describe(seq)}, expected a positive integer"
    for key in ("prev", "hash"):
        if not is_sha256_hex(entry[key]):
            return f"{where} has {key} {describe(entry[key])}, expected 64 lower-case hex digits"
    if entry["bundle_sha256"] is not None and not is_sha256_hex(entry["bundle_sha256"]):
        return f"{where} has bundle_sha256 {describe(entry['bundle_sha256'])}, expected null or a digest"
    for key in ("time", "operator", "action", "outcome"):
        if not isinstance(entry[key], str):
            return f"{where} has {key} {describe(entry[key])}, expected a string"
    if entry["detail"] is not None and not isinstance(entry["detail"], str):
        return f"{where} has detail {describe(entry['detail'])}, expected null or a string"
    if not isinstance(entry["key_ids"], list) or not all(isinstance(k, str) for k in entry["key_ids"]):
        return f"{where} has key_ids {describe(entry['key_ids'])}, expected a list of strings"
    actual = entry_hash(entry)
    if entry["hash"] != actual:
        return "{}: recorded hash {}, content hashes to {} (entry altered)".format(
            where, entry["hash"], actual
        )
    return None


def _check_entry(entry: Any, lineno: int, prev: str) -> Optional[str]:
    """Return why ``entry`` (line ``lineno``) breaks the chain after ``prev``, or None."""
    problem = _entry_problem(entry, f"line {lineno}")
    if problem:
        return problem
    if entry["seq"] != lineno:
        return f"line {lineno} has seq {entry['seq']!r}, expected {lineno}"
    if entry["prev"] != prev:
        return "line {}: prev is {} but the entry before hashes to {}".format(lineno, entry["prev"], prev)
    return None


def _parse(line: bytes, lineno: int) -> Any:
    if len(line) > MAX_READ_LINE:
        raise AuditError(
            f"line {lineno} is longer than {MAX_READ_LINE} bytes: no writer of this collection makes such "
            "a line"
        )
    if not line.endswith(b"\n"):
        raise AuditError(
            f"line {lineno} is incomplete (no newline): the log was truncated or a write was cut"
        )
    try:
        return _json.loads(line, f"line {lineno}", limit=MAX_READ_LINE + 1, max_depth=4)
    except _json.JSONError as exc:
        raise AuditError(str(exc)) from None


def verify(path: str) -> Dict[str, Any]:
    """Walk the whole log. Returns ``entries``, ``last_hash``, ``broken_at`` (line, or None), ``problem``."""
    result: Dict[str, Any] = {"entries": 0, "last_hash": GENESIS, "broken_at": None, "problem": None}
    if not os.path.exists(path):
        return result
    prev = GENESIS
    try:
        with open(path, "rb") as handle:
            lineno = 0
            while True:
                line = handle.readline(MAX_READ_LINE + 1)
                if not line:
                    break
                lineno += 1
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


def _tail(fd: int) -> Optional[bytes]:
    """The last line of the file open at ``fd`` (None when empty), read backwards in blocks.

    Reads at most :data:`MAX_READ_LINE` bytes plus a block, whatever the file holds.
    """
    end = os.fstat(fd).st_size
    if end == 0:
        return None
    last = os.pread(fd, 1, end - 1)
    if last != b"\n":
        raise AuditError("the last line of the audit log is incomplete; run verify and repair it first")
    blocks: List[bytes] = []
    pos = end - 1  # the final newline is not part of the search
    size = 0
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        block = os.pread(fd, step, pos)
        newline = block.rfind(b"\n")
        if newline >= 0:
            blocks.append(block[newline + 1 :])
            break
        blocks.append(block)
        size += step
        if size > MAX_READ_LINE:
            raise AuditError(
                f"the last line of the audit log is longer than {MAX_READ_LINE} bytes; run verify"
            )
    return b"".join(reversed(blocks)) + b"\n"


def _last_state(fd: int) -> Dict[str, Any]:
    """seq and hash of the last entry, checked as :func:`verify` checks an entry (no full walk)."""
    tail = _tail(fd)
    if tail is None:
        return {"seq": 0, "hash": GENESIS}
    try:
        entry = _parse(tail, 0)
    except AuditError as exc:
        raise AuditError(f"the last line of the audit log cannot be read ({exc}); run verify") from None
    problem = _entry_problem(entry, "the last line")
    if problem:
        raise AuditError(
            f"the last entry of the audit log does not match its hash or format ({problem}); run verify"
        )
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
        raise AuditError(f"bundle_sha256 must be 64 lower-case hex digits, got {describe(bundle_sha256)}")
    entry: Dict[str, Any] = {
        "seq": seq,
        "prev": prev,
        "time": time or utc_now(),
        "operator": bound(operator, MAX_FIELD),
        "action": bound(action, MAX_FIELD),
        "outcome": bound(outcome, MAX_FIELD),
        "bundle_sha256": bundle_sha256,
        "key_ids": sorted(bound(str(k), MAX_FIELD) for k in (key_ids or [])[:MAX_KEY_IDS]),
        "detail": bound(detail),
    }
    entry["hash"] = entry_hash(entry)
    if len(_canonical(entry)) >= MAX_LINE:
        raise AuditError(f"an audit entry would be longer than {MAX_LINE} bytes")  # bounded above
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
