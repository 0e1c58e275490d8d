# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NVIDIA GPU nodes: what the internal repository offers, what a node runs, and the decisions taken on them.

Parsers for what the tools print (``apt-cache policy``, ``dkms status``, ``nvidia-smi``'s CSV
query, ``/proc/devices``, ``/proc/modules``, ``systemctl show``, Ollama's log and ``/api/ps``)
and the decisions made from them, in one place:

* :func:`install_refusals`: whether the repository's driver may be installed at all (every
  package offered, kernel headers for the kernel, the driver at or above Ollama's minimum);
* :func:`reboot_reasons`: whether the installed driver needs a reboot to take effect;
* :func:`evaluate_node`: whether a GPU node is ready for Ollama (the checks of ``verify.yml``).

Ollama's rule (``discover/cuda_compat.go``): it drops a CUDA GPU and falls back to the CPU with the
warning ``NVIDIA driver too old`` when the driver's major version is below 550, or below 570 for a
GPU of compute capability below 7.0. Everything read from a tool is bounded and quoted before it
enters a message.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import read_bounded
from ansible_collections.airgap.llm.plugins.module_utils._systemd import NVIDIA_DEVICE_GROUPS

__all__ = [
    "DRIVER_TOO_OLD",
    "MIN_DRIVER",
    "MIN_DRIVER_LEGACY_COMPUTE",
    "SMI_QUERY",
    "Check",
    "DkmsEntry",
    "Gpu",
    "NvidiaError",
    "PackagePolicy",
    "check_dict",
    "device_coverage",
    "device_nodes_wanted",
    "dkms_built",
    "driver_major",
    "evaluate_node",
    "headers_package",
    "install_refusals",
    "minimum_driver",
    "parse_apt_policy",
    "parse_device_allow",
    "parse_device_minor",
    "parse_dkms_status",
    "parse_proc_devices",
    "parse_proc_modules",
    "parse_ps",
    "parse_smi_csv",
    "parse_smi_list",
    "parse_systemctl_show",
    "reboot_reasons",
    "run",
    "too_old_lines",
    "upstream_version",
]

MIN_DRIVER = 550
"""Ollama's driver floor for any CUDA GPU (CUDA 12.4+ runtimes use compressed fat binaries)."""
MIN_DRIVER_LEGACY_COMPUTE = 570
"""Ollama's floor for GPUs of compute capability below 7.0 (their kernels are JIT-compiled from PTX)."""
LEGACY_COMPUTE_MAJOR = 7
DRIVER_TOO_OLD = "NVIDIA driver too old"
"""The warning Ollama logs for each GPU it drops because of the driver."""

SMI_FIELDS = ("name", "uuid", "driver_version", "compute_cap", "memory.total", "persistence_mode")
SMI_QUERY = ["--query-gpu=" + ",".join(SMI_FIELDS), "--format=csv,noheader,nounits"]
"""Arguments of the ``nvidia-smi`` query that :func:`parse_smi_csv` reads."""

# The /proc/devices names that mean "the nvidia module is loaded", per driver generation.
CONTROL_GROUPS = ("nvidia-frontend", "nvidiactl")
UVM_GROUP = "nvidia-uvm"
MAX_LINES = 100_000
# The environment of every command the NVIDIA modules run: C locale (parsed output), system PATH.
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
# The most read of one file (/proc, /sys, /etc) or one answer of Ollama's API.
READ_LIMIT = 1 << 20

_VERSION_RE = re.compile(r"\A(?:[0-9]+:)?([0-9][0-9A-Za-z.+~]*?)(?:-[0-9A-Za-z.+~]+)?\Z")
_MAJOR_RE = re.compile(r"\A([0-9]{2,4})(?:\.|\Z)")
_COMPUTE_RE = re.compile(r"\A([0-9]+)\.([0-9]+)\Z")
_DKMS_RE = re.compile(
    r"\A(?P<module>[A-Za-z0-9_.+-]+)(?:/|, )(?P<version>[A-Za-z0-9_.+~-]+)"
    r"(?:, (?P<kernel>[^,:]+), (?P<arch>[A-Za-z0-9_]+))?: (?P<state>[A-Za-z ]+?)(?: \(.*\))?\s*\Z"
)
_KERNEL_RE = re.compile(r"\A[0-9][0-9A-Za-z.+~_-]{0,127}\Z")
_SMI_LIST_RE = re.compile(r"\AGPU ([0-9]+): (.+?) \(UUID: (GPU-[0-9A-Fa-f-]+)\)")


class NvidiaError(AirgapError):
    """Output of an NVIDIA or system tool that cannot be read; ``str()`` says which and why."""


class Gpu(NamedTuple):
    """One GPU as ``nvidia-smi`` reports it."""

    name: str
    uuid: str
    driver_version: str
    compute_cap: str
    memory_total_mib: Optional[int]
    persistence_mode: str

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "driver_version": self.driver_version,
            "compute_cap": self.compute_cap,
            "memory_total_mib": self.memory_total_mib,
            "persistence_mode": self.persistence_mode,
            "minimum_driver": minimum_driver(self.compute_cap),
        }


class PackagePolicy(NamedTuple):
    """What ``apt-cache policy`` says of one package: the installed and the candidate version."""

    installed: Optional[str]
    candidate: Optional[str]


class DkmsEntry(NamedTuple):
    """One line of ``dkms status``."""

    module: str
    version: str
    kernel: Optional[str]
    arch: Optional[str]
    state: str


class Check(NamedTuple):
    """One verdict of :func:`evaluate_node`: its name, whether it passed, and what was seen."""

    check: str
    ok: bool
    detail: str


def check_dict(check: Check) -> Dict[str, Any]:
    return {"check": check.check, "ok": check.ok, "detail": check.detail}


def run(argv: Sequence[str], timeout: int, env: Optional[Mapping[str, str]] = None) -> Tuple[int, str, str]:
    """Run a command without a shell; (rc, stdout, stderr) as text. A missing program is rc 127."""
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(argv),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{' '.join(argv)} did not finish within {timeout} s"
    return proc.returncode, proc.stdout, proc.stderr


def read_text(path: str, default: str = "") -> str:
    """A small system file as text (at most READ_LIMIT bytes); default when it does not exist."""
    try:
        return read_bounded(path, READ_LIMIT, follow_symlinks=True).decode("utf-8", "replace")
    except FileNotFoundError:
        return default


def _lines(text: str, what: str) -> List[str]:
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise NvidiaError(f"{what} has {len(lines)} lines, more than the limit of {MAX_LINES}")
    return lines


# --- versions -------------------------------------------------------------------------------


def upstream_version(debian_version: str) -> str:
    """The upstream part of a Debian version: ``1:550.163.01-2`` is ``550.163.01``."""
    match = _VERSION_RE.match(debian_version.strip())
    if not match:
        raise NvidiaError(f"{quote(debian_version)} is not a Debian package version")
    return match.group(1)


def driver_major(version: str) -> int:
    """The major number of a driver version (``550.163.01``, or a Debian version of one)."""
    upstream = upstream_version(version) if ("-" in version or ":" in version) else version.strip()
    match = _MAJOR_RE.match(upstream)
    if not match:
        raise NvidiaError(f"{quote(version)} is not an NVIDIA driver version (like 550.163.01)")
    return int(match.group(1))


def minimum_driver(compute_cap: str) -> int:
    """Ollama's minimum driver major for a GPU of this compute capability (``8.9``; unknown: 550)."""
    match = _COMPUTE_RE.match(compute_cap.strip())
    if match and 0 < int(match.group(1)) < LEGACY_COMPUTE_MAJOR:
        return MIN_DRIVER_LEGACY_COMPUTE
    return MIN_DRIVER


# --- the repository and the node before and after the install -------------------------------


def parse_apt_policy(text: str) -> Dict[str, PackagePolicy]:
    """``apt-cache policy PKG...`` (C locale) as ``{package: PackagePolicy}``.

    A package that apt does not know is not printed at all; ``(none)`` is ``None``.
    """
    result: Dict[str, PackagePolicy] = {}
    name: Optional[str] = None
    installed: Optional[str] = None
    candidate: Optional[str] = None
    for line in _lines(text, "apt-cache policy's output"):
        if line and not line[0].isspace() and line.endswith(":"):
            if name is not None:
                result[name] = PackagePolicy(installed, candidate)
            name, installed, candidate = line[:-1].split(":", 1)[0], None, None
            continue
        key, _sep, value = line.strip().partition(": ")
        value = value.strip()
        if name is None or value in ("", "(none)"):
            continue
        if key == "Installed":
            installed = value
        elif key == "Candidate":
            candidate = value
    if name is not None:
        result[name] = PackagePolicy(installed, candidate)
    return result


def headers_package(kernel: str) -> str:
    """The Debian package of the headers of ``kernel``; refuses what is no kernel release."""
    if not _KERNEL_RE.match(kernel):
        raise NvidiaError(
            f"{quote(kernel)} is not a kernel release (like 6.12.117+deb13-amd64, as uname -r prints it)"
        )
    return f"linux-headers-{kernel}"


def install_refusals(
    policy: Mapping[str, PackagePolicy],
    packages: Sequence[str],
    version_package: str,
    kernel: str,
    *,
    minimum: int,
    accept_cpu_fallback: bool,
    suite: str,
) -> List[str]:
    """Why the driver must not be installed from this repository; empty when it may.

    Refused: a package (the kernel headers for ``kernel`` included) that the repository does not
    offer and that is not installed, and a driver below ``minimum`` unless ``accept_cpu_fallback``.
    """
    where = f"the internal APT repository ({suite or 'this node'}'s suite)"
    refusals: List[str] = []
    headers = headers_package(kernel)
    if policy.get(headers, PackagePolicy(None, None)).candidate is None:
        refusals.append(
            f"{where} offers no {headers}: DKMS cannot build the driver for kernel {kernel}. Bundle the "
            f"headers of that kernel (the .deb {headers}_*.deb with its dependencies), or boot the node "
            "into a kernel whose headers the repository has (set gpu_driver_kernel to build for an "
            "installed kernel that the node boots next)"
        )
    missing = [
        p for p in packages if p != headers and policy.get(p, PackagePolicy(None, None)).candidate is None
    ]
    if missing:
        refusals.append(
            f"{where} offers no {', '.join(missing)}: bundle these packages (gpu_driver_packages) for "
            f"{suite or 'this release'}"
        )
    candidate = policy.get(version_package, PackagePolicy(None, None)).candidate
    if candidate is not None and version_package not in missing:
        major = driver_major(candidate)
        if major < minimum and not accept_cpu_fallback:
            refusals.append(
                f"{where} offers only driver {upstream_version(candidate)} ({version_package} {candidate}), "
                f"below {minimum}: Ollama drops such a GPU and runs on the CPU ({DRIVER_TOO_OLD!r}; it needs "
                f"{MIN_DRIVER} or newer, {MIN_DRIVER_LEGACY_COMPUTE} for compute capability below 7.0). "
                "Bundle a newer driver (for Debian 12, NVIDIA's own Debian 12 repository packages), or set "
                "gpu_driver_accept_cpu_fallback to true to install this one and accept the CPU fallback"
            )
    return refusals


def parse_dkms_status(text: str) -> List[DkmsEntry]:
    """``dkms status`` lines (dkms 3: ``name/version, kernel, arch: state``; dkms 2: commas)."""
    entries = []
    for raw in _lines(text, "dkms status's output"):
        line = raw.strip()
        if not line or line.startswith(("Warning", "WARNING", "Error", "Deprecated")):
            continue
        match = _DKMS_RE.match(line)
        if not match:
            raise NvidiaError(
                f"dkms status printed a line that is not 'module/version, kernel, arch: state': {quote(line)}"
            )
        entries.append(
            DkmsEntry(
                match["module"], match["version"], match["kernel"], match["arch"], match["state"].strip()
            )
        )
    return entries


def dkms_built(entries: Iterable[DkmsEntry], version: str, kernel: str) -> Optional[DkmsEntry]:
    """The entry of driver ``version`` installed for ``kernel``, or ``None``."""
    for entry in entries:
        if entry.version == version and entry.kernel == kernel and entry.state == "installed":
            return entry
    return None


def parse_proc_modules(text: str) -> List[str]:
    """The names of the loaded kernel modules (``/proc/modules``)."""
    return [line.split(" ", 1)[0] for line in _lines(text, "/proc/modules") if line.strip()]


def reboot_reasons(
    running_kernel: str,
    kernel: str,
    loaded_modules: Iterable[str],
    loaded_driver: Optional[str],
    installed_driver: Optional[str],
) -> List[str]:
    """Why the installed driver takes effect only after a reboot; empty when it can be loaded now."""
    reasons = []
    modules = set(loaded_modules)
    if kernel != running_kernel:
        reasons.append(f"the driver is built for kernel {kernel} and the node runs {running_kernel}")
    if "nouveau" in modules:
        reasons.append("nouveau is loaded; it is blacklisted and stays unloaded after a reboot")
    if loaded_driver and installed_driver and loaded_driver != installed_driver:
        reasons.append(f"driver {loaded_driver} is loaded and {installed_driver} is installed")
    return reasons


# --- a GPU node as Ollama sees it -------------------------------------------------------------


def parse_smi_csv(text: str) -> List[Gpu]:
    """``nvidia-smi`` with :data:`SMI_QUERY`: one line per GPU, fields separated by ``", "``.

    The name comes first and may itself hold ``", "``, so the line is split from the right.
    """
    gpus = []
    for line in _lines(text, "nvidia-smi's output"):
        if not line.strip():
            continue
        parts = line.rsplit(", ", len(SMI_FIELDS) - 1)
        if len(parts) != len(SMI_FIELDS):
            raise NvidiaError(
                f"nvidia-smi printed {quote(line)}, not the {len(SMI_FIELDS)} fields {', '.join(SMI_FIELDS)}"
            )
        name, uuid, driver, compute, memory, persistence = (p.strip() for p in parts)
        if not uuid.startswith(("GPU-", "MIG-")):
            raise NvidiaError(f"nvidia-smi printed {quote(line)}: {quote(uuid)} is not a GPU UUID")
        driver_major(driver)
        gpus.append(
            Gpu(
                name=name,
                uuid=uuid,
                driver_version=driver,
                compute_cap=compute,
                memory_total_mib=int(memory) if memory.isdigit() else None,
                persistence_mode=persistence,
            )
        )
    return gpus


def parse_smi_list(text: str) -> List[str]:
    """The UUIDs ``nvidia-smi -L`` lists (``GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)``)."""
    return [m.group(3) for m in (_SMI_LIST_RE.match(line) for line in _lines(text, "nvidia-smi -L")) if m]


def parse_proc_devices(text: str) -> Dict[str, List[int]]:
    """The character-device groups of ``/proc/devices``: ``{name: [major, ...]}``."""
    groups: Dict[str, List[int]] = {}
    section = None
    for line in _lines(text, "/proc/devices"):
        stripped = line.strip()
        if stripped.endswith("devices:"):
            section = stripped
            continue
        if section != "Character devices:" or not stripped:
            continue
        major, _sep, name = stripped.partition(" ")
        if not major.isdigit() or not name:
            raise NvidiaError(f"/proc/devices has a line that is not 'major name': {quote(line)}")
        groups.setdefault(name.strip(), []).append(int(major))
    return groups


def parse_systemctl_show(text: str) -> Dict[str, List[str]]:
    """``systemctl show -p A -p B UNIT`` as ``{property: [value, ...]}`` (a repeated key repeats)."""
    props: Dict[str, List[str]] = {}
    for line in _lines(text, "systemctl show's output"):
        key, sep, value = line.partition("=")
        if sep:
            props.setdefault(key, []).append(value)
    return props


def parse_device_allow(entries: Iterable[str]) -> List[str]:
    """The ``char-`` group patterns a unit's ``DeviceAllow=`` opens for reading and writing."""
    allowed = []
    for entry in entries:
        spec, _sep, access = entry.strip().partition(" ")
        if spec.startswith("char-") and "r" in access and "w" in access:
            allowed.append(spec[len("char-") :])
    return allowed


def device_coverage(
    groups: Mapping[str, Sequence[int]], allowed: Sequence[str]
) -> Tuple[List[str], List[str], List[str]]:
    """(NVIDIA groups registered, those the unit does not allow, what is missing for CUDA).

    systemd matches ``char-`` names against ``/proc/devices`` with shell-style wildcards, and so
    does this check.
    """
    present = [g for g in NVIDIA_DEVICE_GROUPS if g in groups]
    uncovered = [g for g in present if not any(fnmatch.fnmatchcase(g, pattern) for pattern in allowed)]
    missing = []
    if not any(g in groups for g in CONTROL_GROUPS):
        missing.append(
            "no nvidia-frontend (driver 535) or nvidia and nvidiactl (545 and newer): "
            "the nvidia module is not loaded"
        )
    if UVM_GROUP not in groups:
        missing.append("no nvidia-uvm: the module CUDA needs is not loaded")
    return present, uncovered, missing


def parse_device_minor(text: str) -> Optional[int]:
    """The ``Device Minor:`` of ``/proc/driver/nvidia/gpus/<bus>/information``."""
    for line in _lines(text, "the driver's GPU information"):
        key, _sep, value = line.partition(":")
        if key.strip() == "Device Minor" and value.strip().isdigit():
            return int(value.strip())
    return None


def device_nodes_wanted(minors: Iterable[int]) -> List[str]:
    """The device nodes CUDA opens: the control device, UVM, and one per GPU (``/dev/nvidia0`` at least)."""
    found = sorted(set(minors)) or [0]
    return ["/dev/nvidiactl", "/dev/nvidia-uvm"] + [f"/dev/nvidia{m}" for m in found]


def too_old_lines(lines: Iterable[str], limit: int = 5) -> List[str]:
    """Ollama's log lines that say it dropped a GPU for its driver (at most ``limit``, quoted)."""
    return [quote(line, 300) for line in lines if DRIVER_TOO_OLD in line][:limit]


def parse_ps(doc: Any, model: str) -> Optional[Dict[str, Any]]:
    """The entry of ``model`` in Ollama's ``/api/ps`` answer (``{"models": [...]}``), or ``None``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise NvidiaError(
            f"/api/ps answered something other than an object with a list 'models': {quote(str(doc))}"
        )
    wanted = {model, model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"}
    for entry in doc["models"]:
        if isinstance(entry, dict) and (entry.get("name") in wanted or entry.get("model") in wanted):
            size = entry.get("size")
            vram = entry.get("size_vram")
            if not isinstance(size, int) or not isinstance(vram, int) or isinstance(vram, bool):
                raise NvidiaError(f"/api/ps lists {quote(model)} without integer size and size_vram")
            return {"name": entry.get("name"), "size": size, "size_vram": vram}
    return None


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def evaluate_node(
    *,
    unit_loaded: bool,
    gpus: Sequence[Gpu],
    smi_error: str,
    groups: Mapping[str, Sequence[int]],
    device_allow: Sequence[str],
    unit: str,
    nodes: Mapping[str, bool],
    modules: Iterable[str],
    log_too_old: Sequence[str],
    model: str,
    ps: Optional[Dict[str, Any]],
    ps_error: str,
    sandbox_gpus: Sequence[str],
    sandbox_error: str,
    accept_cpu_fallback: bool,
) -> List[Check]:
    """Every check of a GPU node ready for Ollama, each with what was seen."""
    checks = [
        Check(
            "unit",
            unit_loaded,
            f"{unit} is installed"
            if unit_loaded
            else f"{unit} is not installed: run airgap.llm.ollama_binary first",
        )
    ]
    if gpus:
        listed = "; ".join(
            f"{g.name} ({g.uuid}): driver {g.driver_version}, compute {g.compute_cap}, "
            f"{g.memory_total_mib if g.memory_total_mib is not None else '?'} MiB, "
            f"persistence {g.persistence_mode}"
            for g in gpus
        )
        checks.append(Check("nvidia_smi", True, listed))
    else:
        checks.append(Check("nvidia_smi", False, smi_error or "nvidia-smi lists no GPU"))

    low = [g for g in gpus if driver_major(g.driver_version) < minimum_driver(g.compute_cap)]
    if not gpus:
        checks.append(Check("driver_minimum", False, "no GPU to check (see nvidia_smi)"))
    elif low:
        detail = "; ".join(
            f"{g.name}: driver {g.driver_version} is below {minimum_driver(g.compute_cap)} "
            f"(compute capability {g.compute_cap}); Ollama runs on the CPU"
            for g in low
        )
        checks.append(
            Check(
                "driver_minimum",
                accept_cpu_fallback,
                detail + (" (accepted: gpu_driver_accept_cpu_fallback)" if accept_cpu_fallback else ""),
            )
        )
    else:
        checks.append(
            Check(
                "driver_minimum",
                True,
                "; ".join(
                    f"{g.driver_version} >= {minimum_driver(g.compute_cap)} for compute {g.compute_cap}"
                    for g in gpus
                ),
            )
        )

    off = [g for g in gpus if g.persistence_mode != "Enabled"]
    checks.append(
        Check(
            "persistence_mode",
            bool(gpus) and not off,
            (
                "persistence mode is "
                + ", ".join(f"{g.persistence_mode} on {g.uuid}" for g in off)
                + ": start nvidia-persistenced.service"
            )
            if off
            else ("Enabled on every GPU" if gpus else "no GPU to check"),
        )
    )

    allowed = parse_device_allow(device_allow)
    present, uncovered, missing = device_coverage(groups, allowed)
    problems = list(missing)
    if uncovered:
        problems.append(
            f"{unit} does not allow {', '.join(uncovered)} (DeviceAllow: {', '.join(allowed) or 'none'})"
        )
    registered = ", ".join(f"{g} ({'/'.join(str(m) for m in groups[g])})" for g in present) or "none"
    checks.append(
        Check(
            "device_groups",
            not problems,
            ("; ".join(problems) + f"; registered: {registered}")
            if problems
            else f"registered {registered}, all allowed by {unit}",
        )
    )

    absent = [path for path, ok in nodes.items() if not ok]
    checks.append(
        Check(
            "device_nodes",
            not absent,
            (
                f"missing or not character devices: {', '.join(absent)} "
                "(airgap-nvidia-devices.service creates them)"
            )
            if absent
            else f"{', '.join(nodes)} present",
        )
    )

    nouveau = "nouveau" in set(modules)
    checks.append(
        Check(
            "nouveau",
            not nouveau,
            "nouveau is loaded: reboot the node (it is blacklisted)" if nouveau else "nouveau is not loaded",
        )
    )

    if log_too_old:
        checks.append(
            Check(
                "ollama_log",
                accept_cpu_fallback,
                f"{unit} logged {DRIVER_TOO_OLD!r}: {' | '.join(log_too_old)}"
                + (" (accepted: gpu_driver_accept_cpu_fallback)" if accept_cpu_fallback else ""),
            )
        )
    else:
        checks.append(Check("ollama_log", True, f"no {DRIVER_TOO_OLD!r} since {unit} started"))

    if ps is None:
        checks.append(Check("vram", False, ps_error or f"/api/ps does not list {model} after the generate"))
    elif ps["size_vram"] > 0:
        checks.append(Check("vram", True, f"{model}: {_mib(ps['size_vram'])} of {_mib(ps['size'])} in VRAM"))
    else:
        checks.append(
            Check(
                "vram",
                accept_cpu_fallback,
                f"{model}: {_mib(ps['size'])} loaded, none in VRAM: Ollama runs it on the CPU"
                + (" (accepted: gpu_driver_accept_cpu_fallback)" if accept_cpu_fallback else ""),
            )
        )

    if sandbox_gpus:
        checks.append(
            Check(
                "sandbox",
                True,
                f"nvidia-smi -L in a unit with {unit}'s sandbox lists {', '.join(sandbox_gpus)}",
            )
        )
    else:
        checks.append(
            Check(
                "sandbox",
                False,
                sandbox_error or f"nvidia-smi -L in a unit with {unit}'s sandbox lists no GPU",
            )
        )
    return checks
