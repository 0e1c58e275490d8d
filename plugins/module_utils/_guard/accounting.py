# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Accounting of the attempts an egress guard denied: how many since the last look, and where to.

Two sources, read together:

* the guard's named counters (``nft -j list table``), which count every denied packet; the
  difference to the values recorded at the last look is the count since then. A table that was
  replaced since (its handle changed: a new ruleset, a reboot, a rollback) started its counters at
  zero again, so the whole value counts and the report says so.
* the log the guard's ``log group`` rule feeds through NFLOG to ulogd (LOGEMU lines such as
  ``Nov 29 12:05:30 node airgap-egress-out  IN= OUT=eth0 ... SRC=10.0.0.2 DST=10.0.0.3 ...
  PROTO=TCP SPT=40000 DPT=8080 ... UID=0 GID=0``). The log is rate-limited, so it holds the
  destinations (and the local user that tried) of at most so many attempts a second; the counter
  holds the number. The log is read from where the last look stopped (device, inode and offset),
  across one rotation (``<log>.1`` with the recorded inode), never more than ``max_bytes``.

The place the last look stopped is kept in a small JSON state file, replaced atomically; check
mode reads and reports but records nothing. Every value taken from the log is checked (addresses
parsed, ports and users numeric) before it is reported; lines that do not parse are counted.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._guard import nft as _nft
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write, open_regular

__all__ = [
    "DIRECTIONS",
    "LINE_LIMIT",
    "AccountingError",
    "account",
    "parse_line",
    "read_new_lines",
]

DIRECTIONS = ("out", "in", "fwd")
LINE_LIMIT = 4096
"""Longer log lines are not LOGEMU lines of the guard: counted as unparsed, not read."""
STATE_LIMIT = 64 << 10
STATE_VERSION = 1
_PREFIX_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,24}\Z")
_FIELD_RE = re.compile(r"(?<![A-Za-z0-9_])([A-Z]+)=(\S*)")
_TIME_RE = re.compile(r"\A[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
_PROTO_RE = re.compile(r"\A[A-Z0-9-]{1,16}\Z")


class AccountingError(AirgapError):
    """The accounting options are wrong, or the guard's log cannot be read."""


def _address(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _number(text: Optional[str], limit: int) -> Optional[int]:
    if text is None or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= limit else None


def parse_line(line: str, prefix: str) -> Optional[Dict[str, Any]]:
    """One LOGEMU line of the guard as a dict, ``{}`` for a line of the guard that does not parse,
    or None for a line that is not the guard's (another prefix)."""
    match = re.search(r"(?:^|\s)" + re.escape(prefix) + r"-(out|in|fwd)\s", line)
    if not match:
        return None
    fields = dict(_FIELD_RE.findall(line[match.end() :]))
    proto = fields.get("PROTO", "")
    event = {
        "direction": match.group(1),
        "time": line[:15] if _TIME_RE.match(line[:15]) else None,
        "protocol": proto if _PROTO_RE.match(proto) else None,
        "source": _address(fields.get("SRC")),
        "destination": _address(fields.get("DST")),
        "port": _number(fields.get("DPT"), 65535),
        "uid": _number(fields.get("UID"), 2**32 - 1),
    }
    if event["protocol"] is None or event["source"] is None or event["destination"] is None:
        return {}
    if "DPT" in fields and event["port"] is None:
        return {}
    return event


def _read_segment(path: str, offset: int, budget: int) -> Tuple[List[str], int, int, int]:
    """Complete lines of ``path`` from ``offset``: (lines, offset after the last one, skipped, unparsed).

    At most ``budget`` bytes are read; from a longer tail only its last ``budget`` bytes are (the
    bytes before are counted as skipped). Lines longer than :data:`LINE_LIMIT` are counted as
    unparsed.
    """
    fd, st = open_regular(path)
    try:
        size = st.st_size
        start = offset if offset <= size else 0
        skipped = 0
        cut = False
        if size - start > budget:
            skipped = size - budget - start
            start = size - budget
            cut = os.pread(fd, 1, start - 1) != b"\n"
        data = os.pread(fd, size - start, start) if size > start else b""
    finally:
        os.close(fd)
    end = data.rfind(b"\n") + 1
    complete = data[:end]
    lines: List[str] = []
    unparsed = 0
    chunks = complete.split(b"\n")[:-1] if complete else []
    if cut and chunks:
        # The first chunk starts inside a line whose beginning was skipped.
        chunks = chunks[1:]
        unparsed += 1
    for raw in chunks:
        if len(raw) > LINE_LIMIT:
            unparsed += 1
            continue
        lines.append(raw.decode("utf-8", "replace"))
    return lines, start + end, skipped, unparsed


def read_new_lines(path: str, last: Optional[Dict[str, Any]], max_bytes: int) -> Dict[str, Any]:
    """Lines the log gained since ``last`` (``{dev, ino, offset}``), and where this look stops.

    Returns ``lines``, ``position`` (the new ``{dev, ino, offset}``, or None when there is no
    log), ``skipped_bytes``, ``unparsed`` and ``restarted`` (the log is not the one recorded, nor
    its first rotation, so what was written in between cannot be read).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {
            "lines": [],
            "position": None,
            "skipped_bytes": 0,
            "unparsed": 0,
            "restarted": last is not None,
        }
    segments: List[Tuple[str, int]] = [(path, 0)]
    restarted = False
    if last:
        same = (last.get("dev"), last.get("ino")) == (st.st_dev, st.st_ino)
        offset = last.get("offset", 0)
        if same and offset <= st.st_size:
            segments = [(path, offset)]
        else:
            rotated = path + ".1"
            try:
                old = os.stat(rotated)
            except FileNotFoundError:
                old = None
            if old is not None and (last.get("dev"), last.get("ino")) == (old.st_dev, old.st_ino):
                segments = [(rotated, offset), (path, 0)]
            else:
                restarted = True
    lines: List[str] = []
    skipped = unparsed = 0
    end = 0
    budget = max_bytes
    for where, offset in segments:
        got, end, seg_skipped, seg_unparsed = _read_segment(where, offset, max(budget, 0))
        budget -= sum(len(line) + 1 for line in got)
        lines.extend(got)
        skipped += seg_skipped
        unparsed += seg_unparsed
    return {
        "lines": lines,
        "position": {"dev": st.st_dev, "ino": st.st_ino, "offset": end},
        "skipped_bytes": skipped,
        "unparsed": unparsed,
        "restarted": restarted,
    }


def _load_state(path: str) -> Tuple[Dict[str, Any], Optional[str]]:
    try:
        doc = _json.load_file(path, "the egress accounting state", limit=STATE_LIMIT, max_depth=4)
    except FileNotFoundError:
        return {}, None
    except (AirgapError, OSError) as exc:
        return {}, f"the state of the last look ({path}) was unreadable and is started afresh: {exc}"
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        return {}, f"the state of the last look ({path}) has an unknown format and is started afresh"
    return doc, None


def _tally(events: List[Dict[str, Any]], key: str, top: int) -> Tuple[List[Dict[str, Any]], int]:
    """Events grouped by (direction, protocol, address under ``key``, port), most frequent first."""
    groups: Dict[Tuple[str, str, str, Optional[int]], Dict[str, Any]] = {}
    for event in events:
        group_key = (event["direction"], event["protocol"], event[key], event["port"])
        group = groups.get(group_key)
        if group is None:
            group = groups[group_key] = {
                "direction": event["direction"],
                "protocol": event["protocol"],
                "address": event[key],
                "port": event["port"],
                "count": 0,
                "uids": [],
                "first": event["time"],
                "last": event["time"],
            }
        group["count"] += 1
        group["last"] = event["time"] or group["last"]
        if event["uid"] is not None and event["uid"] not in group["uids"] and len(group["uids"]) < 16:
            group["uids"].append(event["uid"])
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["address"], g["port"] or 0))
    return ranked[:top], len(groups)


def account(
    run: _nft.Runner,
    *,
    family: str,
    table: str,
    counters: Dict[str, str],
    log: str,
    prefix: str,
    state_path: str,
    now: str,
    top: int = 20,
    max_bytes: int = 64 << 20,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Denied attempts since the last look: counters, logged destinations and sources; records this look."""
    _nft.check_table_name(family, table)
    if not _PREFIX_RE.match(prefix or ""):
        raise AccountingError(
            f"log prefix {quote(prefix)} is not valid: up to 24 letters, digits, '_', '.', '-'"
        )
    unknown = sorted(set(counters) - set(DIRECTIONS))
    if unknown:
        raise AccountingError(f"counters names directions {unknown}; expected {', '.join(DIRECTIONS)}")
    if top < 1 or max_bytes < LINE_LIMIT:
        raise AccountingError(f"top must be at least 1 and max_bytes at least {LINE_LIMIT}")
    state, state_problem = _load_state(state_path)
    live = _nft.read_table(run, family, table)

    recorded: Dict[str, Any] = state["counters"] if isinstance(state.get("counters"), dict) else {}
    restarted_counters = live is not None and state.get("handle") != live["handle"]
    denied: Dict[str, Dict[str, Any]] = {}
    values: Dict[str, int] = {}
    for direction, name in sorted(counters.items()):
        total = None if live is None else live["counters"].get(name, {}).get("packets")
        before = recorded.get(name)
        if total is None:
            since = None
        elif restarted_counters or not isinstance(before, int) or before > total:
            since = total
        else:
            since = total - before
        denied[direction] = {"counter": name, "total": total, "since_last": since}
        if total is not None:
            values[name] = total

    read = read_new_lines(log, state.get("log") if isinstance(state.get("log"), dict) else None, max_bytes)
    events: List[Dict[str, Any]] = []
    unparsed = read["unparsed"]
    by_direction = dict.fromkeys(DIRECTIONS, 0)
    for line in read["lines"]:
        event = parse_line(line, prefix)
        if event is None:
            continue
        if not event:
            unparsed += 1
            continue
        by_direction[event["direction"]] += 1
        events.append(event)
    destinations, distinct_destinations = _tally(
        [e for e in events if e["direction"] != "in"], "destination", top
    )
    sources, distinct_sources = _tally([e for e in events if e["direction"] == "in"], "source", top)

    report: Dict[str, Any] = {
        "present": live is not None,
        "table": live,
        "since": state.get("time") if isinstance(state.get("time"), str) else None,
        "time": now,
        "denied": denied,
        "counters_restarted": bool(restarted_counters and state),
        "logged": {
            "lines": len(events),
            "by_direction": by_direction,
            "unparsed": unparsed,
            "skipped_bytes": read["skipped_bytes"],
            "log_restarted": read["restarted"],
            "log_present": read["position"] is not None,
        },
        "destinations": destinations,
        "distinct_destinations": distinct_destinations,
        "sources": sources,
        "distinct_sources": distinct_sources,
        "state_problem": state_problem,
        "changed": False,
    }
    new_state = {
        "version": STATE_VERSION,
        "time": now,
        "handle": None if live is None else live["handle"],
        "counters": values,
        "log": read["position"],
    }
    if not check_mode:
        directory = os.path.dirname(state_path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        atomic_write(state_path, _json.dumps(new_state), mode=0o600)
        report["changed"] = True
    return report
