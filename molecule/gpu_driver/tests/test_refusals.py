"""gpu_driver refuses, before anything changes, what would leave Ollama without a GPU.

gpu-node12 runs Debian 12, whose suite of the internal repository offers Debian 12's driver 535 (below
Ollama's 550) and the headers of Debian 12's kernel, but none for the kernel the node runs (the
host's). Each refusal is shown with the node unchanged; with the CPU fallback accepted, check mode
predicts the install (the negative control: the same run is not refused)."""

import pytest

NODE = "gpu-node12"
# What the role could change: packages, its files, units, facts, the reboot marker.
FINGERPRINT = (
    "set -e; sha256sum /var/lib/dpkg/status; "
    "for d in /etc/modprobe.d /etc/modules-load.d /etc/systemd/system /usr/local/libexec "
    "/etc/ansible/facts.d; do "
    '[ -e "$d" ] && find "$d" -printf "%p %s %T@\\n" || echo "$d absent"; done; '
    "ls -l /run/reboot-required* 2>/dev/null || echo 'no reboot marker'; "
    "dpkg-query -W -f '${Package}\\n' | grep -c nvidia || true"
)


@pytest.fixture(scope="module")
def before(node):
    host = node(NODE)
    return host.check_output(FINGERPRINT)


def test_the_node_has_no_driver_and_its_repository_offers_535(node, before):
    host = node(NODE)
    assert before.rstrip().endswith("\n0"), "gpu-node12 must start without NVIDIA packages"
    policy = host.check_output("LC_ALL=C apt-cache policy nvidia-kernel-dkms")
    assert "Candidate: 535." in policy and "https://gpu-repo/apt bookworm/main" in policy


def test_driver_below_ollamas_minimum_is_refused(node, playbook, before, kernel12):
    rc, out = playbook("refuse.yml", "-e", f"gpu_driver_kernel={kernel12}")
    assert rc != 0, out[-3000:]
    assert "The NVIDIA driver is not installed, and nothing was changed" in out
    assert "offers only driver 535." in out and "below 550" in out
    assert "NVIDIA driver too old" in out and "gpu_driver_accept_cpu_fallback" in out
    # The headers of Debian 12's kernel are there: this refusal is the driver's alone.
    assert "offers no linux-headers" not in out
    assert node(NODE).check_output(FINGERPRINT) == before


def test_missing_headers_for_the_running_kernel_are_refused(node, playbook, before):
    running = node(NODE).check_output("uname -r")
    rc, out = playbook("refuse.yml", "-e", "gpu_driver_accept_cpu_fallback=true")
    assert rc != 0, out[-3000:]
    assert f"offers no linux-headers-{running}" in out and f"kernel {running}" in out
    assert "offers only driver" not in out
    assert node(NODE).check_output(FINGERPRINT) == before


def test_accepted_cpu_fallback_is_not_refused_and_check_mode_predicts_the_install(
    node, playbook, before, kernel12
):
    rc, out = playbook(
        "refuse.yml",
        "--check",
        "--diff",
        "-e",
        f"gpu_driver_kernel={kernel12}",
        "-e",
        "gpu_driver_accept_cpu_fallback=true",
    )
    assert rc == 0, out[-3000:]
    assert "nothing was changed" not in out
    assert "changed: [gpu-node12]" in out
    assert f"Install the driver, DKMS and the headers of kernel {kernel12}" in out
    assert node(NODE).check_output(FINGERPRINT) == before
