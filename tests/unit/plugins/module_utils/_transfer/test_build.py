# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.build: check mode and real builds, idempotent; a differential bundle ingested in-process."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import tarfile

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import repo as _repo
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.plugins.module_utils._transfer import spec as _spec
from ansible_collections.airgap.llm.tests import ollama_store

NOW = datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)
PASS = "unit-test-passphrase"  # noqa: S105 - throwaway key


def _options(tmp_path, **extra):
    _sign.keygen(str(tmp_path / "k.key"), str(tmp_path / "k.pub"), PASS)
    values = {
        "dest": str(tmp_path / "out"),
        "base_dir": str(tmp_path),
        "cache_dir": str(tmp_path / "cache"),
        "signing_keys": [{"path": str(tmp_path / "k.key"), "passphrase": PASS}],
        "fetch_options": _fetch.FetchOptions(),
    }
    values.update(extra)
    return _build.BuildOptions(**values)


def test_build_check_mode_and_idempotence(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a" * 3000)
    spec = {"version": 5, "artifacts": [{"name": "a", "version": "1", "path": "a.bin"}]}
    options = _options(tmp_path)
    planned = _build.build(spec, options, check_mode=True)
    assert planned["changed"] is True
    assert not (tmp_path / "out").exists()
    first = _build.build(spec, options)
    assert first["changed"] is True
    again = _build.build(spec, options)
    assert again["changed"] is False
    assert again["sha256"] == first["sha256"]
    older = dict(spec, version=4)
    with pytest.raises(_spec.BundleError, match="Raise version"):
        _build.build(older, options)


def test_build_pin_mismatch_leaves_no_output(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a" * 3000)
    spec = {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "a.bin", "sha256": "0" * 64}]}
    with pytest.raises(_spec.BundleError, match="expected 0000"):
        _build.build(spec, _options(tmp_path))
    assert list((tmp_path / "out").iterdir()) == []


def test_differential_needs_blob_in_repository(tmp_path):
    data = b"weights" * 1000
    (tmp_path / "w.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"format": "airgap.llm.inventory", "blobs": {digest: len(data)}}))
    spec = {"version": 1, "artifacts": [{"name": "w", "version": "1", "path": "w.bin", "sha256": digest}]}
    built = _build.build(spec, _options(tmp_path, inventory=str(inventory)))
    assert built["omitted_files"] == 1
    options = _ingest.IngestOptions(
        src=built["bundle"],
        sha256=built["sha256"],
        repository=str(tmp_path / "repo"),
        trusted_keys=[(tmp_path / "k.pub").read_text()],
        threshold=1,
        audit_log=str(tmp_path / "audit.jsonl"),
        operator="unit",
    )
    with pytest.raises(_ingest.Refused, match="does not hold it") as info:
        _ingest.ingest(options)
    assert info.value.step == "artifact digests"
    assert not (tmp_path / "repo" / "current").exists()


@pytest.mark.parametrize("stray", ["README", ".recipe", "sub/x.deb"])
def test_a_deb_directory_holds_debian_packages_only(tmp_path, stray):
    debs = tmp_path / "debs"
    (debs / "sub").mkdir(parents=True)
    (debs / "jq_1.6_amd64.deb").write_bytes(b"!<arch>\n")
    (debs / stray).write_bytes(b"not a package")
    spec = {
        "version": 1,
        "artifacts": [{"name": "p", "version": "1", "kind": "deb", "path": "debs", "suites": ["bookworm"]}],
    }
    with pytest.raises(_spec.BundleError, match=f"kind deb holds Debian packages only.*{stray}"):
        _build.build(spec, _options(tmp_path))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    (debs / stray).unlink()
    built = _build.build(spec, _options(tmp_path))
    with tarfile.open(built["bundle"]) as bundle:
        manifest = json.load(bundle.extractfile("bundle.json"))
    (art,) = [a for a in manifest["artifacts"] if a["kind"] == "deb"]
    assert (art["kind"], art["suites"]) == ("deb", ["bookworm"])


def _local_spec(version: int):
    return {
        "version": version,
        "expires_days": 3650,
        "artifacts": [
            {"name": "open-webui", "version": "0.6.5", "kind": "wheelhouse", "path": "wheelhouse"},
            {"name": "nginx", "version": "1.22.1", "kind": "deb", "path": "debs", "suites": ["bookworm"]},
            {"name": "notes", "version": str(version), "path": "notes.txt"},
        ],
    }


def _local_tree(tmp_path):
    (tmp_path / "wheelhouse" / "sub").mkdir(parents=True)
    (tmp_path / "wheelhouse" / "open_webui-0.6.5-py3-none-any.whl").write_bytes(b"w" * 5000)
    (tmp_path / "wheelhouse" / "sub" / "fastapi-0.115.0-py3-none-any.whl").write_bytes(b"f" * 3000)
    (tmp_path / "debs").mkdir()
    for name in ("nginx_1.22.1_amd64.deb", "libnginx_1.22.1_amd64.deb"):
        (tmp_path / "debs" / name).write_bytes(name.encode() * 100)  # 2200 and 2500 bytes
    (tmp_path / "notes.txt").write_bytes(b"notes one\n")


def _members(bundle):
    with tarfile.open(bundle) as tar:
        return {m.name: m.size for m in tar.getmembers()}, json.load(tar.extractfile("bundle.json"))


def test_a_second_bundle_with_an_unchanged_wheelhouse_and_debs_carries_none_of_them(tmp_path):
    _local_tree(tmp_path)
    options = _options(tmp_path)
    first = _build.build(_local_spec(1), options)
    trusted = [(tmp_path / "k.pub").read_text()]
    ingest = dict(repository=str(tmp_path / "repo"), audit_log=str(tmp_path / "a.jsonl"), operator="unit")
    _ingest.ingest(
        _ingest.IngestOptions(
            src=first["bundle"], sha256=first["sha256"], **ingest, trusted_keys=trusted, threshold=1
        )
    )
    inventory = tmp_path / "inventory.json"
    inventory.write_bytes(_json.dumps(_repo.Repository(str(tmp_path / "repo")).inventory()))
    # Same size as before, other bytes: a size match alone leaves nothing out.
    (tmp_path / "notes.txt").write_bytes(b"notes two\n")
    second = _build.build(_local_spec(2), _options(tmp_path, inventory=str(inventory)))
    members, manifest = _members(second["bundle"])
    assert sorted(members) == [
        "artifacts/file/notes/2/notes.txt",
        "bundle.json",
        "sbom.cdx.json",
        f"signatures/{_sign.key_id(_sign.load_private_key(str(tmp_path / 'k.key'), PASS).public_key())}.sig",
    ]
    omitted = {f["path"]: f for f in manifest["files"] if f["omitted"]}
    assert sorted(omitted) == [
        "artifacts/deb/nginx/1.22.1/libnginx_1.22.1_amd64.deb",
        "artifacts/deb/nginx/1.22.1/nginx_1.22.1_amd64.deb",
        "artifacts/wheelhouse/open-webui/0.6.5/open_webui-0.6.5-py3-none-any.whl",
        "artifacts/wheelhouse/open-webui/0.6.5/sub/fastapi-0.115.0-py3-none-any.whl",
    ]
    whl = tmp_path / "wheelhouse" / "open_webui-0.6.5-py3-none-any.whl"
    assert omitted["artifacts/wheelhouse/open-webui/0.6.5/open_webui-0.6.5-py3-none-any.whl"]["sha256"] == (
        hashlib.sha256(whl.read_bytes()).hexdigest()
    )
    assert manifest["differential"]["omitted_files"] == 4
    assert manifest["differential"]["omitted_bytes"] == second["omitted_bytes"] == 5000 + 3000 + 2200 + 2500
    assert second["size"] < first["size"]
    accepted = _ingest.ingest(_ingest.IngestOptions(src=second["bundle"], sha256=second["sha256"], **ingest))
    assert accepted["current"] == "states/000002"
    index = _repo.Repository(str(tmp_path / "repo")).index()["artifacts"]
    assert len(index["nginx"]["1.22.1"]["files"]) == 2
    assert index["notes"]["2"]["files"][0]["sha256"] == hashlib.sha256(b"notes two\n").hexdigest()


def test_a_local_file_that_changes_after_it_was_compared_with_the_inventory_fails_the_build(
    tmp_path, monkeypatch
):
    (tmp_path / "a.bin").write_bytes(b"a" * 3000)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"format": "airgap.llm.inventory", "blobs": {"0" * 64: 3000}}))
    real = _build.hash_many

    def then_changed(paths):
        outcomes = real(paths)
        (tmp_path / "a.bin").write_bytes(b"b" * 3000)
        return outcomes

    monkeypatch.setattr(_build, "hash_many", then_changed)
    spec = {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "a.bin"}]}
    with pytest.raises(_spec.BundleError, match="changed while the bundle was being built"):
        _build.build(spec, _options(tmp_path, inventory=str(inventory)))
    assert [p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")] == []


def test_only_local_files_whose_size_the_inventory_holds_are_read_early(tmp_path, monkeypatch):
    _local_tree(tmp_path)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"format": "airgap.llm.inventory", "blobs": {"0" * 64: 5000}}))
    seen = []
    real = _build.hash_many
    monkeypatch.setattr(_build, "hash_many", lambda paths: seen.extend(paths) or real(paths))
    built = _build.build(_local_spec(1), _options(tmp_path, inventory=str(inventory)))
    assert [os.path.basename(p) for p in seen] == ["open_webui-0.6.5-py3-none-any.whl"]
    assert built["omitted_files"] == 0
    assert built["bytes_hashed"] == 5000 + 3000 + 2200 + 2500 + 10 + 5000


def test_a_model_name_typo_lists_the_models_of_the_store_and_names_the_spec_key(tmp_path):
    store = tmp_path / "store"
    ollama_store.add_model(str(store), "llama3.2:3b", model_size=1000)
    ollama_store.add_model(str(store), "team/other:v2", model_size=1000)
    spec = {
        "version": 1,
        "ollama_store": str(store),
        "artifacts": [{"name": "llama3.2", "version": "3B", "kind": "model"}],
    }
    with pytest.raises(_spec.BundleError) as info:
        _build.build(spec, _options(tmp_path))
    assert str(info.value) == (
        f"model llama3.2:3B: not in the store {store} (ollama_store in the bundle spec), which holds: "
        "llama3.2:3b, team/other:v2. Check the name (model, or name:version of the artifact), or pull the "
        "model on the low side first"
    )
    spec["ollama_store"] = str(tmp_path / "nowhere")
    with pytest.raises(_spec.BundleError, match=r"does not exist; check ollama_store in the bundle spec$"):
        _build.build(spec, _options(tmp_path))
