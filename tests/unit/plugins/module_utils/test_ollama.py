# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama: names, manifest parsing, store walking, locking and verify_store on real-format stores."""

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
from ansible_collections.airgap.llm.plugins.module_utils import _ollama
from ansible_collections.airgap.llm.tests import ollama_store as gen

# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
        ("llama3.2:3b", ("registry.ollama.ai", "library", "llama3.2", "3b")),
        ("llama3.2:3b-instruct-q4_K_M", ("registry.ollama.ai", "library", "llama3.2", "3b-instruct-q4_K_M")),
        ("jmorgan/tiny:v1", ("registry.ollama.ai", "jmorgan", "tiny", "v1")),
        ("repo.internal:5000/team/model:1.0", ("repo.internal:5000", "team", "model", "1.0")),
        ("https://repo.internal/team/model", ("repo.internal", "team", "model", "latest")),
        ("_x/a..b:_t", ("registry.ollama.ai", "_x", "a..b", "_t")),
    ],
)
def test_names_are_filled_in_as_ollama_does(text, parts):
    name = _ollama.ModelName.parse(text)
    assert tuple(name) == parts
    assert name.relpath == "manifests/" + "/".join(parts)


def test_display_is_the_shortest_form():
    assert _ollama.ModelName.parse("registry.ollama.ai/library/llama3.2:latest").display == "llama3.2:latest"
    assert _ollama.ModelName.parse("ns/m").display == "ns/m:latest"
    assert _ollama.ModelName.parse("h/ns/m:t").display == "h/ns/m:t"
    assert _ollama.ModelName.parse("h/ns/m:t").fullname == "h/ns/m:t"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the model part is empty"),
        ("..", "'..', which could escape the store"),
        ("../etc:passwd", "'..', which could escape the store"),
        ("a/../b", "'..', which could escape the store"),
        ("ns/..:t", "'..', which could escape the store"),
        ("m:..", "'..', which could escape the store"),
        ("/etc/passwd", "absolute names"),
        ("a//b", "the namespace part is empty"),
        ("ns/:t", "the model part is empty"),
        ("m:", "the tag part is empty"),
        (":t", "the model part is empty"),
        ("a/b/c/d", "more than three"),
        ("ns.x/m", "contains '.'"),
        ("-m", "must start with a letter"),
        ("m t", "contains ' '"),
        ("m\x00", "contains '\\x00'"),
        ("m/x:t\\y", "contains '\\\\'"),
        ("m" * 81, "longer than 80"),
        (42, "must be a string"),
    ],
)
def test_names_that_could_escape_or_ollama_rejects_are_refused(text, reason):
    with pytest.raises(_ollama.InvalidNameError) as info:
        _ollama.ModelName.parse(text)
    assert reason in str(info.value)
    assert "invalid model name" in str(info.value)


# --------------------------------------------------------------------------------------- manifests


def _manifest(**changes):
    doc = {
        "schemaVersion": 2,
        "mediaType": _ollama.MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": _ollama.CONFIG_MEDIA_TYPE, "digest": "sha256:" + "c" * 64, "size": 10},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "a" * 64, "size": 100},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "b" * 64, "size": 5},
        ],
    }
    doc.update(changes)
    return doc


def _raw(doc):
    return json.dumps(doc).encode()


def test_a_generated_manifest_parses_and_its_digest_is_the_file_hash(tmp_path):
    model = gen.add_model(str(tmp_path), "llama3.2:3b")
    with open(model.manifest_path, "rb") as handle:
        raw = handle.read()
    manifest = _ollama.parse_manifest(raw, "llama3.2:3b")
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest() == model.manifest_digest
    assert [layer.digest for layer in manifest.blobs] == model.digests
    assert manifest.size == sum(layer["size"] for layer in [model.config, *model.layers])


def test_media_type_parameters_and_all_known_layer_types_are_accepted():
    layers = [
        {"mediaType": "application/vnd.ollama.image." + kind, "digest": f"sha256:{i:064x}", "size": i}
        for i, kind in enumerate(sorted(_ollama.LAYER_TYPES))
    ]
    layers.append(
        {
            "mediaType": "application/vnd.ollama.image.tensor; name=w; dtype=F16",
            "digest": "sha256:" + "e" * 64,
            "size": 1,
        }
    )
    assert len(_ollama.parse_manifest(_raw(_manifest(layers=layers))).layers) == len(layers)


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


def _layer(**changes):
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "a" * 64, "size": 100}
    layer.update(changes)
    return _raw(_manifest(layers=[layer]))


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
    (b" " * (_ollama.MANIFEST_MAX_BYTES + 1), "larger than 4194304 bytes"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_MANIFESTS)
def test_bad_manifests_are_refused_with_the_reason(raw, reason):
    with pytest.raises(_ollama.ManifestError) as info:
        _ollama.parse_manifest(raw, "m:t", "manifests/x")
    message = str(info.value)
    assert reason in message
    assert message.startswith("model m:t: manifest manifests/x: ")
    assert "What to do:" in message


def test_strings_with_brackets_do_not_count_as_nesting():
    doc = _manifest()
    doc["layers"][0]["name"] = "[[[[[[[[[[{{{{{{{{{{" + '\\"' + "]]]"
    assert _ollama.parse_manifest(_raw(doc)).layers[0].name.startswith("[[[")


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
    return _ollama.verify_store(_ollama.Store(root), **kwargs)


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
            "hint": _ollama.HINTS["digest"],
        }
    ]
    text = _ollama.format_problems(result["problems"])
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
    os.mkdir(os.path.join(root, "blobs", _ollama.STAGING_PREFIX + "abc"))
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
    with pytest.raises(_ollama.StoreError, match="is a symbolic link"):
        _ollama.Store(root).read_manifest(_ollama.ModelName.parse("llama3.2:evil"))
    os.symlink(
        os.path.join(root, "manifests", "registry.ollama.ai"), os.path.join(root, "manifests", "linked")
    )
    with pytest.raises(_ollama.StoreError, match="manifests/linked is a symbolic link"):
        _ollama.Store(root).manifest_path(_ollama.ModelName.parse("linked/library/llama3.2:3b"))


def test_a_symlinked_blobs_directory_is_refused(store, tmp_path):
    root, _models = store
    shutil.move(os.path.join(root, "blobs"), tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", os.path.join(root, "blobs"))
    with pytest.raises(_ollama.StoreError, match="blobs is a symbolic link"):
        _verify(root)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested 5000 levels deep"),
        (_layer(size="1"), "must be a non-negative integer"),
        (_layer(digest="sha256:xyz"), "64 lowercase hex digits"),
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
        handle.truncate(_ollama.MANIFEST_MAX_BYTES + 1)
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
            from ansible_collections.airgap.llm.plugins.module_utils import _ollama
            result = _ollama.verify_store(_ollama.Store({base!r}), write_record=False)
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


# ------------------------------------------------------------------------------------------- lock


def test_the_store_lock_excludes_a_second_writer(tmp_path):
    root = str(tmp_path)
    store = _ollama.Store(root)
    with gen.lock_held_elsewhere(root):
        waited = r"locked by another run \(waited 0.3 s"
        with pytest.raises(_ollama.LockTimeoutError, match=waited), store.lock(exclusive=True, timeout=0.3):
            pass
        with pytest.raises(_ollama.LockTimeoutError), store.lock(exclusive=False, timeout=0.1):
            pass
    with store.lock(exclusive=True, timeout=1):
        pass
