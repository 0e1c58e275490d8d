# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Python wheelhouses: exact pins downloaded for a target Python (low side), hash-locked.

A wheelhouse is a directory of wheels (``*.whl``, directly in it) and ``requirements.lock``, a
pip requirements file that pins every wheel of the directory, one per line, by name, version and
SHA-256::

    # airgap.llm wheelhouse: python 3.11, cp, manylinux_2_36_x86_64; 176 wheels
    aiohttp==3.14.5 --hash=sha256:<64 hex>  # aiohttp-3.14.5-cp311-cp311-manylinux_2_17_x86_64...whl

so that a node installs it with ``pip install --no-index --no-deps --require-hashes --find-links
<dir> -r requirements.lock`` and nothing else. The lock and the directory correspond one to one:
every wheel has its line (name, version and digest agree with the file), every line its wheel.

:func:`download` makes a wheelhouse with pip (``pip download --only-binary=:all:`` for the target's
Python version, implementation, ABIs and platforms): from exact pins resolved with their
dependencies (``requirements``), pins taken without theirs (``no_deps``: a package whose
dependency list another set replaces, as Open WebUI's ``requirements-slim.txt`` does), or an
earlier lock reproduced exactly (``lock``). :func:`check_wheelhouse` is the one check of a
wheelhouse, used by ``bundle_build`` for the ``wheelhouse`` kind and after every download.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import hash_many
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    atomic_write,
    fsync_dir,
    read_bounded,
)

__all__ = [
    "LOCK_NAME",
    "LockedWheel",
    "Target",
    "WheelhouseError",
    "check_wheelhouse",
    "download",
    "normalize_name",
    "parse_lock",
    "parse_pin",
    "parse_wheel_name",
    "render_lock",
]

LOCK_NAME = "requirements.lock"
MAX_LOCK = 4 << 20
MAX_WHEELS = 5000
PIP_TIMEOUT = 3600
# PEP 427: {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl
WHEEL_RE = re.compile(
    r"\A(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[A-Za-z0-9_.!+]+)"
    r"(?:-(?P<build>[0-9][A-Za-z0-9_.]*))?-(?P<py>[A-Za-z0-9_.]+)-(?P<abi>[A-Za-z0-9_.]+)"
    r"-(?P<platform>[A-Za-z0-9_.]+)\.whl\Z"
)
# An exact pin as the lock and the requests accept it: name, optional extras, == version.
PIN_RE = re.compile(
    r"\A(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?P<extras>\[[A-Za-z0-9._,-]+\])?"
    r"==(?P<version>[A-Za-z0-9_.!+-]+)\Z"
)
LOCK_LINE_RE = re.compile(
    r"\A(?P<pin>\S+) --hash=sha256:(?P<sha256>[0-9a-f]{64})(?:\s+#\s*(?P<file>\S+))?\s*\Z"
)
PYTHON_RE = re.compile(r"\A3\.[0-9]{1,2}\Z")
PLATFORM_RE = re.compile(
    r"\A(?:manylinux_(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<arch>[a-z0-9_]+)|[a-z0-9_]+)\Z"
)


class WheelhouseError(AirgapError):
    """A bad request, a wheelhouse whose lock and wheels disagree, or a failed pip download."""


def normalize_name(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(filename: str) -> Tuple[str, str]:
    """(normalised name, version) of a wheel file name; raises on anything that is not one."""
    match = WHEEL_RE.match(filename)
    if not match:
        raise WheelhouseError(
            f"{quote(filename)} is not a wheel file name (name-version-python-abi-platform.whl): a "
            "wheelhouse holds wheels and requirements.lock, nothing else"
        )
    return normalize_name(match.group("name")), match.group("version")


def parse_pin(text: str, what: str) -> Tuple[str, str]:
    """(normalised name, version) of an exact pin ``name[extras]==version``; raises otherwise."""
    match = PIN_RE.match(text.strip())
    if not match:
        raise WheelhouseError(
            f"{what}: {quote(text)} is not an exact pin: write name==version (extras allowed, as "
            "name[extra]==version), never a range, a URL or an option"
        )
    return normalize_name(match.group("name")), match.group("version")


class LockedWheel(NamedTuple):
    """One line of ``requirements.lock``."""

    name: str
    version: str
    sha256: str
    filename: str


class Target(NamedTuple):
    """The Python the wheels are for: version (3.11), implementation (cp), platforms."""

    python_version: str
    implementation: str
    platforms: Tuple[str, ...]

    @classmethod
    def make(cls, python_version: str, implementation: str, platform: str) -> Target:
        if not PYTHON_RE.match(python_version or ""):
            raise WheelhouseError(
                f"python_version {quote(python_version)} must be a Python 3 version such as 3.11 (the "
                "target node's python3)"
            )
        if implementation not in ("cp", "py"):
            raise WheelhouseError(f"implementation {quote(implementation)} must be cp (CPython) or py")
        match = PLATFORM_RE.match(platform or "")
        if not match:
            raise WheelhouseError(
                f"platform {quote(platform)} must be a wheel platform tag such as manylinux_2_36_x86_64 "
                "(glibc 2.36 on x86_64, as Debian 12)"
            )
        platforms = [platform]
        if match.group("major") == "2":
            # A glibc 2.N system runs wheels for every 2.M <= N, and the legacy aliases of those.
            arch = match.group("arch")
            minor = int(match.group("minor"))
            platforms = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
            legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
            platforms += [f"{alias}_{arch}" for level, alias in legacy.items() if level <= minor]
        return cls(python_version, implementation, tuple(platforms))

    @property
    def abis(self) -> Tuple[str, ...]:
        if self.implementation == "py":
            return ("none",)
        return (f"cp{self.python_version.replace('.', '')}", "abi3", "none")

    def pip_args(self) -> List[str]:
        args = ["--only-binary=:all:", "--python-version", self.python_version]
        args += ["--implementation", self.implementation]
        for abi in self.abis:
            args += ["--abi", abi]
        for platform in self.platforms:
            args += ["--platform", platform]
        return args

    def describe(self) -> str:
        return f"python {self.python_version}, {self.implementation}, {self.platforms[0]}"


# ------------------------------------------------------------------------------------------ the lock


def render_lock(wheels: Sequence[LockedWheel], target: Optional[Target]) -> bytes:
    header = f"# airgap.llm wheelhouse: {target.describe() if target else 'target not recorded'}; "
    header += f"{len(wheels)} wheels\n"
    header += "# pip install --no-index --no-deps --require-hashes --find-links <this directory> "
    header += f"-r {LOCK_NAME}\n"
    lines = [
        f"{w.name}=={w.version} --hash=sha256:{w.sha256}  # {w.filename}\n"
        for w in sorted(wheels, key=lambda w: (w.name, w.version, w.filename))
    ]
    return (header + "".join(lines)).encode("utf-8")


def parse_lock(raw: bytes, where: str) -> List[LockedWheel]:
    """The lines of a ``requirements.lock`` (one exact pin and one sha256 each); raises on others."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WheelhouseError(f"{where} is not UTF-8 text; it is not a wheelhouse lock") from None
    wheels: List[LockedWheel] = []
    seen: Dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = LOCK_LINE_RE.match(stripped)
        if not match:
            raise WheelhouseError(
                f"{where} line {number}: {quote(stripped)} is not 'name==version --hash=sha256:<64 hex>' "
                "(one pin and one digest per line, as airgap.llm.wheelhouse writes it)"
            )
        name, version = parse_pin(match.group("pin"), f"{where} line {number}")
        if name in seen:
            raise WheelhouseError(
                f"{where} line {number}: {name} is pinned twice (also on line {seen[name]}); a lock pins "
                "one version of each package"
            )
        seen[name] = number
        wheels.append(LockedWheel(name, version, match.group("sha256"), match.group("file") or ""))
    if not wheels:
        raise WheelhouseError(f"{where} pins no wheels")
    if len(wheels) > MAX_WHEELS:
        raise WheelhouseError(f"{where} pins {len(wheels)} wheels, more than {MAX_WHEELS}")
    return wheels


def check_wheelhouse(
    entries: Sequence[Tuple[str, str, int]], where: str
) -> Tuple[List[LockedWheel], Dict[str, str]]:
    """Check a wheelhouse given as (relative path, path, size) entries; return its lock and digests.

    The directory must hold ``requirements.lock`` and wheels only, directly in it; every wheel
    must have its line in the lock (same name, version and sha256) and every line its wheel.
    Returns the lock's wheels and ``{relative path: sha256}`` of every file (the lock included),
    each file read once.
    """
    names = [rel for rel, _path, _size in entries]
    if LOCK_NAME not in names:
        raise WheelhouseError(
            f"{where}: no {LOCK_NAME}; a wheelhouse is made by airgap.llm.wheelhouse (wheels and their lock)"
        )
    for rel in names:
        if rel != LOCK_NAME and ("/" in rel or not rel.endswith(".whl")):
            raise WheelhouseError(
                f"{where}: {quote(rel)} is neither a wheel directly in the directory nor {LOCK_NAME}; "
                "a wheelhouse holds nothing else"
            )
        if rel != LOCK_NAME:
            parse_wheel_name(rel)
    outcomes = hash_many([path for _rel, path, _size in entries])
    digests: Dict[str, str] = {}
    for (rel, _path, _size), outcome in zip(entries, outcomes):
        if outcome.error is not None or outcome.hexdigest is None:
            raise WheelhouseError(f"{where}: cannot read {rel}: {outcome.error}")
        digests[rel] = outcome.hexdigest
    lock_path = dict((rel, path) for rel, path, _size in entries)[LOCK_NAME]
    try:
        raw = read_bounded(lock_path, MAX_LOCK)
    except (OSError, FileError) as exc:
        raise WheelhouseError(f"{where}: cannot read {LOCK_NAME}: {exc}") from None
    locked = parse_lock(raw, f"{where}/{LOCK_NAME}")
    by_digest = {digest: rel for rel, digest in digests.items() if rel != LOCK_NAME}
    problems: List[str] = []
    for wheel in locked:
        rel = by_digest.pop(wheel.sha256, "")
        if not rel:
            problems.append(f"{wheel.name}=={wheel.version} (sha256 {wheel.sha256}) has no wheel")
            continue
        name, version = parse_wheel_name(rel)
        if (name, version) != (wheel.name, wheel.version):
            problems.append(
                f"{rel} is {name} {version} but its digest is locked as {wheel.name}=={wheel.version}"
            )
    problems += [f"{rel} is not in the lock (sha256 {digest})" for digest, rel in sorted(by_digest.items())]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise WheelhouseError(
            f"{where}: the wheels and {LOCK_NAME} disagree: {shown}. Make the wheelhouse again with "
            "airgap.llm.wheelhouse; never edit one by hand"
        )
    return locked, digests


# ------------------------------------------------------------------------------------ the download


def _pins(items: Sequence[str], what: str) -> List[str]:
    out = []
    for number, item in enumerate(items):
        if not isinstance(item, str):
            raise WheelhouseError(f"{what}[{number}] must be a string name==version")
        parse_pin(item, f"{what}[{number}]")
        out.append(item.strip())
    return out


def request_digest(
    target: Target,
    requirements: Sequence[str],
    no_deps: Sequence[str],
    constraints: Sequence[str],
    lock: Optional[bytes],
) -> str:
    """What a wheelhouse was asked to be, as one digest (recorded in its lock's header)."""
    doc = "\n".join(
        [
            "target " + " ".join([target.python_version, target.implementation, *target.platforms]),
            "requirements " + " ".join(requirements),
            "no_deps " + " ".join(no_deps),
            "constraints " + " ".join(constraints),
            "lock " + (hashlib.sha256(lock).hexdigest() if lock is not None else "-"),
        ]
    )
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def recorded_request(dest: str) -> Optional[str]:
    """The request digest in the header of ``dest``'s lock (None when there is none)."""
    try:
        raw = read_bounded(os.path.join(dest, LOCK_NAME), MAX_LOCK)
    except (OSError, FileError):
        return None
    match = re.search(rb"^# request: ([0-9a-f]{64})$", raw, re.M)
    return match.group(1).decode("ascii") if match else None


def _run_pip(argv: List[str], what: str) -> None:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONUTF8="1")
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False, env=env
        )
    except OSError as exc:
        raise WheelhouseError(f"cannot run pip ({argv[0]}): {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise WheelhouseError(f"pip download of {what} did not finish within {PIP_TIMEOUT} s") from None
    if done.returncode != 0:
        tail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-8:]
        raise WheelhouseError(
            f"pip download of {what} failed (exit {done.returncode}): {' | '.join(tail)}. Check the pins, "
            "the index and that every package has a wheel for the target"
        )


def download(
    dest: str,
    target: Target,
    *,
    requirements: Sequence[str] = (),
    no_deps: Sequence[str] = (),
    constraints: Sequence[str] = (),
    lock: Optional[bytes] = None,
    pip: Sequence[str] = (),
    index_args: Sequence[str] = (),
    check_mode: bool = False,
) -> Tuple[bool, List[LockedWheel], Optional[str]]:
    """Make the wheelhouse ``dest``, replaced whole or left as it was; (changed, wheels, lock sha256).

    ``dest`` is left alone when its lock records the same request and the directory passes
    :func:`check_wheelhouse`. In check mode nothing is downloaded or written: a wheelhouse that
    would be made is reported changed, with no wheels and no lock digest.
    """
    requirements = _pins(requirements, "requirements")
    no_deps = _pins(no_deps, "no_deps")
    constraints = _pins(constraints, "constraints")
    if lock is None and not requirements and not no_deps:
        raise WheelhouseError("give the pins (requirements and/or no_deps) or an earlier lock to reproduce")
    if lock is not None and (requirements or no_deps or constraints):
        raise WheelhouseError("give either an earlier lock or pins, not both: a lock already pins everything")
    locked_in: List[LockedWheel] = parse_lock(lock, "the lock to reproduce") if lock is not None else []
    wanted = request_digest(target, requirements, no_deps, constraints, lock)
    if os.path.isdir(dest) and recorded_request(dest) == wanted:
        with contextlib.suppress(WheelhouseError):
            wheels = _check_dir(dest)
            return False, wheels, _lock_sha256(dest)
    if check_mode:
        return True, [], None
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, 0o755, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.", dir=parent)
    try:
        wheels = _download_into(
            work,
            target,
            requirements,
            no_deps,
            constraints,
            locked_in,
            list(pip) or [sys.executable, "-m", "pip"],
            list(index_args),
        )
        body = render_lock(wheels, target)
        header, _sep, rest = body.partition(b"\n")
        atomic_write(
            os.path.join(work, LOCK_NAME), header + b"\n# request: " + wanted.encode("ascii") + b"\n" + rest
        )
        _check_dir(work)
        os.chmod(work, 0o755)  # noqa: S103 - wheels are public; the directory is read by pip and bundles
        if os.path.lexists(dest):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.old.", dir=parent)
            os.rename(dest, os.path.join(old, "tree"))
            os.rename(work, dest)
            shutil.rmtree(old)
        else:
            os.rename(work, dest)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return True, wheels, _lock_sha256(dest)


def _lock_sha256(directory: str) -> str:
    return hashlib.sha256(read_bounded(os.path.join(directory, LOCK_NAME), MAX_LOCK)).hexdigest()


def _check_dir(directory: str) -> List[LockedWheel]:
    entries = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False):
            raise WheelhouseError(f"{directory}: {quote(entry.name)} is not a regular file")
        entries.append((entry.name, entry.path, entry.stat(follow_symlinks=False).st_size))
    locked, _digests = check_wheelhouse(entries, directory)
    return locked


def _download_into(  # noqa: PLR0917 - one private call site, every argument named there
    work: str,
    target: Target,
    requirements: List[str],
    no_deps: List[str],
    constraints: List[str],
    locked_in: List[LockedWheel],
    pip: List[str],
    index_args: List[str],
) -> List[LockedWheel]:
    base = [*pip, "download", "--dest", work, "--progress-bar", "off", *index_args, *target.pip_args()]
    with tempfile.TemporaryDirectory(prefix="airgap-wheelhouse-") as tmp:
        if locked_in:
            path = os.path.join(tmp, "lock.txt")
            with open(path, "w", encoding="utf-8") as handle:
                handle.writelines(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in locked_in)
            _run_pip([*base, "--no-deps", "--require-hashes", "-r", path], "the locked wheels")
        if requirements:
            path = os.path.join(tmp, "requirements.txt")
            with open(path, "w", encoding="utf-8") as handle:
                handle.writelines(f"{item}\n" for item in requirements)
            args = [*base, "-r", path]
            if constraints:
                cpath = os.path.join(tmp, "constraints.txt")
                with open(cpath, "w", encoding="utf-8") as handle:
                    handle.writelines(f"{item}\n" for item in constraints)
                args += ["-c", cpath]
            _run_pip(args, "the requirements")
        if no_deps:
            _run_pip([*base, "--no-deps", *no_deps], "the pins without dependencies")
    files = sorted(os.listdir(work))
    others = [name for name in files if not name.endswith(".whl")]
    if others:
        raise WheelhouseError(
            f"pip downloaded files that are not wheels ({', '.join(quote(n) for n in others[:5])}); the "
            "target needs a wheel of every package (--only-binary=:all:)"
        )
    paths = [os.path.join(work, name) for name in files]
    wheels: Dict[str, LockedWheel] = {}
    for name, outcome in zip(files, hash_many(paths)):
        if outcome.error is not None or outcome.hexdigest is None:
            raise WheelhouseError(f"cannot read the downloaded {name}: {outcome.error}")
        dist, version = parse_wheel_name(name)
        if dist in wheels:
            raise WheelhouseError(
                f"pip downloaded two versions of {dist} ({wheels[dist].filename}, {name}); pin one of them"
            )
        wheels[dist] = LockedWheel(dist, version, outcome.hexdigest, name)
    if locked_in:
        expected = {(w.name, w.version, w.sha256) for w in locked_in}
        got = {(w.name, w.version, w.sha256) for w in wheels.values()}
        if expected != got:
            raise WheelhouseError(
                "the download does not reproduce the lock: "
                + ", ".join(sorted(f"{n}=={v}" for n, v, _h in expected ^ got)[:5])
            )
    for item in [*requirements, *no_deps]:
        name, version = parse_pin(item, "requirements")
        if name not in wheels or wheels[name].version != version:
            found = wheels[name].version if name in wheels else "none"
            raise WheelhouseError(f"pip did not download {name}=={version} (got {found})")
    return list(wheels.values())
