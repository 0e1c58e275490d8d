# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for nft, unshare, systemctl and systemd-run, keeping the state a kernel and systemd would.

The real commands run in the egress Molecule scenario; these tests cover the decisions in between:
what is checked, compared, saved, armed, applied and disarmed, and in which order.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence, Set, Tuple

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._guard import nft as _nft

ABSENT = "Error: No such file or directory; did you mean table 'x' in family inet?\n"


class FakeNft:
    """The rules a ruleset file defines are looked up by path in ``files``:
    ``path -> (tables the file leaves beside the sentinel, stateless listing)``."""

    def __init__(self) -> None:
        self.files: Dict[str, Tuple[List[str], str]] = {}
        self.bad: Set[str] = set()
        self.failing_load: Set[str] = set()
        self.live: Dict[Tuple[str, str], str] = {}
        self.handles: Dict[Tuple[str, str], int] = {}
        self.counters: Dict[Tuple[str, str], Dict[str, int]] = {}
        self.timers: Set[str] = set()
        self.calls: List[List[str]] = []
        self.next_handle = 10

    def define(self, path: str, listing: str, tables: Optional[List[str]] = None) -> None:
        self.files[path] = (tables if tables is not None else ["inet airgap_egress"], listing)

    def load(self, family: str, name: str, listing: str, counters: Optional[Dict[str, int]] = None) -> None:
        self.live[(family, name)] = listing
        self.handles[(family, name)] = self.next_handle
        self.next_handle += 1
        self.counters[(family, name)] = dict(counters or {})

    def __call__(self, argv: Sequence[str]) -> Tuple[int, str, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "nft":
            return self._nft(argv[1:])
        if argv[0] == "unshare":
            src, family, name = argv[-3:]
            if src in self.bad:
                return 1, "", f"{src}:3:1-5: Error: syntax error\n"
            tables, listing = self.files[src]
            printed = "".join(f"table {t}\n" for t in ["inet " + _nft.SENTINEL, *tables])
            own = listing if f"{family} {name}" in tables else ""
            return 0, printed + "@@airgap-llm-listing@@\n" + own, ""
        if argv[0] == "systemctl":
            return self._systemctl(argv[1:])
        if argv[0] == "systemd-run":
            unit = next(a for a in argv if a.startswith("--unit="))[len("--unit=") :]
            timer = unit[: -len(".service")] + ".timer"
            if timer in self.timers:
                return 1, "", f"Failed to start transient timer unit: Unit {timer} was already loaded\n"
            self.timers.add(timer)
            return 0, "", f"Running timer as unit: {timer}\n"
        raise AssertionError(f"unexpected command {argv}")

    def _nft(self, args: List[str]) -> Tuple[int, str, str]:
        if args[:2] == ["-c", "-f"]:
            return (
                (1, "", f"{args[2]}:7:3-9: Error: Could not process rule\n")
                if args[2] in self.bad
                else (0, "", "")
            )
        if args[0] == "-f":
            src = args[1]
            if src in self.failing_load:
                return 1, "", "Error: Could not process rule: Operation not supported\n"
            tables, listing = self.files[src]
            family, name = tables[0].split()
            self.load(family, name, listing)
            return 0, "", ""
        if args[:2] == ["delete", "table"]:
            key = (args[2], args[3])
            if key not in self.live:
                return 1, "", ABSENT
            del self.live[key]
            return 0, "", ""
        stateless = args[0] == "-s"
        as_json = args[0] == "-j"
        rest = args[1:] if stateless or as_json else args
        assert rest[:2] == ["list", "table"], args
        key = (rest[2], rest[3])
        if key not in self.live:
            return 1, "", ABSENT
        if as_json:
            return 0, json.dumps(self._json(key)), ""
        if stateless:
            return 0, self.live[key], ""
        return 0, self.live[key] + "# with counters\n", ""

    def _json(self, key: Tuple[str, str]) -> dict:
        family, name = key
        items: List[dict] = [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": family, "name": name, "handle": self.handles[key]}},
        ]
        for counter, packets in self.counters[key].items():
            items.append(
                {
                    "counter": {
                        "family": family,
                        "name": counter,
                        "table": name,
                        "handle": 3,
                        "packets": packets,
                        "bytes": packets * 60,
                    }
                }
            )
        for hook in ("output", "input"):
            items.append(
                {
                    "chain": {
                        "family": family,
                        "table": name,
                        "name": hook,
                        "handle": 1,
                        "type": "filter",
                        "hook": hook,
                        "prio": 0,
                        "policy": "drop",
                    }
                }
            )
        items.append({"rule": {"family": family, "table": name, "chain": "output", "handle": 5, "expr": []}})
        return {"nftables": items}

    def _systemctl(self, args: List[str]) -> Tuple[int, str, str]:
        if args[0] == "is-active":
            return (0, "", "") if args[-1] in self.timers else (3, "", "")
        if args[0] == "stop":
            if args[1] not in self.timers:
                return 5, "", f"Failed to stop {args[1]}: Unit {args[1]} not loaded.\n"
            self.timers.discard(args[1])
            return 0, "", ""
        if args[0] == "show":
            return 0, "inactive\n", ""
        raise AssertionError(f"unexpected systemctl {args}")

    def commands(self, program: str) -> List[List[str]]:
        return [c for c in self.calls if c[0] == program]


@pytest.fixture
def fake():
    return FakeNft()
