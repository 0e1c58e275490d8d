# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nvidia_driver_state and nvidia_gpu_check end to end on this machine (no GPU, no NVIDIA packages).

The machine's APT sources offer no NVIDIA driver and no headers for an invented kernel: the module
refuses with the reasons, changes nothing, and reports the same state without refusing when asked.
"""

from __future__ import annotations

import os

from ansible_collections.airgap.llm.tests.module_runner import ansible

KERNEL = "9.9.9-airgap-test-amd64"
ARGS = {
    "packages": ["airgap-llm-no-such-driver"],
    "version_package": "airgap-llm-no-such-driver",
    "kernel": KERNEL,
}


def test_driver_state_refuses_what_the_sources_lack_and_changes_nothing():
    ok, result = ansible("nvidia_driver_state", ARGS)
    assert not ok and not result["changed"]
    assert result["msg"].startswith("The NVIDIA driver is not installed, and nothing was changed: ")
    assert f"offers no linux-headers-{KERNEL}" in result["msg"]
    assert "offers no airgap-llm-no-such-driver" in result["msg"]
    assert result["kernel"] == KERNEL and result["running_kernel"] == os.uname().release
    assert result["driver"] == {
        "package": "airgap-llm-no-such-driver",
        "candidate": None,
        "installed": None,
        "loaded": None,
        "minimum": 550,
    }
    assert len(result["refusals"]) == 2


def test_driver_state_reports_without_refusing_and_in_check_mode():
    for flags in ((), ("--check",)):
        ok, result = ansible("nvidia_driver_state", {**ARGS, "refuse": False}, *flags)
        assert ok and not result["changed"]
        assert len(result["refusals"]) == 2 and result["reboot_required"] is False


def test_driver_state_judges_nothing_while_the_lists_are_pending():
    ok, result = ansible("nvidia_driver_state", {**ARGS, "lists_pending": True}, "--check")
    # The same sources that were refused above: while the lists are pending nothing is judged.
    assert ok and result["refusals"] == [] and result["packages"] == {}


def test_bad_input_gets_a_clear_error():
    ok, result = ansible("nvidia_driver_state", {**ARGS, "kernel": "../../etc"})
    assert not ok and "is not a kernel release" in result["msg"]
    ok, result = ansible("nvidia_gpu_check", {"model": "llama3.2:3b", "ollama_url": "http://10.0.0.1:11434"})
    assert not ok and "is not an http(s) URL on loopback" in result["msg"]
