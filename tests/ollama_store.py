# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Build Ollama model stores in the real on-disk format, for tests and benchmarks.

What Ollama writes when it pulls or creates a model:

* ``blobs/sha256-<hex>``: each layer and the config, named by the SHA-256 of its bytes;
* the config blob: JSON ``{"model_format", "model_family", "model_families", "model_type",
  "file_type", "renderer", "parser", "remote_host", "remote_model", "requires", "rootfs"...}``
  of media type ``application/vnd.docker.container.image.v1+json``;
* ``manifests/<host>/<namespace>/<model>/<tag>``: compact JSON (Go ``json.Marshal`` of the
  manifest struct, field order schemaVersion, mediaType, config, layers; no trailing newline),
  each layer ``{"mediaType", "digest", "size"}`` plus ``"from"`` when set;
* files 0644, directories 0755.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
OLLAMA = "application/vnd.ollama.image."


def split_name(name: str) -> Tuple[str, str, str, str]:
    """Ollama's defaults: host registry.ollama.ai, namespace library, tag latest."""
    rest, _sep, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    parts = rest.split("/")
    host, namespace = "registry.ollama.ai", "library"
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        model = parts[0]
    return host, namespace, model, tag or "latest"


def pseudo_random(seed: str, size: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """Deterministic incompressible bytes (SHAKE-256 stream) in chunks."""
    produced = 0
    counter = 0
    while produced < size:
        want = min(chunk, size - produced)
        yield hashlib.shake_256(f"{seed}:{counter}".encode()).digest(want)
        produced += want
        counter += 1


def write_blob(root: str, chunks: Iterable[bytes]) -> Tuple[str, int]:
    """Write a blob into ``root/blobs`` from ``chunks``; returns (``sha256:<hex>``, size)."""
    blobs = os.path.join(root, "blobs")
    os.makedirs(blobs, 0o755, exist_ok=True)
    tmp = os.path.join(blobs, ".generator.tmp")
    digest = hashlib.sha256()
    size = 0
    with open(tmp, "wb") as handle:
        for data in chunks:
            digest.update(data)
            handle.write(data)
            size += len(data)
    os.chmod(tmp, 0o644)
    hexdigest = digest.hexdigest()
    os.replace(tmp, os.path.join(blobs, "sha256-" + hexdigest))
    return "sha256:" + hexdigest, size


@dataclass
class Model:
    name: str
    manifest_path: str
    manifest_bytes: bytes
    config: Dict[str, object]
    layers: List[Dict[str, object]] = field(default_factory=list)

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest_bytes).hexdigest()

    def blob_path(self, root: str, index: int) -> str:
        """Path of layer ``index`` (``-1`` = config) under store ``root``."""
        layer = self.config if index == -1 else self.layers[index]
        return os.path.join(root, "blobs", str(layer["digest"]).replace(":", "-"))

    @property
    def digests(self) -> List[str]:
        seen: List[str] = []
        for layer in (self.config, *self.layers):
            if layer["digest"] not in seen:
                seen.append(str(layer["digest"]))
        return seen


def add_model(
    root: str,
    name: str,
    *,
    model_size: int = 64 * 1024,
    seed: Optional[str] = None,
    extra_layers: Optional[List[Tuple[str, bytes]]] = None,
    shared_model_from: Optional[Model] = None,
    family: str = "llama",
) -> Model:
    """Add a model as ``ollama create`` / ``ollama pull`` leaves it: model layer, template, params, license.

    ``shared_model_from`` reuses another model's weights layer (as two tags of one model do).
    """
    seed = seed or name
    if shared_model_from is not None:
        model_layer = dict(shared_model_from.layers[0])
    else:
        digest, size = write_blob(root, pseudo_random("weights:" + seed, model_size))
        model_layer = {"mediaType": OLLAMA + "model", "digest": digest, "size": size}
    layers = [model_layer]
    texts = extra_layers or [
        ("template", b"{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>"),
        ("params", json.dumps({"stop": ["<|user|>"], "temperature": 0.7}).encode()),
        ("license", ("License text for " + seed).encode()),
    ]
    for kind, data in texts:
        digest, size = write_blob(root, [data])
        layers.append({"mediaType": OLLAMA + kind, "digest": digest, "size": size})
    config_doc = {
        "model_format": "gguf",
        "model_family": family,
        "model_families": [family],
        "model_type": "3.2B",
        "file_type": "Q4_K_M",
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }
    config_digest, config_size = write_blob(root, [json.dumps(config_doc, separators=(",", ":")).encode()])
    config = {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": config, "layers": layers}
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    host, namespace, model, tag = split_name(name)
    directory = os.path.join(root, "manifests", host, namespace, model)
    os.makedirs(directory, 0o755, exist_ok=True)
    path = os.path.join(directory, tag)
    with open(path, "wb") as handle:
        handle.write(raw)
    os.chmod(path, 0o644)
    return Model(name, path, raw, config, layers)


def manifest_doc(**changes: object) -> Dict[str, object]:
    """A small valid manifest document (two layers), with top-level keys replaced by ``changes``."""
    doc: Dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": "sha256:" + "c" * 64, "size": 10},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "a" * 64, "size": 100},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "b" * 64, "size": 5},
        ],
    }
    doc.update(changes)
    return doc


def manifest_with_layer(**changes: object) -> bytes:
    """Manifest bytes with one model layer whose fields are replaced by ``changes``."""
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "a" * 64, "size": 100}
    layer.update(changes)
    return json.dumps(manifest_doc(layers=[layer])).encode()


def write_manifest(root: str, name: str, raw: bytes) -> str:
    """Write arbitrary manifest bytes for ``name`` (for malformed-manifest tests)."""
    host, namespace, model, tag = split_name(name)
    directory = os.path.join(root, "manifests", host, namespace, model)
    os.makedirs(directory, 0o755, exist_ok=True)
    path = os.path.join(directory, tag)
    with open(path, "wb") as handle:
        handle.write(raw)
    return path


def snapshot(root: str) -> Dict[str, Tuple[str, object]]:
    """Everything under ``root`` (bytes digest, link target, or 'dir') keyed by relative path.

    Two equal snapshots mean the tree is byte-for-byte the same.
    """
    result: Dict[str, Tuple[str, object]] = {}
    if not os.path.lexists(root):
        return result
    for directory, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(directory, entry)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if os.path.islink(path):
                result[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                result[rel] = ("dir", oct(st.st_mode))
            else:
                with open(path, "rb") as handle:
                    result[rel] = ("file", (hashlib.sha256(handle.read()).hexdigest(), oct(st.st_mode)))
    return result


def flip_bit(path: str, offset: int = 0) -> None:
    """Flip the lowest bit of one byte, keeping the size."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 1]))


def truncate(path: str, drop: int = 1) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(max(0, size - drop))


@contextlib.contextmanager
def lock_held_elsewhere(root: str) -> Iterator[None]:
    """Another process holds the exclusive lock of the store at ``root`` until the block ends."""
    code = textwrap.dedent(
        f"""
        import sys
        from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
        with Store({root!r}).lock(exclusive=True, timeout=5):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        if holder.stdout.readline().strip() != "locked":
            raise RuntimeError(f"the lock holder for {root} did not start")
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)
