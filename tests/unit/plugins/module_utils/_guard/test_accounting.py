# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Accounting of denied attempts: counters since the last look, destinations from the guard's log."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._guard import accounting as _acc

# ulogd 2.0.8's LOGEMU output for the guard's rules (Debian 12, seen in a scenario node).
OUT = (
    "Nov 29 12:05:30 egress-node12 airgap-egress-out  IN= OUT=eth0 MAC= SRC=10.89.1.2 DST=10.89.1.3 LEN=60 "
    "TOS=00 PREC=0x00 TTL=64 ID=59149 DF PROTO=TCP SPT=56484 DPT=8080 SEQ=1901344552 ACK=0 WINDOW=64240 "
    "SYN URGP=0 UID=0 GID=0 MARK=0x0 "
)
IN = (
    "Nov 29 12:06:01 egress-node12 airgap-egress-in  IN=eth0 OUT= MAC=aa:bb SRC=10.89.1.9 DST=10.89.1.2 "
    "LEN=60 TOS=00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=5432 SEQ=1 ACK=0 WINDOW=64240 SYN URGP=0 "
    "MARK=0x0 "
)
OUT6 = (
    "Nov 29 12:07:00 egress-node13 airgap-egress-out  IN= OUT=eth0 MAC= SRC=fd00::2 DST=fd00::0:9 LEN=80 "
    "TC=0 HOPLIMIT=64 FLOWLBL=1 PROTO=UDP SPT=5353 DPT=53 LEN=40 UID=107 GID=111 MARK=0x0 "
)
ICMP = (
    "Nov 29 12:08:00 egress-node13 airgap-egress-out  IN= OUT=eth0 MAC= SRC=10.89.1.2 DST=10.89.1.3 LEN=84 "
    "TOS=00 PREC=0x00 TTL=64 ID=3 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1 UID=1000 GID=1000 MARK=0x0 "
)


def test_parse_line_reads_the_guard_lines():
    assert _acc.parse_line(OUT, "airgap-egress") == {
        "direction": "out",
        "time": "Nov 29 12:05:30",
        "protocol": "TCP",
        "source": "10.89.1.2",
        "destination": "10.89.1.3",
        "port": 8080,
        "uid": 0,
    }
    assert _acc.parse_line(IN, "airgap-egress")["direction"] == "in"
    six = _acc.parse_line(OUT6, "airgap-egress")
    assert (six["destination"], six["protocol"], six["port"], six["uid"]) == ("fd00::9", "UDP", 53, 107)
    icmp = _acc.parse_line(ICMP, "airgap-egress")
    assert (icmp["protocol"], icmp["port"], icmp["uid"]) == ("ICMP", None, 1000)


@pytest.mark.parametrize(
    "line",
    [
        OUT.replace("DST=10.89.1.3", "DST=10.89.1.999"),
        OUT.replace("DPT=8080", "DPT=80x"),
        OUT.replace("DPT=8080", "DPT=99999"),
        OUT.replace("PROTO=TCP", "PROTO=tcp;rm"),
        OUT.replace("SRC=10.89.1.2 ", ""),
    ],
    ids=["bad-address", "bad-port", "port-range", "bad-proto", "no-source"],
)
def test_a_guard_line_that_does_not_parse_is_marked(line):
    assert _acc.parse_line(line, "airgap-egress") == {}


def test_lines_of_other_prefixes_are_not_the_guards():
    assert _acc.parse_line(OUT.replace("airgap-egress-out", "other-out"), "airgap-egress") is None
    assert _acc.parse_line(OUT.replace("airgap-egress-out", "xairgap-egress-out"), "airgap-egress") is None
    assert _acc.parse_line("Nov 29 12:00:00 node sshd[1]: hello", "airgap-egress") is None


def _append(path, *lines):
    with open(path, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


def test_read_new_lines_continues_where_the_last_look_stopped(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, OUT, IN)
    first = _acc.read_new_lines(log, None, 1 << 20)
    assert first["lines"] == [OUT, IN] and not first["restarted"]
    _append(log, OUT6)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(ICMP[:40])  # a line ulogd is still writing
    second = _acc.read_new_lines(log, first["position"], 1 << 20)
    assert second["lines"] == [OUT6]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(ICMP[40:] + "\n")
    third = _acc.read_new_lines(log, second["position"], 1 << 20)
    assert third["lines"] == [ICMP]


def test_read_new_lines_follows_one_rotation(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, OUT)
    first = _acc.read_new_lines(log, None, 1 << 20)
    _append(log, IN)
    os.rename(log, log + ".1")
    _append(log, OUT6)
    second = _acc.read_new_lines(log, first["position"], 1 << 20)
    assert second["lines"] == [IN, OUT6] and not second["restarted"]


def test_a_log_that_cannot_be_followed_is_read_whole_and_said_so(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, OUT)
    first = _acc.read_new_lines(log, None, 1 << 20)
    os.rename(log, log + ".2")  # rotated twice: .1 is not the recorded file
    _append(log, IN)
    second = _acc.read_new_lines(log, first["position"], 1 << 20)
    assert second["lines"] == [IN] and second["restarted"]


def test_a_backlog_beyond_the_limit_is_read_from_its_end(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, *([OUT] * 100))
    result = _acc.read_new_lines(log, None, 10 * (len(OUT) + 1) + 5)
    assert result["lines"] == [OUT] * 10
    assert result["skipped_bytes"] == 90 * (len(OUT) + 1) - 5
    assert result["unparsed"] == 1  # the cut line at the start


def test_a_backlog_cut_at_a_line_boundary_loses_no_line(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, *([OUT] * 100))
    result = _acc.read_new_lines(log, None, 10 * (len(OUT) + 1))
    assert result["lines"] == [OUT] * 10 and result["unparsed"] == 0


def test_overlong_lines_are_not_read(tmp_path):
    log = str(tmp_path / "denied.log")
    _append(log, "x" * (_acc.LINE_LIMIT + 1), OUT)
    result = _acc.read_new_lines(log, None, 1 << 20)
    assert result["lines"] == [OUT] and result["unparsed"] == 1


def test_a_missing_log_is_reported(tmp_path):
    result = _acc.read_new_lines(str(tmp_path / "none.log"), None, 1 << 20)
    assert result["position"] is None and result["lines"] == []


class Table:
    """``nft -j list table`` of a guard whose counters the test sets."""

    def __init__(self):
        self.handle = 4
        self.counters = {"denied_out": 0, "denied_in": 0}
        self.present = True

    def __call__(self, argv):
        assert argv[:3] == ["nft", "-j", "list"], argv
        if not self.present:
            return 1, "", "Error: No such file or directory\n"
        items = [{"table": {"family": "inet", "name": "airgap_egress", "handle": self.handle}}]
        items += [
            {
                "counter": {
                    "family": "inet",
                    "name": n,
                    "table": "airgap_egress",
                    "handle": 2,
                    "packets": p,
                    "bytes": 60 * p,
                }
            }
            for n, p in self.counters.items()
        ]
        items.append(
            {
                "chain": {
                    "family": "inet",
                    "table": "airgap_egress",
                    "name": "output",
                    "handle": 1,
                    "type": "filter",
                    "hook": "output",
                    "prio": 0,
                    "policy": "drop",
                }
            }
        )
        return 0, json.dumps({"nftables": items}), ""


@pytest.fixture
def world(tmp_path):
    log = str(tmp_path / "log" / "denied.log")
    os.makedirs(os.path.dirname(log))
    state = str(tmp_path / "state" / "accounting.json")
    table = Table()

    def look(now, check_mode=False):
        return _acc.account(
            table,
            family="inet",
            table="airgap_egress",
            counters={"out": "denied_out", "in": "denied_in"},
            log=log,
            prefix="airgap-egress",
            state_path=state,
            now=now,
            check_mode=check_mode,
        )

    return {"log": log, "state": state, "table": table, "look": look}


def test_account_counts_since_the_last_look(world):
    world["table"].counters["denied_out"] = 3
    _append(world["log"], OUT, OUT, OUT6, IN)
    first = world["look"]("2026-11-29T12:00:00Z")
    assert first["present"] is True and first["since"] is None
    assert first["denied"]["out"] == {"counter": "denied_out", "total": 3, "since_last": 3}
    assert first["logged"]["lines"] == 4
    assert first["logged"]["by_direction"] == {"out": 3, "in": 1, "fwd": 0}
    assert first["destinations"][0] == {
        "direction": "out",
        "protocol": "TCP",
        "address": "10.89.1.3",
        "port": 8080,
        "count": 2,
        "uids": [0],
        "first": "Nov 29 12:05:30",
        "last": "Nov 29 12:05:30",
    }
    assert first["distinct_destinations"] == 2
    assert [s["address"] for s in first["sources"]] == ["10.89.1.9"]
    assert oct(os.stat(world["state"]).st_mode & 0o777) == "0o600"

    world["table"].counters["denied_out"] = 5
    _append(world["log"], ICMP)
    second = world["look"]("2026-11-29T13:00:00Z")
    assert second["since"] == "2026-11-29T12:00:00Z"
    assert second["denied"]["out"]["since_last"] == 2
    assert second["denied"]["in"]["since_last"] == 0
    assert second["logged"]["lines"] == 1 and second["destinations"][0]["protocol"] == "ICMP"
    assert second["counters_restarted"] is False

    quiet = world["look"]("2026-11-29T14:00:00Z")
    assert quiet["denied"]["out"]["since_last"] == 0 and quiet["logged"]["lines"] == 0
    assert quiet["destinations"] == []


def test_a_replaced_table_counts_its_whole_counter(world):
    world["table"].counters["denied_out"] = 7
    world["look"]("2026-11-29T12:00:00Z")
    world["table"].handle = 9  # a new ruleset, a reboot or a rollback
    world["table"].counters["denied_out"] = 2
    report = world["look"]("2026-11-29T13:00:00Z")
    assert report["counters_restarted"] is True
    assert report["denied"]["out"]["since_last"] == 2


def test_check_mode_records_nothing(world):
    world["table"].counters["denied_out"] = 1
    _append(world["log"], OUT)
    world["look"]("2026-11-29T12:00:00Z", check_mode=True)
    assert not os.path.exists(world["state"])
    again = world["look"]("2026-11-29T12:01:00Z")
    assert again["denied"]["out"]["since_last"] == 1 and again["logged"]["lines"] == 1


def test_a_missing_guard_is_reported_not_raised(world):
    world["table"].present = False
    report = world["look"]("2026-11-29T12:00:00Z")
    assert report["present"] is False and report["table"] is None
    assert report["denied"]["out"] == {"counter": "denied_out", "total": None, "since_last": None}


def test_a_damaged_state_is_started_afresh_and_said_so(world):
    os.makedirs(os.path.dirname(world["state"]))
    with open(world["state"], "w", encoding="utf-8") as handle:
        handle.write('{"version": 1, "version": 2}')
    _append(world["log"], OUT)
    report = world["look"]("2026-11-29T12:00:00Z")
    assert "started afresh" in report["state_problem"]
    assert report["logged"]["lines"] == 1


def test_bad_options_are_refused(world):
    with pytest.raises(_acc.AccountingError, match="prefix"):
        _acc.account(
            world["table"],
            family="inet",
            table="airgap_egress",
            counters={},
            log=world["log"],
            prefix="bad prefix",
            state_path=world["state"],
            now="x",
        )
    with pytest.raises(_acc.AccountingError, match="directions"):
        _acc.account(
            world["table"],
            family="inet",
            table="airgap_egress",
            counters={"up": "c"},
            log=world["log"],
            prefix="airgap-egress",
            state_path=world["state"],
            now="x",
        )
