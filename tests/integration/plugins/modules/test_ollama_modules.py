# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The three modules end to end through `ansible localhost -m airgap.llm.<module>`; ollama_model also
from the artifact repository on disk, as ingest filed it."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.tests import ollama_store as gen
from ansible_collections.airgap.llm.tests.module_runner import ansible


@pytest.fixture
def src(tmp_path):
    root = str(tmp_path / "src")
    os.makedirs(root)
    return root, {
        "3b": gen.add_model(root, "llama3.2:3b", model_size=100000),
        "other": gen.add_model(root, "team/other:v2", model_size=2000),
    }


def test_ollama_model_check_real_check_real_and_absent(src, tmp_path):
    root, models = src
    store = str(tmp_path / "store")
    args = {"name": "llama3.2:3b", "path": store, "src": root, "owner": "65534", "group": "65534"}
    ok, first = ansible("ollama_model", args, "--check", "--diff")
    assert ok
    assert first["changed"]
    assert not os.path.exists(store)
    ok, second = ansible("ollama_model", args, "--diff")
    assert ok
    assert second["changed"]
    assert second["manifest_digest"] == models["3b"].manifest_digest
    assert second["blobs_copied"] == first["blobs_copied"]
    ok, third = ansible("ollama_model", args, "--check")
    assert ok
    assert not third["changed"]
    ok, fourth = ansible("ollama_model", args)
    assert ok
    assert not fourth["changed"]
    assert fourth["bytes_hashed"] == 0
    ok, verified = ansible("ollama_verify", {"path": store, "mode": "full"})
    assert ok
    assert verified["problems"] == []
    assert verified["bytes_hashed"] == second["bytes_copied"]
    absent = {"name": "llama3.2:3b", "path": store, "state": "absent"}
    ok, removing = ansible("ollama_model", absent, "--check")
    assert ok
    assert removing["changed"]
    ok, removed = ansible("ollama_model", absent)
    assert ok
    assert removed["changed"]
    assert sorted(removed["blobs_removed"]) == sorted(models["3b"].digests)
    ok, again = ansible("ollama_model", absent)
    assert ok
    assert not again["changed"]


def test_ollama_model_check_mode_before_the_ca_file_exists(tmp_path):
    """A new node in check mode: repo_client's CA file is only predicted, so the pin is the prediction."""
    with socket.socket() as probe:  # nothing listens there: a contacted source would fail the task
        probe.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{probe.getsockname()[1]}/ollama/"
    store = str(tmp_path / "store")
    pin = "sha256:" + "ab" * 32
    args = {
        "name": "llama3.2:3b",
        "path": store,
        "src": url,
        "ca_file": str(tmp_path / "ca.crt"),
        "timeout": 2,
    }
    ok, predicted = ansible("ollama_model", dict(args, manifest_digest=pin), "--check")
    assert ok and predicted["changed"] and predicted["manifest_digest"] == pin, predicted
    assert not os.path.exists(store)
    ok, unpinned = ansible("ollama_model", args, "--check")
    assert not ok and "without a manifest_digest pin nothing can be predicted" in unpinned["msg"], unpinned
    ok, real = ansible("ollama_model", dict(args, manifest_digest=pin))
    assert not ok and "cannot set up TLS" in real["msg"] and not os.path.exists(store), real


def test_ollama_model_bad_source_fails_with_a_message_and_no_change(src, tmp_path):
    root, models = src
    store = str(tmp_path / "store")
    ok, _result = ansible("ollama_model", {"name": "team/other:v2", "path": store, "src": root})
    assert ok
    before = gen.snapshot(store)
    gen.flip_bit(models["3b"].blob_path(root, 0), 10)
    ok, result = ansible("ollama_model", {"name": "llama3.2:3b", "path": store, "src": root})
    assert not ok
    digest = models["3b"].layers[0]["digest"]
    assert f"model llama3.2:3b: blob {digest}" in result["msg"]
    assert f"digest mismatch: expected {digest}, actual sha256:" in result["msg"]
    assert "What to do:" in result["msg"]
    assert gen.snapshot(store) == before
    ok, result = ansible("ollama_model", {"name": "../../etc:passwd", "path": store, "src": root})
    assert not ok
    assert "invalid model name '../../etc:passwd'" in result["msg"]
    assert gen.snapshot(store) == before


def test_ollama_verify_fails_naming_model_blob_expected_actual(src):
    root, models = src
    gen.truncate(models["other"].blob_path(root, 0), 5)
    gen.write_blob(root, [b"orphan"])
    ok, result = ansible("ollama_verify", {"path": root, "jobs": 2})
    assert not ok
    digest = models["other"].layers[0]["digest"]
    assert f"model team/other:v2 blob {digest}" in result["msg"]
    assert "size: expected 2000 bytes, actual 1995 bytes" in result["msg"]
    assert "orphan" not in result["msg"]  # reported, not failing
    assert sorted(p["kind"] for p in result["problems"]) == ["orphan", "size"]
    ok, result = ansible("ollama_verify", {"path": root, "models": ["llama3.2:3b"], "orphans": "fail"})
    assert not ok
    assert "orphan: expected referenced by a manifest" in result["msg"]
    ok, result = ansible("ollama_verify", {"path": root, "models": ["llama3.2:3b"], "orphans": "ignore"})
    assert ok
    assert result["problems"] == []


def test_ollama_verify_fast_after_full_reads_nothing(src):
    root, _models = src
    ok, full = ansible("ollama_verify", {"path": root, "mode": "full"})
    assert ok
    assert full["bytes_hashed"] > 0
    ok, fast = ansible("ollama_verify", {"path": root, "mode": "fast"})
    assert ok
    assert fast["bytes_hashed"] == 0
    ok, result = ansible("ollama_verify", {"path": os.path.join(root, "nope")})
    assert not ok
    assert "does not exist" in result["msg"]


def test_ollama_export_check_real_check_real(src, tmp_path):
    root, models = src
    dest = str(tmp_path / "export")
    args = {"path": root, "models": ["llama3.2:3b"], "dest": dest}
    ok, first = ansible("ollama_export", args, "--check")
    assert ok
    assert first["changed"]
    assert not os.path.exists(dest)
    ok, second = ansible("ollama_export", args)
    assert ok
    assert second["changed"]
    assert sorted(second["blobs_copied"]) == sorted(models["3b"].digests)
    ok, third = ansible("ollama_export", args, "--check")
    assert ok
    assert not third["changed"]
    ok, fourth = ansible("ollama_export", args)
    assert ok
    assert not fourth["changed"]
    shutil.rmtree(os.path.join(root, "blobs"))
    ok, broken = ansible("ollama_export", {"path": root, "models": ["team/other:v2"], "dest": dest})
    assert not ok
    assert "cannot open source blob" in broken["msg"]


def test_ollama_model_installs_from_the_repository_on_disk_pinned_without_prefix(src, tmp_path):
    """The ingest host (or a node with the repository mounted) installs straight from its directory."""
    root, models = src
    _sign.keygen(str(tmp_path / "k1.key"), str(tmp_path / "k1.pub"), "integration-passphrase")
    built = _build.build(
        {
            "version": 1,
            "ollama_store": root,
            "artifacts": [{"name": "llama3.2", "version": "3b", "kind": "model"}],
        },
        _build.BuildOptions(
            dest=str(tmp_path / "out"),
            base_dir=str(tmp_path),
            cache_dir=str(tmp_path / "cache"),
            signing_keys=[{"path": str(tmp_path / "k1.key"), "passphrase": "integration-passphrase"}],
            fetch_options=_fetch.FetchOptions(),
        ),
    )
    repo = str(tmp_path / "repo")
    _ingest.ingest(
        _ingest.IngestOptions(
            src=built["bundle"],
            sha256=built["sha256"],
            repository=repo,
            audit_log=str(tmp_path / "audit.jsonl"),
            operator="integration",
            trusted_keys=[(tmp_path / "k1.pub").read_text()],
            threshold=1,
        )
    )
    store = str(tmp_path / "store")
    pin = models["3b"].manifest_digest[len("sha256:") :]
    args = {"name": "llama3.2:3b", "path": store, "src": repo, "manifest_digest": pin}
    ok, check = ansible("ollama_model", args, "--check")
    assert ok and check["changed"] and not os.path.exists(store), check
    ok, real = ansible("ollama_model", args)
    assert ok and real["changed"], real
    assert real["manifest_digest"] == models["3b"].manifest_digest
    assert sorted(real["blobs_copied"]) == sorted(models["3b"].digests)
    ok, again = ansible("ollama_model", args, "--check")
    assert ok and not again["changed"], again
    ok, verified = ansible("ollama_verify", {"path": store, "mode": "full"})
    assert ok and verified["problems"] == [], verified
    ok, typo = ansible("ollama_model", dict(args, name="llama3.2:8b", manifest_digest=None))
    assert not ok
    assert (
        f"the artifact repository {repo} does not serve it; it serves the models llama3.2:3b" in typo["msg"]
    )
    ok, bad_pin = ansible("ollama_model", dict(args, manifest_digest="sha256:" + pin[:-1]))
    assert not ok
    assert "manifest_digest 'sha256:" in bad_pin["msg"] and "it has 63 hexadecimal digits" in bad_pin["msg"]
