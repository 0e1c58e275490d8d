#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_gpu_check
short_description: Check that an NVIDIA GPU node is ready for Ollama, and say why not
version_added: 0.1.0
description:
  - Reads what a GPU node runs and decides whether Ollama uses its GPUs. Every check is reported
    with the values seen (RV(checks)); any failed check fails the task with the reasons unless
    O(fail_on_problems=false).
  - C(unit) - the Ollama unit O(unit) is installed.
  - C(nvidia_smi) - C(nvidia-smi) lists the GPUs (C(--query-gpu=name,uuid,driver_version,compute_cap,)
    C(memory.total,persistence_mode)).
  - C(driver_minimum) - the driver is at or above Ollama's minimum for each GPU's compute
    capability (550; 570 below compute capability 7.0).
  - C(persistence_mode) - persistence mode is C(Enabled) on every GPU (C(nvidia-persistenced)).
  - C(device_groups) - C(/proc/devices) has the driver's groups (C(nvidia-frontend) up to 535,
    C(nvidia) and C(nvidiactl) from 545 on, C(nvidia-uvm)), and the unit's C(DeviceAllow=) covers
    every NVIDIA group registered.
  - C(device_nodes) - C(/dev/nvidiactl), C(/dev/nvidia-uvm) and C(/dev/nvidia<minor>) of every GPU
    are character devices.
  - C(nouveau) - the nouveau module is not loaded.
  - C(ollama_log) - the unit's log since it last started has no C(NVIDIA driver too old).
  - C(vram) - after a short generate with O(model), Ollama's C(/api/ps) reports part of the model
    in VRAM (C(size_vram) above 0).
  - C(sandbox) - C(nvidia-smi -L), run by C(systemd-run) in a transient unit with the sandbox of
    the hardening profile the Ollama unit is rendered from (M(airgap.llm.systemd_unit), strict with
    the V(nvidia_gpu) relaxation) as the unit's user, lists the GPUs.
  - With O(accept_cpu_fallback=true) a driver below the minimum, its log line and a model outside
    VRAM are reported as accepted, not as failures.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Runs the same checks (a generate loads the model into memory but changes no file).
options:
  model:
    description:
      - The model to load with a short generate before C(/api/ps) is read (one the node serves).
    type: str
    required: true
  unit:
    description:
      - The Ollama service, whose C(DeviceAllow=), user and log are read.
    type: str
    default: ollama.service
  ollama_url:
    description:
      - Ollama's API, on loopback (http or https, host C(127.x.x.x), C([::1]) or C(localhost)).
    type: str
    default: http://127.0.0.1:11434
  timeout:
    description:
      - Seconds the generate may take (the first load of a model from disk included).
    type: int
    default: 300
  nvidia_smi:
    description:
      - The C(nvidia-smi) program.
    type: path
    default: /usr/bin/nvidia-smi
  accept_cpu_fallback:
    description:
      - Report a driver below Ollama's minimum, its C(NVIDIA driver too old) log line and a model
        outside VRAM as accepted (the operator chose CPU fallback).
    type: bool
    default: false
  fail_on_problems:
    description:
      - Fail the task when a check fails. With V(false) the checks are only reported (RV(ok)).
    type: bool
    default: true
seealso:
  - module: airgap.llm.nvidia_driver_state
  - module: airgap.llm.systemd_unit
notes:
  - Runs as root (C(become)), since it reads the unit's journal and starts a transient unit.
"""

EXAMPLES = r"""
- name: Check a GPU node end to end (fails with the reasons)
  airgap.llm.nvidia_gpu_check:
    model: llama3.2:3b

- name: Only report, as playbooks/verify.yml does
  airgap.llm.nvidia_gpu_check:
    model: llama3.2:3b
    fail_on_problems: false
  register: gpu_check
"""

RETURN = r"""
ok:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description: One entry per check, in the order of the description, with C(check), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
  sample:
    - check: driver_minimum
      ok: false
      detail: "Tesla P100-PCIE-16GB: driver 550.163.01 is below 570 (compute capability 6.0)"
gpus:
  description: The GPUs C(nvidia-smi) lists, with the minimum driver Ollama needs for each.
  returned: always
  type: list
  elements: dict
  sample:
    - name: NVIDIA H100 80GB HBM3
      uuid: GPU-4b6f9c1e-2a3d-4e5f-8a9b-0c1d2e3f4a5b
      driver_version: 550.163.01
      compute_cap: "9.0"
      memory_total_mib: 81559
      persistence_mode: Enabled
      minimum_driver: 550
device_groups:
  description: The groups of C(/proc/devices) whose names start with C(nvidia), with their majors.
  returned: always
  type: dict
  sample: {"nvidia": [195], "nvidiactl": [195], "nvidia-uvm": [508], "nvidia-caps": [511]}
device_allow:
  description: The unit's C(DeviceAllow=) entries.
  returned: always
  type: list
  elements: str
device_nodes:
  description: Each device node checked, and whether it is a character device.
  returned: always
  type: dict
log_too_old:
  description: The unit's log lines (quoted, five at most) that say Ollama dropped a GPU for its driver.
  returned: always
  type: list
  elements: str
ps:
  description: C(name), C(size) and C(size_vram) of O(model) in C(/api/ps) after the generate, or null.
  returned: always
  type: dict
sandbox:
  description: The properties of the transient unit, its user, and the GPUs C(nvidia-smi -L) listed.
  returned: always
  type: dict
"""

import glob  # noqa: E402 - after the documentation, as Ansible modules are
import os  # noqa: E402
import stat  # noqa: E402
import urllib.parse  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils import _json  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, fail_on_error, quote  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._nvidia import (  # noqa: E402
    C_LOCALE,
    READ_LIMIT,
    SMI_QUERY,
    NvidiaError,
    check_dict,
    device_nodes_wanted,
    evaluate_node,
    parse_device_minor,
    parse_proc_devices,
    parse_proc_modules,
    parse_ps,
    parse_smi_csv,
    parse_smi_list,
    parse_systemctl_show,
    read_text,
    run,
    too_old_lines,
)
from ansible_collections.airgap.llm.plugins.module_utils._systemd import (  # noqa: E402
    hardening_directives,
    transient_properties,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (  # noqa: E402
    FetchOptions,
    fetch_bytes,
)

LOOPBACK = ("localhost", "::1")


def _check_url(url):
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or not (host in LOOPBACK or host.startswith("127.")):
        raise NvidiaError(
            f"ollama_url {quote(url)} is not an http(s) URL on loopback (127.x.x.x, [::1], localhost)"
        )
    return url.rstrip("/")


def _smi(path):
    rc, out, err = run([path, *SMI_QUERY], timeout=60, env=C_LOCALE)
    if rc != 0:
        return [], f"{path} failed (rc {rc}): {quote((out + err).strip(), 300)}"
    try:
        return parse_smi_csv(out), ""
    except NvidiaError as exc:
        return [], str(exc)


def _unit(unit):
    rc, out, err = run(
        [
            "systemctl",
            "show",
            "-p",
            "DeviceAllow",
            "-p",
            "InvocationID",
            "-p",
            "User",
            "-p",
            "LoadState",
            unit,
        ],
        timeout=30,
        env=C_LOCALE,
    )
    if rc != 0:
        raise NvidiaError(f"systemctl show {unit} failed (rc {rc}): {quote(err.strip(), 300)}")
    props = parse_systemctl_show(out)
    return {
        "loaded": (props.get("LoadState") or [""])[0] == "loaded",
        "device_allow": props.get("DeviceAllow", []),
        "invocation": (props.get("InvocationID") or [""])[0],
        "user": (props.get("User") or [""])[0],
    }


def _log_too_old(unit, invocation):
    if not invocation:
        return []
    rc, out, _err = run(
        [
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-n",
            "20000",
            "-u",
            unit,
            f"_SYSTEMD_INVOCATION_ID={invocation}",
        ],
        timeout=60,
        env=C_LOCALE,
    )
    return too_old_lines(out.splitlines()) if rc == 0 else []


def _nodes():
    minors = []
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        minor = parse_device_minor(read_text(info))
        if minor is not None:
            minors.append(minor)
    present = {}
    for path in device_nodes_wanted(minors):
        try:
            present[path] = stat.S_ISCHR(os.stat(path).st_mode)
        except FileNotFoundError:
            present[path] = False
    return present


def _generate(url, model, timeout):
    options = FetchOptions(timeout=timeout, headers={"Content-Type": "application/json"})
    body = _json.canonical(
        {"model": model, "prompt": "Say OK.", "stream": False, "options": {"num_predict": 4}}
    )
    try:
        fetch_bytes(f"{url}/api/generate", options, limit=READ_LIMIT, data=body)
        raw = fetch_bytes(f"{url}/api/ps", FetchOptions(timeout=30), limit=READ_LIMIT)
        ps = parse_ps(_json.loads(raw, "/api/ps's answer", limit=READ_LIMIT), model)
    except AirgapError as exc:
        return None, f"generate with {quote(model)} or /api/ps failed: {exc}"
    return ps, "" if ps else f"/api/ps does not list {quote(model)} after a generate with it"


def _sandbox(smi, user):
    properties = transient_properties(hardening_directives("strict", ["nvidia_gpu"]))
    argv = [
        "systemd-run",
        "--quiet",
        "--wait",
        "--pipe",
        "--collect",
        "-p",
        "RuntimeMaxSec=120",
        "-p",
        f"User={user}",
    ]
    for prop in properties:
        argv += ["-p", prop]
    rc, out, err = run([*argv, smi, "-L"], timeout=180, env=C_LOCALE)
    listed = parse_smi_list(out) if rc == 0 else []
    error = ""
    if not listed:
        error = (
            f"nvidia-smi -L in a transient unit with the nvidia profile's sandbox as {user} (rc {rc}): "
            f"{quote((out + err).strip(), 300)}"
        )
    return {"user": user, "properties": properties, "gpus": listed}, error


def check(params):
    url = _check_url(params["ollama_url"])
    unit = _unit(params["unit"])
    gpus, smi_error = _smi(params["nvidia_smi"])
    groups = parse_proc_devices(read_text("/proc/devices"))
    modules = parse_proc_modules(read_text("/proc/modules"))
    nodes = _nodes()
    log = _log_too_old(params["unit"], unit["invocation"])
    ps, ps_error = _generate(url, params["model"], params["timeout"])
    sandbox, sandbox_error = _sandbox(params["nvidia_smi"], unit["user"] or "nobody")
    checks = evaluate_node(
        unit_loaded=unit["loaded"],
        gpus=gpus,
        smi_error=smi_error,
        groups=groups,
        device_allow=unit["device_allow"],
        unit=params["unit"],
        nodes=nodes,
        modules=modules,
        log_too_old=log,
        model=params["model"],
        ps=ps,
        ps_error=ps_error,
        sandbox_gpus=sandbox["gpus"],
        sandbox_error=sandbox_error,
        accept_cpu_fallback=params["accept_cpu_fallback"],
    )
    return {
        "ok": all(c.ok for c in checks),
        "checks": [check_dict(c) for c in checks],
        "gpus": [g.as_dict() for g in gpus],
        "device_groups": {name: majors for name, majors in groups.items() if name.startswith("nvidia")},
        "device_allow": unit["device_allow"],
        "device_nodes": nodes,
        "log_too_old": log,
        "ps": ps,
        "sandbox": sandbox,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "model": {"type": "str", "required": True},
            "unit": {"type": "str", "default": "ollama.service"},
            "ollama_url": {"type": "str", "default": "http://127.0.0.1:11434"},
            "timeout": {"type": "int", "default": 300},
            "nvidia_smi": {"type": "path", "default": "/usr/bin/nvidia-smi"},
            "accept_cpu_fallback": {"type": "bool", "default": False},
            "fail_on_problems": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    with fail_on_error(module, f"checking the GPU node for {module.params['unit']}"):
        result = check(module.params)
    failed = [c for c in result["checks"] if not c["ok"]]
    if failed and module.params["fail_on_problems"]:
        module.fail_json(
            msg="The GPU node is not ready for Ollama: "
            + "; ".join(f"{c['check']}: {c['detail']}" for c in failed)
            + ".",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
