"""gpu-node13 (Debian 13): the driver installed from the internal repository, up to what needs hardware.

The node runs the host's kernel, for which Debian has no headers; the role builds for the kernel of
the carried-in headers (gpu_driver_kernel), as for a node that boots that kernel next. Loading the
module and nvidia-smi need a GPU: those are shown to fail for that reason, and nothing else.
"""

import json
import shlex

import pytest

NODE = "gpu-node13"
DRIVER = "550.163.01"
UNIT = "airgap-nvidia-devices.service"
PACKAGES = [
    "nvidia-kernel-dkms",
    "nvidia-smi",
    "libcuda1",
    "libnvidia-ml1",
    "nvidia-persistenced",
    "firmware-nvidia-gsp",
]


@pytest.fixture(scope="module")
def host(node):
    return node(NODE)


def test_packages_came_from_the_internal_repository(host, kernel13):
    names = [*PACKAGES, "linux-headers-amd64", f"linux-headers-{kernel13}"]
    out = host.check_output("LC_ALL=C apt-cache policy " + " ".join(names))
    for name in names:
        section = out.split(f"{name}:\n", 1)[1].split("\n", 3)
        assert "(none)" not in section[0], f"{name} is not installed"
    installed = host.check_output("dpkg-query -W -f '${Package} ${Version}\\n' " + " ".join(PACKAGES))
    for line in installed.splitlines():
        assert f" {DRIVER}-" in line or line.startswith("nvidia-persistenced "), line
    # Every source the node has is the internal repository.
    assert "https://gpu-repo/apt trixie/main amd64 Packages" in out
    assert "deb.debian.org" not in host.check_output("LC_ALL=C apt-cache policy")


def test_dkms_built_and_installed_the_module_for_the_kernel(host, kernel13):
    status = host.check_output("dkms status")
    assert f"nvidia-current/{DRIVER}, {kernel13}, x86_64: installed" in status
    version = host.check_output(f"modinfo -k {shlex.quote(kernel13)} -F version nvidia-current")
    assert version.strip() == DRIVER
    # Only for the kernel of the headers: the running kernel (the host's) has none.
    running = host.check_output("uname -r")
    assert running != kernel13 and f", {running}," not in status


def test_nouveau_is_blacklisted_in_the_system_and_in_the_initramfs(host, kernel13):
    out = host.check_output(
        f"set -e; modprobe -c | grep -x 'blacklist nouveau' | sort -u; "
        f"cat /etc/modprobe.d/airgap-llm-blacklist-nouveau.conf; "
        f"lsinitramfs /boot/initrd.img-{kernel13} | grep 'etc/modprobe.d/.*nouveau'; "
        f"test -x /usr/share/initramfs-tools/hooks/zz_nvidia-blacklists-nouveau && echo hook; "
        f"stat -c %Y /boot/initrd.img-{kernel13} /etc/modprobe.d/airgap-llm-blacklist-nouveau.conf"
    )
    lines = out.splitlines()
    assert lines[0] == "blacklist nouveau"
    assert "options nouveau modeset=0" in out
    assert "etc/modprobe.d/airgap-llm-blacklist-nouveau.conf" in out
    assert "etc/modprobe.d/nvidia-blacklists-nouveau.conf" in out
    assert "hook" in lines
    initrd, blacklist = (int(x) for x in lines[-2:])
    assert initrd >= blacklist, "the initramfs is older than the blacklist"


def test_nvidia_uvm_is_loaded_at_boot(host, kernel13):
    listed = host.check_output("cat /etc/modules-load.d/airgap-llm-nvidia.conf")
    assert [line for line in listed.splitlines() if not line.startswith("#")] == ["nvidia", "nvidia-uvm"]
    # What systemd-modules-load will do at boot resolves, for the driver's kernel, to the DKMS modules.
    plan = host.check_output(f"modprobe -S {shlex.quote(kernel13)} --show-depends nvidia-uvm")
    assert "modprobe -i nvidia-current-uvm" in plan
    resolved = host.check_output(f"modprobe -S {shlex.quote(kernel13)} --show-depends nvidia-current-uvm")
    assert f"/lib/modules/{kernel13}/updates/dkms/nvidia-current.ko" in resolved
    assert f"/lib/modules/{kernel13}/updates/dkms/nvidia-current-uvm.ko" in resolved


def test_units_are_enabled_and_ordered_before_ollama(host):
    out = host.check_output(
        f"systemctl is-enabled {UNIT} nvidia-persistenced.service; "
        f"systemctl show -p Before -p After -p Type -p RemainAfterExit -p ExecStart {UNIT}; "
        f"systemctl is-active {UNIT} || true"
    )
    assert out.splitlines()[:2] == ["enabled", "enabled"]
    assert "ollama.service" in out.split("Before=", 1)[1].splitlines()[0]
    assert "systemd-modules-load.service" in out.split("After=", 1)[1].splitlines()[0]
    assert "Type=oneshot" in out and "RemainAfterExit=yes" in out
    assert "/usr/local/libexec/airgap-llm/nvidia-devices" in out
    # The reboot into the driver is still due: the unit has not run.
    assert out.splitlines()[-1] == "inactive"


def test_the_reboot_is_reported_and_the_driver_recorded(host, kernel13):
    running = host.check_output("uname -r")
    marker = host.check_output("cat /run/reboot-required /run/reboot-required.pkgs")
    assert marker.splitlines() == ["*** System restart required ***", "nvidia-kernel-dkms"]
    fact = json.loads(host.check_output("cat /etc/ansible/facts.d/airgap_gpu_driver.fact"))
    assert fact["driver_version"] == DRIVER and fact["package_version"].startswith(DRIVER + "-")
    assert fact["kernel"] == kernel13 and fact["dkms_installed"] is True
    assert fact["minimum_version"] == 550 and fact["cpu_fallback_accepted"] is False
    assert fact["reboot_required"] is True
    assert fact["reboot_reasons"] == [
        f"the driver is built for kernel {kernel13} and the node runs {running}"
    ]


def test_the_device_unit_fails_for_want_of_the_driver_only(host):
    # Without the hardware (and the kernel the module is built for) the oneshot must fail, and say why.
    run = host.run(f"systemctl start {UNIT}")
    assert run.rc != 0
    log = host.check_output(f"journalctl -u {UNIT} -o cat --no-pager -n 20")
    assert "nvidia-devices: cannot load the nvidia module" in log
    host.run(f"systemctl reset-failed {UNIT}")


def test_gpu_check_reports_each_reason_on_a_node_without_a_gpu(host, run_module):
    """The validation of verify.yml, for real on a node: every hardware check fails for its reason.

    A probe unit rendered with the NVIDIA profile stands for Ollama's unit (its DeviceAllow is read).
    """
    ok, rendered = run_module(
        NODE,
        "airgap.llm.systemd_unit",
        {
            "name": "gpu-probe.service",
            "relaxations": ["nvidia_gpu"],
            "sections": {"Service": {"ExecStart": "/bin/sleep infinity", "User": "nobody"}},
        },
    )
    assert ok and rendered["exposure"] <= 2.0
    host.check_output("systemctl daemon-reload && systemctl start gpu-probe.service")
    try:
        ok, result = run_module(
            NODE,
            "airgap.llm.nvidia_gpu_check",
            {"model": "tinyllama:1b", "unit": "gpu-probe.service", "timeout": 10, "fail_on_problems": True},
        )
    finally:
        host.run(
            "systemctl stop gpu-probe.service; rm -f /etc/systemd/system/gpu-probe.service; "
            "systemctl daemon-reload"
        )
    assert not ok
    checks = {c["check"]: c for c in result["checks"]}
    hardware = [
        "nvidia_smi",
        "driver_minimum",
        "persistence_mode",
        "device_groups",
        "device_nodes",
        "vram",
        "sandbox",
    ]
    assert [name for name in hardware if checks[name]["ok"]] == []
    assert checks["unit"]["ok"] and checks["ollama_log"]["ok"]
    # The host's /proc/modules: nouveau is judged as loaded or not, either way with a reason.
    assert checks["nouveau"]["detail"]
    assert "couldn't communicate with the NVIDIA driver" in checks["nvidia_smi"]["detail"]
    assert "nvidia module is not loaded" in checks["device_groups"]["detail"]
    assert "/dev/nvidiactl" in checks["device_nodes"]["detail"]
    assert "cannot connect" in checks["vram"]["detail"]
    # nvidia-smi ran inside the transient unit (as the unit's user) and failed for want of the driver.
    assert "transient unit" in checks["sandbox"]["detail"] and "as nobody" in checks["sandbox"]["detail"]
    assert "couldn't communicate with the NVIDIA driver" in checks["sandbox"]["detail"]
    # The unit's DeviceAllow= as systemd reports it: the five NVIDIA groups of both driver
    # generations, and char-rtc read-only, which systemd adds for ProtectClock=yes.
    groups = ("nvidia-frontend", "nvidia", "nvidiactl", "nvidia-uvm", "nvidia-caps")
    assert sorted(result["device_allow"]) == sorted([*(f"char-{g} rw" for g in groups), "char-rtc r"])
    assert "The GPU node is not ready for Ollama" in result["msg"]
