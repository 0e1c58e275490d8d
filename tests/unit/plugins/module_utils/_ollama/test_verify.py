# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.verify: verify_store on real-format stores: problems, orphans, links, the record."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import HINTS, StoreError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import MANIFEST_MAX_BYTES
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import STAGING_PREFIX, Store
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import format_problems, verify_store
from ansible_collections.airgap.llm.tests import ollama_store as gen

# ------------------------------------------------------------------------------------------ verify


@pytest.fixture
def store(tmp_path):
    root = str(tmp_path / "models")
    os.makedirs(root)
    models = {
        "big": gen.add_model(root, "llama3.2:3b", model_size=300000),
        "small": gen.add_model(root, "team/tiny:v1", model_size=5000),
    }
    models["twin"] = gen.add_model(root, "llama3.2:latest", shared_model_from=models["big"], seed="twin")
    return root, models


def _verify(root, **kwargs):
    return verify_store(Store(root), **kwargs)


def _kinds(result):
    return sorted((p["kind"], p["model"], p["digest"]) for p in result["problems"])


def test_a_clean_store_verifies_and_a_fast_pass_reads_nothing(store):
    root, models = store
    total = sum(
        os.path.getsize(os.path.join(root, "blobs", n)) for n in os.listdir(os.path.join(root, "blobs"))
    )
    full = _verify(root, mode="full", jobs=2)
    assert full["problems"] == []
    assert full["bytes_hashed"] == total
    assert sorted(m["name"] for m in full["models"]) == ["llama3.2:3b", "llama3.2:latest", "team/tiny:v1"]
    by_name = {m["name"]: m for m in full["models"]}
    assert by_name["llama3.2:3b"]["manifest_digest"] == models["big"].manifest_digest
    assert all(m["ok"] for m in full["models"])
    fast = _verify(root, mode="fast")
    assert fast["problems"] == []
    assert fast["bytes_hashed"] == 0
    assert _verify(root, mode="full")["bytes_hashed"] == total


def test_bit_flip_is_a_digest_problem_naming_model_blob_expected_and_actual(store):
    root, models = store
    path = models["small"].blob_path(root, 0)
    gen.flip_bit(path, 100)
    with open(path, "rb") as handle:
        actual = "sha256:" + hashlib.sha256(handle.read()).hexdigest()
    result = _verify(root, mode="full")
    digest = models["small"].layers[0]["digest"]
    assert result["problems"] == [
        {
            "model": "team/tiny:v1",
            "digest": digest,
            "kind": "digest",
            "expected": digest,
            "actual": actual,
            "path": "blobs/" + digest.replace(":", "-"),
            "hint": HINTS["digest"],
        }
    ]
    text = format_problems(result["problems"])
    assert "model team/tiny:v1" in text
    assert f"expected {digest}, actual {actual}" in text
    assert "What to do: the blob is corrupt" in text


def test_fast_mode_notices_a_rewrite_even_with_mtime_put_back(store):
    root, models = store
    assert _verify(root, mode="full")["problems"] == []
    path = models["small"].blob_path(root, 0)
    st = os.stat(path)
    gen.flip_bit(path, 0)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = _verify(root, mode="fast")
    assert _kinds(result) == [("digest", "team/tiny:v1", models["small"].layers[0]["digest"])]
    assert result["bytes_hashed"] == st.st_size


def test_truncation_is_a_size_problem_and_is_not_hashed(store):
    root, models = store
    path = models["big"].blob_path(root, 0)
    gen.truncate(path, 10)
    result = _verify(root, mode="full")
    digest = models["big"].layers[0]["digest"]
    assert _kinds(result) == [("size", "llama3.2:3b", digest), ("size", "llama3.2:latest", digest)]
    assert result["problems"][0]["expected"] == "300000 bytes"
    assert result["problems"][0]["actual"] == "299990 bytes"


def test_missing_blob_and_missing_model(store):
    root, models = store
    os.unlink(models["small"].blob_path(root, 1))
    result = _verify(root, models=["team/tiny:v1", "nothere:1"])
    assert _kinds(result) == [
        ("missing", "nothere:1", None),
        ("missing", "team/tiny:v1", models["small"].layers[1]["digest"]),
    ]


def test_orphans_are_reported_including_foreign_names_and_stale_staging(store):
    root, _models = store
    gen.write_blob(root, [b"nobody references me"])
    with open(os.path.join(root, "blobs", "notes.txt"), "w") as handle:
        handle.write("x")
    os.mkdir(os.path.join(root, "blobs", STAGING_PREFIX + "abc"))
    result = _verify(root, orphans="report")
    assert [p["kind"] for p in result["problems"]] == ["orphan"] * 3
    actuals = sorted(p["actual"] for p in result["problems"])
    assert actuals == [
        "a file whose name is not sha256-<64 hex>",
        "a staging directory left by an interrupted install",
        "unreferenced (20 bytes)",
    ]
    assert _verify(root, orphans="ignore")["problems"] == []
    # With a model filter, blobs of the other models are still referenced, not orphans.
    assert len(_verify(root, models=["team/tiny:v1"])["problems"]) == 3


def test_a_blob_that_is_a_directory_is_unreadable(store):
    root, models = store
    path = models["small"].blob_path(root, 3)  # the license layer, used by this model only
    os.unlink(path)
    os.mkdir(path)
    result = _verify(root)
    assert _kinds(result) == [("unreadable", "team/tiny:v1", models["small"].layers[3]["digest"])]
    assert result["problems"][0]["actual"] == "a directory, not a regular file"


def test_symlinks_inside_the_store_are_refused_not_followed(store, tmp_path):
    root, models = store
    path = models["small"].blob_path(root, 0)
    outside = tmp_path / "outside"
    shutil.move(path, outside)  # the right bytes, but outside the store
    os.symlink(outside, path)
    manifest_link = os.path.join(root, "manifests", "registry.ollama.ai", "library", "llama3.2", "evil")
    os.symlink("/etc/passwd", manifest_link)
    result = _verify(root)
    problems = {(p["kind"], p["path"]): p for p in result["problems"]}
    blob = problems[("unreadable", os.path.relpath(path, root))]
    assert blob["actual"] == f"a symbolic link to {outside}, not a regular file"
    manifest = problems[("manifest", "manifests/registry.ollama.ai/library/llama3.2/evil")]
    assert "symbolic link to /etc/passwd" in manifest["actual"]
    # A symlink to a manifest or a linked directory on the way to one is refused, never read.
    with pytest.raises(StoreError, match="is a symbolic link"):
        Store(root).read_manifest(ModelName.parse("llama3.2:evil"))
    os.symlink(
        os.path.join(root, "manifests", "registry.ollama.ai"), os.path.join(root, "manifests", "linked")
    )
    with pytest.raises(StoreError, match="manifests/linked is a symbolic link"):
        Store(root).manifest_path(ModelName.parse("linked/library/llama3.2:3b"))


def test_a_symlinked_blobs_directory_is_refused(store, tmp_path):
    root, _models = store
    shutil.move(os.path.join(root, "blobs"), tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", os.path.join(root, "blobs"))
    with pytest.raises(StoreError, match="blobs is a symbolic link"):
        _verify(root)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested 5000 levels deep"),
        (gen.manifest_with_layer(size="1"), "must be a non-negative integer"),
        (gen.manifest_with_layer(digest="sha256:xyz"), "64 lowercase hex digits"),
    ],
)
def test_a_bad_manifest_is_a_manifest_problem_and_orphans_are_not_guessed(store, raw, reason):
    root, _models = store
    gen.write_manifest(root, "broken:1", raw)
    result = _verify(root)
    assert [(p["kind"], p["model"]) for p in result["problems"]] == [("manifest", "broken:1")]
    assert reason in result["problems"][0]["actual"]
    assert any("orphans not reported" in w for w in result["warnings"])


def test_an_oversized_manifest_is_refused_before_reading(store):
    root, _models = store
    path = gen.write_manifest(root, "huge:1", b"{}")
    with open(path, "wb") as handle:
        handle.truncate(MANIFEST_MAX_BYTES + 1)
    result = _verify(root, models=["huge:1"])
    assert result["problems"][0]["kind"] == "manifest"
    assert "more than the limit of 4194304" in result["problems"][0]["actual"]


def test_the_record_is_written_outside_blobs_and_not_in_check_mode(store):
    root, _models = store
    _verify(root, write_record=False)
    assert not os.path.exists(os.path.join(root, ".airgap-llm", "verified.json"))
    _verify(root)
    record = os.path.join(root, ".airgap-llm", "verified.json")
    st = os.stat(record)
    assert st.st_uid == os.geteuid()
    assert st.st_mode & 0o022 == 0
    assert not any(name.startswith(".") for name in os.listdir(os.path.join(root, "blobs")))


def test_a_record_writable_by_others_is_not_trusted(store):
    root, _models = store
    _verify(root)
    os.chmod(os.path.join(root, ".airgap-llm", "verified.json"), 0o666)  # noqa: S103 - the point of the test
    result = _verify(root, mode="fast")
    assert result["bytes_hashed"] > 0
    assert any("writable by group or others" in w for w in result["warnings"])


def _run_as_nobody(code, cwd):
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_an_unreadable_blob_is_reported_when_verifying_as_an_unprivileged_user():
    # Root reads files whatever their mode, so the unreadable case runs as uid 65534 (setpriv).
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to read as an unprivileged user")
    base = tempfile.mkdtemp(prefix="airgap-unreadable-")
    try:
        os.chmod(base, 0o755)  # noqa: S103 - uid 65534 must reach the store
        model = gen.add_model(base, "tiny:1", model_size=1000)
        for directory, dirs, _files in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(directory, name), 0o755)  # noqa: S103
        path = model.blob_path(base, 0)
        os.chmod(path, 0o000)
        code = textwrap.dedent(
            f"""
            import json
            from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
            from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import verify_store
            result = verify_store(Store({base!r}), write_record=False)
            print(json.dumps(result["problems"]))
            """
        )
        done = _run_as_nobody(code, base)
        assert done.returncode == 0, done.stderr
        problems = json.loads(done.stdout)
        assert [(p["kind"], p["digest"], p["actual"]) for p in problems] == [
            ("unreadable", model.layers[0]["digest"], "Permission denied (EACCES)")
        ]
    finally:
        shutil.rmtree(base)
