# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A loopback HTTPS file server for the end-to-end tests (127.0.0.1 only, stopped by each test)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import ssl
import threading


class Repo:
    """A loopback HTTPS file server whose misbehaviour each test chooses."""

    def __init__(self, root, certs, require_client_cert=False):
        self.root = root
        self.requests = []
        self.drop_after = None  # body bytes sent before the connection is cut (once)
        self.ignore_range = False
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = os.path.join(state.root, self.path.lstrip("/"))
                state.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                with open(path, "rb") as handle:
                    data = handle.read()
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and not state.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if state.drop_after is not None:
                    cut, state.drop_after = state.drop_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs["server"], certs["server_key"])
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(certs["ca"])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def publish(self, name, data):
        with open(os.path.join(self.root, name), "wb") as handle:
            handle.write(data)
        return f"{self.url}/{name}", hashlib.sha256(data).hexdigest()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
