# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""airgap.llm.artifact end to end over a loopback HTTPS server made for each test.

The server serves files from a directory on 127.0.0.1 only, honours ``Range: bytes=N-`` with
``206``, can drop the connection after a given number of body bytes (an interrupted transfer),
can require a client certificate, and records every request so that the tests can prove what was
(and was not) transferred.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from ansible_collections.airgap.llm.tests.loopback import Repo
from ansible_collections.airgap.llm.tests.module_runner import ansible

MiB = 1024 * 1024


@pytest.fixture
def repo(tmp_path, certs):
    root = tmp_path / "served"
    root.mkdir()
    server = Repo(str(root), certs)
    yield server
    server.close()


@pytest.fixture
def dest_dir(tmp_path):
    path = tmp_path / "dest"
    path.mkdir()
    return path


def _args(url, digest, dest, certs, tmp_path, **extra):
    args = {
        "url": url,
        "sha256": digest,
        "dest": str(dest),
        "ca_file": certs["ca"],
        "record": str(tmp_path / "record" / "artifact-record.json"),
        "timeout": 10,
    }
    args.update(extra)
    return args


def _partials(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".part") or n.endswith(".tmp"))


def test_check_real_check_real(repo, certs, tmp_path, dest_dir):
    data = os.urandom(3 * MiB + 17)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "model.bin"
    args = _args(url, digest, dest, certs, tmp_path, size=len(data), mode="0640")

    ok, first = ansible("artifact", args, "--check", "--diff")
    assert ok and first["changed"], first
    assert not dest.exists() and repo.requests == []  # check mode contacts no server
    assert not (tmp_path / "record").exists()  # and writes nothing, not even the record

    ok, second = ansible("artifact", args, "--diff")
    assert ok and second["changed"], second
    assert second["verified_by"] == "transfer" and second["transferred"] == len(data)
    assert second["resumed_from"] == 0 and second["sha256"] == digest and second["size"] == len(data)
    assert dest.read_bytes() == data
    assert dest.stat().st_mode & 0o7777 == 0o640
    assert _partials(dest_dir) == []

    for flags in (("--check",), ()):
        ok, again = ansible("artifact", args, *flags)
        assert ok and not again["changed"], again
        # The record matched the stat data: the destination was not read, nothing was fetched.
        assert again["verified_by"] == "record" and again["transferred"] == 0
    assert len(repo.requests) == 1


def test_check_mode_on_a_new_node_predicts_the_fetch_into_a_directory_not_made_yet(repo, certs, tmp_path):
    data = os.urandom(100_000)
    url, digest = repo.publish("blob", data)
    dest = tmp_path / "node" / "var" / "cache" / "airgap-llm" / "ollama.tar.zst"
    args = _args(url, digest, dest, certs, tmp_path, size=len(data))

    ok, check = ansible("artifact", args, "--check", "--diff")
    assert ok and check["changed"] and check["verified_by"] is None, check
    assert not (tmp_path / "node").exists() and not (tmp_path / "record").exists()
    assert repo.requests == []

    ok, real = ansible("artifact", args)  # without the task that creates the directory
    assert not ok and "does not exist; create it first" in real["msg"], real
    dest.parent.mkdir(parents=True)
    ok, real = ansible("artifact", args)
    assert ok and real["changed"] and dest.read_bytes() == data, real


def test_modified_destination_is_hashed_and_replaced(repo, certs, tmp_path, dest_dir):
    data = os.urandom(MiB)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "a.bin"
    args = _args(url, digest, dest, certs, tmp_path)
    assert ansible("artifact", args)[0]

    # Same size, same mtime, one byte changed: ctime moves, so the record cannot vouch for it.
    st = dest.stat()
    with open(dest, "r+b") as handle:
        handle.seek(100)
        handle.write(bytes([data[100] ^ 1]))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    ok, check = ansible("artifact", args, "--check", "--diff")
    assert ok and check["changed"] and check["verified_by"] == "hash", check
    ok, fixed = ansible("artifact", args)
    assert ok and fixed["changed"] and fixed["verified_by"] == "transfer"
    assert dest.read_bytes() == data


def test_existing_file_with_the_digest_is_adopted_without_transfer(repo, certs, tmp_path, dest_dir):
    data = os.urandom(200_000)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "a.bin"
    dest.write_bytes(data)
    os.chmod(dest, 0o600)
    args = _args(url, digest, dest, certs, tmp_path, mode="0644")
    ok, result = ansible("artifact", args, "--diff")
    assert ok and result["changed"] and result["verified_by"] == "hash" and result["transferred"] == 0
    assert dest.stat().st_mode & 0o7777 == 0o644
    assert repo.requests == []
    ok, again = ansible("artifact", args)
    assert ok and not again["changed"] and again["verified_by"] == "record"


def test_interrupted_download_resumes_with_a_range_request(repo, certs, tmp_path, dest_dir):
    data = os.urandom(4 * MiB + 3)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "big.bin"
    old = b"previous version\n"
    dest.write_bytes(old)
    args = _args(url, digest, dest, certs, tmp_path, size=len(data))

    half = len(data) // 2
    repo.drop_after = half
    started = time.monotonic()
    ok, broken = ansible("artifact", args)
    assert time.monotonic() - started < 60
    assert not ok, broken
    assert "interrupted" in broken["msg"] and "Run the task again to resume" in broken["msg"]
    assert dest.read_bytes() == old  # the old file is still served meanwhile
    (partial,) = _partials(dest_dir)
    assert partial == f".big.bin.{digest[:16]}.part"
    kept = (dest_dir / partial).stat().st_size
    assert 0 < kept <= half

    ok, check = ansible("artifact", args, "--check")
    assert ok and check["changed"] and check["resumed_from"] == kept

    ok, resumed = ansible("artifact", args)
    assert ok and resumed["changed"], resumed
    assert resumed["resumed_from"] == kept
    assert resumed["transferred"] == len(data) - kept
    assert repo.requests[-1]["range"] == f"bytes={kept}-"
    assert dest.read_bytes() == data and _partials(dest_dir) == []
    ok, again = ansible("artifact", args)
    assert ok and not again["changed"] and again["verified_by"] == "record"


def test_server_ignoring_range_makes_the_transfer_start_over(repo, certs, tmp_path, dest_dir):
    data = os.urandom(MiB)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "x.bin"
    args = _args(url, digest, dest, certs, tmp_path)
    repo.drop_after = 1000
    assert not ansible("artifact", args)[0]
    repo.ignore_range = True
    ok, result = ansible("artifact", args)
    assert ok and result["resumed_from"] == 0 and result["transferred"] == len(data)
    assert dest.read_bytes() == data


def test_stale_partial_longer_than_the_file_is_discarded(repo, certs, tmp_path, dest_dir):
    data = os.urandom(300_000)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "x.bin"
    (dest_dir / f".x.bin.{digest[:16]}.part").write_bytes(os.urandom(400_000))
    ok, result = ansible("artifact", _args(url, digest, dest, certs, tmp_path))
    assert ok and result["resumed_from"] == 0, result  # 416 from the server, then a full download
    assert dest.read_bytes() == data and _partials(dest_dir) == []


def test_corrupt_source_is_refused_and_the_old_file_kept(repo, certs, tmp_path, dest_dir):
    good = os.urandom(500_000)
    _url, digest = repo.publish("blob", good)
    bad = bytearray(good)
    bad[250_000] ^= 0xFF
    url, bad_digest = repo.publish("blob", bytes(bad))
    dest = dest_dir / "weights.bin"
    dest.write_bytes(b"old and good\n")
    ok, result = ansible("artifact", _args(url, digest, dest, certs, tmp_path))
    assert not ok
    msg = result["msg"]
    assert url in msg and f"expected {digest}" in msg and f"got {bad_digest}" in msg
    assert "left as it was" in msg and "re-ingest" in msg
    assert dest.read_bytes() == b"old and good\n"
    assert _partials(dest_dir) == []  # a corrupt complete download is never resumed


def test_wrong_size_is_cut_off(repo, certs, tmp_path, dest_dir):
    data = os.urandom(100_000)
    url, digest = repo.publish("blob", data)
    dest = dest_dir / "x.bin"
    ok, result = ansible("artifact", _args(url, digest, dest, certs, tmp_path, size=50_000))
    assert not ok and "more than the 50000 bytes" in result["msg"]
    assert not dest.exists() and _partials(dest_dir) == []


def test_unknown_ca_is_refused(repo, certs, tmp_path, dest_dir):
    data = b"x" * 1000
    url, digest = repo.publish("blob", data)
    args = _args(url, digest, dest_dir / "x", certs, tmp_path)
    del args["ca_file"]
    ok, result = ansible("artifact", args)
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in result["msg"], result
    assert not (dest_dir / "x").exists()


def test_client_certificate(tmp_path, certs, dest_dir):
    root = tmp_path / "mtls"
    root.mkdir()
    server = Repo(str(root), certs, require_client_cert=True)
    try:
        data = os.urandom(70_000)
        url, digest = server.publish("blob", data)
        dest = dest_dir / "x.bin"
        ok, refused = ansible("artifact", _args(url, digest, dest, certs, tmp_path))
        assert not ok and not dest.exists(), refused
        args = _args(
            url, digest, dest, certs, tmp_path, client_cert=certs["client"], client_key=certs["client_key"]
        )
        ok, result = ansible("artifact", args)
        assert ok and result["changed"] and dest.read_bytes() == data, result
    finally:
        server.close()


def test_local_src_check_real_check_real_and_corruption(tmp_path, dest_dir):
    src = tmp_path / "media.bin"
    data = os.urandom(2 * MiB)
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    dest = dest_dir / "copy.bin"
    record = str(tmp_path / "rec.json")
    args = {"src": str(src), "sha256": "sha256:" + digest.upper(), "dest": str(dest), "record": record}
    ok, first = ansible("artifact", args, "--check")
    assert ok and first["changed"] and not dest.exists()
    ok, second = ansible("artifact", args)
    assert ok and second["changed"] and dest.read_bytes() == data and second["sha256"] == digest
    for flags in (("--check",), ()):
        ok, again = ansible("artifact", args, *flags)
        assert ok and not again["changed"] and again["verified_by"] == "record"

    src.write_bytes(os.urandom(2 * MiB))
    other = hashlib.sha256(data + b"!").hexdigest()
    ok, refused = ansible("artifact", dict(args, sha256=other))
    assert not ok and f"expected {other}" in refused["msg"] and str(src) in refused["msg"]
    assert dest.read_bytes() == data and _partials(dest_dir) == []


def test_untrusted_record_is_ignored(tmp_path, dest_dir):
    src = tmp_path / "s.bin"
    src.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    dest = dest_dir / "d.bin"
    record = tmp_path / "rec.json"
    args = {"src": str(src), "sha256": digest, "dest": str(dest), "record": str(record)}
    assert ansible("artifact", args)[0]
    os.chmod(record, 0o664)  # writable by the group: anyone in it could vouch for any file
    ok, result = ansible("artifact", args)
    assert (
        ok and result["verified_by"] == "hash" and "writable by group or others" in result["record_ignored"]
    )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"sha256": "abc"}, "is not a SHA-256 digest"),
        ({"url": "http://127.0.0.1:1/x"}, "must be https"),
        ({"mode": "u+rw"}, "octal string"),
        ({"owner": "no-such-user-xyz"}, "is not a user on this host"),
        ({"dest": "/nonexistent-dir-xyz/file"}, "does not exist; create it first"),
    ],
)
def test_bad_input_is_named(tmp_path, override, needle):
    args = {
        "url": "https://127.0.0.1:1/x",
        "sha256": "0" * 64,
        "dest": str(tmp_path / "x"),
        "record": str(tmp_path / "r.json"),
    }
    args.update(override)
    ok, result = ansible("artifact", args)
    assert not ok and needle in result["msg"], result


def test_missing_src_names_the_file(tmp_path):
    args = {"src": str(tmp_path / "nope.bin"), "sha256": "0" * 64, "dest": str(tmp_path / "x")}
    args["record"] = str(tmp_path / "r.json")
    ok, result = ansible("artifact", args)
    assert not ok and str(tmp_path / "nope.bin") in result["msg"] and "check the path" in result["msg"]


def test_record_file_is_a_verification_record(repo, certs, tmp_path, dest_dir):
    data = b"abc" * 1000
    url, digest = repo.publish("blob", data)
    assert ansible("artifact", _args(url, digest, dest_dir / "x", certs, tmp_path))[0]
    with open(tmp_path / "record" / "artifact-record.json", encoding="utf-8") as handle:
        doc = json.load(handle)
    st = os.stat(dest_dir / "x")
    key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    assert doc["entries"] == {key: digest}


def test_files_places_several_artifacts_in_one_task(repo, certs, tmp_path, dest_dir):
    first, second = os.urandom(70_000), os.urandom(30_000)
    url1, digest1 = repo.publish("a.whl", first)
    url2, digest2 = repo.publish("b.whl", second)
    items = [
        {"url": url1, "sha256": digest1, "size": len(first), "dest": str(dest_dir / "a.whl")},
        {"url": url2, "sha256": digest2, "dest": str(dest_dir / "b.whl")},
    ]
    args = {"files": items, "ca_file": certs["ca"], "record": str(tmp_path / "record.json"), "timeout": 10}

    ok, check = ansible("artifact", args, "--check")
    assert ok and check["changed"] and repo.requests == [], check
    assert not (dest_dir / "a.whl").exists()

    ok, real = ansible("artifact", args)
    assert ok and real["changed"], real
    assert [f["dest"] for f in real["files"]] == [str(dest_dir / "a.whl"), str(dest_dir / "b.whl")]
    assert real["transferred"] == len(first) + len(second)
    assert (dest_dir / "a.whl").read_bytes() == first and (dest_dir / "b.whl").read_bytes() == second

    ok, again = ansible("artifact", args)
    assert ok and not again["changed"] and again["transferred"] == 0, again
    assert len(repo.requests) == 2

    # One bad item fails the task with its position and reason; a url and src together are refused.
    bad = dict(items[1], src=str(dest_dir / "a.whl"))
    ok, refused = ansible("artifact", dict(args, files=[items[0], bad]))
    assert (
        not ok and "files[1] must be a mapping with dest, sha256, url or src (one of them)" in refused["msg"]
    ), refused
    ok, refused = ansible("artifact", dict(args, dest=str(dest_dir / "c.whl")))
    assert not ok and "mutually exclusive" in refused["msg"], refused
