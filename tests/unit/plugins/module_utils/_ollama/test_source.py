# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.source: a model installed straight from the artifact repository on disk, as ingest filed it."""

from __future__ import annotations

import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import PinMismatchError, SourceError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.install import install_model
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import (
    LocalSource,
    RepositorySource,
    make_source,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import verify_store
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.tests import ollama_store as gen

PASS = "unit-test-passphrase"  # noqa: S105 - throwaway key


@pytest.fixture
def repository(tmp_path):
    """A repository holding llama3.2:3b (artifact llama3.2 3b) and team/other:v2, ingested from a bundle."""
    store = str(tmp_path / "low-store")
    models = {"3b": gen.add_model(store, "llama3.2:3b", model_size=30000)}
    models["other"] = gen.add_model(store, "team/other:v2", model_size=2000)
    _sign.keygen(str(tmp_path / "k.key"), str(tmp_path / "k.pub"), PASS)

    def ingest(version, artifacts):
        options = _build.BuildOptions(
            dest=str(tmp_path / "out"),
            base_dir=str(tmp_path),
            cache_dir=str(tmp_path / "cache"),
            signing_keys=[{"path": str(tmp_path / "k.key"), "passphrase": PASS}],
            fetch_options=_fetch.FetchOptions(),
        )
        spec = {"version": version, "ollama_store": store, "artifacts": artifacts}
        built = _build.build(spec, options)
        trust = {"trusted_keys": [(tmp_path / "k.pub").read_text()], "threshold": 1} if version == 1 else {}
        _ingest.ingest(
            _ingest.IngestOptions(
                src=built["bundle"],
                sha256=built["sha256"],
                repository=str(tmp_path / "repo"),
                audit_log=str(tmp_path / "audit.jsonl"),
                operator="unit",
                **trust,
            )
        )

    ingest(
        1,
        [
            {"name": "llama3.2", "version": "3b", "kind": "model"},
            {"name": "other", "version": "v2", "kind": "model", "model": "team/other:v2"},
        ],
    )
    return {"root": str(tmp_path / "repo"), "models": models, "store": store, "ingest": ingest}


def test_the_repository_root_is_a_source_a_model_installs_from(repository, tmp_path):
    source = make_source(repository["root"])
    assert isinstance(source, RepositorySource)
    dest = Store(str(tmp_path / "node-store"))
    pin = repository["models"]["3b"].manifest_digest
    result = install_model(dest, "llama3.2:3b", source, pin=pin)
    assert result["changed"] is True
    assert result["manifest_digest"] == pin
    checked = verify_store(dest, mode="full", write_record=False)
    assert checked["problems"] == []
    assert [m["name"] for m in checked["models"]] == ["llama3.2:3b"]
    again = install_model(dest, "llama3.2:3b", make_source(repository["root"]), pin=pin)
    assert again["changed"] is False


def test_a_model_the_repository_does_not_serve_is_named_with_those_it_serves(repository, tmp_path):
    with pytest.raises(SourceError) as info:
        install_model(Store(str(tmp_path / "node")), "llama3.2:1b", make_source(repository["root"]))
    message = str(info.value)
    assert f"model llama3.2:1b: the artifact repository {repository['root']} does not serve it" in message
    assert "it serves the models llama3.2:3b, team/other:v2" in message
    assert not (tmp_path / "node").exists()


def test_two_bundles_serving_other_manifests_for_a_model_need_the_pin(repository, tmp_path):
    newer = gen.add_model(repository["store"], "llama3.2:3b", model_size=31000, seed="newer weights")
    repository["ingest"](
        2, [{"name": "llama3.2", "version": "3b-q8", "kind": "model", "model": "llama3.2:3b"}]
    )
    node = Store(str(tmp_path / "node"))
    with pytest.raises(SourceError) as info:
        install_model(node, "llama3.2:3b", make_source(repository["root"]))
    assert "serves several manifests for it" in str(info.value)
    assert f"{newer.manifest_digest} (llama3.2 3b-q8)" in str(info.value)
    assert "Give manifest_digest to choose one" in str(info.value)
    old = repository["models"]["3b"].manifest_digest
    result = install_model(node, "llama3.2:3b", make_source(repository["root"], pin=old), pin=old)
    assert result["manifest_digest"] == old
    wrong = "sha256:" + "0" * 64
    with pytest.raises(SourceError, match="serves several manifests"):
        install_model(node, "llama3.2:3b", make_source(repository["root"], pin=wrong), pin=wrong)


def test_a_damaged_manifest_blob_in_the_repository_is_refused(repository, tmp_path):
    digest = repository["models"]["other"].manifest_digest[len("sha256:") :]
    blob = os.path.join(repository["root"], "blobs", "sha256", digest)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as handle:
        handle.write(b"X")
    with pytest.raises(SourceError, match="does not hash to its name: the repository is damaged"):
        install_model(Store(str(tmp_path / "node")), "team/other:v2", make_source(repository["root"]))


def test_a_pin_the_repository_does_not_hold_fails_naming_both(repository, tmp_path):
    wrong = "sha256:" + "1" * 64
    with pytest.raises(PinMismatchError, match="expected the pinned manifest_digest " + wrong):
        install_model(
            Store(str(tmp_path / "node")), "llama3.2:3b", make_source(repository["root"]), pin=wrong
        )


def test_a_path_inside_the_repository_points_at_its_root(repository):
    with pytest.raises(SourceError) as info:
        make_source(os.path.join(repository["root"], "current", "models"))
    assert f"{repository['root']} is the artifact repository: give src: {repository['root']}" in str(
        info.value
    )


def test_a_model_missing_from_an_export_lists_what_the_export_holds(tmp_path):
    root = str(tmp_path / "export")
    gen.add_model(root, "llama3.2:3b", model_size=1000)
    with pytest.raises(SourceError) as info:
        install_model(Store(str(tmp_path / "node")), "llama3.2:1b", LocalSource(root))
    assert "it holds: llama3.2:3b. Check `name` and `src`" in str(info.value)
