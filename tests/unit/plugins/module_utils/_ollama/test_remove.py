# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.remove: the manifest goes, and only the blobs no other manifest references."""

from __future__ import annotations

import os

from ansible_collections.airgap.llm.plugins.module_utils._ollama.remove import remove_model
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.tests import ollama_store as gen

# ------------------------------------------------------------------------------------------ absent


def test_absent_keeps_blobs_other_models_use(src, dest, install, installed_ok):
    root, models = src
    install(dest, "llama3.2:3b", root)
    install(dest, "llama3.2:1b", root)
    check = remove_model(Store(dest), "llama3.2:3b", check_mode=True)
    assert check["changed"]
    result = remove_model(Store(dest), "llama3.2:3b")
    assert result["blobs_removed"] == check["blobs_removed"]
    assert models["3b"].layers[0]["digest"] not in result["blobs_removed"]  # 1b shares the weights
    assert set(result["blobs_removed"]) == set(models["3b"].digests) - set(models["1b"].digests)
    assert installed_ok(dest, ["llama3.2:1b"])
    assert not remove_model(Store(dest), "llama3.2:3b")["changed"]
    remove_model(Store(dest), "llama3.2:1b")
    assert os.listdir(os.path.join(dest, "blobs")) == []
    assert os.listdir(os.path.join(dest, "manifests")) == []


def test_absent_keeps_every_blob_when_another_manifest_is_unreadable(src, dest, install):
    root, models = src
    install(dest, "llama3.2:3b", root)
    gen.write_manifest(dest, "broken:1", b"{")
    result = remove_model(Store(dest), "llama3.2:3b")
    assert result["blobs_removed"] == []
    assert "blobs kept" in result["warnings"][0]
    assert all(os.path.exists(models["3b"].blob_path(dest, i)) for i in range(-1, 4))
