"""Bundle spec and bundle.json validation, the HTTP fetcher, build and ingest in-process."""

from __future__ import annotations

import datetime
import functools
import hashlib
import http.server
import json
import threading

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _build, _bundle, _fetch, _ingest, _sign

NOW = datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)
PASS = "unit-test-passphrase"  # noqa: S105 - throwaway key


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"version": 0, "artifacts": [{}]}, "positive integer"),
        ({"version": 1, "artifacts": []}, "non-empty artifacts"),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1", "url": "https://x/a"}]}, "pinned sha256"),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1"}]}, "exactly one of url or path"),
        ({"version": 1, "artifacts": [{"name": "../a", "version": "1", "path": "p"}]}, "may only hold"),
        (
            {"version": 1, "channel": "Bad/ch", "artifacts": [{"name": "a", "version": "1", "path": "p"}]},
            "channel",
        ),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "p", "kind": "exe"}]}, "kind"),
        (
            {"version": 1, "bogus": 1, "artifacts": [{"name": "a", "version": "1", "path": "p"}]},
            "unknown keys",
        ),
        (
            {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "p"}] * 2},
            "listed twice",
        ),
    ],
)
def test_spec_errors(spec, needle):
    with pytest.raises(_bundle.BundleError, match=needle):
        _bundle.Spec(spec, NOW)


def _manifest(**change):
    files = [
        {
            "path": "artifacts/file/a/1/a.bin",
            "sha256": "a" * 64,
            "size": 1,
            "kind": "file",
            "name": "a",
            "version": "1",
            "source": "file:///a",
            "license": None,
            "omitted": False,
        }
    ]
    doc = {
        "format": "airgap.llm.bundle",
        "format_version": 1,
        "channel": "stable",
        "version": 3,
        "created": "2026-11-01T00:00:00Z",
        "expires": "2026-12-01T00:00:00Z",
        "differential": None,
        "artifacts": [
            {"name": "a", "version": "1", "kind": "file", "source": "x", "files": [files[0]["path"]]}
        ],
        "files": files,
    }
    for key, value in change.items():
        if key.startswith("file_"):
            files[0][key[5:]] = value
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({}, None),
        ({"format_version": 2}, "update the collection"),
        ({"file_path": "/etc/passwd"}, "safe relative path"),
        ({"file_path": "a/../../b"}, "safe relative path"),
        ({"file_path": "bundle.json"}, "reserved"),
        ({"file_sha256": "XYZ"}, "hex digits"),
        ({"file_size": -1}, "non-negative"),
        ({"file_omitted": "no"}, "true or false"),
        ({"expires": "tomorrow"}, "UTC time"),
    ],
)
def test_validate_manifest(change, needle):
    if needle is None:
        assert _bundle.validate_manifest(_manifest())["version"] == 3
        return
    with pytest.raises(_bundle.BundleError, match=needle):
        _bundle.validate_manifest(_manifest(**change))


@pytest.fixture
def server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.func.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_fetch_checks_digest_and_leaves_dest(server, tmp_path_factory):
    root, url = server
    (root / "f.bin").write_bytes(b"payload" * 1000)
    good = hashlib.sha256(b"payload" * 1000).hexdigest()
    dest_dir = tmp_path_factory.mktemp("dest")
    dest = dest_dir / "f.bin"
    fetched = _fetch.fetch(f"{url}/f.bin", str(dest), good)
    assert (fetched["sha256"], fetched["size"]) == (good, 7000)
    assert dest.read_bytes() == b"payload" * 1000
    dest.write_bytes(b"old")
    with pytest.raises(_fetch.FetchError, match="sha256 mismatch: expected " + "0" * 64):
        _fetch.fetch(f"{url}/f.bin", str(dest), "0" * 64)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in dest_dir.iterdir()) == ["f.bin"]
    with pytest.raises(_fetch.FetchError, match="HTTP 404"):
        _fetch.fetch(f"{url}/missing", str(dest), good)
    with pytest.raises(_fetch.FetchError, match="only http and https"):
        _fetch.fetch("file:///etc/passwd", str(dest), good)


def test_parse_checksums():
    text = f"{'a' * 64}  ./ollama-linux-amd64.tar.zst\n{'b' * 64} *other.tgz\n"
    assert _fetch.parse_checksums(text, "ollama-linux-amd64.tar.zst", "s") == "a" * 64
    assert _fetch.parse_checksums(text, "other.tgz", "s") == "b" * 64
    with pytest.raises(_fetch.FetchError, match="lists no sha256"):
        _fetch.parse_checksums(text, "nope", "s")


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
    with pytest.raises(_bundle.BundleError, match="Raise version"):
        _build.build(older, options)


def test_build_pin_mismatch_leaves_no_output(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a" * 3000)
    spec = {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "a.bin", "sha256": "0" * 64}]}
    with pytest.raises(_bundle.BundleError, match="expected 0000"):
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
