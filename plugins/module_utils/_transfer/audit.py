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

Rotation keeps the chain: a rotated file (an *archive*) sits beside the log under the log's name
plus a suffix of digits and dashes, as logrotate names them (``audit.jsonl.1``,
``audit.jsonl-20261129-1764417600``). When the log is missing or empty, the next append continues
from the archive whose last entry has the highest ``seq``: its ``seq`` goes on and its ``prev`` is
that entry's ``hash``, so the first event of a new file chains to the last of the previous one.
:func:`verify` walks every archive, in the order of their first entries, then the log: one chain
from ``seq`` 1 to the end, whatever the files are called. A missing, altered or reordered archive
breaks it where it should continue. Archives are read as they are: rotate without compression.

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
import re
import stat
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
    "archives",
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
_ARCHIVE_SUFFIX_RE = re.compile(r"\A[.-][0-9][0-9-]*\Z")
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


def _check_entry(entry: Any, where: str, seq: int, prev: str) -> Optional[str]:
    """Return why ``entry`` (at ``where``) breaks the chain as entry ``seq`` after ``prev``, or None."""
    problem = _entry_problem(entry, where)
    if problem:
        return problem
    if entry["seq"] != seq:
        return f"{where} has seq {entry['seq']!r}, expected {seq}"
    if entry["prev"] != prev:
        return "{}: prev is {} but the entry before hashes to {}".format(where, entry["prev"], prev)
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


def archives(path: str) -> List[str]:
    """The rotated files of the log at ``path``: regular files beside it named ``<name>.<digits>`` or
    ``<name>-<digits and dashes>``, in no particular order."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(f"cannot list the directory of audit log {path}: {exc}") from None
    found = []
    for other in names:
        if not other.startswith(name) or not _ARCHIVE_SUFFIX_RE.match(other[len(name) :]):
            continue
        full = os.path.join(directory, other)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                found.append(full)
        except FileNotFoundError:
            continue
    return found


def _first_seq(path: str) -> int:
    """``seq`` of the first entry of ``path``, or 0 when it cannot be read (walked first, found broken)."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline(MAX_READ_LINE + 1)
        entry = _parse(line, 1)
    except (OSError, AuditError):
        return 0
    seq = entry.get("seq") if isinstance(entry, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _chain_files(path: str) -> List[str]:
    """Archives in the order of their first entries, then the log itself (when it exists)."""
    ordered = sorted(archives(path), key=lambda p: (_first_seq(p), p))
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return ordered
    # A log that is also an archive (a hard link left by a rotation) is walked once.
    if not any(os.path.samestat(os.stat(p), current) for p in ordered):
        ordered.append(path)
    return ordered


def verify(path: str) -> Dict[str, Any]:
    """Walk the whole chain: every archive (see :func:`archives`), then the log.

    Returns ``entries``, ``last_seq``, ``last_hash``, ``files`` (each walked file: ``path``,
    ``entries``, ``first_seq``, ``last_seq``), and where the chain breaks: ``broken_at`` (the line
    in its file, or None), ``broken_file`` and ``problem``.
    """
    result: Dict[str, Any] = {
        "entries": 0,
        "last_seq": 0,
        "last_hash": GENESIS,
        "broken_at": None,
        "broken_file": None,
        "problem": None,
        "files": [],
    }
    files = _chain_files(path)
    prev = GENESIS
    seq = 0
    for name in files:
        walked: Dict[str, Any] = {"path": name, "entries": 0, "first_seq": None, "last_seq": None}
        result["files"].append(walked)
        label = "" if files == [path] else f" of {os.path.basename(name)}"
        try:
            with open(name, "rb") as handle:
                lineno = 0
                while True:
                    line = handle.readline(MAX_READ_LINE + 1)
                    if not line:
                        break
                    lineno += 1
                    try:
                        entry = _parse(line, lineno)
                    except AuditError as exc:
                        where = f" (in {os.path.basename(name)})" if label else ""
                        result.update(broken_at=lineno, broken_file=name, problem=f"{exc}{where}")
                        return result
                    problem = _check_entry(entry, f"line {lineno}{label}", seq + 1, prev)
                    if (
                        problem
                        and lineno == 1
                        and label
                        and isinstance(entry, dict)
                        and entry.get("seq") != seq + 1
                    ):
                        problem += (
                            f" (the file before it in the chain ends at seq {seq}: a rotated file is "
                            "missing, or one was added)"
                        )
                    if problem:
                        result.update(broken_at=lineno, broken_file=name, problem=problem)
                        return result
                    prev = entry["hash"]
                    seq = entry["seq"]
                    walked["entries"] = lineno
                    walked["first_seq"] = walked["first_seq"] or seq
                    walked["last_seq"] = seq
                    result["entries"] += 1
                    result["last_seq"] = seq
                    result["last_hash"] = prev
        except OSError as exc:
            raise AuditError(f"cannot read audit log {name}: {exc}") from None
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


def _archives_last_state(path: str) -> Dict[str, Any]:
    """seq and hash of the last entry of the newest archive (highest seq), or the genesis state."""
    last: Dict[str, Any] = {"seq": 0, "hash": GENESIS}
    for name in archives(path):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise AuditError(f"cannot read the rotated audit log {name}: {exc}") from None
        try:
            state = _last_state(fd)
        except AuditError as exc:
            raise AuditError(f"rotated audit log {name}: {exc}") from None
        finally:
            os.close(fd)
        if state["seq"] > last["seq"]:
            last = state
    return last


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
            if last["seq"] == 0:
                # A new or emptied log (rotated away): continue the chain of the newest archive.
                last = _archives_last_state(path)
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
