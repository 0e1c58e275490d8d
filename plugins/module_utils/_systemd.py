# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""systemd unit rendering, hardening profiles and exposure scoring: the one place for all three.

A unit is given as structured data, ``{section: {key: value}}``; a value is a string, a number,
a boolean (``yes``/``no``), ``None`` (leave the key out, also to drop a profile default) or a
list (the key repeated once per item, in order). Service units, and drop-ins of services, get the
``strict`` hardening profile under their ``[Service]`` section unless told otherwise; named
relaxations loosen it explicitly and visibly, and keys the caller sets win over the profile.

Exposure is scored by ``systemd-analyze security --offline=true`` on a private copy of the unit
(and, for a drop-in, of the unit it extends), so a unit can be judged before it is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError

__all__ = [
    "NVIDIA_DEVICES",
    "NVIDIA_DEVICE_GROUPS",
    "RELAXATIONS",
    "SCORE_MIN_VERSION",
    "UNIT_SEARCH_PATHS",
    "SystemdUnitError",
    "check_dropin_name",
    "find_analyze",
    "find_base_unit",
    "hardening_directives",
    "render_unit",
    "score_exposure",
    "systemd_version",
    "transient_properties",
    "unit_kind",
    "verify_unit",
]

UNIT_TYPES = ("service", "socket", "timer", "path", "target", "mount")
UNIT_NAME_RE = re.compile(r"\A[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(" + "|".join(UNIT_TYPES) + r")\Z")
DROPIN_NAME_RE = re.compile(r"\A[A-Za-z0-9_.-]+\.conf\Z")
SECTION_RE = re.compile(r"\A[A-Z][A-Za-z-]*\Z")
KEY_RE = re.compile(r"\A[A-Z][A-Za-z0-9]*\Z")
EXPOSURE_RE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")
SCORE_MIN_VERSION = 250
"""``systemd-analyze security --offline`` first appeared in systemd 250."""

UNIT_SEARCH_PATHS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
"""Where a packaged or local unit that a drop-in extends may live, in systemd's order."""

# The strict profile: every directive systemd-analyze security weighs, set to its safe value,
# for a service that runs as its own user, keeps its state in StateDirectory= and friends, and
# talks over loopback only. Order is kept in the rendered file.
STRICT_PROFILE: Tuple[Tuple[str, Any], ...] = (
    ("NoNewPrivileges", True),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("ProtectSystem", "strict"),
    ("ProtectHome", True),
    ("PrivateTmp", True),
    ("PrivateDevices", True),
    ("DevicePolicy", "closed"),
    ("PrivateUsers", True),
    ("ProtectHostname", True),
    ("ProtectClock", True),
    ("ProtectKernelTunables", True),
    ("ProtectKernelModules", True),
    ("ProtectKernelLogs", True),
    ("ProtectControlGroups", True),
    ("ProtectProc", "invisible"),
    ("ProcSubset", "pid"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("RestrictNamespaces", True),
    ("RestrictRealtime", True),
    ("RestrictSUIDSGID", True),
    ("LockPersonality", True),
    ("MemoryDenyWriteExecute", True),
    ("RemoveIPC", True),
    ("KeyringMode", "private"),
    ("UMask", "0077"),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", ["@system-service", "~@privileged @resources"]),
    ("SystemCallErrorNumber", "EPERM"),
    ("IPAddressDeny", "any"),
    ("IPAddressAllow", "localhost"),
)

NVIDIA_DEVICE_GROUPS = ("nvidia-frontend", "nvidia", "nvidiactl", "nvidia-uvm", "nvidia-caps")
"""The character-device groups (``/proc/devices`` names) a CUDA program opens, of both driver
generations: up to 535 the driver registers major 195 as ``nvidia-frontend``; from 545 on as
``nvidia`` (the GPUs) and ``nvidiactl`` (the control device); both have ``nvidia-uvm`` and
``nvidia-caps``. systemd starts a unit whose ``DeviceAllow=`` names a group that is not registered,
so a unit that allows all of them works with either driver."""

NVIDIA_DEVICES = [f"char-{group} rw" for group in NVIDIA_DEVICE_GROUPS]

# Named relaxations: each says which profile directives it changes, and to what (None drops
# the directive). They are the only way the profile is loosened besides explicit keys.
RELAXATIONS: Dict[str, Tuple[Tuple[str, Any], ...]] = {
    # NVIDIA GPUs: the device nodes are reachable, nothing else is; drivers 570+ read
    # /proc/driver/nvidia, so the process must see all of /proc (not only its own PIDs).
    "nvidia_gpu": (
        ("PrivateDevices", False),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", NVIDIA_DEVICES),
        ("ProcSubset", None),
    ),
    # A front door: the service talks to the network, not only to loopback.
    "network": (
        ("IPAddressDeny", None),
        ("IPAddressAllow", None),
    ),
    # Listening on a port below 1024 as an unprivileged user.
    "bind_privileged_ports": (
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
    ),
    # Programs that need writable and executable memory (JIT compilers, cffi callbacks).
    "write_execute": (("MemoryDenyWriteExecute", False),),
    # Programs that must see the host's users and groups (group-readable files of other users).
    "host_users": (("PrivateUsers", False),),
}


class SystemdUnitError(AirgapError):
    """A unit that cannot be rendered, verified or scored; ``str()`` tells the operator what to do."""


def unit_kind(name: str) -> str:
    """Return the unit type of ``name`` (``service``, ``timer``, ...) or raise on a bad name."""
    if not isinstance(name, str) or not UNIT_NAME_RE.match(name):
        raise SystemdUnitError(
            f"Unit name {name!r} is not valid: expected a name like 'ollama.service' ending in one of "
            f"{', '.join('.' + t for t in UNIT_TYPES)}, made of letters, digits, ':', '_', '.', '-' and '@'."
        )
    return name.rsplit(".", 1)[1]


def check_dropin_name(dropin: str) -> None:
    if not isinstance(dropin, str) or not DROPIN_NAME_RE.match(dropin):
        raise SystemdUnitError(
            f"Drop-in name {dropin!r} is not valid: expected a file name like '10-hardening.conf' "
            "(letters, digits, '_', '.', '-', ending in .conf, no slashes)."
        )


def hardening_directives(profile: str, relaxations: Sequence[str]) -> Dict[str, Any]:
    """The ``[Service]`` directives of ``profile`` with ``relaxations`` applied, in order."""
    if profile == "none":
        if relaxations:
            raise SystemdUnitError(
                f"Relaxations {list(relaxations)} were given with hardening 'none': they loosen the strict "
                "profile and mean nothing without it. Drop them, or use hardening 'strict'."
            )
        return {}
    if profile != "strict":
        raise SystemdUnitError(f"Hardening profile {profile!r} is unknown: expected 'strict' or 'none'.")
    directives: Dict[str, Any] = dict(STRICT_PROFILE)
    for name in relaxations:
        if name not in RELAXATIONS:
            raise SystemdUnitError(
                f"Relaxation {name!r} is unknown: expected one of {', '.join(sorted(RELAXATIONS))}."
            )
        for key, value in RELAXATIONS[name]:
            directives[key] = value
    return directives


def _quote_environment(item: str) -> str:
    """One Environment= assignment, quoted the way systemd unquotes it."""
    if re.search(r'[\s"\'\\]', item):
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return item


def _render_value(section: str, key: str, value: Any) -> List[str]:
    where = f"[{section}] {key}"
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        if "\n" in value or "\r" in value or "\0" in value:
            raise SystemdUnitError(
                f"{where}: value {value!r} contains a line break or NUL, which would inject directives. "
                "Give one line per value, or a list to repeat the key."
            )
        if key == "Environment" and "=" not in value:
            raise SystemdUnitError(f"{where}: {value!r} is not a NAME=value assignment.")
        return [_quote_environment(value) if key == "Environment" else value]
    if isinstance(value, (list, tuple)):
        lines: List[str] = []
        for item in value:
            if isinstance(item, (list, tuple, dict)) or item is None:
                raise SystemdUnitError(
                    f"{where}: list items must be strings, numbers or booleans, got {item!r}."
                )
            lines.extend(_render_value(section, key, item))
        return lines
    raise SystemdUnitError(
        f"{where}: value {value!r} has type {type(value).__name__}; expected a string, number, boolean, "
        "list, or null to leave the key out."
    )


def render_unit(
    sections: Mapping[str, Mapping[str, Any]],
    hardening: Mapping[str, Any],
    header: Optional[str] = None,
) -> str:
    """Render ``sections`` as unit file text, with ``hardening`` merged under ``[Service]``.

    Keys the caller sets win over hardening directives of the same name; ``None`` drops a key.
    """
    if not isinstance(sections, Mapping):
        raise SystemdUnitError(f"The unit must be a mapping of sections, got {type(sections).__name__}.")
    merged: Dict[str, Dict[str, Any]] = {}
    for section, keys in sections.items():
        if not isinstance(section, str) or not SECTION_RE.match(section):
            raise SystemdUnitError(f"Section name {section!r} is not valid: expected a name like 'Service'.")
        if not isinstance(keys, Mapping):
            raise SystemdUnitError(
                f"[{section}] must be a mapping of keys to values, got {type(keys).__name__}."
            )
        for key in keys:
            if not isinstance(key, str) or not KEY_RE.match(key):
                raise SystemdUnitError(
                    f"[{section}] key {key!r} is not valid: expected a name like 'ExecStart'."
                )
        merged[section] = dict(keys)
    if hardening:
        service = merged.setdefault("Service", {})
        combined = dict(hardening)
        combined.update(service)
        merged["Service"] = combined

    out: List[str] = []
    if header:
        out.extend(f"# {line}".rstrip() for line in header.splitlines())
    for section, keys in merged.items():
        if out:
            out.append("")
        out.append(f"[{section}]")
        for key, value in keys.items():
            if value is None:
                continue
            out.extend(f"{key}={rendered}" for rendered in _render_value(section, key, value))
    return "\n".join(out) + "\n"


def transient_properties(directives: Mapping[str, Any]) -> List[str]:
    """``directives`` (as :func:`hardening_directives` returns them) as ``systemd-run`` properties.

    ``KEY=value`` strings, a list repeated once per item, ``None`` left out: the same values a
    unit file gets, so that a transient unit (``systemd-run -p ...``) runs in the sandbox of the
    unit rendered from the same profile.
    """
    return [
        f"{key}={value}"
        for key, raw in directives.items()
        if raw is not None
        for value in _render_value("Service", key, raw)
    ]


def _run(argv: Sequence[str], timeout: int = 60) -> Tuple[int, str, str]:
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except OSError as exc:
        raise SystemdUnitError(f"Cannot run {argv[0]}: {exc.strerror}.") from exc
    except subprocess.TimeoutExpired as exc:
        raise SystemdUnitError(f"{' '.join(argv)} did not finish within {timeout} s.") from exc
    return proc.returncode, proc.stdout, proc.stderr


def systemd_version(analyze: str) -> int:
    """The major version of systemd that ``analyze`` (systemd-analyze) belongs to."""
    rc, out, err = _run([analyze, "--version"])
    match = re.search(r"systemd (\d+)", out)
    if rc != 0 or not match:
        raise SystemdUnitError(
            f"Cannot tell the systemd version from '{analyze} --version': {(out + err).strip()!r}."
        )
    return int(match.group(1))


def _unit_problems(stderr: str) -> List[str]:
    """Lines in which systemd says it ignored part of a unit: a typo there silently weakens it."""
    markers = ("Unknown key", "Unknown section", "Unknown lvalue", "Failed to parse", "Invalid ", "ignoring")
    return [line.strip() for line in stderr.splitlines() if any(m in line for m in markers)]


def _stage(root: str, name: str, content: str, dropin: Optional[str], base_text: Optional[str]) -> str:
    """Lay the unit out under ``root``/etc/systemd/system and return that directory."""
    unit_dir = os.path.join(root, "etc", "systemd", "system")
    os.makedirs(unit_dir, exist_ok=True)
    if dropin:
        if base_text is not None:
            with open(os.path.join(unit_dir, name), "w", encoding="utf-8") as handle:
                handle.write(base_text)
        os.makedirs(os.path.join(unit_dir, name + ".d"), exist_ok=True)
        with open(os.path.join(unit_dir, name + ".d", dropin), "w", encoding="utf-8") as handle:
            handle.write(content)
    else:
        with open(os.path.join(unit_dir, name), "w", encoding="utf-8") as handle:
            handle.write(content)
    return unit_dir


def verify_unit(
    analyze: str, name: str, content: str, dropin: Optional[str], base_text: Optional[str]
) -> None:
    """Check the unit with ``systemd-analyze verify`` against this host (binaries, dependencies).

    Fails on errors and on any directive systemd says it ignores.
    """
    with tempfile.TemporaryDirectory(prefix="airgap-unit-") as tmp:
        unit_dir = _stage(tmp, name, content, dropin, base_text)
        rc, out, err = _run([analyze, "verify", "--man=no", os.path.join(unit_dir, name)])
    ignored = _unit_problems(err)
    if rc != 0 or ignored:
        detail = "; ".join(ignored or [line.strip() for line in (err or out).splitlines() if line.strip()])
        raise SystemdUnitError(
            f"systemd-analyze verify rejects {name}{' drop-in ' + dropin if dropin else ''}: {detail}. "
            "Fix the unit data (names of keys and sections, paths in Exec lines), or set verify to false "
            "when the program it starts is installed later in the play."
        )


def score_exposure(
    analyze: str, name: str, content: str, dropin: Optional[str], base_text: Optional[str]
) -> float:
    """The overall exposure (0.0 safest to 10.0) that systemd-analyze gives the unit, offline."""
    with tempfile.TemporaryDirectory(prefix="airgap-unit-") as tmp:
        _stage(tmp, name, content, dropin, base_text)
        rc, out, err = _run([analyze, "security", "--no-pager", "--offline=true", f"--root={tmp}", name])
    match = EXPOSURE_RE.search(out)
    if rc != 0 or not match:
        raise SystemdUnitError(
            f"systemd-analyze security could not score {name}: {(err or out).strip()[-500:]!r}."
        )
    ignored = _unit_problems(err)
    if ignored:
        raise SystemdUnitError(
            f"systemd ignores part of {name}: {'; '.join(ignored)}. Fix the key or section names."
        )
    return float(match.group(1))


def find_base_unit(name: str, search: Iterable[str] = UNIT_SEARCH_PATHS) -> Optional[str]:
    """The text of the unit a drop-in extends, from the first directory of ``search`` that has it."""
    for directory in search:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    return None


def find_analyze() -> Optional[str]:
    return shutil.which("systemd-analyze")
