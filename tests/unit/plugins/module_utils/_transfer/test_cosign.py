# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.cosign: each signer adds their signature to a built bundle, on their own turn, after
checking what they sign; ingest counts the distinct keys."""

from __future__ import annotations

import hashlib
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import cosign as _cosign
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import spec as _spec
from ansible_collections.airgap.llm.tests.ollama_store import snapshot
from ansible_collections.airgap.llm.tests.transfer_kit import read_members, write_tar

PASS = "unit-test-passphrase"  # noqa: S105 - throwaway keys


@pytest.fixture
def built(tmp_path, signers):
    """A bundle built and signed by signer 0 alone (whole, or in chunks of 8000 bytes)."""

    def make(chunk_size=None):
        base = tmp_path / "src"
        (base / "wheelhouse").mkdir(parents=True, exist_ok=True)
        (base / "wheelhouse" / "a-1-py3-none-any.whl").write_bytes(os.urandom(20000))
        (base / "zeros.img").write_bytes(bytes(5000))  # ends in zeros, like many disk images do
        spec = {
            "version": 3,
            "expires_days": 30,
            "artifacts": [
                {"name": "wheels", "version": "1", "kind": "wheelhouse", "path": "wheelhouse"},
                {"name": "image", "version": "1", "path": "zeros.img"},
            ],
        }
        options = _build.BuildOptions(
            dest=str(tmp_path / "out"),
            base_dir=str(base),
            cache_dir=str(tmp_path / "cache"),
            signing_keys=[{"path": signers[0]["path"], "passphrase": PASS}],
            fetch_options=_fetch.FetchOptions(),
            chunk_size=chunk_size,
        )
        result = _build.build(spec, options)
        return {"tar": result["bundle"], "sha256": result["sha256"], "out": tmp_path / "out"}

    return make


def _ingest_2_of_3(tmp_path, signers, tar, sha256):
    return _ingest.ingest(
        _ingest.IngestOptions(
            src=tar,
            sha256=sha256,
            repository=str(tmp_path / "repo"),
            audit_log=str(tmp_path / "audit.jsonl"),
            operator="unit",
            trusted_keys=[s["pem"] for s in signers],
            threshold=2,
        )
    )


@pytest.mark.parametrize("chunk_size", [None, 8000])
def test_a_second_signer_signs_the_built_bundle_and_ingest_counts_both(tmp_path, signers, built, chunk_size):
    bundle = built(chunk_size)
    with pytest.raises(_ingest.Refused, match="1 of the 2 required signatures"):
        _ingest_2_of_3(tmp_path, signers, bundle["tar"], bundle["sha256"])
    signed = _cosign.add_signature(bundle["tar"], signers[1]["path"], PASS, expected_sha256=bundle["sha256"])
    assert signed["changed"] is True
    assert signed["previous_sha256"] == bundle["sha256"] != signed["sha256"]
    assert signed["key_ids"] == sorted([signers[0]["id"], signers[1]["id"]])
    with open(bundle["tar"] + ".sha256", encoding="ascii") as handle:
        assert handle.read().split() == [signed["sha256"], os.path.basename(bundle["tar"])]
    if chunk_size:
        assert len(signed["chunks"]) >= 3
        assert all(c["size"] <= chunk_size for c in signed["chunks"])
        whole = hashlib.sha256()
        for chunk in signed["chunks"]:
            data = open(chunk["path"], "rb").read()  # noqa: SIM115 - small test files
            assert hashlib.sha256(data).hexdigest() == chunk["sha256"]
            whole.update(data)
        assert whole.hexdigest() == signed["sha256"]
        assert not os.path.exists(bundle["tar"])
    result = _ingest_2_of_3(tmp_path, signers, bundle["tar"], signed["sha256"])
    assert result["key_ids"] == sorted([signers[0]["id"], signers[1]["id"]])
    assert [r["name"] for r in result["added"]] == ["image", "sbom", "wheels"]
    leftovers = [n for n in os.listdir(bundle["out"]) if n.startswith(".")]
    assert leftovers == []  # no temporary file is left


def test_signing_again_with_the_same_key_changes_nothing_and_reads_no_member(
    tmp_path, signers, built, monkeypatch
):
    bundle = built()
    first = _cosign.add_signature(bundle["tar"], signers[1]["path"], PASS)
    before = snapshot(str(bundle["out"]))

    def no_full_read(*_args, **_kwargs):
        raise AssertionError("the bundle was read again")

    monkeypatch.setattr(_cosign, "_Copy", no_full_read)
    again = _cosign.add_signature(bundle["tar"], signers[1]["path"], PASS, expected_sha256=first["sha256"])
    assert again["changed"] is False
    assert again["sha256"] == first["sha256"]
    assert "is signed by key" in again["msg"] and "already" in again["msg"]
    assert snapshot(str(bundle["out"])) == before


def test_check_mode_checks_everything_and_writes_nothing(tmp_path, signers, built):
    bundle = built(8000)
    before = snapshot(str(bundle["out"]))
    planned = _cosign.add_signature(bundle["tar"], signers[2]["path"], PASS, check_mode=True)
    assert planned["changed"] is True
    assert planned["sha256"] is None
    assert signers[2]["id"] in planned["key_ids"]
    assert snapshot(str(bundle["out"])) == before


def test_a_bundle_that_is_not_the_one_the_signer_was_given_is_not_signed(tmp_path, signers, built):
    bundle = built()
    before = snapshot(str(bundle["out"]))
    with pytest.raises(_spec.BundleError) as info:
        _cosign.add_signature(bundle["tar"], signers[1]["path"], PASS, expected_sha256="ab" * 32)
    assert "lists another digest than the one you were given" in str(info.value)
    assert bundle["sha256"] not in str(info.value)
    assert snapshot(str(bundle["out"])) == before


def test_a_tampered_artifact_is_found_before_signing(tmp_path, signers, built):
    bundle = built()
    members = read_members(bundle["tar"])
    name = next(i.name for i, _d in members if i.name.endswith(".whl"))
    tampered = [(i, (b"X" + d[1:]) if i.name == name else d) for i, d in members]
    digest = write_tar(bundle["tar"], tampered)
    with open(bundle["tar"] + ".sha256", "w", encoding="ascii") as handle:
        handle.write(f"{digest}  {os.path.basename(bundle['tar'])}\n")  # consistent, but not what was built
    before = snapshot(str(bundle["out"]))
    with pytest.raises(_spec.BundleError) as info:
        _cosign.add_signature(bundle["tar"], signers[1]["path"], PASS)
    assert "refused at check 6 (artifact digests)" in str(info.value)
    assert "the artifact was altered or damaged" in str(info.value)
    assert "do not sign it, build it again" in str(info.value)
    assert snapshot(str(bundle["out"])) == before


def test_a_wrong_passphrase_names_the_vault_file(tmp_path, signers, built):
    bundle = built()
    with pytest.raises(
        _spec.BundleError, match=r"wrong passphrase.*bundle_key_passphrase in your own vault file"
    ):
        _cosign.add_signature(bundle["tar"], signers[1]["path"], "not the passphrase")


def test_a_missing_bundle_says_which_name_to_give(tmp_path, signers):
    with pytest.raises(
        _spec.BundleError, match=r"does not exist \(nor airgap-llm-stable-000001.tar.chunks.sha256\)"
    ):
        _cosign.add_signature(str(tmp_path / "airgap-llm-stable-000001.tar"), signers[1]["path"], PASS)
