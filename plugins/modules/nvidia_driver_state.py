#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_driver_state
short_description: What the internal APT repository offers of the NVIDIA driver, and what a node runs
version_added: 0.1.0
description:
  - Reads, and changes nothing, C(apt-cache policy) of the driver packages and of the kernel headers
    for the kernel to build for, C(dkms status), the loaded modules (C(/proc/modules)) and the
    version of the loaded C(nvidia) module.
  - Decides whether the repository's driver may be installed. Refused, with a message that says what
    to do, when the repository offers no headers for the kernel, lacks one of the packages, or offers
    only a driver below the minimum (Ollama drops a GPU whose driver is older than 550, or 570 for
    compute capability below 7.0, and runs on the CPU) unless O(accept_cpu_fallback) is set.
  - Tells whether the installed driver takes effect only after a reboot (another kernel, nouveau
    loaded, another driver version loaded) and why.
  - With O(refuse=true) (the default) a refusal fails the task, before anything is changed.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Reads the same things; nothing is ever written.
options:
  packages:
    description:
      - The driver packages to install (the kernel headers for O(kernel) are checked as well).
    type: list
    elements: str
    required: true
  version_package:
    description:
      - The package whose version is the driver's version, for example V(nvidia-kernel-dkms).
    type: str
    required: true
  kernel:
    description:
      - The kernel release to build the driver for. Empty means the running kernel (C(uname -r)).
    type: str
    default: ""
  minimum_version:
    description:
      - The lowest driver major version accepted.
    type: int
    default: 550
  accept_cpu_fallback:
    description:
      - Accept a driver below O(minimum_version) (Ollama then runs on the CPU).
    type: bool
    default: false
  refuse:
    description:
      - Fail the task when the driver must not be installed (see RV(refusals)).
    type: bool
    default: true
  lists_pending:
    description:
      - The node has not fetched the internal repository's package lists yet (check mode on a new node,
        before the real run of M(airgap.llm.repo_client)). The repository cannot be judged, so nothing
        is refused and a warning says so.
    type: bool
    default: false
seealso:
  - module: airgap.llm.nvidia_gpu_check
notes:
  - Runs C(apt-cache policy) in the C locale; the package lists must come from the internal
    repository (M(airgap.llm.repo_client)).
"""

EXAMPLES = r"""
- name: Check the repository's driver before anything changes
  airgap.llm.nvidia_driver_state:
    packages:
      - nvidia-kernel-dkms
      - nvidia-smi
      - libcuda1
      - libnvidia-ml1
      - nvidia-persistenced
      - firmware-nvidia-gsp
    version_package: nvidia-kernel-dkms
  register: driver_plan

- name: Read the state after the install (DKMS, reboot), never failing
  airgap.llm.nvidia_driver_state:
    packages: [nvidia-kernel-dkms]
    version_package: nvidia-kernel-dkms
    kernel: 6.12.117+deb13-amd64
    refuse: false
  register: driver_state
"""

RETURN = r"""
running_kernel:
  description: The kernel the node runs (C(uname -r)).
  returned: always
  type: str
  sample: 6.12.117+deb13-amd64
kernel:
  description: The kernel the driver is built for (O(kernel), or the running kernel).
  returned: always
  type: str
  sample: 6.12.117+deb13-amd64
suite:
  description: The node's Debian release (C(VERSION_CODENAME) of C(/etc/os-release)).
  returned: always
  type: str
  sample: trixie
headers_package:
  description: The kernel headers package for RV(kernel).
  returned: always
  type: str
  sample: linux-headers-6.12.117+deb13-amd64
packages:
  description: C(installed) and C(candidate) version of every package asked about (null when none).
  returned: always
  type: dict
  sample: {"nvidia-kernel-dkms": {"installed": null, "candidate": "550.163.01-2"}}
driver:
  description:
    - The driver as the packages and the kernel see it. C(candidate) and C(installed) are upstream
      versions (V(550.163.01)); C(loaded) is the version of the module in the running kernel.
  returned: always
  type: dict
  contains:
    package:
      description: O(version_package).
      type: str
    candidate:
      description: The version the repository offers, or null.
      type: str
    installed:
      description: The version installed, or null.
      type: str
    loaded:
      description: The version of the loaded C(nvidia) module, or null.
      type: str
    minimum:
      description: O(minimum_version).
      type: int
dkms:
  description: Every line of C(dkms status), parsed (empty when DKMS is not installed).
  returned: always
  type: list
  elements: dict
  sample: [{"module": "nvidia-current", "version": "550.163.01", "kernel": "6.12.117+deb13-amd64",
            "arch": "x86_64", "state": "installed"}]
dkms_installed:
  description: Whether DKMS has built and installed the installed driver for RV(kernel).
  returned: always
  type: bool
nouveau_loaded:
  description: Whether the nouveau module is loaded.
  returned: always
  type: bool
reboot_reasons:
  description: Why the installed driver takes effect only after a reboot (empty when it does not).
  returned: always
  type: list
  elements: str
reboot_required:
  description: Whether RV(reboot_reasons) is not empty.
  returned: always
  type: bool
refusals:
  description: Why the driver must not be installed from this repository (empty when it may).
  returned: always
  type: list
  elements: str
"""

import os  # noqa: E402 - after the documentation, as Ansible modules are
import shutil  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._nvidia import (  # noqa: E402
    C_LOCALE,
    NvidiaError,
    dkms_built,
    headers_package,
    install_refusals,
    parse_apt_policy,
    parse_dkms_status,
    parse_proc_modules,
    read_text,
    reboot_reasons,
    run,
    upstream_version,
)


def _suite():
    for line in read_text("/etc/os-release").splitlines():
        key, _sep, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    return ""


def _loaded_driver():
    # Debian installs the module as nvidia-current.ko; the kernel names it nvidia either way.
    for name in ("nvidia", "nvidia_current"):
        version = read_text(f"/sys/module/{name}/version").strip()
        if version:
            return version
    return None


def state(params, warn):
    running = os.uname().release
    kernel = params["kernel"] or running
    headers = headers_package(kernel)
    names = list(dict.fromkeys([*params["packages"], params["version_package"], headers]))
    rc, out, err = run(["apt-cache", "policy", *names], timeout=120, env=C_LOCALE)
    if rc != 0:
        raise NvidiaError(f"apt-cache policy failed (rc {rc}): {err.strip()[-500:]}")
    policy = parse_apt_policy(out)
    entries = []
    if shutil.which("dkms", path=C_LOCALE["PATH"]):
        rc, out, err = run(["dkms", "status"], timeout=120, env=C_LOCALE)
        if rc != 0:
            raise NvidiaError(f"dkms status failed (rc {rc}): {err.strip()[-500:]}")
        entries = parse_dkms_status(out)
    modules = parse_proc_modules(read_text("/proc/modules"))
    driver_policy = policy.get(params["version_package"])
    candidate = driver_policy.candidate if driver_policy else None
    installed = driver_policy.installed if driver_policy else None
    installed_version = upstream_version(installed) if installed else None
    loaded = _loaded_driver()
    suite = _suite()
    refusals = []
    if params["lists_pending"]:
        warn(
            "The internal repository's package lists are not on the node yet (check mode before the first "
            "real run): whether it offers the driver and the kernel headers is checked in the real run."
        )
    else:
        refusals = install_refusals(
            policy,
            params["packages"],
            params["version_package"],
            kernel,
            minimum=params["minimum_version"],
            accept_cpu_fallback=params["accept_cpu_fallback"],
            suite=suite,
        )
    reasons = reboot_reasons(running, kernel, modules, loaded, installed_version) if installed_version else []
    return {
        "running_kernel": running,
        "kernel": kernel,
        "suite": suite,
        "headers_package": headers,
        "packages": {n: {"installed": p.installed, "candidate": p.candidate} for n, p in policy.items()},
        "driver": {
            "package": params["version_package"],
            "candidate": upstream_version(candidate) if candidate else None,
            "installed": installed_version,
            "loaded": loaded,
            "minimum": params["minimum_version"],
        },
        "dkms": [e._asdict() for e in entries],
        "dkms_installed": bool(installed_version and dkms_built(entries, installed_version, kernel)),
        "nouveau_loaded": "nouveau" in modules,
        "reboot_reasons": reasons,
        "reboot_required": bool(reasons),
        "refusals": refusals,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "required": True},
            "version_package": {"type": "str", "required": True},
            "kernel": {"type": "str", "default": ""},
            "minimum_version": {"type": "int", "default": 550},
            "accept_cpu_fallback": {"type": "bool", "default": False},
            "refuse": {"type": "bool", "default": True},
            "lists_pending": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    with fail_on_error(module, "reading the NVIDIA driver's state"):
        result = state(module.params, module.warn)
    if module.params["refuse"] and result["refusals"]:
        module.fail_json(
            msg="The NVIDIA driver is not installed, and nothing was changed: "
            + "; ".join(result["refusals"])
            + ".",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
