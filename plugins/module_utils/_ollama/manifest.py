# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ollama manifests: parse and check one, and the digest Ollama reports for it."""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_digest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import ManifestError

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "LAYER_MEDIA_PREFIX",
    "LAYER_TYPES",
    "MANIFEST_MAX_BYTES",
    "MANIFEST_MAX_DEPTH",
    "MANIFEST_MAX_LAYERS",
    "MANIFEST_MEDIA_TYPE",
    "Layer",
    "Manifest",
    "describe_state",
    "manifest_digest",
    "parse_manifest",
]

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
    if not isinstance(digest, str) or not is_sha256_digest(digest):
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
    try:
        data = _json.loads(raw, "it", limit=MANIFEST_MAX_BYTES, max_depth=MANIFEST_MAX_DEPTH)
    except _json.JSONError as exc:
        raise ManifestError(model, where, str(exc)) from None
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


def describe_state(manifest: Optional[Manifest]) -> Dict[str, Any]:
    """A model as a diff shows it: its manifest digest and its blobs (none when absent)."""
    if manifest is None:
        return {"manifest_digest": None, "blobs": []}
    return {
        "manifest_digest": manifest.digest,
        "blobs": [f"{layer.digest} {layer.size}" for layer in manifest.blobs],
    }
