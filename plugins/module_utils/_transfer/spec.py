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
import json
import re
from typing import Any, Dict, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, read_bounded
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import unsafe_name

__all__ = [
    "FILE_KINDS",
    "FORMAT",
    "FORMAT_VERSION",
    "INVENTORY_FORMAT",
    "KINDS",
    "MANIFEST",
    "MAX_MANIFEST",
    "MAX_SIGNATURE",
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

FILE_KINDS = ("file", "ollama", "container_image", "wheelhouse", "deb", "step", "gpu_driver")
KINDS = (*FILE_KINDS, "model", "sbom")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
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
    "model",
    "store",
}
_FILE_KEYS = ("path", "sha256", "size", "kind", "name", "version", "source", "license", "omitted")


class BundleError(AirgapError):
    """Bad spec, bad bundle.json, or a build step failed; ``str()`` says what and what to do."""


def bundle_basename(channel: str, version: int) -> str:
    return f"airgap-llm-{channel}-{version:06d}"


def format_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(TIME_FORMAT)


def parse_time(value: Any, what: str) -> datetime.datetime:
    if not isinstance(value, str):
        raise BundleError(f"{what} must be a UTC time like 2026-01-31T12:00:00Z, got {value!r}")
    try:
        moment = datetime.datetime.strptime(value, TIME_FORMAT)
    except ValueError:
        raise BundleError(f"{what} must be a UTC time like 2026-01-31T12:00:00Z, got {value!r}") from None
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
        for key in ("sha256", "checksums_sha256"):
            value = getattr(self, key)
            if value is not None and not is_sha256_hex(value):
                raise BundleError(f"{where}: {key} must be 64 lower-case hex digits")
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
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError(f"inventory {path} is not JSON") from None
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
        if not is_sha256_hex(digest) or isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise BundleError(f"inventory {path} has a bad entry {digest!r}: {size!r}")
        blobs[digest] = size
    return blobs, hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------------------------
# bundle.json


class PlannedFile:
    """A file to put into the bundle (``src`` None: omitted, the high side holds it)."""

    __slots__ = ("kind", "license", "name", "omitted", "path", "sha256", "size", "source", "src", "version")

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
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise BundleError("bundle.json: " + message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_manifest(doc: Any) -> Dict[str, Any]:
    """Check the structure of a parsed ``bundle.json``; return it. Raises :class:`BundleError`."""
    _need(isinstance(doc, dict), "is not a JSON object")
    _need(doc.get("format") == FORMAT, "format is {!r}, not {!r}".format(doc.get("format"), FORMAT))
    _need(
        doc.get("format_version") == FORMAT_VERSION,
        f"format_version {doc.get('format_version')!r} is not supported (this collection reads "
        f"{FORMAT_VERSION}): update the collection on the high side",
    )
    _need(isinstance(doc.get("channel"), str) and bool(CHANNEL_RE.match(doc["channel"])), "bad channel")
    _need(_is_int(doc.get("version")) and doc["version"] >= 1, "version must be a positive integer")
    parse_time(doc.get("created"), "bundle.json created")
    parse_time(doc.get("expires"), "bundle.json expires")
    diff = doc.get("differential")
    _need(diff is None or isinstance(diff, dict), "differential must be null or an object")
    files = doc.get("files")
    _need(isinstance(files, list), "files must be a list")
    paths = set()
    for index, entry in enumerate(files):
        where = f"files[{index}]"
        _need(
            isinstance(entry, dict) and set(entry) == set(_FILE_KEYS),
            f"{where} must have exactly {_FILE_KEYS}",
        )
        path = entry["path"]
        _need(
            isinstance(path, str) and unsafe_name(path) is None,
            f"{where} path {path!r} is not a safe relative path",
        )
        _need(path != MANIFEST and not path.startswith(SIG_DIR), f"{where} path {path!r} is reserved")
        _need(path not in paths, f"{where} path {path!r} is listed twice")
        paths.add(path)
        _need(is_sha256_hex(entry["sha256"]), f"{where} sha256 is not 64 lower-case hex digits")
        _need(_is_int(entry["size"]) and entry["size"] >= 0, f"{where} size must be a non-negative integer")
        _need(entry["kind"] in KINDS, "{} kind {!r} is unknown".format(where, entry["kind"]))
        for key in ("name", "version", "source"):
            _need(
                isinstance(entry[key], str) and entry[key] != "", f"{where} {key} must be a non-empty string"
            )
        _need(
            entry["license"] is None or isinstance(entry["license"], str), f"{where} license must be a string"
        )
        _need(isinstance(entry["omitted"], bool), f"{where} omitted must be true or false")
    artifacts = doc.get("artifacts")
    _need(isinstance(artifacts, list), "artifacts must be a list")
    seen = set()
    for index, art in enumerate(artifacts):
        where = f"artifacts[{index}]"
        _need(isinstance(art, dict), f"{where} must be an object")
        for key in ("name", "version", "kind", "source"):
            _need(
                isinstance(art.get(key), str) and art[key] != "", f"{where} {key} must be a non-empty string"
            )
        _need(art["kind"] in KINDS, "{} kind {!r} is unknown".format(where, art["kind"]))
        _need(
            (art["name"], art["version"]) not in seen,
            "{} {} {} is listed twice".format(where, art["name"], art["version"]),
        )
        seen.add((art["name"], art["version"]))
        members = art.get("files")
        _need(isinstance(members, list) and len(members) > 0, f"{where} files must be a non-empty list")
        for member in members:
            _need(member in paths, f"{where} refers to {member!r} which is not in files")
    return doc
