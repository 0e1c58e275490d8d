# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.export: store layout plus models.json, verified while copied, idempotent."""

from __future__ import annotations

import json
import os
import re

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    BlobError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.export import export_models
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.tests import ollama_store as gen

# ------------------------------------------------------------------------------------------ export


def test_export_writes_store_layout_and_models_json_and_is_idempotent(src, tmp_path, install, installed_ok):
    root, models = src
    out = str(tmp_path / "export")
    store = Store(root)
    check = export_models(store, ["llama3.2:3b", "llama3.2:1b"], out, check_mode=True)
    assert check["changed"]
    assert not os.path.exists(out)
    result = export_models(store, ["llama3.2:3b", "llama3.2:1b"], out)
    assert result["changed"]
    expected = set(models["3b"].digests) | set(models["1b"].digests)
    assert sorted(result["blobs_copied"]) == sorted(expected)
    assert sorted(os.listdir(os.path.join(out, "blobs"))) == sorted(d.replace(":", "-") for d in expected)
    with open(os.path.join(out, "models.json")) as handle:
        document = json.load(handle)
    assert [m["name"] for m in document["models"]] == ["llama3.2:3b", "llama3.2:1b"]
    assert document["models"][0]["manifest_digest"] == models["3b"].manifest_digest
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", document["exported_at"])
    before = gen.snapshot(out)
    again = export_models(store, ["llama3.2:3b", "llama3.2:1b"], out)
    assert not again["changed"]
    assert again["bytes_hashed"] == 0
    assert gen.snapshot(out) == before
    # The export is itself a valid source for ollama_model.
    installed = str(tmp_path / "installed")
    install(installed, "llama3.2:1b", out)
    assert installed_ok(installed, ["llama3.2:1b"])
    # Narrowing the export removes what is no longer part of it.
    narrowed = export_models(store, ["llama3.2:1b"], out)
    assert narrowed["manifests_removed"] == ["llama3.2:3b"]
    assert sorted(narrowed["blobs_removed"]) == sorted(set(models["3b"].digests) - set(models["1b"].digests))


def test_export_of_a_corrupt_source_fails_and_dest_is_unchanged(src, tmp_path, fails_unchanged):
    root, models = src
    out = str(tmp_path / "export")
    store = Store(root)
    export_models(store, ["team/other:v2"], out)
    gen.flip_bit(models["3b"].blob_path(root, 0), 0)
    fails_unchanged(
        out,
        lambda: export_models(store, ["team/other:v2", "llama3.2:3b"], out),
        BlobError,
        "model llama3.2:3b",
        "digest mismatch",
    )


def test_export_refuses_a_foreign_non_empty_destination(src, tmp_path, fails_unchanged):
    root, _models = src
    out = tmp_path / "somewhere"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    fails_unchanged(
        str(out),
        lambda: export_models(Store(root), None, str(out)),
        StoreError,
        "is not empty and holds no models.json",
    )


def test_export_of_an_unknown_model(src, tmp_path):
    root, _models = src
    with pytest.raises(SourceError, match="model nothere:latest: not in store"):
        export_models(Store(root), ["nothere"], str(tmp_path / "out"))
