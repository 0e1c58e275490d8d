# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ollama stand-in: release packing, the HTTP API against real-format stores, pruning, keys."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
import time

import pytest
from ansible_collections.airgap.llm.tests import ollama_store as gen
from ansible_collections.airgap.llm.tests.doubles import build_ollama

VERSION = "0.33.1"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The packed stand-in release, unpacked the way the role unpacks it."""
    dest = tmp_path_factory.mktemp("release")
    digest = build_ollama.build(VERSION, str(dest))
    root = dest / "unpacked"
    root.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(dest / build_ollama.ARCHIVE), "-C", str(root)], check=True)
    return {"dir": dest, "digest": digest, "root": root, "binary": root / "bin" / "ollama"}


def request(port, method, path, host=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": host if host is not None else f"127.0.0.1:{port}"}
        payload = json.dumps(body).encode() if body is not None else None
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def serving(binary, home, store=None, **env):
    """Run ``ollama serve`` on a free loopback port until the block ends."""
    port = free_port()
    environ = {"PATH": os.environ["PATH"], "HOME": str(home), "OLLAMA_HOST": f"127.0.0.1:{port}"}
    if store is not None:
        environ["OLLAMA_MODELS"] = str(store)
    environ.update(env)
    process = subprocess.Popen(
        [str(binary), "serve"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited {process.returncode}: {process.stderr.read()}")
            try:
                if request(port, "GET", "/")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer within 20 s")
            time.sleep(0.05)
        yield port, environ
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


# ---------------------------------------------------------------------------------------- packing


def test_release_is_packed_like_upstream(release):
    archive = release["dir"] / build_ollama.ARCHIVE
    data = archive.read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    assert hashlib.sha256(data).hexdigest() == release["digest"]
    line = (release["dir"] / "sha256sum.txt").read_text()
    assert line == f"{release['digest']}  ./ollama-linux-amd64.tar.zst\n"
    listing = subprocess.run(
        ["tar", "--zstd", "-tvf", str(archive)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    names = [row.split()[-1] for row in listing]
    assert "./bin/ollama" in names
    assert "./lib/ollama/libggml-base.so" in names
    assert "./lib/ollama/cuda_v12/libggml-cuda.so" in names
    assert all(row.split()[1] == "0/0" for row in listing)
    binary = next(row for row in listing if row.endswith("./bin/ollama"))
    assert binary.startswith("-rwxr-xr-x")


def test_release_is_reproducible_and_versioned(tmp_path, release):
    again = build_ollama.build(VERSION, str(tmp_path / "a"))
    assert again == release["digest"]
    other = build_ollama.build("0.33.2", str(tmp_path / "b"))
    assert other != release["digest"]
    with pytest.raises(ValueError, match="not like"):
        build_ollama.build("latest", str(tmp_path / "c"))


def test_extracted_binary_has_the_version_and_no_placeholders(release):
    text = (release["root"] / "lib" / "ollama" / "ollama-stand-in").read_text()
    assert "@VERSION@" not in text.replace('"@VERSION@" ', "")
    assert f'VERSION = "{VERSION}"' in text
    assert 'BROKEN = "no" == "yes"' in text


# ---------------------------------------------------------------------------------------- the API


def test_api_against_a_real_format_store(tmp_path, release):
    store = tmp_path / "models"
    small = gen.add_model(str(store), "tiny:1b", model_size=4096, family="llama")
    other = gen.add_model(str(store), "team/embed:v2", model_size=2048, family="bert")
    with serving(release["binary"], tmp_path / "home", store) as (port, _environ):
        assert request(port, "GET", "/") == (200, b"Ollama is running")
        status, body = request(port, "HEAD", "/")
        assert (status, body) == (200, b"")
        status, body = request(port, "GET", "/api/version")
        assert (status, json.loads(body)) == (200, {"version": VERSION})

        status, body = request(port, "GET", "/api/tags")
        assert status == 200
        models = {m["name"]: m for m in json.loads(body)["models"]}
        assert set(models) == {"tiny:1b", "team/embed:v2"}
        for model, entry in ((small, models["tiny:1b"]), (other, models["team/embed:v2"])):
            assert "sha256:" + entry["digest"] == model.manifest_digest
            assert entry["model"] == entry["name"]
            declared = sum(layer["size"] for layer in model.layers) + model.config["size"]
            assert entry["size"] == declared
            assert entry["modified_at"][:4].isdigit()
        assert models["tiny:1b"]["details"]["family"] == "llama"
        assert models["team/embed:v2"]["details"] == {
            "parent_model": "",
            "format": "gguf",
            "family": "bert",
            "families": ["bert"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        }

        status, body = request(port, "POST", "/api/show", body={"model": "tiny:1b"})
        shown = json.loads(body)
        assert status == 200
        assert shown["license"] == "License text for tiny:1b"
        assert shown["template"].startswith("{{ if .System }}")
        assert "temperature" in shown["parameters"]
        assert shown["details"]["family"] == "llama"
        status, body = request(port, "POST", "/api/show", body={"model": "absent:1b"})
        assert (status, json.loads(body)) == (404, {"error": "model 'absent:1b' not found"})
        status, body = request(port, "POST", "/api/show", body={"model": "../../etc:x"})
        assert status == 404

        assert request(port, "GET", "/api/ps") == (200, b'{"models": []}')
        blob = small.layers[0]["digest"]
        assert request(port, "HEAD", f"/api/blobs/{blob}")[0] == 200
        assert request(port, "HEAD", "/api/blobs/sha256:" + "0" * 64)[0] == 404
        assert request(port, "HEAD", "/api/blobs/nothex")[0] == 400
        assert request(port, "GET", "/api/nothing")[0] == 404
        assert request(port, "POST", "/api/version")[0] == 405


def test_chat_generate_and_embed_answer_in_upstreams_shapes_with_the_stand_ins_text(tmp_path, release):
    store = tmp_path / "models"
    gen.add_model(str(store), "tiny:1b", model_size=1024, family="llama")
    with serving(release["binary"], tmp_path, store, OLLAMA_NOPRUNE="1") as (port, _env):
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hello there"}]
        status, body = request(
            port, "POST", "/api/chat", body={"model": "tiny:1b", "messages": messages, "stream": False}
        )
        assert status == 200
        answer = json.loads(body)
        assert answer["model"] == "tiny:1b"
        assert answer["done"] is True and answer["done_reason"] == "stop"
        assert answer["message"] == {
            "role": "assistant",
            "content": "Stand-in reply (the Ollama stand-in runs no model). Last message: Hello there",
        }
        # Streamed (the default): NDJSON pieces that add up to the same text, the last one done.
        status, body = request(
            port,
            "POST",
            "/api/chat",
            body={"model": "registry.ollama.ai/library/tiny:1b", "messages": messages[1:]},
        )
        pieces = [json.loads(line) for line in body.decode().splitlines()]
        assert status == 200 and pieces[-1]["done"] is True and not any(p["done"] for p in pieces[:-1])
        assert "".join(p["message"]["content"] for p in pieces) == answer["message"]["content"]
        assert pieces[0]["model"] == "tiny:1b"
        # Parts, as OpenAI-shaped clients send them.
        parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        status, body = request(
            port, "POST", "/api/chat", body={"model": "tiny:1b", "messages": parts, "stream": False}
        )
        assert json.loads(body)["message"]["content"].endswith("Last message: a\nb")
        status, body = request(
            port, "POST", "/api/generate", body={"model": "tiny:1b", "prompt": "Why?", "stream": False}
        )
        assert status == 200 and json.loads(body)["response"].endswith("Last message: Why?")
        status, body = request(
            port,
            "POST",
            "/api/embed",
            body={"model": "tiny:1b", "input": ["red apples", "red apples", "blue sea"]},
        )
        vectors = json.loads(body)["embeddings"]
        assert status == 200 and len(vectors) == 3 and all(len(v) == 64 for v in vectors)
        assert vectors[0] == vectors[1] != vectors[2]
        assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-4
        status, body = request(port, "POST", "/api/embed", body={"model": "tiny:1b", "input": "red apples"})
        assert json.loads(body)["embeddings"] == [vectors[0]]
        for path in ("/api/chat", "/api/generate", "/api/embed"):
            status, body = request(
                port, "POST", path, body={"model": "absent:1b", "prompt": "x", "input": "x"}
            )
            assert status == 404 and json.loads(body) == {"error": "model 'absent:1b' not found"}
            status, body = request(port, "POST", path, body={"prompt": "x"})
            assert status == 400
            assert request(port, "GET", path)[0] == 405


def test_a_changed_manifest_changes_the_reported_digest(tmp_path, release):
    store = tmp_path / "models"
    model = gen.add_model(str(store), "tiny:1b", model_size=1024)
    with serving(release["binary"], tmp_path / "home", store) as (port, _environ):
        before = json.loads(request(port, "GET", "/api/tags")[1])["models"][0]["digest"]
        assert "sha256:" + before == model.manifest_digest
        gen.write_manifest(str(store), "tiny:1b", model.manifest_bytes + b" ")
        after = json.loads(request(port, "GET", "/api/tags")[1])["models"][0]["digest"]
        assert after == hashlib.sha256(model.manifest_bytes + b" ").hexdigest()


@pytest.mark.parametrize(
    ("env", "disabled", "source"),
    [
        ({}, False, "none"),
        ({"OLLAMA_NO_CLOUD": "1"}, True, "env"),
        ({"OLLAMA_NO_CLOUD": "false"}, False, "none"),
    ],
)
def test_status_reports_cloud_from_the_environment(tmp_path, release, env, disabled, source):
    with serving(release["binary"], tmp_path / "home", tmp_path / "models", **env) as (port, _environ):
        status, body = request(port, "GET", "/api/status")
    assert status == 200
    assert json.loads(body) == {"cloud": {"disabled": disabled, "source": source}}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("evil.example", 403),
        ("evil.example:11434", 403),
        ("203.0.113.7", 403),
        ("localhost:11434", 200),
        ("localhost", 200),
        ("127.0.0.1", 200),
        ("[::1]:11434", 200),
        ("node.internal", 200),
        ("box.local:80", 200),
        ("10.1.2.3:11434", 200),
        ("", 200),
    ],
)
def test_loopback_server_refuses_non_local_host_headers(tmp_path, release, host, expected):
    with serving(release["binary"], tmp_path / "home", tmp_path / "models") as (port, _environ):
        status, body = request(port, "GET", "/api/version", host=host)
    assert status == expected
    if expected == 403:
        assert body == b""


# ---------------------------------------------------------------------------------------- pruning


def pruning_store(root):
    keep = gen.add_model(str(root), "keep:1b", model_size=2048)
    for layer in (*keep.layers, keep.config):
        age(keep.blob_path(str(root), keep.layers.index(layer) if layer in keep.layers else -1), 7200)
    blobs = root / "blobs"
    old_orphan = blobs / ("sha256-" + "a" * 64)
    new_orphan = blobs / ("sha256-" + "b" * 64)
    old_partial = blobs / ("sha256-" + "c" * 64 + "-partial")
    new_partial = blobs / "download.tmp"
    for path in (old_orphan, new_orphan, old_partial, new_partial):
        path.write_bytes(b"x")
    age(old_orphan, 7200)
    age(old_partial, 7200)
    staging = blobs / ".airgap-llm-staging-1"
    staging.mkdir()
    staged = staging / ("sha256-" + "d" * 64)
    staged.write_bytes(b"y")
    age(staged, 7200)
    files = {
        "old_orphan": old_orphan,
        "new_orphan": new_orphan,
        "old_partial": old_partial,
        "new_partial": new_partial,
        "staged": staged,
    }
    return keep, files


def test_startup_prunes_unreferenced_and_misnamed_files_older_than_an_hour(tmp_path, release):
    store = tmp_path / "models"
    keep, files = pruning_store(store)
    with serving(release["binary"], tmp_path / "home", store):
        pass
    assert not files["old_orphan"].exists()
    assert not files["old_partial"].exists()
    assert files["new_orphan"].exists()  # modified within the hour: spared
    assert files["new_partial"].exists()
    assert files["staged"].exists()  # inside a directory: never pruned
    for digest in keep.digests:
        assert (store / "blobs" / digest.replace(":", "-")).exists()


def test_a_corrupt_manifest_does_not_protect_its_blobs(tmp_path, release):
    store = tmp_path / "models"
    model = gen.add_model(str(store), "broken:1b", model_size=1024)
    for index in range(-1, len(model.layers)):
        age(model.blob_path(str(store), index), 7200)
    gen.write_manifest(str(store), "broken:1b", b"{not json")
    with serving(release["binary"], tmp_path / "home", store):
        pass
    assert not os.path.exists(model.blob_path(str(store), 0))


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_noprune_keeps_everything(tmp_path, release, value):
    store = tmp_path / "models"
    _keep, files = pruning_store(store)
    before = gen.snapshot(str(store))
    with serving(release["binary"], tmp_path / "home", store, OLLAMA_NOPRUNE=value):
        pass
    assert gen.snapshot(str(store)) == before
    assert files["old_orphan"].exists()


# ------------------------------------------------------------------------------------- key, home


def test_serve_creates_an_openssh_ed25519_key_pair_once(tmp_path, release):
    from cryptography.hazmat.primitives import serialization

    home = tmp_path / "home"
    with serving(release["binary"], home, tmp_path / "models"):
        pass
    private = home / ".ollama" / "id_ed25519"
    assert private.stat().st_mode & 0o777 == 0o600
    key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    expected = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert (home / ".ollama" / "id_ed25519.pub").read_text().strip() == expected.decode()
    first = private.read_bytes()
    with serving(release["binary"], home, tmp_path / "models"):
        pass
    assert private.read_bytes() == first


def test_default_store_is_under_home(tmp_path, release):
    home = tmp_path / "home"
    with serving(release["binary"], home) as (port, _environ):
        assert json.loads(request(port, "GET", "/api/tags")[1]) == {"models": []}
    assert (home / ".ollama" / "models" / "blobs").is_dir()


def test_serve_fails_when_home_is_a_file(tmp_path, release):
    home = tmp_path / "home"
    home.write_text("not a directory")
    done = subprocess.run(
        [str(release["binary"]), "serve"],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
            "OLLAMA_MODELS": str(tmp_path / "models"),
        },
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 1
    assert "could not create the key pair" in done.stderr


def test_broken_build_cannot_serve(tmp_path):
    build_ollama.build("0.34.0", str(tmp_path), broken=True)
    root = tmp_path / "x"
    root.mkdir()
    subprocess.run(
        ["tar", "--zstd", "-xf", str(tmp_path / build_ollama.ARCHIVE), "-C", str(root)], check=True
    )
    done = subprocess.run(
        [str(root / "bin" / "ollama"), "serve"],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path / "home"),
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
        },
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 1
    assert "broken on purpose" in done.stderr


# ---------------------------------------------------------------------------------------- clients


def test_list_and_version_talk_to_the_server(tmp_path, release):
    store = tmp_path / "models"
    model = gen.add_model(str(store), "tiny:1b", model_size=1024)
    with serving(release["binary"], tmp_path / "home", store) as (_port, environ):
        listed = subprocess.run(
            [str(release["binary"]), "list"], env=environ, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        version = subprocess.run(
            [str(release["binary"]), "--version"], env=environ, capture_output=True, text=True, check=True
        ).stdout
    assert listed[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    row = listed[1].split()
    assert row[0] == "tiny:1b"
    assert row[1] == model.manifest_digest[len("sha256:") :][:12]
    assert version == f"ollama version is {VERSION}\n"


def test_clients_without_a_server(tmp_path, release):
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "OLLAMA_HOST": f"127.0.0.1:{free_port()}"}
    listed = subprocess.run(
        [str(release["binary"]), "list"], env=environ, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 1
    assert "could not connect to ollama server" in listed.stderr
    version = subprocess.run(
        [str(release["binary"]), "-v"], env=environ, capture_output=True, text=True, check=True
    ).stdout
    assert version.endswith(f"Warning: client version is {VERSION}\n")
    unknown = subprocess.run(
        [str(release["binary"]), "pull", "x"], env=environ, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 1


def test_public_key_derivation_matches_rfc8032():
    # RFC 8032, section 7.1, TEST 1.
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    namespace = {}
    source = build_ollama.SOURCE + "/lib/ollama/ollama-stand-in"
    with open(source, encoding="utf-8") as handle:
        exec(compile(handle.read(), source, "exec"), namespace)  # noqa: S102 - the stand-in's own code
    assert namespace["ed25519_public"](seed) == public
    assert base64.b64encode(public)
