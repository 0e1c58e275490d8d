# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.install and _ollama.source: every failure leaves the store byte-for-byte unchanged."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._io import Owner
from ansible_collections.airgap.llm.plugins.module_utils._ollama import install as install_module
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    BlobError,
    InvalidNameError,
    LockTimeoutError,
    ManifestError,
    NoSpaceError,
    OllamaError,
    PinMismatchError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import MANIFEST_MAX_BYTES
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import make_source
from ansible_collections.airgap.llm.plugins.module_utils._ollama.stage import Stager
from ansible_collections.airgap.llm.tests import ollama_store as gen
from ansible_collections.airgap.llm.tests.certs import make_certificates

# --------------------------------------------------------------------------------------- present


def test_check_real_check_real_from_a_local_directory(src, dest, install, installed_ok):
    root, models = src
    first = install(dest, "llama3.2:3b", root, check_mode=True)
    assert first["changed"]
    assert first["blobs_copied"] == models["3b"].digests
    assert not os.path.exists(dest)
    second = install(dest, "llama3.2:3b", root)
    assert second["changed"]
    assert second["bytes_copied"] == sum(
        os.path.getsize(models["3b"].blob_path(root, i)) for i in range(-1, 4)
    )
    assert second["manifest_digest"] == models["3b"].manifest_digest
    assert installed_ok(dest, ["llama3.2:3b"])
    third = install(dest, "llama3.2:3b", root, check_mode=True)
    assert not third["changed"]
    fourth = install(dest, "llama3.2:3b", root)
    assert not fourth["changed"]
    assert fourth["bytes_copied"] == 0
    assert fourth["bytes_hashed"] == 0  # the record vouches for every blob: nothing re-read
    with open(os.path.join(dest, "manifests/registry.ollama.ai/library/llama3.2/3b"), "rb") as handle:
        assert handle.read() == models["3b"].manifest_bytes


def test_an_installed_model_does_not_read_the_source_blobs_again(src, dest, install):
    root, _models = src
    install(dest, "llama3.2:3b", root)
    shutil.rmtree(os.path.join(root, "blobs"))
    assert not install(dest, "llama3.2:3b", root)["changed"]


def test_modes_and_owner_are_as_ollama_expects(src, dest, install):
    root, _models = src
    install(dest, "llama3.2:3b", root, owner=Owner(65534, 65534))
    for directory, dirs, files in os.walk(dest):
        if ".airgap-llm" in directory.split(os.sep):
            continue
        for name in dirs:
            if name == ".airgap-llm":
                continue
            st = os.stat(os.path.join(directory, name))
            assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o755", 65534, 65534)
        for name in files:
            st = os.stat(os.path.join(directory, name))
            assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o644", 65534, 65534)
    # The state directory stays root's: the record is not writable by the ollama user.
    assert os.stat(os.path.join(dest, ".airgap-llm")).st_uid == 0
    # Missing parents of the store are created but not given away.
    assert os.stat(os.path.dirname(dest)).st_uid == 0


def test_wrong_mode_is_fixed_without_copying(src, dest, install):
    root, models = src
    install(dest, "llama3.2:3b", root)
    blob = os.path.join(dest, "blobs", os.path.basename(models["3b"].blob_path(root, 0)))
    os.chmod(blob, 0o600)
    result = install(dest, "llama3.2:3b", root)
    assert result["changed"]
    assert result["blobs_copied"] == []
    assert result["permissions_fixed"] == [os.path.relpath(blob, dest)]
    assert os.stat(blob).st_mode & 0o777 == 0o644


def test_shared_blobs_are_copied_once(src, dest, install):
    root, models = src
    install(dest, "llama3.2:3b", root)
    second = install(dest, "llama3.2:1b", root)
    assert models["3b"].layers[0]["digest"] not in second["blobs_copied"]
    assert second["bytes_copied"] < 10000


def test_a_corrupt_blob_in_the_store_is_replaced(src, dest, install, installed_ok):
    root, models = src
    install(dest, "llama3.2:3b", root)
    blob = os.path.join(dest, "blobs", os.path.basename(models["3b"].blob_path(root, 0)))
    gen.flip_bit(blob, 5)
    result = install(dest, "llama3.2:3b", root, mode="full")
    assert result["changed"]
    assert result["blobs_copied"] == [models["3b"].layers[0]["digest"]]
    assert result["copy_reasons"][0]["reason"] == "digest"
    assert installed_ok(dest, ["llama3.2:3b"])


def test_a_new_version_replaces_the_manifest_and_drops_unused_old_blobs(
    src, dest, tmp_path, install, installed_ok
):
    root, models = src
    install(dest, "team/other:v2", root)
    newer = str(tmp_path / "newer")
    os.makedirs(newer)
    new_model = gen.add_model(newer, "team/other:v2", model_size=4000, seed="v2-rebuilt")
    result = install(dest, "team/other:v2", newer)
    assert result["changed"]
    assert result["manifest_digest"] == new_model.manifest_digest
    old_only = set(models["other"].digests) - set(new_model.digests)
    assert sorted(result["blobs_removed"]) == sorted(old_only)
    assert installed_ok(dest, ["team/other:v2"])
    assert all(not os.path.exists(os.path.join(dest, "blobs", d.replace(":", "-"))) for d in old_only)


def test_diff_shows_before_and_after(src, dest, install):
    root, models = src
    result = install(dest, "llama3.2:3b", root, check_mode=True)
    assert result["diff"]["before"] == {"manifest_digest": None, "blobs": []}
    assert result["diff"]["after"]["manifest_digest"] == models["3b"].manifest_digest
    assert len(result["diff"]["after"]["blobs"]) == 5


def test_temporary_files_survive_ollama_pruning_mid_install(src, dest, monkeypatch, install, installed_ok):
    """Run a re-implementation of Ollama's PruneLayers after every staged blob."""
    root, _models = src

    def ollama_prune(blobs_dir):
        for entry in os.scandir(blobs_dir):
            if entry.is_dir(follow_symlinks=False):
                # Ollama >= 0.21 skips directories; older versions os.Remove() them, which
                # fails while they are not empty.
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)
                continue
            if not re.match(r"sha256-[0-9a-f]{64}$", entry.name):
                os.unlink(entry.path)

    original = Stager.add

    def add_then_prune(self, model, layer, source):
        original(self, model, layer, source)
        ollama_prune(self.blobs_dir)

    monkeypatch.setattr(Stager, "add", add_then_prune)
    install(dest, "llama3.2:3b", root)
    assert installed_ok(dest, ["llama3.2:3b"])


# ---------------------------------------------------------------------------- bad input, unchanged


@pytest.fixture
def populated(src, dest, install):
    """A destination that already holds one model, so 'unchanged' means something."""
    root, _models = src
    install(dest, "team/other:v2", root)
    return dest


def test_bit_flip_in_the_source_fails_and_leaves_the_store_unchanged(
    src, populated, install, fails_unchanged
):
    root, models = src
    blob = models["3b"].blob_path(root, 0)
    gen.flip_bit(blob, 1234)
    actual = "sha256:" + gen.hashlib.sha256(open(blob, "rb").read()).hexdigest()  # noqa: SIM115
    digest = models["3b"].layers[0]["digest"]
    message = fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        BlobError,
        "model llama3.2:3b",
        f"blob {digest}",
        f"expected {digest}, actual {actual}",
        "What to do:",
    )
    assert blob in message


def test_bit_flip_into_an_empty_destination_leaves_nothing_behind(src, dest, install):
    root, models = src
    gen.flip_bit(models["3b"].blob_path(root, -1), 3)
    with pytest.raises(BlobError, match="digest mismatch"):
        install(dest, "llama3.2:3b", root)
    assert os.listdir(os.path.join(dest, "blobs")) == []
    assert os.listdir(os.path.join(dest, "manifests")) == []


@pytest.mark.parametrize(
    ("change", "actual"), [("truncate", "199999 bytes"), ("pad", "more than 200000 bytes")]
)
def test_truncated_or_padded_source_blob(src, populated, change, actual, install, fails_unchanged):  # noqa: PLR0917 - parametrized
    root, models = src
    blob = models["3b"].blob_path(root, 0)
    if change == "truncate":
        gen.truncate(blob, 1)
    else:
        with open(blob, "ab") as handle:
            handle.write(b"extra")
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        BlobError,
        "model llama3.2:3b",
        f"blob {models['3b'].layers[0]['digest']}",
        f"size mismatch: expected 200000 bytes, actual {actual}",
    )


def test_missing_source_blob(src, populated, install, fails_unchanged):
    root, models = src
    os.unlink(models["3b"].blob_path(root, 3))  # the license layer: not in the store yet
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        SourceError,
        "cannot open source blob",
        models["3b"].layers[3]["digest"].replace(":", "-"),
        "No such file",
    )


def test_source_blob_symlink_pointing_elsewhere_is_refused(
    src, populated, tmp_path, install, fails_unchanged
):
    root, models = src
    blob = models["3b"].blob_path(root, 0)
    shutil.move(blob, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", blob)
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        SourceError,
        "cannot open source blob",
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[" * 3000 + b"]" * 3000, "nested 3000 levels deep"),
        (json.dumps({"schemaVersion": 2}).encode(), "mediaType is None"),
        (b"x" * (MANIFEST_MAX_BYTES + 10), "more than the limit"),
    ],
)
def test_bad_source_manifest(src, populated, raw, reason, install, fails_unchanged):  # noqa: PLR0917 - parametrized
    root, _models = src
    gen.write_manifest(root, "bad:1", raw)
    fails_unchanged(populated, lambda: install(populated, "bad:1", root), OllamaError, "model bad:1", reason)


def test_source_manifest_with_wrong_form_digest(src, populated, install, fails_unchanged):
    root, models = src
    doc = json.loads(models["3b"].manifest_bytes)
    doc["layers"][0]["digest"] = "sha256:" + "Z" * 64
    gen.write_manifest(root, "llama3.2:3b", json.dumps(doc).encode())
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        ManifestError,
        "layers[0].digest must be 'sha256:' and 64 lowercase hex digits",
    )


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/olute", "a/../b:c", "x//y", "m:.."])
def test_names_that_could_escape_are_refused(src, populated, name, install, fails_unchanged):
    root, _models = src
    fails_unchanged(populated, lambda: install(populated, name, root), InvalidNameError, "invalid model name")


def test_pin_mismatch_changes_nothing(src, populated, install, fails_unchanged):
    root, models = src
    pin = "sha256:" + "0" * 64
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root, pin=pin),
        PinMismatchError,
        f"has digest {models['3b'].manifest_digest}, expected the pinned manifest_digest {pin}",
    )
    assert install(populated, "llama3.2:3b", root, pin=models["3b"].manifest_digest)["changed"]


def test_a_directory_in_place_of_a_blob_fails_and_is_left(src, populated, install, fails_unchanged):
    root, models = src
    path = os.path.join(populated, "blobs", os.path.basename(models["3b"].blob_path(root, 0)))
    os.makedirs(os.path.join(path, "inner"))
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", root),
        StoreError,
        "is a directory, expected a regular file of 200000 bytes",
        "remove that directory",
    )


def test_a_symlinked_manifest_in_the_store_is_refused(src, populated, tmp_path, install, fails_unchanged):
    root, _models = src
    target = tmp_path / "target"
    target.write_text("{}")
    manifest = os.path.join(populated, "manifests/registry.ollama.ai/library/llama3.2/3b")
    os.makedirs(os.path.dirname(manifest))
    os.symlink(target, manifest)
    fails_unchanged(
        populated, lambda: install(populated, "llama3.2:3b", root), StoreError, "is a symbolic link"
    )
    assert target.read_text() == "{}"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], check=True)
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_is_refused_up_front(src, tiny_tmpfs, install, fails_unchanged):
    root, _models = src
    store = os.path.join(tiny_tmpfs, "models")
    install(store, "team/other:v2", root)
    fails_unchanged(
        store,
        lambda: install(store, "llama3.2:3b", root),
        NoSpaceError,
        "model llama3.2:3b: needs",
        "the store was left unchanged",
        "free space",
    )


def test_full_disk_during_the_copy_leaves_the_store_unchanged(
    src, tiny_tmpfs, monkeypatch, install, fails_unchanged
):
    root, _models = src
    store = os.path.join(tiny_tmpfs, "models")
    install(store, "team/other:v2", root)
    monkeypatch.setattr(install_module, "free_bytes", lambda _path: 1 << 40)  # the disk fills while writing
    fails_unchanged(
        store,
        lambda: install(store, "llama3.2:3b", root),
        StoreError,
        "No space left on device (ENOSPC)",
        "the store was left unchanged",
    )


def test_two_runs_at_once_the_second_waits_then_fails_cleanly(src, populated, install, fails_unchanged):
    root, _models = src
    with gen.lock_held_elsewhere(populated):
        fails_unchanged(
            populated,
            lambda: install(populated, "llama3.2:3b", root, lock_timeout=0.3),
            LockTimeoutError,
            "is locked by another run",
        )
    assert install(populated, "llama3.2:3b", root, lock_timeout=5)["changed"]


def test_concurrent_installs_both_succeed_serialised(src, dest, install, installed_ok):
    root, _models = src
    errors = []

    def run(name):
        try:
            install(dest, name, root, lock_timeout=30)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(n,)) for n in ("llama3.2:3b", "llama3.2:1b", "team/other:v2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert installed_ok(dest, ["llama3.2:3b", "llama3.2:1b", "team/other:v2"])


# ------------------------------------------------------------------------------------------- https


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def https_repo(src, tmp_path):
    """Serve the source store over https on 127.0.0.1 only, with a CA made for the test."""
    root, models = src
    paths = make_certificates(str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server"], paths["server_key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.socket.settimeout(10)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", paths["ca"], root, models
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_https_install_with_the_internal_ca(https_repo, dest, install, installed_ok):
    url, ca_file, _root, models = https_repo
    source = make_source(url, ca_file=ca_file, timeout=10)
    result = install(dest, "llama3.2:3b", source)
    assert result["changed"]
    assert result["manifest_digest"] == models["3b"].manifest_digest
    assert installed_ok(dest, ["llama3.2:3b"])
    assert not install(dest, "llama3.2:3b", source)["changed"]


def test_https_with_an_unknown_ca_fails(https_repo, populated, install, fails_unchanged):
    url, _ca_file, _root, _models = https_repo
    source = make_source(url, timeout=10)
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", source),
        SourceError,
        "CERTIFICATE_VERIFY_FAILED",
        "check src, ca_file and the server",
    )
    insecure = make_source(url, timeout=10, validate_certs=False)
    assert install(populated, "llama3.2:3b", insecure)["changed"]  # digests are still checked


def test_https_corrupt_blob_and_missing_model(https_repo, populated, install, fails_unchanged):
    url, ca_file, root, models = https_repo
    source = make_source(url, ca_file=ca_file, timeout=10)
    fails_unchanged(populated, lambda: install(populated, "nothere:1", source), SourceError, ": HTTP 404")
    gen.flip_bit(models["3b"].blob_path(root, 0), 7)
    digest = models["3b"].layers[0]["digest"]
    fails_unchanged(
        populated,
        lambda: install(populated, "llama3.2:3b", source),
        BlobError,
        f"blob {digest} ({url}blobs/{digest.replace(':', '-')}): digest mismatch: expected {digest}",
    )


def _closed_port_url():
    """An https URL nothing listens on: a source that is contacted fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{probe.getsockname()[1]}/ollama/"


def test_check_mode_on_a_new_node_predicts_from_the_pin_while_the_ca_file_is_not_there_yet(
    https_repo, tmp_path, install, installed_ok
):
    """check (no CA file, no store) -> the CA file is placed -> real -> check without the CA file."""
    url, ca_file, root, models = https_repo
    dest = str(tmp_path / "node" / "var" / "lib" / "ollama" / "models")
    pin = models["3b"].manifest_digest
    node_ca = str(tmp_path / "node" / "ca.crt")  # what repo_client puts there in the real run

    unread = make_source(_closed_port_url(), ca_file=node_ca, timeout=2)
    predicted = install(dest, "llama3.2:3b", unread, pin=pin, check_mode=True)
    assert predicted["changed"] and predicted["manifest_digest"] == pin
    assert predicted["diff"]["before"] == {"manifest_digest": None, "blobs": []}
    assert predicted["diff"]["after"]["manifest_digest"] == pin
    assert f"ca_file {node_ca} does not exist yet" in predicted["warnings"][0]
    assert not os.path.exists(tmp_path / "node")  # nothing written, not even the store

    os.makedirs(tmp_path / "node")
    shutil.copyfile(ca_file, node_ca)
    real = install(dest, "llama3.2:3b", make_source(url, ca_file=node_ca, timeout=10), pin=pin)
    assert real["changed"] and real["manifest_digest"] == pin
    assert installed_ok(dest, ["llama3.2:3b"])

    # The store holds the pinned manifest: the plan is made from it, blobs checked as usual.
    os.unlink(node_ca)
    again = install(dest, "llama3.2:3b", unread, pin=pin, check_mode=True, mode="full")
    assert not again["changed"] and again["blobs_copied"] == [], again
    assert "the prediction is made from it" in again["warnings"][0]
    blob = os.path.join(dest, "blobs", os.path.basename(models["3b"].blob_path(root, 0)))
    gen.flip_bit(blob, 3)
    damaged = install(dest, "llama3.2:3b", unread, pin=pin, check_mode=True, mode="full")
    assert damaged["changed"] and damaged["blobs_copied"] == [models["3b"].layers[0]["digest"]]

    # Another version in the store: the pinned one replaces it.
    other = install(dest, "llama3.2:3b", unread, pin=models["1b"].manifest_digest, check_mode=True)
    assert other["changed"] and other["diff"]["before"]["manifest_digest"] == pin


def test_check_mode_without_the_ca_file_and_without_a_pin_fails_clearly(tmp_path, install):
    unread = make_source(_closed_port_url(), ca_file=str(tmp_path / "ca.crt"), timeout=2)
    with pytest.raises(SourceError, match=r"ca.crt does not exist yet.*without a manifest_digest pin"):
        install(str(tmp_path / "models"), "llama3.2:3b", unread, check_mode=True)


def test_a_missing_ca_file_still_fails_the_real_run(tmp_path, install):
    unread = make_source(_closed_port_url(), ca_file=str(tmp_path / "ca.crt"), timeout=2)
    pin = "sha256:" + "0" * 64
    with pytest.raises(SourceError, match="cannot set up TLS"):
        install(str(tmp_path / "models"), "llama3.2:3b", unread, pin=pin)
    assert not os.path.exists(tmp_path / "models")


def test_only_https_urls_are_accepted():
    with pytest.raises(SourceError, match="neither a local directory nor an https:// URL"):
        make_source("http://127.0.0.1/models/")
    with pytest.raises(SourceError, match="neither a local directory nor an https:// URL"):
        make_source("ftp://127.0.0.1/models/")
