# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_nvidia: parsing what the tools print and the decisions of gpu_driver and verify.yml.

The samples in nvidia/ are described in nvidia/README.md: a GPU node's output written from the
formats upstream documents (no GPU was available), and real output recorded on the test nodes.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from ansible_collections.airgap.llm.plugins.module_utils import _nvidia as nv
from ansible_collections.airgap.llm.plugins.module_utils import _systemd as sd
from ansible_collections.airgap.llm.plugins.module_utils._io import SourceReadError

SAMPLES = os.path.join(os.path.dirname(__file__), "nvidia")


def sample(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as handle:
        return handle.read()


NVIDIA_ALLOW = sd.hardening_directives("strict", ["nvidia_gpu"])["DeviceAllow"]
CHECK_ORDER = [
    "unit",
    "nvidia_smi",
    "driver_minimum",
    "persistence_mode",
    "device_groups",
    "device_nodes",
    "nouveau",
    "ollama_log",
    "vram",
    "sandbox",
]


# --- versions and Ollama's rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    "debian, upstream",
    [
        ("550.163.01-2", "550.163.01"),
        ("535.261.03-1", "535.261.03"),
        ("1:570.86.15-1", "570.86.15"),
        ("535.161.07-1~deb12u1", "535.161.07"),
        ("550.163.01", "550.163.01"),
    ],
)
def test_upstream_version(debian, upstream):
    assert nv.upstream_version(debian) == upstream


@pytest.mark.parametrize(
    "version, major", [("550.163.01", 550), ("535.261.03-1", 535), ("1:570.86.15-1", 570)]
)
def test_driver_major(version, major):
    assert nv.driver_major(version) == major


@pytest.mark.parametrize("bad", ["", "abc", "-1", "5.0"])
def test_driver_major_refuses_what_is_no_driver_version(bad):
    with pytest.raises(nv.NvidiaError):
        nv.driver_major(bad)


@pytest.mark.parametrize(
    "compute, minimum",
    [
        ("9.0", 550),
        ("8.9", 550),
        ("7.0", 550),
        ("7.5", 550),
        ("6.1", 570),
        ("6.0", 570),
        ("5.2", 570),
        ("[N/A]", 550),
        ("", 550),
    ],
)
def test_minimum_driver_follows_ollamas_cuda_compat(compute, minimum):
    assert nv.minimum_driver(compute) == minimum


# --- nvidia-smi ----------------------------------------------------------------------------------


def test_smi_query_asks_for_the_fields_the_parser_reads():
    assert nv.SMI_QUERY == [
        "--query-gpu=name,uuid,driver_version,compute_cap,memory.total,persistence_mode",
        "--format=csv,noheader,nounits",
    ]


def test_parse_smi_550_two_gpus():
    gpus = nv.parse_smi_csv(sample("smi-550-h100x2.csv"))
    assert [g.uuid for g in gpus] == [
        "GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b",
        "GPU-9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0",
    ]
    first = gpus[0].as_dict()
    assert first == {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b",
        "driver_version": "550.163.01",
        "compute_cap": "9.0",
        "memory_total_mib": 81559,
        "persistence_mode": "Enabled",
        "minimum_driver": 550,
    }


def test_parse_smi_535():
    (gpu,) = nv.parse_smi_csv(sample("smi-535-v100.csv"))
    assert (gpu.name, gpu.driver_version, gpu.compute_cap, gpu.persistence_mode) == (
        "Tesla V100-SXM2-32GB",
        "535.261.03",
        "7.0",
        "Disabled",
    )


def test_parse_smi_keeps_a_name_with_a_comma():
    line = (
        "NVIDIA RTX 6000 Ada Generation, rev 2, GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0, "
        "550.163.01, 8.9, 49140, Enabled\n"
    )
    (gpu,) = nv.parse_smi_csv(line)
    assert gpu.name == "NVIDIA RTX 6000 Ada Generation, rev 2"
    assert gpu.memory_total_mib == 49140


@pytest.mark.parametrize(
    "text",
    [
        sample("nvidia-smi-no-driver.txt"),
        "NVIDIA H100, GPU-1, 550.163.01\n",
        "NVIDIA H100, not-a-uuid, 550.163.01, 9.0, 81559, Enabled\n",
        "NVIDIA H100, GPU-1, Unknown Error, 9.0, 81559, Enabled\n",
    ],
)
def test_parse_smi_refuses_other_output(text):
    with pytest.raises(nv.NvidiaError):
        nv.parse_smi_csv(text)


def test_parse_smi_list():
    text = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0)\n"
    )
    assert nv.parse_smi_list(text) == [
        "GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b",
        "GPU-9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0",
    ]
    assert nv.parse_smi_list(sample("nvidia-smi-no-driver.txt")) == []


# --- /proc/devices and the unit's DeviceAllow ------------------------------------------------------


def test_proc_devices_535_and_550_groups():
    old = nv.parse_proc_devices(sample("proc-devices-535.txt"))
    new = nv.parse_proc_devices(sample("proc-devices-550.txt"))
    assert old["nvidia-frontend"] == [195] and "nvidiactl" not in old
    assert new["nvidia"] == [195] and new["nvidiactl"] == [195] and "nvidia-frontend" not in new
    for groups in (old, new):
        assert groups["nvidia-uvm"] == [236] and groups["nvidia-caps"] == [235]
    # Block devices are not character devices.
    assert "loop" not in new and "device-mapper" not in new


@pytest.mark.parametrize("name", ["proc-devices-535.txt", "proc-devices-550.txt"])
def test_the_nvidia_profile_covers_both_driver_generations(name):
    groups = nv.parse_proc_devices(sample(name))
    present, uncovered, missing = nv.device_coverage(groups, nv.parse_device_allow(NVIDIA_ALLOW))
    assert present and uncovered == [] and missing == []


def test_a_unit_allowing_one_generation_only_misses_the_other():
    # The profile as it was before both spellings were allowed: fine on 535, blind on 550.
    only_535 = ["char-nvidiactl rw", "char-nvidia-frontend rw", "char-nvidia-uvm rw", "char-nvidia-caps rw"]
    allowed = nv.parse_device_allow(only_535)
    assert nv.device_coverage(nv.parse_proc_devices(sample("proc-devices-535.txt")), allowed)[1] == []
    assert nv.device_coverage(nv.parse_proc_devices(sample("proc-devices-550.txt")), allowed)[1] == ["nvidia"]
    only_550 = nv.parse_device_allow(["char-nvidia rw", "char-nvidiactl rw", "char-nvidia-uvm rw"])
    _present, uncovered, _missing = nv.device_coverage(
        nv.parse_proc_devices(sample("proc-devices-535.txt")), only_550
    )
    assert uncovered == ["nvidia-frontend", "nvidia-caps"]


def test_device_allow_needs_read_and_write_and_follows_globs():
    assert nv.parse_device_allow(
        ["char-nvidia r", "char-nvidia-uvm rw", "/dev/nvidia0 rw", "block-sd rw"]
    ) == ["nvidia-uvm"]
    groups = nv.parse_proc_devices(sample("proc-devices-550.txt"))
    assert nv.device_coverage(groups, ["nvidia*"])[1] == []


def test_no_driver_loaded_is_missing_not_uncovered():
    # Recorded on a Debian 13 test node without the driver: no NVIDIA group at all.
    groups = nv.parse_proc_devices("Character devices:\n  1 mem\n  5 /dev/tty\n\nBlock devices:\n  7 loop\n")
    present, uncovered, missing = nv.device_coverage(groups, nv.parse_device_allow(NVIDIA_ALLOW))
    assert present == [] and uncovered == []
    assert len(missing) == 2
    assert "nvidia module is not loaded" in missing[0] and "nvidia-uvm" in missing[1]


def test_parse_systemctl_show_repeats_keys():
    text = "DeviceAllow=char-nvidia-caps rw\nDeviceAllow=char-nvidia rw\nInvocationID=abc\nUser=ollama\n"
    props = nv.parse_systemctl_show(text)
    assert props == {
        "DeviceAllow": ["char-nvidia-caps rw", "char-nvidia rw"],
        "InvocationID": ["abc"],
        "User": ["ollama"],
    }


def test_device_nodes_wanted():
    assert nv.device_nodes_wanted([]) == ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0"]
    assert nv.device_nodes_wanted([1, 0, 1]) == [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia0",
        "/dev/nvidia1",
    ]
    info = (
        "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 143\nGPU UUID: \t\t GPU-4b6f\nDevice Minor: \t\t 3\n"
    )
    assert nv.parse_device_minor(info) == 3
    assert nv.parse_device_minor("Model: x\n") is None


# --- modules, the log, /api/ps -------------------------------------------------------------------


def test_proc_modules():
    assert "nouveau" in nv.parse_proc_modules(sample("modules-nouveau.txt"))
    loaded = nv.parse_proc_modules(sample("modules-nvidia.txt"))
    assert "nouveau" not in loaded and {"nvidia", "nvidia_uvm"} <= set(loaded)


def test_too_old_lines():
    lines = nv.too_old_lines(sample("ollama-too-old.log").splitlines())
    assert len(lines) == 1 and "required_driver" in lines[0]
    assert nv.too_old_lines(sample("ollama-gpu.log").splitlines()) == []
    assert len(nv.too_old_lines([nv.DRIVER_TOO_OLD] * 20)) == 5


def test_parse_ps():
    assert nv.parse_ps(json.loads(sample("ps-gpu.json")), "llama3.2:3b") == {
        "name": "llama3.2:3b",
        "size": 3514482688,
        "size_vram": 3514482688,
    }
    assert nv.parse_ps(json.loads(sample("ps-cpu.json")), "llama3.2:3b")["size_vram"] == 0
    assert (
        nv.parse_ps({"models": [{"name": "x:latest", "size": 1, "size_vram": 1}]}, "x")["name"] == "x:latest"
    )
    assert nv.parse_ps({"models": []}, "llama3.2:3b") is None
    with pytest.raises(nv.NvidiaError):
        nv.parse_ps({"models": [{"name": "llama3.2:3b", "size": 1}]}, "llama3.2:3b")
    with pytest.raises(nv.NvidiaError):
        nv.parse_ps([], "llama3.2:3b")


# --- the repository, DKMS, the reboot ------------------------------------------------------------

POLICY_TRIXIE = """\
nvidia-kernel-dkms:
  Installed: (none)
  Candidate: 550.163.01-2
  Version table:
     550.163.01-2 500
        500 https://gpu-repo/apt trixie/main amd64 Packages
nvidia-smi:
  Installed: (none)
  Candidate: 550.163.01-2
  Version table:
     550.163.01-2 500
        500 https://gpu-repo/apt trixie/main amd64 Packages
linux-headers-6.12.117+deb13-amd64:
  Installed: (none)
  Candidate: 6.12.117-1
  Version table:
     6.12.117-1 500
        500 https://gpu-repo/apt trixie/main amd64 Packages
"""


def test_parse_apt_policy():
    policy = nv.parse_apt_policy(POLICY_TRIXIE)
    assert policy["nvidia-kernel-dkms"] == nv.PackagePolicy(None, "550.163.01-2")
    assert policy["linux-headers-6.12.117+deb13-amd64"].candidate == "6.12.117-1"
    installed = nv.parse_apt_policy("nvidia-smi:\n  Installed: 550.163.01-2\n  Candidate: 550.163.01-2\n")
    assert installed["nvidia-smi"] == nv.PackagePolicy("550.163.01-2", "550.163.01-2")


def refusals(policy_text, kernel="6.12.117+deb13-amd64", accept=False, minimum=550):
    return nv.install_refusals(
        nv.parse_apt_policy(policy_text),
        ["nvidia-kernel-dkms", "nvidia-smi"],
        "nvidia-kernel-dkms",
        kernel,
        minimum=minimum,
        accept_cpu_fallback=accept,
        suite="trixie",
    )


def test_trixie_repository_may_be_installed():
    assert refusals(POLICY_TRIXIE) == []


@pytest.mark.parametrize("bad", ["", "../6.1", "6.1 -x", "linux", "6.1\n"])
def test_a_kernel_release_is_checked_before_it_names_a_package(bad):
    with pytest.raises(nv.NvidiaError, match="is not a kernel release"):
        nv.headers_package(bad)


def test_missing_headers_are_refused():
    (why,) = refusals(POLICY_TRIXIE, kernel="6.18.44-fc-v669")
    assert "offers no linux-headers-6.18.44-fc-v669" in why and "kernel 6.18.44-fc-v669" in why


def test_a_driver_below_the_minimum_is_refused_unless_accepted():
    old = POLICY_TRIXIE.replace("550.163.01-2", "535.261.03-1")
    (why,) = refusals(old)
    assert "offers only driver 535.261.03" in why and "below 550" in why
    assert "gpu_driver_accept_cpu_fallback" in why and nv.DRIVER_TOO_OLD in why
    assert refusals(old, accept=True) == []
    # 570 for compute capability below 7.0: 550 is refused when the operator asks for 570.
    (why,) = refusals(POLICY_TRIXIE, minimum=570)
    assert "below 570" in why


def test_packages_the_repository_lacks_are_refused():
    lacking = (
        POLICY_TRIXIE.split("nvidia-smi:", maxsplit=1)[0]
        + "linux-headers-6.12.117+deb13-amd64:"
        + POLICY_TRIXIE.split("linux-headers-6.12.117+deb13-amd64:")[1]
    )
    (why,) = refusals(lacking)
    assert "offers no nvidia-smi" in why
    # Headers, package and version refusals come together in one message.
    assert len(refusals(lacking.replace("550.163.01-2", "535.261.03-1"), kernel="6.1.0-50-amd64")) == 3


DKMS_3 = """\
nvidia-current/550.163.01, 6.12.117+deb13-amd64, x86_64: installed
nvidia-current/550.163.01: added
"""


def test_parse_dkms_status():
    entries = nv.parse_dkms_status(DKMS_3)
    assert entries[0] == nv.DkmsEntry(
        "nvidia-current", "550.163.01", "6.12.117+deb13-amd64", "x86_64", "installed"
    )
    assert entries[1] == nv.DkmsEntry("nvidia-current", "550.163.01", None, None, "added")
    old_style = nv.parse_dkms_status(
        "nvidia-current, 535.261.03, 6.1.0-50-amd64, x86_64: installed (WARNING! Diff)\n"
    )
    assert old_style[0].kernel == "6.1.0-50-amd64" and old_style[0].state == "installed"
    assert nv.dkms_built(entries, "550.163.01", "6.12.117+deb13-amd64") == entries[0]
    assert nv.dkms_built(entries, "550.163.01", "6.1.0-50-amd64") is None
    with pytest.raises(nv.NvidiaError):
        nv.parse_dkms_status("something else entirely\n")


def test_reboot_reasons():
    assert (
        nv.reboot_reasons("6.12.117+deb13-amd64", "6.12.117+deb13-amd64", ["ext4"], None, "550.163.01") == []
    )
    reasons = nv.reboot_reasons(
        "6.18.44-fc-v669", "6.12.117+deb13-amd64", ["nouveau"], "535.261.03", "550.163.01"
    )
    assert len(reasons) == 3
    assert "built for kernel 6.12.117+deb13-amd64 and the node runs 6.18.44-fc-v669" in reasons[0]
    assert "nouveau" in reasons[1] and "535.261.03 is loaded" in reasons[2]


# --- a GPU node as verify.yml judges it ------------------------------------------------------------


def evaluate(**override):
    args = dict(
        unit_loaded=True,
        gpus=nv.parse_smi_csv(sample("smi-550-h100x2.csv")),
        smi_error="",
        groups=nv.parse_proc_devices(sample("proc-devices-550.txt")),
        device_allow=NVIDIA_ALLOW,
        unit="ollama.service",
        nodes={"/dev/nvidiactl": True, "/dev/nvidia-uvm": True, "/dev/nvidia0": True, "/dev/nvidia1": True},
        modules=nv.parse_proc_modules(sample("modules-nvidia.txt")),
        log_too_old=nv.too_old_lines(sample("ollama-gpu.log").splitlines()),
        model="llama3.2:3b",
        ps=nv.parse_ps(json.loads(sample("ps-gpu.json")), "llama3.2:3b"),
        ps_error="",
        sandbox_gpus=["GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b", "GPU-9e8d7c6b-5a49-4382-a716-f5e4d3c2b1a0"],
        sandbox_error="",
        accept_cpu_fallback=False,
    )
    args.update(override)
    checks = nv.evaluate_node(**args)
    assert [c.check for c in checks] == CHECK_ORDER
    return {c.check: c for c in checks}


def failed(checks):
    return sorted(name for name, c in checks.items() if not c.ok)


def test_a_ready_550_node_passes_every_check():
    checks = evaluate()
    assert failed(checks) == []
    assert "3352 MiB of 3352 MiB in VRAM" in checks["vram"].detail
    assert (
        "nvidia (195), nvidiactl (195), nvidia-uvm (236), nvidia-caps (235)" in checks["device_groups"].detail
    )


def test_a_535_node_fails_for_its_driver_and_persistence_with_the_reasons():
    checks = evaluate(
        gpus=nv.parse_smi_csv(sample("smi-535-v100.csv")),
        groups=nv.parse_proc_devices(sample("proc-devices-535.txt")),
        nodes={"/dev/nvidiactl": True, "/dev/nvidia-uvm": True, "/dev/nvidia0": True},
        log_too_old=nv.too_old_lines(sample("ollama-too-old.log").splitlines()),
        ps=nv.parse_ps(json.loads(sample("ps-cpu.json")), "llama3.2:3b"),
        sandbox_gpus=["GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
    )
    assert failed(checks) == ["driver_minimum", "ollama_log", "persistence_mode", "vram"]
    assert "driver 535.261.03 is below 550 (compute capability 7.0)" in checks["driver_minimum"].detail
    assert "Disabled on GPU-0f1e2d3c" in checks["persistence_mode"].detail
    assert "none in VRAM" in checks["vram"].detail
    # The 535 groups are covered by the profile too.
    assert checks["device_groups"].ok and "nvidia-frontend (195)" in checks["device_groups"].detail


def test_accepted_cpu_fallback_reports_instead_of_failing():
    checks = evaluate(
        gpus=nv.parse_smi_csv(sample("smi-535-v100.csv").replace("Disabled", "Enabled")),
        groups=nv.parse_proc_devices(sample("proc-devices-535.txt")),
        log_too_old=nv.too_old_lines(sample("ollama-too-old.log").splitlines()),
        ps=nv.parse_ps(json.loads(sample("ps-cpu.json")), "llama3.2:3b"),
        accept_cpu_fallback=True,
    )
    assert failed(checks) == []
    for name in ("driver_minimum", "ollama_log", "vram"):
        assert "accepted: gpu_driver_accept_cpu_fallback" in checks[name].detail


def test_a_pascal_gpu_needs_570():
    checks = evaluate(gpus=nv.parse_smi_csv(sample("smi-550-pascal.csv")))
    assert failed(checks) == ["driver_minimum"]
    assert (
        "Tesla P100-PCIE-16GB: driver 550.163.01 is below 570 (compute capability 6.0)"
        in checks["driver_minimum"].detail
    )
    assert "NVIDIA L4" not in checks["driver_minimum"].detail


def test_a_unit_without_the_550_names_fails_device_groups():
    only_535 = ["char-nvidiactl rw", "char-nvidia-frontend rw", "char-nvidia-uvm rw", "char-nvidia-caps rw"]
    checks = evaluate(device_allow=only_535)
    assert failed(checks) == ["device_groups"]
    assert "ollama.service does not allow nvidia" in checks["device_groups"].detail


def test_a_node_without_the_driver_fails_with_each_reason():
    # What the gpu_driver scenario's Debian 13 node shows before its reboot into the driver.
    checks = evaluate(
        unit_loaded=False,
        gpus=[],
        smi_error="/usr/bin/nvidia-smi failed (rc 9): " + sample("nvidia-smi-no-driver.txt").strip(),
        groups=nv.parse_proc_devices("Character devices:\n  1 mem\n"),
        device_allow=[],
        nodes={"/dev/nvidiactl": False, "/dev/nvidia-uvm": False, "/dev/nvidia0": False},
        modules=nv.parse_proc_modules(sample("modules-nouveau.txt")),
        log_too_old=[],
        ps=None,
        ps_error="generate with 'llama3.2:3b' or /api/ps failed: cannot connect",
        sandbox_gpus=[],
        sandbox_error="nvidia-smi -L in a transient unit (rc 9)",
    )
    assert failed(checks) == sorted(set(CHECK_ORDER) - {"ollama_log"})
    assert "couldn't communicate with the NVIDIA driver" in checks["nvidia_smi"].detail
    assert "nvidia module is not loaded" in checks["device_groups"].detail
    assert "/dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia0" in checks["device_nodes"].detail
    assert "reboot" in checks["nouveau"].detail
    assert "cannot connect" in checks["vram"].detail


def test_transient_properties_are_the_profiles_directives():
    props = sd.transient_properties(sd.hardening_directives("strict", ["nvidia_gpu"]))
    assert "PrivateDevices=no" in props and "DevicePolicy=closed" in props
    assert [p for p in props if p.startswith("DeviceAllow=")] == [
        f"DeviceAllow={d}" for d in sd.NVIDIA_DEVICES
    ]
    assert "SystemCallFilter=@system-service" in props and "SystemCallFilter=~@privileged @resources" in props
    assert not any(p.startswith("ProcSubset=") for p in props)


def test_read_text_is_bounded_and_a_missing_file_is_the_default(tmp_path):
    small = tmp_path / "version"
    small.write_text("550.163.01\n")
    assert nv.read_text(str(small)) == "550.163.01\n"
    assert nv.read_text(str(tmp_path / "absent")) == ""
    assert nv.read_text(str(tmp_path / "absent"), "none") == "none"
    large = tmp_path / "large"
    large.write_bytes(b"x" * (nv.READ_LIMIT + 1))
    with pytest.raises(SourceReadError, match="more than the limit"):
        nv.read_text(str(large))


# The role's default package set: the recorded apt-cache policy samples asked for these.
ROLE_DEFAULTS = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "roles", "gpu_driver", "defaults", "main.yml"
)
with open(ROLE_DEFAULTS, encoding="utf-8") as _defaults:
    DEFAULT_PACKAGES = yaml.safe_load(_defaults)["gpu_driver_packages"]


def test_recorded_debian_12_repository_is_refused_for_535_and_the_running_kernel():
    # Real apt-cache policy of the gpu_driver scenario's Debian 12 node: Debian 12's driver only, and
    # apt-cache prints nothing for headers the repository lacks (those of the host's kernel).
    policy = nv.parse_apt_policy(sample("apt-policy-bookworm-535.txt"))
    assert policy["nvidia-kernel-dkms"] == nv.PackagePolicy(None, "535.261.03-1")
    assert "linux-headers-6.18.44-fc-v669" not in policy
    assert set(DEFAULT_PACKAGES) <= set(policy), "re-record the sample with the role's packages"

    def decide(kernel, accept=False):
        return nv.install_refusals(
            policy,
            [*DEFAULT_PACKAGES, nv.headers_package(kernel)],
            "nvidia-kernel-dkms",
            kernel,
            minimum=550,
            accept_cpu_fallback=accept,
            suite="bookworm",
        )

    headers, driver = decide("6.18.44-fc-v669")
    assert "offers no linux-headers-6.18.44-fc-v669" in headers
    assert "offers only driver 535.261.03" in driver and "bookworm's suite" in driver
    (driver_only,) = decide("6.1.0-50-amd64")
    assert driver_only == driver
    assert decide("6.1.0-50-amd64", accept=True) == []


def test_recorded_debian_13_install_is_not_refused_and_dkms_built_for_the_kernel():
    # Real output of the scenario's Debian 13 node after the role's install.
    policy = nv.parse_apt_policy(sample("apt-policy-trixie-550-installed.txt"))
    kernel = "6.12.117+deb13-amd64"
    assert policy["nvidia-kernel-dkms"] == nv.PackagePolicy("550.163.01-2", "550.163.01-2")
    assert policy[nv.headers_package(kernel)].installed == "6.12.117-1"
    packages = [*DEFAULT_PACKAGES, nv.headers_package(kernel)]
    decided = nv.install_refusals(
        policy, packages, "nvidia-kernel-dkms", kernel, minimum=550, accept_cpu_fallback=False, suite="trixie"
    )
    assert decided == []
    entries = nv.parse_dkms_status(sample("dkms-status-trixie-550.txt"))
    assert nv.dkms_built(entries, "550.163.01", kernel) == nv.DkmsEntry(
        "nvidia-current", "550.163.01", kernel, "x86_64", "installed"
    )
    assert nv.dkms_built(entries, "550.163.01", "6.18.44-fc-v669") is None
