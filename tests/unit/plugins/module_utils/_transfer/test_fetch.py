# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.fetch: the HTTP(S) fetcher checks the digest and leaves dest as it was; checksum files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch


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


def test_tls_options_follow_the_shared_argument_spec():
    spec = _fetch.tls_argument_spec()
    assert sorted(spec) == ["ca_file", "client_cert", "client_key", "timeout"]
    options = _fetch.tls_options(
        {"ca_file": "/ca.pem", "client_cert": "", "client_key": None, "timeout": 5.0}
    )
    assert (options.ca_file, options.client_cert, options.client_key, options.timeout) == (
        "/ca.pem",
        None,
        None,
        5.0,
    )
    assert _fetch.tls_options({"timeout": None}).timeout == spec["timeout"]["default"]


def test_a_zero_byte_artifact_of_known_size_needs_no_request(tmp_path):
    dest = tmp_path / "empty"
    partial = tmp_path / ".empty.part"
    empty = hashlib.sha256(b"").hexdigest()
    # Nothing is left to fetch, so the (closed) port is never contacted.
    fetched = _fetch.fetch("http://127.0.0.1:9/empty", str(dest), empty, size=0, partial=str(partial))
    assert (fetched["sha256"], fetched["size"], fetched["transferred"]) == (empty, 0, 0)
    assert dest.read_bytes() == b""
    assert not partial.exists()


def test_fetch_bytes_posts_data_when_given():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, body):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            seen.append(("GET", self.headers.get("Content-Type"), b""))
            self._answer(b"got")

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(("POST", self.headers.get("Content-Type"), body))
            self._answer(b"posted")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api"
        options = _fetch.FetchOptions(headers={"Content-Type": "application/json"})
        assert _fetch.fetch_bytes(url, options, data=b'{"a":1}') == b"posted"
        assert _fetch.fetch_bytes(url) == b"got"
        with pytest.raises(_fetch.FetchError, match="larger than 3 bytes"):
            _fetch.fetch_bytes(url, options, limit=3, data=b"{}")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert seen[:2] == [("POST", "application/json", b'{"a":1}'), ("GET", None, b"")]
