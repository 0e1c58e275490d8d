# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Bundles on paper: the bundle spec (what to collect), ``bundle.json`` (what a bundle holds) and
the repository inventory that makes a bundle differential.

A bundle is an uncompressed tar (model weights do not compress) whose members are, in order:
every artifact file, ``sbom.cdx.json``, ``bundle.json`` and ``signatures/<key id>.sig``.
``bundle.json`` lists every file with path, sha256, size, kind, name, version, source and
license; files the high side already holds (differential bundles) are listed with
``omitted: true`` and not shipped. :mod:`build` writes bundles, :mod:`ingest` reads them.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DigestError,
    is_sha256_hex,
    parse_sha256,
)
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, read_bounded
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import unsafe_name

__all__ = [
    "CHANNEL_RE",
    "FILE_KINDS",
    "FORMAT",
    "FORMAT_VERSION",
    "INVENTORY_FORMAT",
    "KINDS",
    "MANIFEST",
    "MAX_MANIFEST",
    "MAX_SIGNATURE",
    "NAME_RE",
    "SBOM",
    "SIG_DIR",
    "BundleArtifact",
    "BundleError",
    "BundleSpec",
    "PlannedFile",
    "bundle_basename",
    "dumps_manifest",
    "format_time",
    "load_inventory",
    "make_manifest",
    "parse_manifest",
    "parse_time",
    "validate_manifest",
]

FORMAT = "airgap.llm.bundle"
FORMAT_VERSION = 1
INVENTORY_FORMAT = "airgap.llm.inventory"
MANIFEST = "bundle.json"
SBOM = "sbom.cdx.json"
SIG_DIR = "signatures/"
MAX_MANIFEST = 64 << 20
MAX_SIGNATURE = 1024
MAX_MANIFEST_DEPTH = 6
"""bundle.json nests 4 levels (top, artifacts, an artifact, its files); a little room, no more."""
MAX_TEXT = 4096

FILE_KINDS = ("file", "ollama", "container_image", "wheelhouse", "deb", "step", "gpu_driver")
KINDS = (*FILE_KINDS, "model", "sbom")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
SUITE_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SPEC_KEYS = {"channel", "version", "expires", "expires_days", "ollama_store", "artifacts"}
_ARTIFACT_KEYS = {
    "name",
    "version",
    "kind",
    "url",
    "path",
    "sha256",
    "checksums_url",
    "checksums_sha256",
    "filename",
    "license",
    "suites",
    "model",
    "store",
}
_FILE_KEYS = ("path", "sha256", "size", "kind", "name", "version", "source", "license", "omitted")
_MANIFEST_KEYS = (
    "format",
    "format_version",
    "channel",
    "version",
    "created",
    "expires",
    "differential",
    "artifacts",
    "files",
)


class BundleError(AirgapError):
    """Bad spec, bad bundle.json, or a build step failed; ``str()`` says what and what to do."""


def bundle_basename(channel: str, version: int) -> str:
    return f"airgap-llm-{channel}-{version:06d}"


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(TIME_FORMAT)


def parse_time(value: Any, what: str) -> datetime.datetime:
    if not isinstance(value, str) or len(value) > 32:
        raise BundleError(f"{what} must be a UTC time like 2026-01-31T12:00:00Z, got {describe(value)}")
    try:
        moment = datetime.datetime.strptime(value, TIME_FORMAT)
    except ValueError:
        raise BundleError(
            f"{what} must be a UTC time like 2026-01-31T12:00:00Z, got {describe(value)}"
        ) from None
    return moment.replace(tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------------------------------------
# Spec


class BundleArtifact:
    """One entry of the bundle spec's ``artifacts`` list, validated."""

    def __init__(self, raw: Any, index: int) -> None:
        where = f"artifacts[{index}]"
        if not isinstance(raw, dict):
            raise BundleError(f"{where} must be a mapping")
        unknown = sorted(set(raw) - _ARTIFACT_KEYS)
        if unknown:
            raise BundleError("{} has unknown keys: {}".format(where, ", ".join(unknown)))
        self.kind = raw.get("kind", "file")
        if self.kind not in (*FILE_KINDS, "model"):
            raise BundleError(
                "{}: kind {!r} is not one of {}".format(where, self.kind, ", ".join((*FILE_KINDS, "model")))
            )
        self.name: str = self._text(raw, "name", where, required=True) or ""
        self.version: str = self._text(raw, "version", where, required=True) or ""
        for key in ("name", "version"):
            if not NAME_RE.match(getattr(self, key)):
                raise BundleError(
                    f"{where}: {key} {getattr(self, key)!r} may only hold letters, digits and . _ + - "
                    "(start with a letter or digit)"
                )
        where = f"artifact {self.name} {self.version}"
        self.url = self._text(raw, "url", where)
        self.path = self._text(raw, "path", where)
        self.sha256 = self._text(raw, "sha256", where)
        self.checksums_url = self._text(raw, "checksums_url", where)
        self.checksums_sha256 = self._text(raw, "checksums_sha256", where)
        self.filename = self._text(raw, "filename", where)
        self.license = self._text(raw, "license", where)
        self.model = self._text(raw, "model", where)
        self.store = self._text(raw, "store", where)
        self.suites = self._suites(raw.get("suites"), where)
        for key in ("sha256", "checksums_sha256"):
            value = getattr(self, key)
            if value is not None:
                try:
                    setattr(self, key, parse_sha256(value, f"{where}: {key}", "quote it in YAML"))
                except DigestError as exc:
                    raise BundleError(str(exc)) from None
        if self.kind == "model":
            if self.url or self.path:
                raise BundleError(
                    f"{where}: a model comes from an Ollama store; give model/store, not url/path"
                )
            if self.model is None:
                self.model = f"{self.name}:{self.version}"
            return
        if bool(self.url) == bool(self.path):
            raise BundleError(f"{where}: give exactly one of url or path")
        if self.url:
            if not self.url.startswith(("https://", "http://")):
                raise BundleError(f"{where}: url must be http(s)")
            if not self.sha256 and not self.checksums_url:
                raise BundleError(
                    f"{where}: a download needs a pinned sha256 (or checksums_url, an upstream sha256sum.txt)"
                )
            if self.filename is None:
                self.filename = self.url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        if self.filename is not None and (unsafe_name(self.filename) or "/" in self.filename):
            raise BundleError(f"{where}: filename {self.filename!r} must be a plain file name")
        if self.kind == "ollama" and self.url and not (self.sha256 or self.checksums_url):
            raise BundleError(f"{where}: the Ollama archive needs sha256 or checksums_url (sha256sum.txt)")

    def _suites(self, value: Any, where: str) -> Optional[List[str]]:
        """``suites`` of a .deb: the Debian releases (codenames) it is built for; None: every release."""
        if value is None:
            return None
        if self.kind != "deb":
            raise BundleError(f"{where}: suites applies to kind deb only, not {self.kind}")
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and SUITE_RE.match(item) for item in value)
        ):
            raise BundleError(
                f"{where}: suites must be a non-empty list of Debian codenames such as [bookworm, trixie], "
                f"got {value!r}"
            )
        return sorted(set(value))

    @staticmethod
    def _text(raw: Dict[str, Any], key: str, where: str, required: bool = False) -> Optional[str]:
        value = raw.get(key)
        if value is None:
            if required:
                raise BundleError(f"{where}: {key} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BundleError(f"{where}: {key} must be a string")
        return str(value)


class BundleSpec:
    """A bundle spec (YAML on the low side), validated: channel, version, expiry, artifacts."""

    def __init__(self, raw: Any, now: datetime.datetime) -> None:
        if not isinstance(raw, dict):
            raise BundleError("the bundle spec must be a mapping")
        unknown = sorted(set(raw) - _SPEC_KEYS)
        if unknown:
            raise BundleError("the bundle spec has unknown keys: {}".format(", ".join(unknown)))
        self.channel = raw.get("channel", "stable")
        if not isinstance(self.channel, str) or not CHANNEL_RE.match(self.channel):
            raise BundleError(f"channel must match {CHANNEL_RE.pattern}, got {self.channel!r}")
        version = raw.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise BundleError(
                f"version must be a positive integer that grows with every bundle, got {version!r}"
            )
        self.version = version
        self.created = now.replace(microsecond=0)
        if raw.get("expires") is not None:
            self.expires = parse_time(raw["expires"], "expires")
        else:
            days = raw.get("expires_days", 30)
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise BundleError(f"expires_days must be a positive integer, got {days!r}")
            self.expires = self.created + datetime.timedelta(days=days)
        self.ollama_store = raw.get("ollama_store")
        artifacts = raw.get("artifacts")
        if not isinstance(artifacts, list) or not artifacts:
            raise BundleError("the bundle spec needs a non-empty artifacts list")
        self.artifacts = [BundleArtifact(a, i) for i, a in enumerate(artifacts)]
        seen = set()
        for artifact in self.artifacts:
            key = (artifact.name, artifact.version)
            if key in seen:
                raise BundleError("artifact {} {} is listed twice".format(*key))
            seen.add(key)


# ---------------------------------------------------------------------------------------------
# Inventory (differential bundles)


def load_inventory(path: str) -> Tuple[Dict[str, int], str]:
    """Read a repository inventory: ``{digest: size}`` and the inventory file's own sha256."""
    try:
        raw = read_bounded(path, MAX_MANIFEST, follow_symlinks=True)
    except (OSError, FileError) as exc:
        raise BundleError(f"cannot read inventory {path}: {exc}") from None
    try:
        doc = _json.loads(raw, f"inventory {path}", limit=MAX_MANIFEST, max_depth=4)
    except _json.JSONError as exc:
        raise BundleError(f"{exc}; export it again with airgap.llm.repo_inventory") from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != INVENTORY_FORMAT
        or not isinstance(doc.get("blobs"), dict)
    ):
        raise BundleError(
            f"{path} is not an airgap.llm repository inventory (make it with airgap.llm.repo_inventory)"
        )
    blobs: Dict[str, int] = {}
    for digest, size in doc["blobs"].items():
        if not is_sha256_hex(digest) or not _is_int(size):
            raise BundleError(
                f"inventory {path}: blobs entry {quote(digest)} must be a digest with a non-negative "
                f"integer size, got {describe(size)}; export it again with airgap.llm.repo_inventory"
            )
        blobs[digest] = size
    return blobs, hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------------------------
# bundle.json


class PlannedFile:
    """A file to put into the bundle (``src`` None: omitted, the high side holds it)."""

    __slots__ = (
        "hashed_early",
        "kind",
        "license",
        "name",
        "omitted",
        "path",
        "sha256",
        "size",
        "source",
        "src",
        "version",
    )

    def __init__(
        self,
        path: str,
        src: Optional[str],
        *,
        size: int,
        sha256: Optional[str],
        kind: str,
        name: str,
        version: str,
        source: str,
        license: Optional[str],
    ) -> None:
        self.path = path
        self.src = src
        self.size = size
        self.sha256 = sha256
        self.kind = kind
        self.name = name
        self.version = version
        self.source = source
        self.license = license
        self.omitted = False
        self.hashed_early = False

    def as_dict(self) -> Dict[str, Any]:
        return {key: getattr(self, key) for key in _FILE_KEYS}


def make_manifest(
    *,
    channel: str,
    version: int,
    created: datetime.datetime,
    expires: datetime.datetime,
    files: Sequence[PlannedFile],
    artifacts: Sequence[Dict[str, Any]],
    differential: Optional[Dict[str, Any]],
) -> Dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "channel": channel,
        "version": version,
        "created": format_time(created),
        "expires": format_time(expires),
        "differential": differential,
        "artifacts": list(artifacts),
        "files": [f.as_dict() for f in files],
    }


def dumps_manifest(doc: Dict[str, Any]) -> bytes:
    return _json.dumps(doc, indent=1)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise BundleError("bundle.json: " + message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and not any(ord(c) < 32 for c in value)


def _keys(doc: Dict[str, Any], where: str, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    missing = [k for k in required if k not in doc]
    _need(not missing, "{} lacks {}".format(where, ", ".join(missing)))
    unknown = sorted(set(doc) - set(required) - set(optional))
    _need(
        not unknown,
        "{} has unknown keys {}".format(where, ", ".join(quote(k, 40) for k in unknown[:5])),
    )


def _name(value: Any, where: str) -> None:
    _need(
        isinstance(value, str) and bool(NAME_RE.match(value)),
        f"{where} must be letters, digits and . _ + - (at most 128, starting with a letter or digit), "
        f"got {describe(value)}",
    )


def _check_file(entry: Any, where: str, paths: Set[str]) -> None:
    _need(isinstance(entry, dict), f"{where} must be an object, got {describe(entry)}")
    _keys(entry, where, _FILE_KEYS)
    path = entry["path"]
    _need(
        isinstance(path, str) and len(path) <= MAX_TEXT and unsafe_name(path) is None,
        f"{where}.path {describe(path)} is not a safe relative path",
    )
    _need(path != MANIFEST and not path.startswith(SIG_DIR), f"{where}.path {quote(path)} is reserved")
    _need(path not in paths, f"{where}.path {quote(path)} is listed twice")
    paths.add(path)
    _need(
        is_sha256_hex(entry["sha256"]),
        f"{where}.sha256 must be 64 lower-case hex digits, got {describe(entry['sha256'])}",
    )
    _need(
        _is_int(entry["size"]),
        f"{where}.size must be a non-negative integer below 2**63, got {describe(entry['size'])}",
    )
    _need(entry["kind"] in KINDS, f"{where}.kind {describe(entry['kind'])} is unknown")
    _name(entry["name"], f"{where}.name")
    _name(entry["version"], f"{where}.version")
    _need(
        _text(entry["source"], MAX_TEXT),
        f"{where}.source must be a non-empty string of at most {MAX_TEXT} characters, "
        f"got {describe(entry['source'])}",
    )
    _need(
        entry["license"] is None or _text(entry["license"], MAX_TEXT),
        f"{where}.license must be null or a string, got {describe(entry['license'])}",
    )
    _need(
        isinstance(entry["omitted"], bool),
        f"{where}.omitted must be true or false, got {describe(entry['omitted'])}",
    )


def _check_artifact(art: Any, where: str, paths: Set[str], seen: Set[Tuple[str, str]]) -> None:
    _need(isinstance(art, dict), f"{where} must be an object, got {describe(art)}")
    _keys(
        art,
        where,
        ("name", "version", "kind", "source", "files"),
        ("license", "model", "manifest_digest", "suites"),
    )
    _name(art["name"], f"{where}.name")
    _name(art["version"], f"{where}.version")
    _need(art["kind"] in KINDS, f"{where}.kind {describe(art['kind'])} is unknown")
    _need(
        _text(art["source"], MAX_TEXT),
        f"{where}.source must be a non-empty string of at most {MAX_TEXT} characters, "
        f"got {describe(art['source'])}",
    )
    license_ = art.get("license")
    _need(
        license_ is None or _text(license_, MAX_TEXT),
        f"{where}.license must be null or a string, got {describe(license_)}",
    )
    if art["kind"] == "model":
        _need(
            _text(art.get("model"), 512),
            f"{where}.model must be an Ollama model name, got {describe(art.get('model'))}",
        )
        digest = art.get("manifest_digest")
        _need(
            isinstance(digest, str) and digest.startswith("sha256:") and is_sha256_hex(digest[7:]),
            f"{where}.manifest_digest must be 'sha256:' and 64 lower-case hex digits, got {describe(digest)}",
        )
    else:
        extra = [k for k in ("model", "manifest_digest") if art.get(k) is not None]
        _need(not extra, "{} of kind {} must not have {}".format(where, art["kind"], ", ".join(extra)))
    suites = art.get("suites")
    _need(
        suites is None
        or (
            art["kind"] == "deb"
            and isinstance(suites, list)
            and len(suites) > 0
            and all(isinstance(item, str) and SUITE_RE.match(item) for item in suites)
        ),
        f"{where} suites must be absent or, for a deb, a non-empty list of Debian codenames, got "
        f"{describe(suites)}",
    )
    key = (art["name"], art["version"])
    _need(key not in seen, "{} {} {} is listed twice".format(where, *key))
    seen.add(key)
    members = art["files"]
    _need(
        isinstance(members, list) and len(members) > 0,
        f"{where}.files must be a non-empty list, got {describe(members)}",
    )
    for number, member in enumerate(members):
        _need(
            isinstance(member, str) and member in paths,
            f"{where}.files[{number}] {describe(member)} is not a path listed in files",
        )


def validate_manifest(doc: Any) -> Dict[str, Any]:
    """Check the structure of a parsed ``bundle.json`` field by field; return it.

    Raises :class:`BundleError` naming the field, what it must be and what it is (values quoted and
    bounded). Nothing of the document is used before this check passed.
    """
    _need(isinstance(doc, dict), f"the top level must be an object, got {describe(doc)}")
    _keys(doc, "the top level", _MANIFEST_KEYS)
    _need(doc["format"] == FORMAT, f"format is {describe(doc['format'])}, not {FORMAT!r}")
    _need(
        doc["format_version"] == FORMAT_VERSION and _is_int(doc["format_version"]),
        f"format_version {describe(doc['format_version'])} is not supported (this collection reads "
        f"{FORMAT_VERSION}): update the collection on the high side",
    )
    _need(
        isinstance(doc["channel"], str) and bool(CHANNEL_RE.match(doc["channel"])),
        f"channel must match {CHANNEL_RE.pattern}, got {describe(doc['channel'])}",
    )
    _need(
        _is_int(doc["version"]) and doc["version"] >= 1,
        f"version must be a positive integer below 2**63, got {describe(doc['version'])}",
    )
    parse_time(doc["created"], "bundle.json created")
    parse_time(doc["expires"], "bundle.json expires")
    diff = doc["differential"]
    if diff is not None:
        _need(isinstance(diff, dict), f"differential must be null or an object, got {describe(diff)}")
        _keys(diff, "differential", ("inventory_sha256", "omitted_files", "omitted_bytes"))
        _need(is_sha256_hex(diff["inventory_sha256"]), "differential.inventory_sha256 must be a digest")
        for key in ("omitted_files", "omitted_bytes"):
            _need(_is_int(diff[key]), f"differential.{key} must be a non-negative integer")
    files = doc["files"]
    _need(isinstance(files, list), f"files must be a list, got {describe(files)}")
    paths: Set[str] = set()
    for index, entry in enumerate(files):
        _check_file(entry, f"files[{index}]", paths)
    artifacts = doc["artifacts"]
    _need(isinstance(artifacts, list), f"artifacts must be a list, got {describe(artifacts)}")
    seen: Set[Tuple[str, str]] = set()
    for index, art in enumerate(artifacts):
        _check_artifact(art, f"artifacts[{index}]", paths, seen)
    owned = {member for art in artifacts for member in art["files"]}
    for index, entry in enumerate(files):
        _need(
            entry["path"] in owned,
            f"files[{index}].path {quote(entry['path'])} belongs to no artifact: nothing would use it",
        )
    return doc


def parse_manifest(raw: bytes) -> Dict[str, Any]:
    """Parse ``bundle.json`` with the strict JSON reader and check it; raises :class:`BundleError`."""
    try:
        doc = _json.loads(raw, "bundle.json", limit=MAX_MANIFEST, max_depth=MAX_MANIFEST_DEPTH)
    except _json.JSONError as exc:
        raise BundleError(str(exc)) from None
    return validate_manifest(doc)
