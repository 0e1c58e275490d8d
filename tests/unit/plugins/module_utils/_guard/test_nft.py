# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One nftables table: checked, compared, applied atomically, rolled back unless confirmed."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._guard import nft as _nft

GUARD = (
    "table inet airgap_egress {\n\tchain output {\n"
    "\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\n"
)
WIDER = GUARD.replace("policy drop", "policy accept")
UNIT = "airgap-egress-guard-rollback.service"
TIMER = "airgap-egress-guard-rollback.timer"


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def paths(tmp_path):
    src = str(tmp_path / "candidate.nft")
    open(src, "w").close()
    return {"src": src, "rollback": str(tmp_path / "state" / "rollback.nft")}


def apply(fake, paths, **extra):
    os.makedirs(os.path.dirname(paths["rollback"]), exist_ok=True)
    options = {
        "family": "inet",
        "name": "airgap_egress",
        "src": paths["src"],
        "rollback_after": 120,
        "rollback_unit": UNIT,
        "rollback_file": paths["rollback"],
    }
    options.update(extra)
    return _nft.apply(fake, **options)


def test_first_apply_saves_absence_arms_then_applies(fake, paths):
    fake.define(paths["src"], GUARD)
    result = apply(fake, paths)
    assert result == {"changed": True, "rollback_armed": True, "before": "", "after": GUARD}
    assert fake.live[("inet", "airgap_egress")] == GUARD
    assert TIMER in fake.timers
    # Checked first, armed before the one transaction that applies it.
    order = [c[0] if c[0] != "nft" else " ".join(c[:3]) for c in fake.calls]
    assert order.index("nft -c -f") < order.index("unshare") < order.index("systemd-run")
    assert order.index("systemd-run") < order.index(f"nft -f {paths['src']}")
    run = fake.commands("systemd-run")[0]
    assert "--on-active=120s" in run and f"--unit={UNIT}" in run
    saved = read(paths["rollback"])
    assert "table inet airgap_egress\ndelete table inet airgap_egress\n" in saved
    assert "absent" in saved
    assert oct(os.stat(paths["rollback"]).st_mode & 0o777) == "0o600"


def test_the_rollback_file_holds_the_previous_table_with_its_counters(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    saved = read(paths["rollback"])
    assert saved.endswith(WIDER + "# with counters\n")
    assert saved.index("delete table inet airgap_egress") < saved.index(WIDER)


def test_an_equal_table_is_left_alone(fake, paths):
    fake.load("inet", "airgap_egress", GUARD)
    fake.define(paths["src"], GUARD)
    result = apply(fake, paths)
    assert result["changed"] is False and result["rollback_armed"] is False
    assert not fake.commands("systemd-run")
    assert ["nft", "-f", paths["src"]] not in fake.calls
    assert not os.path.exists(paths["rollback"])


def test_a_rejected_file_changes_nothing(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.bad.add(paths["src"])
    with pytest.raises(_nft.NftError, match=r"nft -c rejects .*Could not process rule.*Nothing was applied"):
        apply(fake, paths)
    assert fake.live[("inet", "airgap_egress")] == WIDER
    assert not fake.timers and not os.path.exists(paths["rollback"])


@pytest.mark.parametrize(
    ("tables", "needle"),
    [
        (["inet airgap_egress"], None),
        ([], "define the table inet airgap_egress"),
        (["inet airgap_egress", "ip nat"], "touch no other table"),
    ],
    ids=["own-table", "no-table", "second-table"],
)
def test_a_file_must_define_the_table_and_nothing_else(fake, paths, tables, needle):
    fake.define(paths["src"], GUARD, tables)
    if needle is None:
        assert apply(fake, paths)["changed"]
        return
    with pytest.raises(_nft.NftError, match=needle):
        apply(fake, paths)
    assert not fake.live and not fake.timers


def test_a_flush_ruleset_is_refused(fake, paths):
    """The sentinel table does not survive a 'flush ruleset': the listing lacks it."""

    def flushing(argv):
        rc, out, err = fake(argv)
        if argv[0] == "unshare":
            out = out.replace(f"table inet {_nft.SENTINEL}\n", "")
        return rc, out, err

    fake.define(paths["src"], GUARD)
    with pytest.raises(_nft.NftError, match="touch no other table"):
        apply(flushing, paths)


def test_a_failed_transaction_disarms_what_it_armed(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.define(paths["src"], GUARD)
    fake.failing_load.add(paths["src"])
    with pytest.raises(_nft.NftError, match="not committed: the live table is unchanged"):
        apply(fake, paths)
    assert fake.live[("inet", "airgap_egress")] == WIDER
    assert not fake.timers


def test_an_unconfirmed_change_keeps_the_last_confirmed_table_to_go_back_to(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    confirmed = read(paths["rollback"])
    # Not confirmed; another change comes while the rollback is still pending.
    other = paths["src"] + ".2"
    open(other, "w").close()
    fake.define(other, GUARD.replace("output", "input"))
    result = apply(fake, paths, src=other)
    assert result["changed"] and result["rollback_armed"]
    assert read(paths["rollback"]) == confirmed
    assert len(fake.commands("systemd-run")) == 2  # stopped and armed afresh
    assert ["systemctl", "stop", TIMER] in fake.calls


def test_a_pending_rollback_is_reported_even_when_nothing_changes(fake, paths):
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    again = apply(fake, paths)
    assert again["changed"] is False and again["rollback_armed"] is True


def test_check_mode_predicts_and_touches_nothing(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.define(paths["src"], GUARD)
    result = apply(fake, paths, check_mode=True)
    assert result == {"changed": True, "rollback_armed": True, "before": WIDER, "after": GUARD}
    assert fake.live[("inet", "airgap_egress")] == WIDER
    assert not fake.timers and not os.path.exists(paths["rollback"])


def test_without_a_rollback_nothing_is_armed(fake, paths):
    fake.define(paths["src"], GUARD)
    result = apply(fake, paths, rollback_after=0, rollback_unit=None, rollback_file=None)
    assert result["changed"] and not result["rollback_armed"]
    assert not fake.commands("systemd-run")


def test_rollback_needs_its_unit_and_file(fake, paths):
    fake.define(paths["src"], GUARD)
    with pytest.raises(_nft.NftError, match="rollback_unit and rollback_file"):
        apply(fake, paths, rollback_file=None)
    with pytest.raises(_nft.NftError, match="not a service unit name"):
        apply(fake, paths, rollback_unit="rollback.timer")


def test_confirm_disarms_and_forgets_the_saved_table(fake, paths):
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    result = _nft.confirm(
        fake,
        family="inet",
        name="airgap_egress",
        src=paths["src"],
        rollback_unit=UNIT,
        rollback_file=paths["rollback"],
    )
    assert result == {"changed": True, "rollback_armed": False}
    assert not fake.timers
    assert not os.path.exists(paths["rollback"])
    again = _nft.confirm(fake, family="inet", name="airgap_egress", src=paths["src"], rollback_unit=UNIT)
    assert again["changed"] is False


def test_a_late_confirmation_fails_when_the_rollback_already_ran(fake, paths):
    fake.load("inet", "airgap_egress", WIDER)
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    # The timer fired: the rollback service loaded the saved table and the transient timer is gone.
    fake.timers.clear()
    fake.load("inet", "airgap_egress", WIDER)
    with pytest.raises(_nft.NftError, match="rollback had already put the previous table back"):
        _nft.confirm(fake, family="inet", name="airgap_egress", src=paths["src"], rollback_unit=UNIT)


def test_remove_deletes_the_table_and_disarms(fake, paths):
    fake.define(paths["src"], GUARD)
    apply(fake, paths)
    result = _nft.remove(fake, family="inet", name="airgap_egress", rollback_unit=UNIT, check_mode=False)
    assert result["changed"] and not fake.live and not fake.timers
    again = _nft.remove(fake, family="inet", name="airgap_egress", rollback_unit=UNIT, check_mode=False)
    assert again["changed"] is False


@pytest.mark.parametrize(
    ("family", "name"),
    [("inet", "1table"), ("inet", "a-b"), ("inet", _nft.SENTINEL), ("bridge", "x"), ("inet", "x" * 65)],
)
def test_bad_table_names_are_refused(family, name):
    with pytest.raises(_nft.NftError):
        _nft.check_table_name(family, name)


# nft 1.0.6 on Debian 12, listing a guard (trimmed to one rule).
REAL_JSON = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "airgap_egress", "handle": 4}},
        {
            "counter": {
                "family": "inet",
                "name": "denied_out",
                "table": "airgap_egress",
                "handle": 3,
                "packets": 1,
                "bytes": 60,
            }
        },
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
        },
        {"chain": {"family": "inet", "table": "airgap_egress", "name": "allowed", "handle": 9}},
        {
            "rule": {
                "family": "inet",
                "table": "airgap_egress",
                "chain": "output",
                "handle": 5,
                "expr": [
                    {
                        "match": {
                            "op": "in",
                            "left": {"ct": {"key": "state"}},
                            "right": ["established", "related"],
                        }
                    },
                    {"accept": None},
                ],
            }
        },
    ]
}


def test_parse_table_reads_chains_policies_and_counters():
    table = _nft.parse_table(json.dumps(REAL_JSON), "inet", "airgap_egress")
    assert table["handle"] == 4 and table["rules"] == 1
    assert table["counters"] == {"denied_out": {"packets": 1, "bytes": 60}}
    assert table["chains"][0] == {
        "name": "output",
        "type": "filter",
        "hook": "output",
        "priority": 0,
        "policy": "drop",
    }
    assert _nft.chains_by_hook(table) == {"output": [table["chains"][0]]}


@pytest.mark.parametrize(
    "doc",
    [
        '{"nftables": {}}',
        "[1]",
        '{"nftables": [{"counter": {"name": "x", "packets": "1", "bytes": 0}}]}',
        '{"nftables": [{"a": {}, "b": {}}]}',
        "not json",
    ],
)
def test_parse_table_refuses_what_nft_does_not_print(doc):
    with pytest.raises(_nft.NftError):
        _nft.parse_table(doc, "inet", "airgap_egress")


def test_read_table_of_a_missing_table_is_none(fake):
    assert _nft.read_table(fake, "inet", "airgap_egress") is None
    fake.load("inet", "airgap_egress", GUARD, {"denied_out": 2})
    assert _nft.read_table(fake, "inet", "airgap_egress")["counters"]["denied_out"]["packets"] == 2


def test_other_listing_failures_are_errors():
    def broken(argv):
        return 1, "", "Error: Operation not permitted\n"

    with pytest.raises(_nft.NftError, match="Operation not permitted"):
        _nft.read_table(broken, "inet", "airgap_egress")
    with pytest.raises(_nft.NftError, match="Operation not permitted"):
        _nft.live_listing(broken, "inet", "airgap_egress")
