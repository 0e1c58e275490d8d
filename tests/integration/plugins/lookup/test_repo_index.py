# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.repo_index: resolve name:version through an ingest index, local or over HTTPS."""

from __future__ import annotations

import json
import os
import subprocess

from ansible_collections.airgap.llm.tests.loopback import Repo
from ansible_collections.airgap.llm.tests.module_runner import ansible_env

A = "a" * 64
B = "b" * 64
C = "c" * 64
INDEX = {
    "format": "airgap.llm.repo-index",
    "artifacts": {
        "ollama": {
            "0.33.0": {
                "kind": "ollama",
                "files": [{"path": "ollama-linux-amd64.tar.zst", "sha256": A, "size": 10, "blob": "x"}],
            }
        },
        "open-webui": {
            "0.6.5": {
                "kind": "wheelhouse",
                "files": [
                    {"path": "a.whl", "sha256": B, "size": 1, "blob": "x"},
                    {"path": "b.whl", "sha256": C, "size": 2, "blob": "x"},
                ],
            }
        },
        "llama3.2": {"3b": {"kind": "model", "manifest_digest": C, "files": []}},
    },
}


def lookup(expression):
    """Evaluate a Jinja expression on localhost; return (rc, parsed value or output)."""
    template = "msg={{ " + expression + " | to_json }}"
    done = subprocess.run(
        ["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", template],
        capture_output=True,
        text=True,
        env=ansible_env(),
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    if done.returncode:
        return done.returncode, out
    body = done.stdout.partition(" => ")[2]
    return 0, json.loads(json.loads(body)["msg"])


def test_local_repository_directory(tmp_path):
    state = tmp_path / "repo" / "states" / "000001"
    state.mkdir(parents=True)
    (state / "index.json").write_text(json.dumps(INDEX))
    os.symlink("states/000001", tmp_path / "repo" / "current")
    rc, value = lookup(
        f"lookup('airgap.llm.repo_index', 'ollama:0.33.0', 'open-webui:0.6.5', 'llama3.2:3b', "
        f"base_url='https://repo.example/', index='{tmp_path / 'repo'}', wantlist=True)"
    )
    assert rc == 0, value
    ollama, wheels, model = value
    assert ollama["url"] == f"https://repo.example/blobs/sha256/{A}"
    assert (ollama["sha256"], ollama["size"], ollama["path"], ollama["kind"]) == (
        A,
        10,
        "ollama-linux-amd64.tar.zst",
        "ollama",
    )
    assert wheels["url"] is None and [f["sha256"] for f in wheels["files"]] == [B, C]
    assert model["manifest_digest"] == C


def test_unknown_name_and_version_are_named(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps(INDEX))
    rc, out = lookup(f"lookup('airgap.llm.repo_index', 'nginx:1', base_url='https://r', index='{path}')")
    assert rc and "nginx is not in the repository index" in out and "llama3.2, ollama, open-webui" in out
    rc, out = lookup(f"lookup('airgap.llm.repo_index', 'ollama:0.1', base_url='https://r', index='{path}')")
    assert rc and "ollama version 0.1 is not in the repository index" in out and "0.33.0" in out
    rc, out = lookup(f"lookup('airgap.llm.repo_index', 'ollama', base_url='https://r', index='{path}')")
    assert rc and "a version is always required" in out


def test_over_https_with_the_internal_ca(tmp_path, certs):
    root = tmp_path / "served"
    (root / "current").mkdir(parents=True)
    (root / "current" / "index.json").write_text(json.dumps(INDEX))
    server = Repo(str(root), certs)
    try:
        rc, value = lookup(
            f"lookup('airgap.llm.repo_index', 'ollama:0.33.0', base_url='{server.url}', "
            f"ca_file='{certs['ca']}')"
        )
        assert rc == 0, value
        assert value["url"] == f"{server.url}/blobs/sha256/{A}"
        rc, out = lookup(f"lookup('airgap.llm.repo_index', 'ollama:0.33.0', base_url='{server.url}')")
        assert rc and "CERTIFICATE_VERIFY_FAILED" in out
    finally:
        server.close()


def test_a_repository_directory_alone_gives_blob_paths_and_the_model_source(tmp_path):
    """No base_url on the ingest host: files name their blobs, a model names the directory as its src."""
    repo = tmp_path / "repo"
    state = repo / "states" / "000001"
    state.mkdir(parents=True)
    index = json.loads(json.dumps(INDEX))
    index["artifacts"]["llama3.2"]["3b"].update(manifest_digest="sha256:" + C, model="llama3.2:3b")
    (state / "index.json").write_text(json.dumps(index))
    os.symlink("states/000001", repo / "current")
    rc, value = lookup(
        f"lookup('airgap.llm.repo_index', 'ollama:0.33.0', 'llama3.2:3b', index='{repo}', wantlist=True)"
    )
    assert rc == 0, value
    ollama, model = value
    assert ollama["url"] is None
    assert ollama["blob"] == f"{repo}/blobs/sha256/{A}"
    assert ollama["files"][0]["blob"] == ollama["blob"]
    assert (model["model"], model["src"], model["manifest_digest"]) == (
        "llama3.2:3b",
        str(repo),
        "sha256:" + C,
    )
    rc, value = lookup(
        f"lookup('airgap.llm.repo_index', 'llama3.2:3b', index='{repo}', base_url='https://repo.example')"
    )
    assert rc == 0, value
    assert value["src"] == f"https://repo.example/ollama/{C}/"
    rc, out = lookup("lookup('airgap.llm.repo_index', 'ollama:0.33.0')")
    assert rc and "give base_url (the https URL of the artifact repository) or index" in out
