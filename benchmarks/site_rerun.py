# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A second site.yml run must not re-read the models: time it with tiny and with 4 GiB of models.

    python benchmarks/site_rerun.py [--big-gib 4] [--runs 5] [--workdir /var/tmp/airgap-rerun]

What runs is the part of site.yml whose cost could grow with the size of the models: the
airgap.llm.ollama_models role (ollama_model for each pinned model from the repository over HTTPS,
the local facts, validation through /api/tags), as `ansible-playbook` on localhost against:

* a repository view served over HTTPS on 127.0.0.1 (a test CA made here), the same store layout
  that artifact_repo serves under /ollama/<manifest hex>/;
* the Ollama stand-in (tests/doubles) serving the destination store on 127.0.0.1.

For each size the first run installs; the next --runs runs (interleaved across sizes, so that load
from other work falls on both) must change nothing, and their best wall times are compared:
big / tiny <= 1.1 passes. The bytes each run read from the store
(ollama_model's bytes_hashed and bytes_copied, from the JSON callback) are printed too; they must
be 0. The page cache is hot, so re-reading 4 GiB would still cost seconds (2-3 s at the hashing
speed of this machine), which the ratio shows; the byte counters show it directly.

Why localhost and not containers: the rest of site.yml (the release, the unit, the repository)
does not depend on model size, and podman's connection plugin adds seconds of noise per task that
would hide the effect being measured. The roles and modules are the same.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "doubles")]

import build_ollama  # noqa: E402
import ollama_store  # noqa: E402

COLLECTIONS = os.path.join(ROOT, ".build", "collections")
FACTS = "/etc/ansible/facts.d/airgap_ollama_models.fact"
PLAYBOOK = """
- name: Models, as site.yml installs them
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: airgap.llm.ollama_models
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_pki(directory: str) -> None:
    def run(*argv):
        subprocess.run(argv, check=True, capture_output=True, cwd=directory)

    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=site_rerun CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    with open(os.path.join(directory, "ext"), "w", encoding="utf-8") as handle:
        handle.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    )


class RepoView(http.server.BaseHTTPRequestHandler):
    """/ollama/<manifest hex>/manifests/... and /ollama/<hex>/blobs/sha256-<hex> from a store."""

    store = ""
    manifests: typing.ClassVar[dict] = {}

    def log_message(self, format, *args):
        return

    def do_GET(self):
        parts = self.path.split("/")
        path = None
        if len(parts) >= 4 and parts[1] == "ollama":
            if parts[3] == "manifests":
                path = self.manifests.get(parts[2])
            elif parts[3] == "blobs" and len(parts) == 5 and parts[4].startswith("sha256-"):
                path = os.path.join(self.store, "blobs", parts[4])
        if not path or not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(path, "rb") as handle:
            shutil.copyfileobj(handle, self.wfile, 1 << 20)


@contextlib.contextmanager
def serve_repo(store: str, manifests: dict, pki: str):
    handler = type("View", (RepoView,), {"store": store, "manifests": manifests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def serve_ollama(binary: str, store: str, home: str):
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": home,
        "OLLAMA_MODELS": store,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_NOPRUNE": "1",
        "OLLAMA_NO_CLOUD": "1",
    }
    process = subprocess.Popen(
        [binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the Ollama stand-in did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_playbook(workdir: str, extra: dict) -> dict:
    vars_file = os.path.join(workdir, "vars.json")
    with open(vars_file, "w", encoding="utf-8") as handle:
        json.dump(extra, handle)
    playbook = os.path.join(workdir, "models.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    start = time.perf_counter()
    done = subprocess.run(
        ["ansible-playbook", playbook, "-e", "@" + vars_file],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-2000:])
        raise SystemExit(f"ansible-playbook failed ({done.returncode})")
    report = json.loads(done.stdout)
    changed = sum(host["changed"] for host in report["stats"].values())
    read = 0
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                for item in result.get("results", [result]):
                    read += int(item.get("bytes_hashed", 0) or 0) + int(item.get("bytes_copied", 0) or 0)
    return {"seconds": elapsed, "changed": changed, "bytes_read": read}


@contextlib.contextmanager
def setup(label: str, sizes: list, workdir: str, *, pki: str, binary: str):
    """Build a source store of ``sizes``, serve it and a destination Ollama; yield the role's variables."""
    base = os.path.join(workdir, label)
    shutil.rmtree(base, ignore_errors=True)
    source, dest, home = (os.path.join(base, d) for d in ("source", "dest", "home"))
    os.makedirs(home)
    pins, manifests = [], {}
    for index, size in enumerate(sizes):
        model = ollama_store.add_model(
            source, f"bench{index}:{label}", model_size=size, seed=f"{label}{index}"
        )
        pins.append({"name": model.name, "manifest_digest": model.manifest_digest})
        manifests[model.manifest_digest.split(":", 1)[1]] = model.manifest_path
    try:
        with serve_repo(source, manifests, pki) as repo_url, serve_ollama(binary, dest, home) as api:
            yield (
                base,
                {
                    "ollama_models_list": pins,
                    "ollama_models_exclusive": True,
                    "ollama_models_repository_url": repo_url,
                    "ollama_models_ca_file": os.path.join(pki, "ca.crt"),
                    "ollama_models_store": dest,
                    "ollama_models_owner": str(os.getuid()),
                    "ollama_models_group": str(os.getgid()),
                    "ollama_models_api_url": api,
                },
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def measure(workdir: str, sizes: dict, *, pki: str, binary: str, runs: int) -> list:
    """First runs, then the re-runs of every size interleaved, so that load from other work on the
    machine falls on all sizes alike."""
    rows = {label: {"label": label, "bytes": sum(parts), "again": []} for label, parts in sizes.items()}
    with contextlib.ExitStack() as stack:
        setups = {
            label: stack.enter_context(setup(label, parts, workdir, pki=pki, binary=binary))
            for label, parts in sizes.items()
        }
        # Each size stands for one node, with its own record in /etc/ansible/facts.d.
        records = {}

        def run_as(label):
            base, extra = setups[label]
            if label in records:
                with open(FACTS, "wb") as handle:
                    handle.write(records[label])
            result = run_playbook(base, extra)
            with open(FACTS, "rb") as handle:
                records[label] = handle.read()
            return result

        for label in setups:
            rows[label]["first"] = run_as(label)
        for _round in range(runs):
            for label in setups:
                rows[label]["again"].append(run_as(label))
    for row in rows.values():
        row["median"] = statistics.median(r["seconds"] for r in row["again"])
        row["best"] = min(r["seconds"] for r in row["again"])
    return list(rows.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--big-gib", type=float, default=4.0, help="GiB of models in the big run (default 4)")
    parser.add_argument("--runs", type=int, default=5, help="timed re-runs per size (default 5)")
    parser.add_argument("--workdir", default="/var/tmp/airgap-site-rerun", help="scratch directory")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the role writes /etc/ansible/facts.d, as on a node")
    os.makedirs(args.workdir, exist_ok=True)
    big = int(args.big_gib * (1 << 30))
    free = shutil.disk_usage(args.workdir).free
    if free < 2 * big + (1 << 30):
        raise SystemExit(f"{args.workdir} needs {2 * big + (1 << 30)} bytes free, has {free}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        pki = os.path.join(scratch, "pki")
        os.makedirs(pki)
        make_pki(pki)
        release = os.path.join(scratch, "release")
        build_ollama.build("0.33.1", release)
        subprocess.run(
            ["tar", "--zstd", "-xf", os.path.join(release, build_ollama.ARCHIVE), "-C", release], check=True
        )
        binary = os.path.join(release, "bin", "ollama")
        facts = FACTS
        saved = None
        if os.path.exists(facts):
            with open(facts, "rb") as handle:
                saved = handle.read()
        try:
            quarter = big // 4
            rows = measure(
                scratch,
                {
                    "tiny": [256 << 10, 64 << 10, 64 << 10, 64 << 10],
                    "big": [quarter] * 3 + [big - 3 * quarter],
                },
                pki=pki,
                binary=binary,
                runs=args.runs,
            )
        finally:
            if saved is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(facts)
            else:
                with open(facts, "wb") as handle:
                    handle.write(saved)
    print(
        f"{'models':>12} {'first run':>10} {'re-runs (s)':>30} {'best':>7} {'median':>8} {'changed':>8} "
        f"{'bytes read':>11}"
    )
    for row in rows:
        times = " ".join(f"{r['seconds']:.2f}" for r in row["again"])
        changed = max(r["changed"] for r in row["again"])
        read = max(r["bytes_read"] for r in row["again"])
        size = (
            f"{row['bytes'] / (1 << 30):.2f} GiB" if row["bytes"] >= 1 << 30 else f"{row['bytes'] >> 10} KiB"
        )
        print(
            f"{size:>12} {row['first']['seconds']:>9.2f}s {times:>30} {row['best']:>6.2f}s "
            f"{row['median']:>7.2f}s {changed:>8} {read:>11}"
        )
    # The best of several runs is the estimate least disturbed by other work on a shared machine
    # (as timeit reports); the medians are printed for comparison.
    ratio = rows[1]["best"] / rows[0]["best"]
    print(f"medians big/tiny: {rows[1]['median'] / rows[0]['median']:.3f}")
    ok = ratio <= 1.1 and all(
        r["changed"] == 0 and r["bytes_read"] == 0 for row in rows for r in row["again"]
    )
    print(
        f"re-run big/tiny: {ratio:.3f} (must be <= 1.1, with nothing changed and no blob read): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
