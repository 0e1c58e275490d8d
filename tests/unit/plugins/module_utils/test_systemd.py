# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit rendering, hardening profiles and exposure scoring."""

from __future__ import annotations

import shutil

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _systemd as sd

ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"  # make test installs systemd
SERVICE = {
    "Unit": {"Description": "Test service"},
    "Service": {"ExecStart": "/usr/bin/sleep infinity", "User": "ollama", "StateDirectory": "ollama"},
    "Install": {"WantedBy": "multi-user.target"},
}


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_render_values_lists_and_null():
    text = sd.render_unit(
        {
            "Service": {
                "Restart": "on-failure",
                "Persistent": True,
                "Other": False,
                "TimeoutSec": 30,
                "ExecStartPre": ["/bin/true", "/bin/false"],
                "Dropped": None,
                "Environment": ["A=1", "B=two words", 'C=say "hi"'],
            }
        },
        {},
        header="Managed\nby test",
    )
    assert text.startswith("# Managed\n# by test\n")
    assert lines(text) == [
        "[Service]",
        "Restart=on-failure",
        "Persistent=yes",
        "Other=no",
        "TimeoutSec=30",
        "ExecStartPre=/bin/true",
        "ExecStartPre=/bin/false",
        "Environment=A=1",
        'Environment="B=two words"',
        'Environment="C=say \\"hi\\""',
    ]


def test_caller_keys_win_over_profile_and_null_drops_a_directive():
    text = sd.render_unit(
        {"Service": {"ProtectHome": "read-only", "ProcSubset": None, "ExecStart": "/bin/x"}},
        sd.hardening_directives("strict", []),
    )
    body = lines(text)
    assert "ProtectHome=read-only" in body
    assert "ProtectHome=yes" not in body
    assert not [line for line in body if line.startswith("ProcSubset=")]
    assert "ProtectSystem=strict" in body
    assert "IPAddressDeny=any" in body


@pytest.mark.parametrize(
    ("sections", "fragment"),
    [
        ({"Service": {"ExecStart": "/bin/x\nUser=root"}}, "line break"),
        ({"Service": {"Environment": "NOEQUALS"}}, "NAME=value"),
        ({"Service": {"bad-key": "x"}}, "key 'bad-key' is not valid"),
        ({"service section": {"A": "x"}}, "Section name"),
        ({"Service": {"A": {"nested": 1}}}, "has type dict"),
        ({"Service": {"A": [None]}}, "list items"),
        ({"Service": "ExecStart=/bin/x"}, "must be a mapping"),
    ],
)
def test_bad_unit_data_is_refused_with_a_clear_message(sections, fragment):
    with pytest.raises(sd.SystemdUnitError, match=fragment):
        sd.render_unit(sections, {})


def test_relaxations():
    strict = sd.hardening_directives("strict", [])
    gpu = sd.hardening_directives("strict", ["nvidia_gpu"])
    assert strict["PrivateDevices"] is True and "DeviceAllow" not in strict
    assert gpu["PrivateDevices"] is False
    assert gpu["DevicePolicy"] == "closed"
    assert gpu["DeviceAllow"] == sd.NVIDIA_DEVICES
    # Both driver generations: 535 registers nvidia-frontend, 545 and newer nvidia and nvidiactl.
    assert set(gpu["DeviceAllow"]) == {
        "char-nvidia-frontend rw",
        "char-nvidia rw",
        "char-nvidiactl rw",
        "char-nvidia-uvm rw",
        "char-nvidia-caps rw",
    }
    assert gpu["ProcSubset"] is None
    assert sd.hardening_directives("strict", ["network"])["IPAddressDeny"] is None
    assert sd.hardening_directives("none", []) == {}
    with pytest.raises(sd.SystemdUnitError, match="unknown: expected one of"):
        sd.hardening_directives("strict", ["everything"])
    with pytest.raises(sd.SystemdUnitError, match="mean nothing without it"):
        sd.hardening_directives("none", ["network"])


@pytest.mark.parametrize("name", ["../x.service", "x", "x.conf", "a b.service", "", "/etc/x.service"])
def test_bad_unit_names(name):
    with pytest.raises(sd.SystemdUnitError, match="not valid"):
        sd.unit_kind(name)


def test_unit_kinds():
    assert sd.unit_kind("ollama.service") == "service"
    assert sd.unit_kind("cert-renewer@.timer") == "timer"
    assert sd.unit_kind("cert-renewer@web.service") == "service"


@pytest.mark.parametrize(
    "relaxations",
    [[], ["nvidia_gpu"], ["network"], ["nvidia_gpu", "write_execute"], ["bind_privileged_ports"]],
)
def test_strict_profile_scores_at_most_2(relaxations):
    text = sd.render_unit(SERVICE, sd.hardening_directives("strict", relaxations))
    assert sd.score_exposure(ANALYZE, "ollama.service", text, None, None) <= 2.0


def test_unhardened_service_scores_exposed():
    text = sd.render_unit(SERVICE, {})
    assert sd.score_exposure(ANALYZE, "ollama.service", text, None, None) >= 7.5


def test_dropin_is_scored_with_the_unit_it_extends():
    base = sd.render_unit(SERVICE, {})
    dropin = sd.render_unit({"Service": {}}, sd.hardening_directives("strict", []))
    assert sd.score_exposure(ANALYZE, "ollama.service", dropin, "10-h.conf", base) <= 2.0


def test_mistyped_directive_is_refused():
    text = sd.render_unit({"Service": {"ExecStart": "/bin/true", "ProtectSystm": "strict"}}, {})
    with pytest.raises(sd.SystemdUnitError, match="ProtectSystm"):
        sd.score_exposure(ANALYZE, "x.service", text, None, None)
