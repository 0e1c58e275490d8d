"""Bundle build and ingest throughput against tar, on the same files, in one run.

    python benchmarks/transfer.py [--sizes 256M,256M,256M,256M] [--repeat 3] [--dir /var/tmp]

Builds a set of incompressible files, warms the page cache, then times (best of --repeat):

* ``tar cf`` of the files, and ``tar cf`` followed by ``sync`` (the bundle build fsyncs its output);
* the bundle build (module_utils, no Ansible start-up): every file hashed while written into the
  signed tarball, the tar stream hashed as a whole, SBOM, bundle.json, signature, fsync;
* ``tar xf`` of that bundle, and ``tar xf`` followed by ``sync``;
* ingest into an empty repository: outer digest, signature, every file's digest and size, strict
  extraction, blobs fsynced and renamed, new state, ``current`` switched, audit event.

Prints a table with MB/s and the ratio of each bundle step to its tar reference (target >= 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(HERE), ".build", "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign  # noqa: E402

PASSPHRASE = "benchmark-passphrase"  # noqa: S105 - throwaway key


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    if text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def make_files(root: str, sizes) -> list:
    block = bytearray(os.urandom(4 << 20))
    names = []
    for index, size in enumerate(sizes):
        name = f"artifact-{index}.bin"
        with open(os.path.join(root, name), "wb") as handle:
            left, counter = size, 0
            while left:
                block[:16] = index.to_bytes(8, "little") + counter.to_bytes(8, "little")
                piece = block[: min(left, len(block))]
                handle.write(piece)
                left -= len(piece)
                counter += 1
        names.append(name)
    return names


def warm(paths) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(8 << 20):
                pass


def best(repeat: int, setup, action) -> float:
    times = []
    for _round in range(repeat):
        setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def run(cmd) -> None:
    subprocess.run(cmd, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="256M,256M,256M,256M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    total = sum(sizes)
    work = tempfile.mkdtemp(prefix="airgap-bench-transfer-", dir=args.dir)
    try:
        src = os.path.join(work, "src")
        os.makedirs(src)
        names = make_files(src, sizes)
        _sign.keygen(os.path.join(work, "k.key"), os.path.join(work, "k.pub"), PASSPHRASE)
        with open(os.path.join(work, "k.pub"), encoding="ascii") as handle:
            public = handle.read()
        warm(os.path.join(src, n) for n in names)
        out = os.path.join(work, "out")
        reference = os.path.join(work, "reference.tar")
        spec = {
            "channel": "bench",
            "version": 1,
            "artifacts": [
                {"name": f"a{i}", "version": "1", "kind": "file", "path": os.path.join(src, n)}
                for i, n in enumerate(names)
            ],
        }
        options = _build.BuildOptions(
            dest=out,
            base_dir=work,
            cache_dir=os.path.join(work, "cache"),
            signing_keys=[{"path": os.path.join(work, "k.key"), "passphrase": PASSPHRASE}],
            fetch_options=_fetch.FetchOptions(),
            force=True,
        )

        def clean_reference():
            if os.path.exists(reference):
                os.unlink(reference)
            run(["sync"])

        tar_cf = best(args.repeat, clean_reference, lambda: run(["tar", "cf", reference, "-C", src, *names]))
        tar_cf_sync = best(
            args.repeat,
            clean_reference,
            lambda: (run(["tar", "cf", reference, "-C", src, *names]), run(["sync"])),
        )
        results = {}

        def clean_out():
            shutil.rmtree(out, ignore_errors=True)
            run(["sync"])

        build = best(args.repeat, clean_out, lambda: results.update(build=_build.build(spec, options)))
        bundle = results["build"]["bundle"]
        digest = results["build"]["sha256"]
        with open(bundle, "rb") as handle:
            if hashlib.sha256(handle.read()).hexdigest() != digest:
                raise SystemExit("the bundle does not hash to the digest the build reported")
        bundle_size = os.path.getsize(bundle)

        extract = os.path.join(work, "extract")

        def clean_extract():
            shutil.rmtree(extract, ignore_errors=True)
            os.makedirs(extract)
            run(["sync"])

        tar_xf = best(args.repeat, clean_extract, lambda: run(["tar", "xf", bundle, "-C", extract]))
        tar_xf_sync = best(
            args.repeat, clean_extract, lambda: (run(["tar", "xf", bundle, "-C", extract]), run(["sync"]))
        )
        repo = os.path.join(work, "repo")

        def clean_repo():
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(extract, ignore_errors=True)
            run(["sync"])

        ingest_options = _ingest.IngestOptions(
            src=bundle,
            sha256=digest,
            repository=repo,
            trusted_keys=[public],
            threshold=1,
            audit_log=os.path.join(work, "audit.jsonl"),
            operator="bench",
        )
        ingest = best(args.repeat, clean_repo, lambda: results.update(ingest=_ingest.ingest(ingest_options)))
        stored = results["ingest"]["stored_blobs"]
        if stored != len(names) + 1:
            raise SystemExit(f"ingest stored {stored} blobs, expected {len(names) + 1}")

        def mbps(seconds: float, size: int) -> float:
            return size / seconds / 1e6

        rows = [
            ("tar cf", tar_cf, total, None),
            ("tar cf + sync", tar_cf_sync, total, None),
            ("bundle build (hash, sign, fsync)", build, total, (tar_cf, tar_cf_sync)),
            ("tar xf", tar_xf, bundle_size, None),
            ("tar xf + sync", tar_xf_sync, bundle_size, None),
            ("ingest (verify, file away, fsync)", ingest, bundle_size, (tar_xf, tar_xf_sync)),
        ]
        print(f"files: {len(sizes)} ({args.sizes}), {total / 1e6:.0f} MB; best of {args.repeat}")
        print(f"{'step':36} {'seconds':>8} {'MB/s':>8} {'vs tar':>8} {'vs tar+sync':>12}")
        for label, seconds, size, refs in rows:
            ratio = ""
            ratio_sync = ""
            if refs:
                ratio = f"{refs[0] / seconds:.2f}x"
                ratio_sync = f"{refs[1] / seconds:.2f}x"
            print(f"{label:36} {seconds:8.3f} {mbps(seconds, size):8.0f} {ratio:>8} {ratio_sync:>12}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
