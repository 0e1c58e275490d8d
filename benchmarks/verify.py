# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure Ollama store verification and installation against reference tools, in one run.

Builds a real-format store of several blobs (sizes on the command line, default 4 x 512 MiB) in a
temporary directory, warms the page cache, then times (best of --repeat runs):

* ``sha256sum`` and ``openssl dgst -sha256`` over the blobs (one process, one stream);
* a plain Python loop of 64 KiB ``hashlib`` updates;
* ``ollama_verify`` full (parallel) and fast (after a full pass: stat only) through module_utils;
* the largest single blob: ``openssl`` against ``_digest.sha256_file``;
* ``ollama_model`` install from a local directory (hash while copying, fsync, rename, manifest
  last) against ``cp`` of the same blobs, and ``cp`` followed by ``sync`` (the install fsyncs).

Ratios are against ``openssl dgst -sha256`` single-stream over the same bytes.

    python benchmarks/verify.py                 # 4 x 512 MiB
    python benchmarks/verify.py 1G 256M 256M    # any sizes (K, M, G suffixes)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(HERE), ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.airgap.llm.plugins.module_utils import _digest  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.install import install_model  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import (  # noqa: E402
    CONFIG_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import make_source  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import verify_store  # noqa: E402

LAYER_TYPES = ["model", "projector", "adapter", "draft", "tensor", "embed"]


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def write_random_blob(root: str, size: int) -> dict:
    blobs = os.path.join(root, "blobs")
    os.makedirs(blobs, exist_ok=True)
    tmp = os.path.join(blobs, ".bench.tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as handle:
        remaining = size
        while remaining:
            chunk = os.urandom(min(remaining, 8 << 20))
            digest.update(chunk)
            handle.write(chunk)
            remaining -= len(chunk)
    os.replace(tmp, os.path.join(blobs, "sha256-" + digest.hexdigest()))
    return {"digest": "sha256:" + digest.hexdigest(), "size": size}


def build_store(root: str, sizes: list) -> list:
    layers = []
    for index, size in enumerate(sizes):
        layer = write_random_blob(root, size)
        layer["mediaType"] = "application/vnd.ollama.image." + LAYER_TYPES[index % len(LAYER_TYPES)]
        layers.append({"mediaType": layer["mediaType"], "digest": layer["digest"], "size": layer["size"]})
    config_bytes = json.dumps(
        {"model_format": "gguf", "model_family": "llama", "file_type": "Q4_K_M"}
    ).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    with open(os.path.join(root, "blobs", "sha256-" + config_hex), "wb") as handle:
        handle.write(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": "sha256:" + config_hex,
            "size": len(config_bytes),
        },
        "layers": layers,
    }
    directory = os.path.join(root, "manifests", "registry.ollama.ai", "library", "bench")
    os.makedirs(directory)
    with open(os.path.join(directory, "latest"), "wb") as handle:
        handle.write(json.dumps(manifest, separators=(",", ":")).encode())
    return [os.path.join(root, "blobs", layer["digest"].replace(":", "-")) for layer in layers]


def warm(paths: list) -> None:
    for path in paths:
        _digest.sha256_file(path)


def timed(function, repeat: int) -> tuple:
    times = []
    for _run in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def check(condition: bool, detail: object) -> None:
    if not condition:
        raise SystemExit(f"benchmark self-check failed: {detail}")


def run(command: list) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def python_64k(paths: list) -> None:
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(65536), b""):
                digest.update(block)


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # runs the finally: the temporary store is removed


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", default=["512M"] * 4, help="blob sizes (default 4 x 512M)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; best and median are shown"
    )
    parser.add_argument("--dir", default=None, help="where to build the temporary store (default: $TMPDIR)")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes]
    total = sum(sizes)
    base = tempfile.mkdtemp(prefix="airgap-bench-", dir=args.dir)
    rows = []
    try:
        src = os.path.join(base, "src")
        print(f"building a store of {len(sizes)} blobs, {total / 2**30:.2f} GiB, in {base} ...", flush=True)
        paths = build_store(src, sizes)
        warm(paths)
        store = Store(src)
        largest = max(paths, key=os.path.getsize)
        largest_size = os.path.getsize(largest)

        def add(label, nbytes, function, repeat=args.repeat):
            best, median = timed(function, repeat)
            rows.append((label, nbytes, best, median))
            print(f"  {label}: best {best:.3f} s, median {median:.3f} s", flush=True)

        add("sha256sum (1 process)", total, lambda: run(["sha256sum", *paths]))
        add("openssl dgst -sha256 (1 stream)", total, lambda: run(["openssl", "dgst", "-sha256", *paths]))
        add("python hashlib 64 KiB loop", total, lambda: python_64k(paths))
        jobs = _digest.default_jobs()

        def verify_full():
            result = verify_store(store, mode="full", jobs=jobs)
            check(not result["problems"], result["problems"])
            check(
                result["bytes_hashed"] == total + os.path.getsize(store.blob_path(_config_hex(src))), result
            )

        def verify_fast():
            result = verify_store(store, mode="fast", jobs=jobs)
            check(not result["problems"], result["problems"])
            check(result["bytes_hashed"] == 0, "fast mode read blob data")

        add(f"ollama_verify full ({jobs} threads)", total, verify_full)
        add("ollama_verify fast (after full)", total, verify_fast)
        add(
            "single blob: openssl dgst -sha256",
            largest_size,
            lambda: run(["openssl", "dgst", "-sha256", largest]),
        )
        add("single blob: _digest.sha256_file", largest_size, lambda: _digest.sha256_file(largest))

        dest = os.path.join(base, "dest")

        def clean():
            shutil.rmtree(dest, ignore_errors=True)
            run(["sync"])

        def timed_fresh(label, function):
            times = []
            for _run in range(args.repeat):
                clean()
                start = time.perf_counter()
                function()
                times.append(time.perf_counter() - start)
            clean()
            rows.append((label, total, min(times), statistics.median(times)))
            print(f"  {label}: best {min(times):.3f} s, median {statistics.median(times):.3f} s", flush=True)

        def install():
            result = install_model(Store(dest), "bench", make_source(src))
            check(result["changed"] and result["bytes_copied"] >= total, result)

        def copy():
            os.makedirs(dest)
            run(["cp", *paths, dest])

        def copy_sync():
            copy()
            run(["sync", "-f", dest])

        timed_fresh("cp (no fsync)", copy)
        timed_fresh("cp + sync", copy_sync)
        timed_fresh(f"ollama_model install (local dir, fsync, {jobs} jobs)", install)

        def install_one_job():
            result = install_model(Store(dest), "bench", make_source(src), jobs=1)
            check(result["changed"] and result["bytes_copied"] >= total, result)

        timed_fresh("ollama_model install, 1 blob at a time", install_one_job)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    reference = {row[0]: row for row in rows}
    openssl_all = reference["openssl dgst -sha256 (1 stream)"]
    openssl_one = reference["single blob: openssl dgst -sha256"]
    print()
    print(
        f"{len(sizes)} blobs, {total / 2**30:.2f} GiB, hot page cache, {os.cpu_count()} CPUs, "
        f"best of {args.repeat}"
    )
    print(f"{'measurement':50} {'best s':>8} {'median s':>9} {'GB/s':>7} {'x openssl':>10}")
    for label, nbytes, best, median in rows:
        ref = openssl_one if label.startswith("single blob") else openssl_all
        ratio = ref[2] / best if best else float("inf")
        print(f"{label:50} {best:8.3f} {median:9.3f} {nbytes / best / 1e9:7.2f} {ratio:10.2f}")
    return 0


def _config_hex(src: str) -> str:
    path = os.path.join(src, "manifests", "registry.ollama.ai", "library", "bench", "latest")
    with open(path, "rb") as handle:
        return json.load(handle)["config"]["digest"].split(":", 1)[1]


if __name__ == "__main__":
    sys.exit(main())
