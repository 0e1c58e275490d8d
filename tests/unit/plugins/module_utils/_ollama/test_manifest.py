# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.manifest: manifests parsed and checked; the digest is the file's hash."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import ManifestError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import (
    LAYER_TYPES,
    MANIFEST_MAX_BYTES,
    parse_manifest,
)
from ansible_collections.airgap.llm.tests import ollama_store as gen

# --------------------------------------------------------------------------------------- manifests


_manifest = gen.manifest_doc


def _raw(doc):
    return json.dumps(doc).encode()


def test_a_generated_manifest_parses_and_its_digest_is_the_file_hash(tmp_path):
    model = gen.add_model(str(tmp_path), "llama3.2:3b")
    with open(model.manifest_path, "rb") as handle:
        raw = handle.read()
    manifest = parse_manifest(raw, "llama3.2:3b")
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest() == model.manifest_digest
    assert [layer.digest for layer in manifest.blobs] == model.digests
    assert manifest.size == sum(layer["size"] for layer in [model.config, *model.layers])


def test_media_type_parameters_and_all_known_layer_types_are_accepted():
    layers = [
        {"mediaType": "application/vnd.ollama.image." + kind, "digest": f"sha256:{i:064x}", "size": i}
        for i, kind in enumerate(sorted(LAYER_TYPES))
    ]
    layers.append(
        {
            "mediaType": "application/vnd.ollama.image.tensor; name=w; dtype=F16",
            "digest": "sha256:" + "e" * 64,
            "size": 1,
        }
    )
    assert len(parse_manifest(_raw(_manifest(layers=layers))).layers) == len(layers)


BAD_MANIFESTS = [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "top level must be a JSON object, got list"),
    (b'{"schemaVersion": 2, "schemaVersion": 2}', "duplicate key 'schemaVersion'"),
    (b'{"schemaVersion": NaN}', "NaN is not valid JSON"),
    (_raw(_manifest(schemaVersion="2")), "schemaVersion must be 2, got '2'"),
    (_raw(_manifest(schemaVersion=True)), "schemaVersion must be 2, got True"),
    (_raw(_manifest(mediaType="application/json")), "mediaType is 'application/json'"),
    (_raw(_manifest(config=[])), "config must be an object, got list"),
    (_raw(_manifest(layers={})), "layers must be a list, got dict"),
    (_raw(_manifest(layers=["x"])), "layers[0] must be an object, got str"),
]


_layer = gen.manifest_with_layer


BAD_MANIFESTS += [
    (_layer(size="100"), "layers[0].size must be a non-negative integer, got '100'"),
    (_layer(size=-1), "got -1"),
    (_layer(size=1.5), "got 1.5"),
    (_layer(size=True), "got True"),
    (_layer(size=None), "got None"),
    (_layer(size=2**63), "non-negative integer"),
    (_layer(digest="sha256:" + "A" * 64), "must be 'sha256:' and 64 lowercase hex digits"),
    (_layer(digest="sha256:" + "a" * 63), "64 lowercase hex digits"),
    (_layer(digest="sha512:" + "a" * 128), "64 lowercase hex digits"),
    (_layer(digest="a" * 64), "64 lowercase hex digits"),
    (_layer(digest="sha256-" + "a" * 64), "64 lowercase hex digits"),
    (_layer(digest="sha256:../../etc/passwd"), "64 lowercase hex digits"),
    (_layer(digest=7), "64 lowercase hex digits"),
    (_layer(mediaType="application/octet-stream"), "is not an Ollama layer type"),
    (_layer(mediaType=3), "mediaType must be a string"),
    (_layer(name=3), "layers[0].name must be a string"),
    (
        _raw(_manifest(config={"mediaType": "x", "digest": "sha256:" + "c" * 64, "size": 1})),
        "config.mediaType is 'x'",
    ),
    (
        _raw(
            _manifest(
                layers=[
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": "sha256:" + "a" * 64,
                        "size": 1,
                    },
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": "sha256:" + "a" * 64,
                        "size": 2,
                    },
                ]
            )
        ),
        "listed with two sizes",
    ),
    (b"[" * 100000 + b"]" * 100000, "nested 100000 levels deep"),
    (_raw(_manifest(extra={"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}})), "nested 9 levels deep"),
    (b" " * (MANIFEST_MAX_BYTES + 1), "larger than 4194304 bytes"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_MANIFESTS)
def test_bad_manifests_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ManifestError) as info:
        parse_manifest(raw, "m:t", "manifests/x")
    message = str(info.value)
    assert reason in message
    assert message.startswith("model m:t: manifest manifests/x: ")
    assert "What to do:" in message


def test_strings_with_brackets_do_not_count_as_nesting():
    doc = _manifest()
    doc["layers"][0]["name"] = "[[[[[[[[[[{{{{{{{{{{" + '\\"' + "]]]"
    assert parse_manifest(_raw(doc)).layers[0].name.startswith("[[[")
