# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure airgap.llm.artifact over HTTPS on loopback against ``curl -o`` of the same file.

Serves one random file (default 1 GiB) over HTTPS on 127.0.0.1 with a CA made for the run (a
threaded server in a separate process that writes 1 MiB records), then times, best of --repeat
rounds (each round runs every tool once, in turn, so that drift on a shared machine hits all alike):

* ``curl -s --cacert CA -o DEST URL``: TLS verified, no digest check, no fsync (the reference);
* ``curl`` followed by ``sync -f DEST`` (the module makes the file durable before the rename);
* ``airgap.llm.artifact`` through its module_utils (``_transfer.place``): hashed while it streams,
  checked against the pinned sha256, fsynced, renamed, verification record written;
* the same through ``ansible localhost -m airgap.llm.artifact`` (adds Ansible's start-up);
* a second run of the module on the unchanged destination (verification record, nothing read).

The ratio is throughput relative to ``curl -o`` (higher is better; the target is >= 0.8).

    python benchmarks/artifact.py              # 1 GiB
    python benchmarks/artifact.py --size 256M --repeat 9
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import ipaddress
import json
import multiprocessing
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography import x509

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(HERE), ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.airgap.llm.plugins.module_utils._transfer import place as _place  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import FetchOptions  # noqa: E402
from ansible_collections.airgap.llm.tests.certs import make_certificates  # noqa: E402

RECORD = 1 << 20
LOOPBACK = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))


class BenchError(Exception):
    """A tool produced the wrong result: the timing would be meaningless."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        shutil.copyfileobj(source, outputfile, RECORD)


def serve(root: str, certs: dict, port_queue) -> None:
    handler = functools.partial(Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["server"], certs["server_key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def best(runs):
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="file size (K, M, G suffixes; default 1G)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool; the best is reported")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    options = parser.parse_args()
    size = parse_size(options.size)
    work = tempfile.mkdtemp(prefix="airgap-bench-artifact-", dir=options.dir)
    served = os.path.join(work, "served")
    out = os.path.join(work, "out")
    os.makedirs(served)
    os.makedirs(out)
    certs = make_certificates(work)
    digest = hashlib.sha256()
    with open(os.path.join(served, "blob"), "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    sha256 = digest.hexdigest()
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(served, certs, queue), daemon=True)
    server.start()
    url = f"https://127.0.0.1:{queue.get(timeout=30)}/blob"
    dest = os.path.join(out, "blob")
    record = os.path.join(work, "record.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_LOCALHOST_WARNING="0")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")

    def clean() -> None:
        for name in os.listdir(out):
            os.unlink(os.path.join(out, name))
        if os.path.exists(record):
            os.unlink(record)

    def timed(fn) -> float:
        clean()
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def curl() -> None:
        subprocess.run(["curl", "-s", "--fail", "--cacert", certs["ca"], "-o", dest, url], check=True)

    def curl_sync() -> None:
        curl()
        subprocess.run(["sync", "-f", dest], check=True)

    def spec() -> _place.Placement:
        return _place.Placement(
            dest=dest,
            sha256=sha256,
            url=url,
            size=size,
            record=record,
            fetch_options=FetchOptions(ca_file=certs["ca"]),
        )

    def module_utils() -> None:
        result = _place.place(spec())
        check(result["sha256"] == sha256 and result["transferred"] == size, str(result))

    args = json.dumps({"url": url, "sha256": sha256, "dest": dest, "ca_file": certs["ca"], "record": record})

    def module() -> None:
        command = [ansible, "localhost", "-m", "airgap.llm.artifact", "-a", args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        check("CHANGED" in done.stdout, done.stdout + done.stderr)

    try:
        curl()  # warm the server and the page cache of the served file
        tools = (
            ("curl -o (no digest check, no fsync)", curl),
            ("curl -o + sync", curl_sync),
            ("artifact (module_utils): hash + verify + fsync + rename", module_utils),
            ("artifact (ansible -m, incl. Ansible start-up)", module),
        )
        runs = {label: [] for label, _fn in tools}
        for _round in range(options.repeat):  # rounds interleave the tools: shared machines drift
            for label, fn in tools:
                runs[label].append(timed(fn))
                with open(dest, "rb") as handle:
                    check(hashlib.sha256(handle.read()).hexdigest() == sha256, label)
        rows = [(label, best(runs[label])) for label, _fn in tools]
        clean()
        _place.place(spec())
        start = time.perf_counter()
        again = _place.place(spec())
        unchanged = time.perf_counter() - start
        check(again["verified_by"] == "record" and not again["changed"], str(again))
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    reference = rows[0][1]
    print(f"airgap.llm.artifact over HTTPS on loopback: {size / (1 << 20):.0f} MiB, best of {options.repeat}")
    print(f"{'tool':58} {'seconds':>8} {'MiB/s':>8} {'vs curl':>8}")
    for label, seconds in rows:
        print(f"{label:58} {seconds:8.3f} {size / seconds / (1 << 20):8.0f} {reference / seconds:8.2f}")
    print(f"{'artifact, unchanged dest (record, nothing read)':58} {unchanged:8.3f} {'-':>8} {'-':>8}")


if __name__ == "__main__":
    main()
