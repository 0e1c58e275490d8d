# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One nftables table, owned whole: checked, compared, applied atomically, rolled back unless confirmed.

A ruleset file given to :func:`apply` defines one table and nothing else, in the form that
replaces it in one transaction (``table F N`` / ``delete table F N`` / ``table F N { ... }``). It is

* checked with ``nft -c -f`` against the running kernel;
* loaded into an empty network namespace next to a sentinel table (``unshare --net``): a file that
  touches any other table (``flush ruleset``, another table) is refused, and the namespace's
  stateless listing (``nft -s list table``) is the exact form the kernel gives the rules, which
  is compared with the live table's (equal: nothing to do, whatever the file's spelling);
* applied with one ``nft -f`` (one netlink transaction: all of it or nothing).

Before a change is applied, a rollback can be armed: the live table (or its absence) is saved to
a file and a transient systemd timer (``systemd-run --on-active``) starts a service that loads that
file. :func:`confirm` disarms it; a change that cuts the controller's SSH session cannot be
confirmed, so the timer puts the previous table back. A reboot before confirmation loses the
transient timer, and the node boots on the last confirmed file.

Commands run through a ``run(argv) -> (rc, stdout, stderr)`` callable (the module passes
``AnsibleModule.run_command``), so the logic can be tested without a kernel.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write

__all__ = [
    "FAMILIES",
    "NFT",
    "SENTINEL",
    "NftError",
    "Runner",
    "apply",
    "chains_by_hook",
    "check_ruleset",
    "check_table_name",
    "confirm",
    "live_listing",
    "parse_table",
    "read_table",
    "remove",
    "rollback_text",
    "scratch_listing",
    "timer_of",
]

Runner = Callable[[Sequence[str]], Tuple[int, str, str]]

NFT = "nft"
FAMILIES = ("inet", "ip", "ip6")
SENTINEL = "airgap_scratch_sentinel"
"""A table the scratch namespace holds before the file is loaded; a file that removes it is refused."""
MAX_LISTING = 16 << 20
"""The largest ``nft -j`` listing read (bytes); a guard's table is a few kilobytes."""
_MARK = "@@airgap-llm-listing@@"
_NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,63}\Z")
_UNIT_RE = re.compile(r"\A[A-Za-z0-9:_.\\-]+\.service\Z")
_ABSENT = ("No such file or directory", "does not exist")
_SETTLE_SECONDS = 30


class NftError(AirgapError):
    """The ruleset cannot be checked, compared, applied, confirmed or rolled back."""


def check_table_name(family: str, name: str) -> None:
    if family not in FAMILIES:
        raise NftError(
            f"table family {quote(family)} is not supported: expected one of {', '.join(FAMILIES)}"
        )
    if not isinstance(name, str) or not _NAME_RE.match(name) or name == SENTINEL:
        raise NftError(
            f"table name {quote(name)} is not valid: expected a letter, then up to 63 letters, digits or "
            f"underscores (and not {SENTINEL}, which the check uses)"
        )


def timer_of(unit: str) -> str:
    """The transient timer that starts the rollback service ``unit`` (``x.service`` -> ``x.timer``)."""
    if not isinstance(unit, str) or not _UNIT_RE.match(unit):
        raise NftError(
            f"rollback unit {quote(unit)} is not a service unit name (like airgap-rollback.service)"
        )
    return unit[: -len(".service")] + ".timer"


def _said(err: str, out: str = "") -> str:
    text = (err or out).strip()
    return quote(text, 2000) if text else "no message"


def check_ruleset(run: Runner, src: str) -> None:
    """``nft -c -f src``: the kernel would accept the file (nothing is changed)."""
    rc, out, err = run([NFT, "-c", "-f", src])
    if rc != 0:
        raise NftError(
            f"nft -c rejects the ruleset {src}: {_said(err, out)}. Nothing was applied; the live rules are "
            "unchanged. Fix the settings the file was rendered from."
        )


def live_listing(run: Runner, family: str, name: str, *, stateless: bool = True) -> Optional[str]:
    """The live table as ``nft [-s] list table`` prints it, or None when there is no such table."""
    rc, out, err = run([NFT, *(["-s"] if stateless else []), "list", "table", family, name])
    if rc == 0:
        return out
    if any(marker in err for marker in _ABSENT):
        return None
    raise NftError(f"cannot list the table {family} {name}: {_said(err, out)}")


def scratch_listing(run: Runner, src: str, family: str, name: str) -> str:
    """The stateless listing of the table ``src`` defines, loaded into an empty network namespace.

    Refuses a file that defines no such table, or that removes or adds any other table (the
    sentinel table the namespace holds must survive it, and be the only other one).
    """
    script = (
        f'{NFT} add table inet {SENTINEL} && {NFT} -f "$1" && {NFT} list tables && echo {_MARK} '
        f'&& {{ {NFT} -s list table "$2" "$3" || true; }}'
    )
    rc, out, err = run(["unshare", "--net", "--", "sh", "-c", script, "sh", src, family, name])
    if rc != 0:
        raise NftError(
            f"the ruleset {src} cannot be loaded on its own (tried in an empty network namespace): "
            f"{_said(err, out)}. Nothing was applied."
        )
    tables_text, mark, listing = out.partition(_MARK + "\n")
    if not mark:
        raise NftError(f"checking {src} in an empty network namespace printed no table list: {_said(out)}")
    tables = sorted(
        " ".join(line.split()[1:3]) for line in tables_text.splitlines() if line.startswith("table ")
    )
    expected = sorted([f"inet {SENTINEL}", f"{family} {name}"])
    if tables != expected:
        raise NftError(
            f"the ruleset {src} must define the table {family} {name} and touch no other table (a "
            "'flush ruleset' or another table would change rules this module does not own); loaded "
            f"next to one other table it leaves {', '.join(quote(t) for t in tables) or 'no table'}"
        )
    return listing


def _expect_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NftError(f"nft -j gave {where} as {describe(value)}, expected an integer")
    return value


def parse_table(text: str, family: str, name: str) -> Dict[str, Any]:
    """Summary of an ``nft -j list table`` document: handle, base and regular chains, counters, rules."""
    what = f"nft -j list table {family} {name}"
    try:
        doc = _json.loads(text, what, limit=MAX_LISTING, max_depth=64)
    except _json.JSONError as exc:
        raise NftError(str(exc)) from None
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise NftError(f"{what} printed {describe(doc)}, expected an object with an 'nftables' list")
    table: Dict[str, Any] = {
        "family": family,
        "name": name,
        "handle": None,
        "chains": [],
        "counters": {},
        "rules": 0,
    }
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise NftError(f"{what} lists {describe(item)}, expected an object with one key")
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict):
            raise NftError(f"{what} lists a {quote(kind)} as {describe(body)}, expected an object")
        if kind == "table":
            table["handle"] = _expect_int(body.get("handle"), "the table handle")
        elif kind == "chain":
            table["chains"].append(
                {
                    "name": str(body.get("name", "")),
                    "type": body.get("type"),
                    "hook": body.get("hook"),
                    "priority": body.get("prio"),
                    "policy": body.get("policy"),
                }
            )
        elif kind == "counter":
            table["counters"][str(body.get("name", ""))] = {
                "packets": _expect_int(body.get("packets"), "a counter's packets"),
                "bytes": _expect_int(body.get("bytes"), "a counter's bytes"),
            }
        elif kind == "rule":
            table["rules"] += 1
    return table


def read_table(run: Runner, family: str, name: str) -> Optional[Dict[str, Any]]:
    """The live table summarised by :func:`parse_table`, or None when it does not exist."""
    rc, out, err = run([NFT, "-j", "list", "table", family, name])
    if rc != 0:
        if any(marker in err for marker in _ABSENT):
            return None
        raise NftError(f"cannot list the table {family} {name}: {_said(err, out)}")
    return parse_table(out, family, name)


def rollback_text(family: str, name: str, listing: Optional[str]) -> str:
    """A file that puts the table back as ``listing`` shows it, or removes it when it was absent."""
    state = "as it was" if listing is not None else "absent (there was none)"
    return (
        f"# Written by airgap.llm before a change of the table {family} {name}: loading this file\n"
        f"# (one transaction) puts the table back {state}.\n"
        f"table {family} {name}\n"
        f"delete table {family} {name}\n" + (listing or "")
    )


def _timer_active(run: Runner, timer: str) -> bool:
    rc, _out, _err = run(["systemctl", "is-active", "--quiet", timer])
    return rc == 0


def _unit_state(run: Runner, unit: str) -> str:
    rc, out, _err = run(["systemctl", "show", "--value", "--property=ActiveState", unit])
    return out.strip() if rc == 0 else "unknown"


def _stop_timer(run: Runner, timer: str) -> None:
    rc, out, err = run(["systemctl", "stop", timer])
    if rc != 0:
        raise NftError(f"cannot stop the rollback timer {timer}: {_said(err, out)}")


def _arm(run: Runner, unit: str, seconds: int) -> None:
    rc, out, err = run(
        ["systemd-run", f"--on-active={seconds}s", "--timer-property=AccuracySec=1s", f"--unit={unit}"]
    )
    if rc != 0:
        raise NftError(
            f"cannot arm the rollback (systemd-run --on-active={seconds}s --unit={unit}): {_said(err, out)}. "
            "Nothing was applied. Is the rollback unit installed?"
        )


def apply(
    run: Runner,
    *,
    family: str,
    name: str,
    src: str,
    rollback_after: int = 0,
    rollback_unit: Optional[str] = None,
    rollback_file: Optional[str] = None,
    check_mode: bool = False,
    write: Callable[[str, bytes, int], None] = atomic_write,
) -> Dict[str, Any]:
    """Make the live table what ``src`` defines, arming a rollback first when ``rollback_after`` > 0.

    Returns ``changed``, ``rollback_armed`` (a rollback is pending: armed now, or by an earlier run
    that was not confirmed) and ``before``/``after`` (stateless listings, for the diff).
    """
    check_table_name(family, name)
    timer = timer_of(rollback_unit) if rollback_after > 0 and rollback_unit else None
    if rollback_after > 0 and (timer is None or not rollback_file):
        raise NftError("rollback_after needs rollback_unit and rollback_file")
    check_ruleset(run, src)
    desired = scratch_listing(run, src, family, name)
    current = live_listing(run, family, name)
    pending = timer is not None and _timer_active(run, timer)
    result: Dict[str, Any] = {
        "changed": current != desired,
        "rollback_armed": pending,
        "before": current or "",
        "after": desired,
    }
    if current == desired:
        return result
    if check_mode:
        result["rollback_armed"] = pending or timer is not None
        return result
    armed_now = False
    if timer is not None and rollback_file:
        if pending:
            # An earlier change was never confirmed: the file holds the last confirmed table. Keep
            # it, and give this change the whole timeout.
            _stop_timer(run, timer)
        else:
            previous = live_listing(run, family, name, stateless=False)
            write(rollback_file, rollback_text(family, name, previous).encode("utf-8"), 0o600)
        _arm(run, rollback_unit or "", rollback_after)
        armed_now = not pending
        result["rollback_armed"] = True
    rc, out, err = run([NFT, "-f", src])
    if rc != 0:
        if armed_now and timer is not None:
            _stop_timer(run, timer)
        raise NftError(
            f"nft -f {src} failed: {_said(err, out)}. The transaction was not committed: the live table is "
            "unchanged."
        )
    return result


def _settle(run: Runner, unit: str) -> str:
    """Wait while the rollback service runs (it may have started just before its timer was stopped)."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    state = _unit_state(run, unit)
    while state in ("activating", "deactivating", "reloading") and time.monotonic() < deadline:
        time.sleep(0.2)
        state = _unit_state(run, unit)
    return state


def confirm(
    run: Runner,
    *,
    family: str,
    name: str,
    src: Optional[str],
    rollback_unit: str,
    rollback_file: Optional[str] = None,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Disarm a pending rollback, then prove that the live table is still the one ``src`` defines.

    Fails when the rollback has already run (the confirmation came too late) or the live table
    was changed meanwhile.
    """
    check_table_name(family, name)
    timer = timer_of(rollback_unit)
    armed = _timer_active(run, timer)
    if check_mode:
        return {"changed": armed, "rollback_armed": armed}
    if armed:
        _stop_timer(run, timer)
    _settle(run, rollback_unit)
    if src:
        desired = scratch_listing(run, src, family, name)
        current = live_listing(run, family, name)
        if current != desired:
            raise NftError(
                f"the live table {family} {name} is not the one {src} defines: "
                + (
                    "the rollback had already put the previous table back (the change was not confirmed "
                    "in time)"
                    if not armed
                    else "it was changed while the confirmation was pending"
                )
                + ". Run the role again."
            )
    if rollback_file and os.path.lexists(rollback_file):
        # Confirmed: the saved table is history now, and nothing should load it by mistake.
        os.unlink(rollback_file)
    return {"changed": armed, "rollback_armed": False}


def remove(
    run: Runner, *, family: str, name: str, rollback_unit: Optional[str], check_mode: bool
) -> Dict[str, Any]:
    """Delete the table (and disarm a pending rollback)."""
    check_table_name(family, name)
    current = live_listing(run, family, name)
    timer = timer_of(rollback_unit) if rollback_unit else None
    armed = timer is not None and _timer_active(run, timer)
    result: Dict[str, Any] = {
        "changed": current is not None or armed,
        "rollback_armed": False,
        "before": current or "",
        "after": "",
    }
    if check_mode:
        return result
    if armed and timer is not None:
        _stop_timer(run, timer)
    if current is not None:
        rc, out, err = run([NFT, "delete", "table", family, name])
        if rc != 0:
            raise NftError(f"cannot delete the table {family} {name}: {_said(err, out)}")
    return result


def chains_by_hook(table: Optional[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """The base chains of a :func:`parse_table` summary, grouped by hook."""
    hooks: Dict[str, List[Dict[str, Any]]] = {}
    for chain in (table or {}).get("chains", []):
        if chain.get("hook"):
            hooks.setdefault(str(chain["hook"]), []).append(chain)
    return hooks
