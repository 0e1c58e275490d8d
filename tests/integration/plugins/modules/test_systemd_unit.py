# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.systemd_unit end to end: check, real, check, real; drop-ins; refusals."""

from __future__ import annotations

import os

from ansible_collections.airgap.llm.tests.module_runner import ansible

SERVICE = {
    "Unit": {"Description": "Test service"},
    "Service": {"ExecStart": "/usr/bin/sleep infinity", "DynamicUser": True, "StateDirectory": "t"},
    "Install": {"WantedBy": "multi-user.target"},
}


def snapshot(root):
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = handle.read()
    return out


def test_service_check_real_check_real(tmp_path):
    args = {"name": "t.service", "path": str(tmp_path), "sections": SERVICE, "relaxations": ["nvidia_gpu"]}
    ok, first = ansible("systemd_unit", args, "--check", "--diff")
    assert ok and first["changed"] and first["daemon_reload"]
    assert first["exposure"] <= 2.0
    assert not os.path.exists(tmp_path / "t.service")
    assert "DeviceAllow=char-nvidia-uvm rw" in first["content"]

    ok, second = ansible("systemd_unit", args, "--diff")
    assert ok and second["changed"] and second["daemon_reload"]
    assert second["exposure"] == first["exposure"]
    assert second["content"] == first["content"]
    unit = tmp_path / "t.service"
    assert unit.read_text() == second["content"]
    st = unit.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o644, 0, 0)

    for flags in (("--check",), ()):
        ok, again = ansible("systemd_unit", args, *flags)
        assert ok and not again["changed"] and not again["daemon_reload"]
        assert again["exposure"] == first["exposure"]

    args["state"] = "absent"
    ok, gone = ansible("systemd_unit", args, "--check")
    assert ok and gone["changed"] and unit.exists()
    ok, gone = ansible("systemd_unit", args)
    assert ok and gone["changed"] and gone["daemon_reload"] and not unit.exists()
    ok, gone = ansible("systemd_unit", args)
    assert ok and not gone["changed"]


def test_mode_drift_is_repaired_without_reload(tmp_path):
    args = {"name": "t.service", "path": str(tmp_path), "sections": SERVICE}
    assert ansible("systemd_unit", args)[0]
    os.chmod(tmp_path / "t.service", 0o640)
    ok, fixed = ansible("systemd_unit", args)
    assert ok and fixed["changed"] and not fixed["daemon_reload"]
    assert (tmp_path / "t.service").stat().st_mode & 0o7777 == 0o644


def test_dropin_hardens_an_installed_unit(tmp_path):
    base = "[Unit]\nDescription=packaged\n\n[Service]\nExecStart=/usr/bin/sleep infinity\n"
    (tmp_path / "pkg.service").write_text(base)
    args = {
        "name": "pkg.service",
        "dropin": "50-hardening.conf",
        "path": str(tmp_path),
        "sections": {"Service": {"DynamicUser": True}},
    }
    ok, result = ansible("systemd_unit", args)
    assert ok and result["changed"], result
    assert result["path"] == str(tmp_path / "pkg.service.d" / "50-hardening.conf")
    assert result["exposure"] <= 2.0
    assert "ProtectSystem=strict" in (tmp_path / "pkg.service.d" / "50-hardening.conf").read_text()
    assert (tmp_path / "pkg.service").read_text() == base
    assert not ansible("systemd_unit", args)[1]["changed"]


def test_exposure_above_the_limit_fails_and_writes_nothing(tmp_path):
    args = {"name": "t.service", "path": str(tmp_path), "sections": SERVICE, "hardening": "none"}
    ok, result = ansible("systemd_unit", args)
    assert not ok
    assert "scores" in result["msg"] and "above max_exposure 2.0" in result["msg"]
    assert snapshot(tmp_path) == {}
    # A deliberate, visible decision is honoured.
    args["max_exposure"] = 9.9
    ok, result = ansible("systemd_unit", args)
    assert ok and result["exposure"] > 2.0


def test_refusals_leave_the_installed_unit_unchanged(tmp_path):
    good = {"name": "t.service", "path": str(tmp_path), "sections": SERVICE}
    assert ansible("systemd_unit", good)[0]
    before = snapshot(tmp_path)
    bad_cases = [
        (
            {**good, "sections": {"Service": {"ExecStart": "/bin/true", "ProtectSystm": "strict"}}},
            "ProtectSystm",
        ),
        ({**good, "sections": {"Service": {"ExecStart": "/bin/true\nUser=root"}}}, "line break"),
        (
            {**good, "sections": {"Service": {"ExecStart": "/nonexistent/bin/x", "DynamicUser": True}}},
            "verify",
        ),
        ({**good, "name": "t.timer", "hardening": "strict"}, "services only"),
        ({**good, "name": "../t.service"}, "not valid"),
        ({**good, "dropin": "../escape.conf"}, "not valid"),
        ({**good, "name": "absent.service", "dropin": "10-x.conf"}, "not installed"),
    ]
    for args, fragment in bad_cases:
        ok, result = ansible("systemd_unit", args)
        assert not ok, args
        assert fragment in result["msg"], (fragment, result["msg"])
        assert snapshot(tmp_path) == before


def test_timer_takes_no_profile(tmp_path):
    args = {
        "name": "t.timer",
        "path": str(tmp_path),
        "sections": {
            "Timer": {"OnCalendar": "daily", "Persistent": True},
            "Install": {"WantedBy": "timers.target"},
        },
    }
    ok, result = ansible("systemd_unit", args, "--diff")
    assert ok and result["changed"] and result["exposure"] is None
    assert "ProtectSystem" not in (tmp_path / "t.timer").read_text()
