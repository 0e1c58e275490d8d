# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.build: check mode and real builds, idempotent; a differential bundle ingested in-process."""

from __future__ import annotations

import datetime
import hashlib
import json
import tarfile

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.plugins.module_utils._transfer import spec as _spec

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
