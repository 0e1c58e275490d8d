# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ollama model store: names, manifests, store layout, locking and verification.

Private module_utils of airgap.llm.  Layout of a store (``OLLAMA_MODELS``)::

    manifests/<host>/<namespace>/<model>/<tag>   manifest JSON, exactly four levels deep
    blobs/sha256-<64 hex>                         content-addressed blobs
    blobs/.airgap-llm-staging-XXXX/               our temporary files during an install (a
                                                  directory, so Ollama's pruning never deletes
                                                  files in it, see docs/ollama-integrity.md)
    .airgap-llm/lock                              flock: exclusive for writers, shared for readers
    .airgap-llm/verified.json                     verification record for ``mode: fast``
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DigestError,
    StatKey,
    VerificationRecord,
    default_jobs,
    hash_many,
    is_sha256_hex,
)

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_PREFIX = "application/vnd.ollama.image."
LAYER_TYPES = frozenset(
    (
        "model",
        "adapter",
        "projector",
        "template",
        "prompt",
        "system",
        "params",
        "messages",
        "license",
        "draft",
        "tensor",
        "json",
        "embed",
    )
)

MANIFEST_MAX_BYTES = 4 * 1024 * 1024
"""Largest manifest accepted (a safetensors import with one layer per tensor stays far below)."""
MANIFEST_MAX_DEPTH = 8
"""Deepest JSON nesting accepted; a real manifest nests 3 levels."""
MANIFEST_MAX_LAYERS = 100000

STATE_DIR = ".airgap-llm"
LOCK_FILE = "lock"
RECORD_FILE = "verified.json"
STAGING_PREFIX = ".airgap-llm-staging-"

PROBLEM_KINDS = ("missing", "size", "digest", "unreadable", "manifest", "orphan")

_PART_MAX = {"host": 350, "namespace": 80, "model": 80, "tag": 80}
_DIGEST_RE = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
_BLOB_NAME_RE = re.compile(r"\Asha256-([0-9a-f]{64})\Z")
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")

HINTS = {
    "missing": "install the model again with airgap.llm.ollama_model from a verified export",
    "size": "the blob is damaged; install the model again with airgap.llm.ollama_model, which replaces it "
    "from a verified source",
    "digest": "the blob is corrupt or was altered; install the model again with airgap.llm.ollama_model, "
    "which replaces it from a verified source",
    "unreadable": "make it a readable regular file (remove what is there) and install the model again with "
    "airgap.llm.ollama_model",
    "manifest": "the manifest is damaged or not an Ollama manifest; install the model again from a verified "
    "export or remove the file",
    "orphan": "no manifest references it; remove it, or set orphans=ignore",
}


class OllamaError(Exception):
    """Base of every error here; ``str()`` is a complete message for an operator."""


class InvalidNameError(OllamaError):
    def __init__(self, name: Any, reason: str) -> None:
        super().__init__(
            f"invalid model name {name!r}: {reason}. Use [host/][namespace/]model[:tag] with parts of "
            "letters, digits, '_', '-' and '.', each starting with a letter, digit or '_'"
        )
        self.name = name
        self.reason = reason


class ManifestError(OllamaError):
    def __init__(self, model: str, where: str, reason: str, hint: Optional[str] = None) -> None:
        super().__init__(
            f"model {model}: manifest {where}: {reason}. What to do: {hint or HINTS['manifest']}"
        )
        self.model = model
        self.where = where
        self.reason = reason


def _require_real_dir(path: str, advice: str) -> bool:
    """True if ``path`` is a real directory, False if it does not exist; a symlink or a file in
    its place raises StoreError (links inside the store are refused, never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"{path} is a symbolic link to {os.readlink(path)}; links inside the store are refused, {advice}"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path} is not a directory; remove it")
    return True


class StoreError(OllamaError):
    """The store (or a path in it) is not usable: wrong type, symlink, permissions."""


class LockTimeoutError(OllamaError):
    pass


class BlobError(OllamaError):
    """A blob does not match its manifest; carries the fields of a verify problem."""

    def __init__(
        self, model: str, digest: str, kind: str, *, expected: Any, actual: Any, where: str, hint: str = ""
    ) -> None:
        super().__init__(
            f"model {model}: blob {digest} ({where}): {kind} mismatch: expected {expected}, actual "
            f"{actual}. What to do: {hint or HINTS.get(kind, '')}"
        )
        self.model = model
        self.digest = digest
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.where = where


# --------------------------------------------------------------------------------------------- names


def _check_part(kind: str, value: str, original: Any) -> None:
    if value == "":
        raise InvalidNameError(original, f"the {kind} part is empty")
    if value in (".", ".."):
        raise InvalidNameError(original, f"the {kind} part is {value!r}, which could escape the store")
    if len(value) > _PART_MAX[kind]:
        raise InvalidNameError(original, f"the {kind} part is longer than {_PART_MAX[kind]} characters")
    first = value[0]
    if not (first.isascii() and (first.isalnum() or first == "_")):
        raise InvalidNameError(original, f"the {kind} part {value!r} must start with a letter, digit or '_'")
    for char in value[1:]:
        if char.isascii() and (char.isalnum() or char in "_-"):
            continue
        if char == "." and kind != "namespace":
            continue
        if char == ":" and kind == "host":
            continue
        raise InvalidNameError(original, f"the {kind} part {value!r} contains {char!r}")


class ModelName(NamedTuple):
    """A fully qualified Ollama model name: four parts, four directories under ``manifests/``."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, name: Any) -> ModelName:
        """Parse ``[host/][namespace/]model[:tag]`` as Ollama does; fill in the defaults.

        Raises :class:`InvalidNameError` for anything Ollama would not accept, in particular
        empty parts, ``.``/``..`` parts, absolute names and more than three ``/``-separated parts.
        """
        if not isinstance(name, str):
            raise InvalidNameError(name, "a model name must be a string")
        text = name
        if text.startswith("/"):
            raise InvalidNameError(name, "absolute names are not model names")
        for scheme in ("https://", "http://"):
            if text.startswith(scheme):
                text = text[len(scheme) :]
                break
        tag = ""
        if text.rfind(":") > text.rfind("/"):
            text, tag = text[: text.rfind(":")], text[text.rfind(":") + 1 :]
            _check_part("tag", tag, name)
        parts = text.split("/")
        if len(parts) > 3:
            raise InvalidNameError(name, "more than three '/'-separated parts (host/namespace/model)")
        host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
            _check_part("host", host, name)
            _check_part("namespace", namespace, name)
        elif len(parts) == 2:
            namespace, model = parts
            _check_part("namespace", namespace, name)
        else:
            model = parts[0]
        _check_part("model", model, name)
        return cls(host, namespace, model, tag or DEFAULT_TAG)

    @classmethod
    def from_parts(cls, parts: Tuple[str, str, str, str]) -> ModelName:
        """Name of a manifest found at ``manifests/<parts>``; raises :class:`InvalidNameError`."""
        original = "/".join(parts)
        for kind, value in zip(("host", "namespace", "model", "tag"), parts):
            _check_part(kind, value, original)
        return cls(*parts)

    @property
    def fullname(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """The shortest form, as ``ollama list`` shows it."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def relpath(self) -> str:
        return "/".join(("manifests", self.host, self.namespace, self.model, self.tag))

    def __str__(self) -> str:
        return self.display


# ------------------------------------------------------------------------------------------ manifests


class Layer(NamedTuple):
    media_type: str
    digest: str
    size: int
    name: Optional[str] = None
    from_: Optional[str] = None

    @property
    def hex(self) -> str:
        return self.digest[len("sha256:") :]

    @property
    def blob_name(self) -> str:
        return "sha256-" + self.hex


class Manifest(NamedTuple):
    raw: bytes
    digest: str
    config: Layer
    layers: Tuple[Layer, ...]

    @property
    def blobs(self) -> List[Layer]:
        """Config and layers, each digest once, in manifest order."""
        seen: Set[str] = set()
        result = []
        for layer in (self.config, *self.layers):
            if layer.digest not in seen:
                seen.add(layer.digest)
                result.append(layer)
        return result

    @property
    def size(self) -> int:
        """The size Ollama reports: config plus layers as declared."""
        return self.config.size + sum(layer.size for layer in self.layers)


def manifest_digest(raw: bytes) -> str:
    """The model digest Ollama reports: SHA-256 of the manifest file's bytes."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _json_depth(text: str) -> int:
    stripped = _JSON_STRING_RE.sub("", text)
    depth = deepest = 0
    for match in _JSON_BRACKET_RE.finditer(stripped):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _descriptor(model: str, where: str, label: str, value: Any, config: bool) -> Layer:
    if not isinstance(value, dict):
        raise ManifestError(model, where, f"{label} must be an object, got {type(value).__name__}")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str):
        raise ManifestError(model, where, f"{label}.mediaType must be a string, got {media_type!r}")
    if config:
        if media_type != CONFIG_MEDIA_TYPE:
            raise ManifestError(
                model, where, f"{label}.mediaType is {media_type!r}, expected {CONFIG_MEDIA_TYPE!r}"
            )
    else:
        base = media_type.split(";", 1)[0].strip()
        if not base.startswith(LAYER_MEDIA_PREFIX) or base[len(LAYER_MEDIA_PREFIX) :] not in LAYER_TYPES:
            raise ManifestError(
                model,
                where,
                f"{label}.mediaType {media_type!r} is not an Ollama layer type "
                f"({LAYER_MEDIA_PREFIX}{{{','.join(sorted(LAYER_TYPES))}}})",
            )
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ManifestError(
            model, where, f"{label}.digest must be 'sha256:' and 64 lowercase hex digits, got {digest!r}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size >= 2**63:
        raise ManifestError(model, where, f"{label}.size must be a non-negative integer, got {size!r}")
    name = value.get("name")
    from_ = value.get("from")
    for field, field_value in (("name", name), ("from", from_)):
        if field_value is not None and not isinstance(field_value, str):
            raise ManifestError(model, where, f"{label}.{field} must be a string, got {field_value!r}")
    return Layer(media_type, digest, size, name, from_)


def parse_manifest(raw: bytes, model: str = "?", where: str = "manifest") -> Manifest:
    """Parse and check an Ollama manifest; raise :class:`ManifestError` naming what is wrong.

    Checks: size bound, UTF-8, nesting depth, valid JSON without duplicate keys or NaN, the
    manifest and config media types, layer media types, ``sha256:<64 hex>`` digests,
    non-negative integer sizes, and that one digest never appears with two sizes.
    """
    if len(raw) > MANIFEST_MAX_BYTES:
        raise ManifestError(model, where, f"it is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            model, where, f"it is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    depth = _json_depth(text)
    if depth > MANIFEST_MAX_DEPTH:
        raise ManifestError(model, where, f"JSON nested {depth} levels deep, more than {MANIFEST_MAX_DEPTH}")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(model, where, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(model, where, f"the top level must be a JSON object, got {type(data).__name__}")
    version = data.get("schemaVersion")
    if isinstance(version, bool) or version != 2:
        raise ManifestError(model, where, f"schemaVersion must be 2, got {version!r}")
    if data.get("mediaType") != MANIFEST_MEDIA_TYPE:
        raise ManifestError(
            model, where, f"mediaType is {data.get('mediaType')!r}, expected {MANIFEST_MEDIA_TYPE!r}"
        )
    config = _descriptor(model, where, "config", data.get("config"), config=True)
    layers_value = data.get("layers")
    if not isinstance(layers_value, list):
        raise ManifestError(model, where, f"layers must be a list, got {type(layers_value).__name__}")
    if len(layers_value) > MANIFEST_MAX_LAYERS:
        raise ManifestError(model, where, f"more than {MANIFEST_MAX_LAYERS} layers")
    layers = tuple(
        _descriptor(model, where, f"layers[{index}]", value, config=False)
        for index, value in enumerate(layers_value)
    )
    sizes: Dict[str, int] = {}
    for layer in (config, *layers):
        if sizes.setdefault(layer.digest, layer.size) != layer.size:
            raise ManifestError(
                model,
                where,
                f"{layer.digest} is listed with two sizes ({sizes[layer.digest]} and {layer.size})",
            )
    return Manifest(raw, manifest_digest(raw), config, layers)


def read_bounded(path: str, limit: int, what: str) -> bytes:
    """Read a small regular file without following a symlink at ``path``; refuse more than ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"{what} {path} is a symbolic link; remove it (links out of the store are refused)"
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{what} {path} is not a regular file; remove it")
        if st.st_size > limit:
            raise StoreError(f"{what} {path} is {st.st_size} bytes, more than the limit of {limit}")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise StoreError(f"{what} {path} grew beyond the limit of {limit} bytes while being read")
    return data


# ----------------------------------------------------------------------------------------------- store


class ManifestEntry(NamedTuple):
    name: Optional[ModelName]
    relpath: str
    problem: Optional[str]


class Store:
    """An Ollama model store rooted at ``path`` (the directory holding ``manifests/`` and ``blobs/``)."""

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path:
            raise StoreError("the store path must be a non-empty string")
        self.given = path
        self.root = os.path.realpath(path)
        self.manifests_dir = os.path.join(self.root, "manifests")
        self.blobs_dir = os.path.join(self.root, "blobs")
        self.state_dir = os.path.join(self.root, STATE_DIR)
        self.record_path = os.path.join(self.state_dir, RECORD_FILE)
        self.lock_path = os.path.join(self.state_dir, LOCK_FILE)

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def check_layout(self, must_exist: bool = True) -> None:
        """Refuse a store whose ``manifests``/``blobs`` are symlinks or not directories."""
        if not os.path.exists(self.root):
            if must_exist:
                raise StoreError(f"store {self.given} does not exist; check `path` (OLLAMA_MODELS)")
            return
        if not os.path.isdir(self.root):
            raise StoreError(f"store {self.given} is not a directory; check `path` (OLLAMA_MODELS)")
        for sub in (self.manifests_dir, self.blobs_dir, self.state_dir):
            _require_real_dir(sub, "point `path` at the real store")

    def manifest_path(self, name: ModelName) -> str:
        path = os.path.join(self.manifests_dir, name.host, name.namespace, name.model, name.tag)
        # Each directory on the way must be a real directory inside the store, never a symlink.
        current = self.manifests_dir
        for part in (name.host, name.namespace, name.model):
            current = os.path.join(current, part)
            if not _require_real_dir(current, "remove it"):
                break
        return path

    def blob_path(self, digest: str) -> str:
        hexdigest = digest[len("sha256:") :] if digest.startswith("sha256:") else digest
        if not is_sha256_hex(hexdigest):
            raise StoreError(f"{digest!r} is not a sha256 digest")
        return os.path.join(self.blobs_dir, "sha256-" + hexdigest)

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def read_manifest_bytes(self, name: ModelName) -> Optional[bytes]:
        """The manifest's bytes, or None if there is none; raises for symlinks and oversize files."""
        path = self.manifest_path(name)
        try:
            return read_bounded(path, MANIFEST_MAX_BYTES, f"model {name}: manifest")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"model {name}: cannot read manifest {path}: {exc.strerror}") from None

    def read_manifest(self, name: ModelName) -> Optional[Manifest]:
        raw = self.read_manifest_bytes(name)
        if raw is None:
            return None
        return parse_manifest(raw, str(name), self.rel(self.manifest_path(name)))

    def iter_manifests(self) -> List[ManifestEntry]:
        """Every file exactly four levels under ``manifests/`` (what Ollama lists), without following links.

        Hidden files at the tag level (our temporary manifest files) are skipped; symlinks and
        names Ollama would reject come back with ``problem`` set.
        """
        entries: List[ManifestEntry] = []
        if not os.path.isdir(self.manifests_dir):
            return entries

        def walk(directory: str, parts: Tuple[str, ...]) -> None:
            try:
                children = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                entries.append(ManifestEntry(None, self.rel(directory), f"cannot list it: {exc.strerror}"))
                return
            for child in children:
                rel = self.rel(child.path)
                if child.is_symlink():
                    entries.append(
                        ManifestEntry(
                            None, rel, f"it is a symbolic link to {os.readlink(child.path)}, refused"
                        )
                    )
                    continue
                if len(parts) < 3:
                    if child.is_dir(follow_symlinks=False):
                        walk(child.path, (*parts, child.name))
                    continue
                if child.name.startswith("."):
                    continue
                if child.is_dir(follow_symlinks=False):
                    entries.append(
                        ManifestEntry(None, rel, "it is a directory where a manifest file belongs")
                    )
                    continue
                if not child.is_file(follow_symlinks=False):
                    entries.append(ManifestEntry(None, rel, "it is not a regular file"))
                    continue
                try:
                    name = ModelName.from_parts((*parts, child.name))  # type: ignore[arg-type]
                except InvalidNameError as exc:
                    entries.append(
                        ManifestEntry(None, rel, f"Ollama would not accept its name: {exc.reason}")
                    )
                    continue
                entries.append(ManifestEntry(name, rel, None))

        walk(self.manifests_dir, ())
        return entries

    def all_manifests(self, skip: Optional[ModelName] = None) -> Tuple[Dict[ModelName, Manifest], List[str]]:
        """Parse every manifest (except ``skip``); returns (manifests, problems as text)."""
        manifests: Dict[ModelName, Manifest] = {}
        problems: List[str] = []
        for entry in self.iter_manifests():
            if entry.name is None:
                problems.append(f"{entry.relpath}: {entry.problem}")
                continue
            if skip is not None and entry.name == skip:
                continue
            try:
                manifest = self.read_manifest(entry.name)
            except (OllamaError, OSError) as exc:
                problems.append(str(exc))
                continue
            if manifest is not None:
                manifests[entry.name] = manifest
        return manifests, problems

    def blob_entries(self) -> List[os.DirEntry]:
        if not os.path.isdir(self.blobs_dir):
            return []
        return sorted(os.scandir(self.blobs_dir), key=lambda e: e.name)

    @contextlib.contextmanager
    def lock(self, exclusive: bool, timeout: float, create: bool = True) -> Iterator[None]:
        """Hold ``.airgap-llm/lock`` (flock) for the block: exclusive for writers, shared for readers.

        Waits up to ``timeout`` seconds, then raises :class:`LockTimeoutError`.  With
        ``create=False`` and no lock file (a store never written by this collection), nothing
        is locked.
        """
        if not os.path.isdir(self.state_dir):
            if not create:
                yield
                return
            os.makedirs(self.state_dir, 0o755, exist_ok=True)
        flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self.lock_path, flags, 0o644)
        except FileNotFoundError:
            yield
            return
        except OSError as exc:
            raise StoreError(f"cannot open the store lock {self.lock_path}: {exc.strerror}") from None
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            deadline = time.monotonic() + max(0.0, timeout)
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"store {self.given} is locked by another run (waited {timeout:g} s on "
                        f"{self.lock_path}); wait for it to finish or raise lock_timeout"
                    )
                time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def load_record(self) -> VerificationRecord:
        return VerificationRecord.load(self.record_path)


# ------------------------------------------------------------------------------------------ problems


def problem(
    kind: str,
    model: Optional[str],
    digest: Optional[str],
    expected: Any,
    actual: Any,
    *,
    path: Optional[str] = None,
) -> Dict[str, Any]:
    return {
        "model": model,
        "digest": digest,
        "kind": kind,
        "expected": expected,
        "actual": actual,
        "path": path,
        "hint": HINTS[kind],
    }


def format_problem(item: Dict[str, Any]) -> str:
    subject = []
    if item.get("model"):
        subject.append(f"model {item['model']}")
    if item.get("digest"):
        subject.append(f"blob {item['digest']}")
    if item.get("path"):
        subject.append(f"({item['path']})")
    head = " ".join(subject) or "store"
    return (
        f"{head}: {item['kind']}: expected {item['expected']}, actual {item['actual']}. "
        f"What to do: {item['hint']}"
    )


def format_problems(problems: List[Dict[str, Any]], limit: int = 50) -> str:
    lines = [format_problem(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problems (see the `problems` return value)")
    return "; ".join(lines)


# -------------------------------------------------------------------------------------------- verify


def _classify(path: str) -> Tuple[Optional[os.stat_result], Optional[str]]:
    """lstat ``path``; returns (stat, None) for a regular file, else (stat or None, description)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot stat it: {exc.strerror}"
    if stat.S_ISREG(st.st_mode):
        return st, None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return st, f"a symbolic link to {target}, not a regular file"
    if stat.S_ISDIR(st.st_mode):
        return st, "a directory, not a regular file"
    return st, "not a regular file"


class BlobCheck(NamedTuple):
    state: str  # ok | missing | size | digest | unreadable
    actual: Any
    stat: Optional[StatKey]
    hashed: int
    disk_size: Optional[int]


def check_blobs(
    store: Store,
    wanted: Dict[str, Set[int]],
    mode: str,
    jobs: Optional[int],
    record: VerificationRecord,
) -> Dict[str, BlobCheck]:
    """Check blobs ``{hex: declared sizes}``; hashes in parallel only what the record cannot vouch for.

    A blob whose size on disk is none of the declared sizes is not read (state ``size``).
    """
    results: Dict[str, BlobCheck] = {}
    to_hash: List[str] = []
    for hexdigest, sizes in wanted.items():
        path = store.blob_path(hexdigest)
        st, bad = _classify(path)
        if st is None and bad is None:
            results[hexdigest] = BlobCheck("missing", "no such file", None, 0, None)
        elif bad is not None or st is None:
            results[hexdigest] = BlobCheck("unreadable", bad, None, 0, None)
        elif st.st_size not in sizes:
            results[hexdigest] = BlobCheck("size", f"{st.st_size} bytes", None, 0, st.st_size)
        elif mode == "fast" and record.is_verified(StatKey.from_stat(st), hexdigest):
            results[hexdigest] = BlobCheck("ok", "sha256:" + hexdigest, StatKey.from_stat(st), 0, st.st_size)
        else:
            to_hash.append(hexdigest)
    outcomes = hash_many([store.blob_path(h) for h in to_hash], jobs or default_jobs())
    for hexdigest, outcome in zip(to_hash, outcomes):
        if outcome.error is not None:
            results[hexdigest] = BlobCheck("unreadable", outcome.error, None, outcome.size, None)
        elif outcome.hexdigest != hexdigest:
            results[hexdigest] = BlobCheck(
                "digest", f"sha256:{outcome.hexdigest}", None, outcome.size, outcome.size
            )
        else:
            results[hexdigest] = BlobCheck(
                "ok", "sha256:" + hexdigest, outcome.stat, outcome.size, outcome.size
            )
            if outcome.stat is not None:
                record.add(outcome.stat, hexdigest)
    return results


def layer_problem(store: Store, model: str, layer: Layer, check: BlobCheck) -> Optional[Dict[str, Any]]:
    """The problem (or None) of one layer of one model, given the check of its blob."""
    path = store.rel(store.blob_path(layer.hex))
    if check.state in ("missing", "unreadable"):
        expected = f"a regular file of {layer.size} bytes"
        return problem(check.state, model, layer.digest, expected, check.actual, path=path)
    if check.disk_size is not None and check.disk_size != layer.size:
        return problem(
            "size", model, layer.digest, f"{layer.size} bytes", f"{check.disk_size} bytes", path=path
        )
    if check.state == "digest":
        return problem("digest", model, layer.digest, layer.digest, check.actual, path=path)
    return None


def verify_store(
    store: Store,
    *,
    models: Optional[List[str]] = None,
    mode: str = "full",
    jobs: Optional[int] = None,
    orphans: str = "report",
    write_record: bool = True,
) -> Dict[str, Any]:
    """Verify manifests and blobs; returns ``{models, problems, bytes_hashed, warnings}``.

    Never raises for a bad blob or manifest (they become problems); raises :class:`StoreError`
    only when the store itself is unusable.  Full passes (and fast passes that had to hash)
    update the verification record unless ``write_record`` is false.
    """
    store.check_layout(must_exist=True)
    problems: List[Dict[str, Any]] = []
    warnings: List[str] = []
    record = store.load_record()
    if record.ignored_reason:
        warnings.append(f"verification record {store.record_path} ignored: {record.ignored_reason}")

    all_entries = store.iter_manifests()
    selected: List[Tuple[ModelName, str]] = []
    if models:
        for text in models:
            name = ModelName.parse(text)
            selected.append((name, name.relpath))
    else:
        for entry in all_entries:
            if entry.name is None:
                problems.append(
                    problem(
                        "manifest", None, None, "an Ollama manifest file", entry.problem, path=entry.relpath
                    )
                )
            else:
                selected.append((entry.name, entry.relpath))

    parsed: Dict[ModelName, Manifest] = {}
    for name, relpath in selected:
        try:
            manifest = store.read_manifest(name)
        except ManifestError as exc:
            problems.append(
                problem("manifest", str(name), None, "a valid Ollama manifest", exc.reason, path=relpath)
            )
            continue
        except (StoreError, OSError) as exc:
            problems.append(
                problem("manifest", str(name), None, "a readable manifest file", str(exc), path=relpath)
            )
            continue
        if manifest is None:
            problems.append(
                problem("missing", str(name), None, f"manifest {relpath}", "no such file", path=relpath)
            )
            continue
        parsed[name] = manifest

    wanted: Dict[str, Set[int]] = {}
    for manifest in parsed.values():
        for layer in manifest.blobs:
            wanted.setdefault(layer.hex, set()).add(layer.size)
    checks = check_blobs(store, wanted, mode, jobs, record)
    bytes_hashed = sum(c.hashed for c in checks.values())

    result_models = []
    for name, manifest in parsed.items():
        blobs = []
        for layer in manifest.blobs:
            found = layer_problem(store, str(name), layer, checks[layer.hex])
            if found is not None:
                problems.append(found)
            status = found["kind"] if found else "ok"
            blobs.append(
                {"digest": layer.digest, "size": layer.size, "media_type": layer.media_type, "status": status}
            )
        result_models.append(
            {
                "name": str(name),
                "fullname": name.fullname,
                "manifest_digest": manifest.digest,
                "size": manifest.size,
                "blobs": blobs,
                "ok": all(b["status"] == "ok" for b in blobs),
            }
        )

    if orphans != "ignore":
        if models:
            referenced_all, other_problems = store.all_manifests()
            referenced = {layer.hex for m in referenced_all.values() for layer in m.blobs}
            unsure = bool(other_problems)
        else:
            referenced = set(wanted)
            unsure = any(p["kind"] == "manifest" for p in problems)
        if unsure:
            warnings.append(
                "orphans not reported: some manifests could not be read, so their blobs are unknown"
            )
        else:
            for entry in store.blob_entries():
                match = _BLOB_NAME_RE.match(entry.name)
                if match and match.group(1) in referenced:
                    continue
                rel = store.rel(entry.path)
                if entry.name.startswith(STAGING_PREFIX):
                    actual = "a staging directory left by an interrupted install"
                elif match:
                    try:
                        actual = f"unreferenced ({entry.stat(follow_symlinks=False).st_size} bytes)"
                    except OSError:
                        actual = "unreferenced"
                else:
                    actual = "a file whose name is not sha256-<64 hex>"
                digest = "sha256:" + match.group(1) if match else None
                problems.append(problem("orphan", None, digest, "referenced by a manifest", actual, path=rel))

    if write_record and record.ignored_reason is None:
        if not models:
            record.retain(c.stat for c in checks.values() if c.state == "ok" and c.stat is not None)
        try:
            record.save()
        except (OSError, DigestError) as exc:
            warnings.append(f"could not write the verification record {store.record_path}: {exc}")
    return {"models": result_models, "problems": problems, "bytes_hashed": bytes_hashed, "warnings": warnings}
