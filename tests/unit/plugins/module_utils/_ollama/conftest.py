# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the tests of install, remove and export: a source store and a destination."""

from __future__ import annotations

import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.install import install_model
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import make_source
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import verify_store
from ansible_collections.airgap.llm.tests import ollama_store as gen


@pytest.fixture
def src(tmp_path):
    root = str(tmp_path / "src")
    os.makedirs(root)
    models = {"3b": gen.add_model(root, "llama3.2:3b", model_size=200000)}
    models["1b"] = gen.add_model(root, "llama3.2:1b", shared_model_from=models["3b"], seed="1b")
    models["other"] = gen.add_model(root, "team/other:v2", model_size=3000)
    return root, models


@pytest.fixture
def dest(tmp_path):
    return str(tmp_path / "dest" / "models")


def _install(dest, name, source_root, **kwargs):
    source = source_root if not isinstance(source_root, str) else make_source(source_root)
    return install_model(Store(dest), name, source, **kwargs)


def _installed_ok(dest, models):
    result = verify_store(Store(dest), mode="full", write_record=False)
    assert result["problems"] == []
    return sorted(m["name"] for m in result["models"]) == sorted(models)


@pytest.fixture
def install():
    """``install(dest, name, source_root, **kwargs)``: install_model from a directory (or a source)."""
    return _install


@pytest.fixture
def installed_ok():
    """``installed_ok(dest, names)``: the store verifies clean and holds exactly these models."""
    return _installed_ok


def _assert_fails_unchanged(dest, call, error, *fragments):
    before = gen.snapshot(dest)
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert gen.snapshot(dest) == before
    return message


@pytest.fixture
def fails_unchanged():
    """``fails_unchanged(dest, call, error, *fragments)``: ``call`` raises ``error`` naming every
    fragment, and ``dest`` is byte-for-byte as it was; returns the message."""
    return _assert_fails_unchanged
