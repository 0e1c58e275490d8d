"""End to end: build bundles from loopback fixtures, ingest them, and try every attack.

One session builds a baseline bundle (version 2, ingested first) and the main bundle (version 3,
every artifact kind, plain and chunked). Each attack derives a tampered copy from the main bundle,
runs ``playbooks/ingest.yml`` and asserts the refusal message, a repository (and ``current``)
identical byte for byte, and one more ``refused`` event in a still-valid audit log.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from typing import Callable, Dict, List, Tuple

import pytest
import yaml
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.tests import ollama_store

PASSPHRASE = "integration-test-passphrase"  # noqa: S105 - throwaway test keys
Members = List[Tuple[tarfile.TarInfo, bytes]]


def sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def snapshot(root) -> Dict[str, Tuple[str, object]]:
    """Every path under ``root``: type, mode and content digest or link target."""
    found: Dict[str, Tuple[str, object]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[rel] = ("file", (stat.S_IMODE(st.st_mode), sha256(path)))
    return found


def read_members(path) -> Members:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]


def write_tar(path, members: Members) -> str:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for original, data in members:
            info = copy.copy(original)
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return sha256(path)


def member(members: Members, name: str) -> bytes:
    return next(data for info, data in members if info.name == name)


def replace(members: Members, name: str, data: bytes) -> Members:
    return [(info, data if info.name == name else old) for info, old in members]


def entry(
    name: str, kind=tarfile.REGTYPE, data: bytes = b"", linkname: str = ""
) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info, data


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# Session fixtures


@pytest.fixture(scope="session")
def keys(tmp_path_factory, playbook):
    """Three signing keys: 1 and 2 are trusted on the high side, 3 is not. Key 1 via the playbook."""
    root = tmp_path_factory.mktemp("keys")
    proc = playbook(
        "bundle_keygen.yml",
        {"bundle_key_path": str(root / "k1" / "signer1.key"), "bundle_key_passphrase": PASSPHRASE},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert PASSPHRASE not in proc.stdout
    assert stat.S_IMODE(os.stat(root / "k1" / "signer1.key").st_mode) == 0o600
    paths = {1: (str(root / "k1" / "signer1.key"), str(root / "k1" / "signer1.key.pub"))}
    for n in (2, 3):
        private, public = str(root / f"signer{n}.key"), str(root / f"signer{n}.pub")
        _sign.keygen(private, public, PASSPHRASE)
        paths[n] = (private, public)
    return {
        "paths": paths,
        "private": {n: _sign.load_private_key(p[0], PASSPHRASE) for n, p in paths.items()},
        "signing": [{"path": paths[n][0], "passphrase": PASSPHRASE} for n in (1, 2)],
        "trusted": [paths[1][1], paths[2][1]],
    }


def _publish(upstream) -> Dict[str, Dict[str, str]]:
    """Upstream-like release files on the loopback server."""
    root = upstream["root"]
    files = {
        "ollama/v0.33.0/ollama-linux-amd64.tar.zst": os.urandom(40_000),
        "ollama/v0.33.0/ollama-linux-arm64.tar.zst": os.urandom(1000),
        "smallstep/step-ca_linux_0.30.0_amd64.tar.gz": os.urandom(9000),
        "debian/pool/jq_1.6-2.1_amd64.deb": os.urandom(3000),
        "images/open-webui-0.6.5.tar": os.urandom(12_000),
        "nvidia/NVIDIA-Linux-x86_64-590.44.run": os.urandom(20_000),
    }
    out = {}
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[rel] = {"url": f"{upstream['url']}/{rel}", "sha256": hashlib.sha256(data).hexdigest()}
    listing = "".join(
        f"{out[r]['sha256']}  ./{os.path.basename(r)}\n" for r in files if r.startswith("ollama/")
    )
    (root / "ollama/v0.33.0/sha256sum.txt").write_text(listing)
    out["sha256sum"] = {"url": f"{upstream['url']}/ollama/v0.33.0/sha256sum.txt"}
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory, upstream, keys, playbook):
    """Build the baseline (v2) and main (v3, plain and chunked) bundles once."""
    root = tmp_path_factory.mktemp("world")
    published = _publish(upstream)
    store = root / "ollama-store"
    first = ollama_store.add_model(str(store), "llama3.2:3b", model_size=50_000)
    ollama_store.add_model(str(store), "llama3.2:latest", shared_model_from=first)
    ollama_store.add_model(str(store), "nomic-embed-text:v1.5", model_size=20_000)
    (root / "wheelhouse").mkdir()
    (root / "wheelhouse" / "open_webui-0.6.5-py3-none-any.whl").write_bytes(os.urandom(5000))
    (root / "wheelhouse" / "fastapi-0.115.0-py3-none-any.whl").write_bytes(os.urandom(2000))
    (root / "notes.txt").write_bytes(b"site notes\n")

    def spec(version: int, full: bool) -> str:
        artifacts = [{"name": "site-notes", "version": str(version), "kind": "file", "path": "notes.txt"}]
        if full:
            p = published
            artifacts += [
                {
                    "name": "ollama",
                    "version": "0.33.0",
                    "kind": "ollama",
                    "url": p["ollama/v0.33.0/ollama-linux-amd64.tar.zst"]["url"],
                    "checksums_url": p["sha256sum"]["url"],
                    "license": "MIT",
                },
                {"name": "llama3.2", "version": "3b", "kind": "model", "license": "Llama-3.2-Community"},
                {"name": "llama3.2", "version": "latest", "kind": "model"},
                {"name": "nomic-embed-text", "version": "v1.5", "kind": "model", "license": "Apache-2.0"},
                {
                    "name": "step-ca",
                    "version": "0.30.0",
                    "kind": "step",
                    **p["smallstep/step-ca_linux_0.30.0_amd64.tar.gz"],
                    "license": "Apache-2.0",
                },
                {
                    "name": "jq",
                    "version": "1.6-2.1",
                    "kind": "deb",
                    "suites": ["bookworm"],
                    **p["debian/pool/jq_1.6-2.1_amd64.deb"],
                },
                {
                    "name": "open-webui-image",
                    "version": "0.6.5",
                    "kind": "container_image",
                    **p["images/open-webui-0.6.5.tar"],
                },
                {
                    "name": "nvidia-driver",
                    "version": "590.44",
                    "kind": "gpu_driver",
                    **p["nvidia/NVIDIA-Linux-x86_64-590.44.run"],
                },
                {"name": "open-webui", "version": "0.6.5", "kind": "wheelhouse", "path": "wheelhouse"},
            ]
        doc = {"channel": "stable", "version": version, "expires_days": 7, "ollama_store": str(store)}
        doc["artifacts"] = artifacts
        path = root / f"spec-{version}.yml"
        path.write_text(yaml.safe_dump(doc))
        return str(path)

    def build(version: int, full: bool, dest: str, extra=None) -> dict:
        variables = {
            "bundle_spec_file": spec(version, full),
            "bundle_dest": dest,
            "bundle_signing_keys": keys["signing"],
            "bundle_cache_dir": str(root / "cache"),
        }
        variables.update(extra or {})
        proc = playbook("bundle.yml", variables)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert PASSPHRASE not in proc.stdout
        name = f"airgap-llm-stable-{version:06d}.tar"
        return {"tar": os.path.join(dest, name), "sha256": sha256_line(os.path.join(dest, name + ".sha256"))}

    return {
        "root": root,
        "spec": spec,
        "build": build,
        "store": store,
        "v2": build(2, False, str(root / "out-v2")),
        "v3": build(3, True, str(root / "out-v3")),
        "v3chunks": build(3, True, str(root / "out-v3-chunks"), {"bundle_chunk_size": "32K"}),
        "repo": root / "repo",
        "audit": root / "audit" / "audit.jsonl",
        "inventory": root / "inventory.json",
        "attacks": root / "attacks",
    }


def sha256_line(path: str) -> str:
    with open(path, encoding="ascii") as handle:
        return handle.read().split()[0]


def ingest(playbook, world, keys, src, digest, **extra):
    variables = {
        "ingest_src": str(src),
        "ingest_sha256": digest,
        "ingest_repository": str(world["repo"]),
        "ingest_audit_log": str(world["audit"]),
        "ingest_trusted_key_files": keys["trusted"],
        "ingest_threshold": 2,
        "ingest_operator": "integration",
    }
    variables.update(extra)
    return playbook("ingest.yml", variables)


def audit_entries(world) -> List[dict]:
    with open(world["audit"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# ----------------------------------------------------------------------------------------------
# Building


def test_bundle_contents(world, keys):
    v3 = world["v3"]
    assert sha256(v3["tar"]) == v3["sha256"]
    members = read_members(v3["tar"])
    names = [info.name for info, _data in members]
    assert names[-4:-2] == ["sbom.cdx.json", "bundle.json"]
    assert all(n.startswith("signatures/") for n in names[-2:])
    manifest = json.loads(member(members, "bundle.json"))
    assert manifest["format"] == "airgap.llm.bundle"
    assert manifest["format_version"] == 1
    assert (manifest["channel"], manifest["version"]) == ("stable", 3)
    created = datetime.datetime.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ")
    expires = datetime.datetime.strptime(manifest["expires"], "%Y-%m-%dT%H:%M:%SZ")
    assert expires - created == datetime.timedelta(days=7)
    kinds = {f["kind"] for f in manifest["files"]}
    assert kinds == {
        "file",
        "ollama",
        "model",
        "step",
        "deb",
        "container_image",
        "gpu_driver",
        "wheelhouse",
        "sbom",
    }
    by_path = {f["path"]: f for f in manifest["files"]}
    for info, data in members:
        if info.name in by_path:
            assert hashlib.sha256(data).hexdigest() == by_path[info.name]["sha256"]
            assert len(data) == by_path[info.name]["size"]
    assert set(by_path) == {n for n in names if n != "bundle.json" and not n.startswith("signatures/")}
    ollama = by_path["artifacts/ollama/ollama/0.33.0/ollama-linux-amd64.tar.zst"]
    assert ollama["license"] == "MIT"
    assert ollama["source"].endswith("/ollama-linux-amd64.tar.zst")
    # Shared weights of llama3.2:3b and :latest travel once.
    blobs = [p for p in by_path if p.startswith("models/blobs/")]
    assert len(blobs) == len(set(blobs))
    assert "models/manifests/registry.ollama.ai/library/llama3.2/3b" in by_path
    sbom = json.loads(member(members, "sbom.cdx.json"))
    assert sbom["bomFormat"] == "CycloneDX"
    ml = [c for c in sbom["components"] if c["type"] == "machine-learning-model"]
    assert {c["name"] for c in ml} == {"llama3.2", "nomic-embed-text"}
    signers = {n[len("signatures/") : -len(".sig")] for n in names if n.startswith("signatures/")}
    assert signers == {_sign.key_id(keys["private"][n].public_key()) for n in (1, 2)}


def test_chunks_and_digest_files(world):
    chunks = world["v3chunks"]
    with open(chunks["tar"] + ".chunks.sha256", encoding="ascii") as handle:
        rows = [line.split() for line in handle if line.strip()]
    assert len(rows) > 2
    whole = hashlib.sha256()
    for digest, name in rows:
        with open(os.path.join(os.path.dirname(chunks["tar"]), name), "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == digest
        assert len(data) <= 32 * 1024
        whole.update(data)
    assert whole.hexdigest() == chunks["sha256"]
    assert not os.path.exists(chunks["tar"])


def test_rebuild_is_idempotent(world, keys, playbook):
    before = sha256(world["v3"]["tar"])
    variables = {
        "bundle_spec_file": world["spec"](3, True),
        "bundle_dest": os.path.dirname(world["v3"]["tar"]),
        "bundle_signing_keys": keys["signing"],
    }
    proc = playbook("bundle.yml", variables)
    assert proc.returncode == 0, proc.stdout
    assert "changed=0" in proc.stdout
    assert sha256(world["v3"]["tar"]) == before


def test_build_refuses_wrong_pin(world, keys, playbook, upstream):
    dest = world["root"] / "out-badpin"
    spec = world["root"] / "badpin.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "channel": "stable",
                "version": 9,
                "artifacts": [
                    {
                        "name": "jq",
                        "version": "1",
                        "kind": "deb",
                        "url": f"{upstream['url']}/debian/pool/jq_1.6-2.1_amd64.deb",
                        "sha256": "0" * 64,
                    }
                ],
            }
        )
    )
    proc = playbook(
        "bundle.yml",
        {"bundle_spec_file": str(spec), "bundle_dest": str(dest), "bundle_signing_keys": keys["signing"]},
    )
    assert proc.returncode != 0
    assert "sha256 mismatch: expected " + "0" * 64 in proc.stdout
    assert not [n for n in os.listdir(dest) if not n.startswith(".")]


# ----------------------------------------------------------------------------------------------
# Ingest and attacks


def test_ingest_baseline(world, keys, playbook):
    v2 = world["v2"]
    proc = ingest(playbook, world, keys, v2["tar"], v2["sha256"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.readlink(world["repo"] / "current") == "states/000001"
    entries = audit_entries(world)
    assert entries[-1]["outcome"] == "accepted"
    assert entries[-1]["bundle_sha256"] == v2["sha256"]
    assert len(entries[-1]["key_ids"]) == 2


def _resign(members: Members, keys, change: Callable[[dict], None], signers=(1, 2)) -> Members:
    manifest = json.loads(member(members, "bundle.json"))
    change(manifest)
    raw = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    out = [
        (i, raw if i.name == "bundle.json" else d) for i, d in members if not i.name.startswith("signatures/")
    ]
    for n in signers:
        kid, sig = _sign.sign(keys["private"][n], raw)
        out.append(entry(f"signatures/{kid}.sig", data=sig))
    return out


def _first_artifact(members: Members) -> str:
    return next(i.name for i, _d in members if i.name.startswith("artifacts/ollama/"))


def _sig_names(members: Members) -> List[str]:
    return [i.name for i, _d in members if i.name.startswith("signatures/")]


def _flip_signature(members: Members) -> Members:
    name = _sig_names(members)[0]
    text = bytearray(member(members, name))
    text[10] = ord("B") if text[10] != ord("B") else ord("C")
    return replace(members, name, bytes(text))


def _expired(manifest: dict) -> None:
    manifest["expires"] = "2020-01-01T00:00:00Z"


def _version(n: int, note: str):
    def change(manifest: dict) -> None:
        manifest["version"] = n
        manifest["created"] = note

    return change


# (name, how to make the attack from the main bundle's members, expected message, expected step)
ATTACKS = [
    (
        "flipped-byte-in-artifact",
        lambda m, k: replace(m, _first_artifact(m), flip(member(m, _first_artifact(m)), 100)),
        "the artifact was altered or damaged",
        "artifact digests",
    ),
    (
        "flipped-byte-in-bundle-json",
        lambda m, k: replace(m, "bundle.json", member(m, "bundle.json").replace(b'"stable"', b'"stabld"')),
        "does not verify against trusted key",
        "signatures",
    ),
    (
        "flipped-byte-in-signature",
        lambda m, k: _flip_signature(m),
        "does not verify against trusted key",
        "signatures",
    ),
    (
        "unknown-key",
        lambda m, k: _resign(m, k, lambda d: None, signers=(3,)),
        "signatures by keys that are not trusted here",
        "signatures",
    ),
    (
        "too-few-signatures",
        lambda m, k: [x for x in m if x[0].name != _sig_names(m)[1]],
        "1 of the 2 required signatures",
        "signatures",
    ),
    (
        "older-version",
        lambda m, k: _resign(m, k, _version(1, "2026-01-01T00:00:00Z")),
        "is older than version 2, already ingested",
        "version",
    ),
    (
        "equal-version",
        lambda m, k: _resign(m, k, _version(2, "2026-01-02T00:00:00Z")),
        "is the same version as 2",
        "version",
    ),
    ("expired", lambda m, k: _resign(m, k, _expired), "expired at 2020-01-01T00:00:00Z", "expiry"),
    (
        "absolute-path",
        lambda m, k: [*m, entry("/etc/cron.d/evil", data=b"x")],
        "has an absolute path",
        "extraction",
    ),
    (
        "dot-dot",
        lambda m, k: [*m, entry("artifacts/../../evil", data=b"x")],
        "has a '..' component",
        "extraction",
    ),
    (
        "symlink",
        lambda m, k: [*m, entry("artifacts/link", tarfile.SYMTYPE, linkname="/etc/shadow")],
        "is a symbolic link",
        "extraction",
    ),
    (
        "hard-link",
        lambda m, k: [*m, entry("artifacts/hard", tarfile.LNKTYPE, linkname="bundle.json")],
        "is a hard link",
        "extraction",
    ),
    (
        "device",
        lambda m, k: [*m, entry("artifacts/dev", tarfile.CHRTYPE)],
        "is a character device",
        "extraction",
    ),
    (
        "duplicate",
        lambda m, k: [*m, (m[0][0], m[0][1])],
        "is a duplicate entry",
        "extraction",
    ),
    (
        "unlisted-file",
        lambda m, k: [*m, entry("artifacts/file/extra/1/payload.sh", data=b"#!/bin/sh\n")],
        "is not listed in bundle.json",
        "extraction",
    ),
]


def _assert_refused(world, proc, before, lines_before, *, message, step):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert message in output, output[-3000:]
    assert f"({step})" in output
    assert snapshot(world["repo"]) == before
    assert os.readlink(world["repo"] / "current") == before["current"][1]
    entries = audit_entries(world)
    assert len(entries) == lines_before + 1
    assert entries[-1]["outcome"] == "refused"
    assert step in entries[-1]["detail"]
    assert _audit.verify(str(world["audit"]))["broken_at"] is None


@pytest.mark.parametrize(("name", "make", "message", "step"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_refused(world, keys, playbook, name, make, message, step):  # noqa: PLR0917 - parametrized
    members = read_members(world["v3"]["tar"])
    os.makedirs(world["attacks"], exist_ok=True)
    path = world["attacks"] / f"{name}.tar"
    digest = write_tar(path, make(members, keys))
    before = snapshot(world["repo"])
    lines_before = len(audit_entries(world))
    proc = ingest(playbook, world, keys, path, digest)
    _assert_refused(world, proc, before, lines_before, message=message, step=step)


def test_attack_flipped_byte_in_tarball(world, keys, playbook):
    path = world["attacks"] / "flipped-tarball.tar"
    shutil.copyfile(world["v3"]["tar"], path)
    with open(path, "r+b") as handle:
        handle.seek(700)
        byte = handle.read(1)
        handle.seek(700)
        handle.write(bytes([byte[0] ^ 1]))
    before = snapshot(world["repo"])
    lines = len(audit_entries(world))
    proc = ingest(playbook, world, keys, path, world["v3"]["sha256"])
    _assert_refused(
        world, proc, before, lines, message="does not have the sha256 given out of band", step="outer digest"
    )
    assert sha256(path) not in proc.stdout  # the digest the media has is never offered for a paste


def _chunk_copy(world, name: str) -> Tuple[str, List[str]]:
    src_dir = os.path.dirname(world["v3chunks"]["tar"])
    dest = world["attacks"] / name
    shutil.copytree(src_dir, dest)
    base = os.path.basename(world["v3chunks"]["tar"])
    parts = sorted(n for n in os.listdir(dest) if ".part" in n)
    return str(dest / base), [str(dest / p) for p in parts]


def test_attack_truncated_chunk(world, keys, playbook):
    tar, parts = _chunk_copy(world, "truncated-chunk")
    with open(parts[1], "r+b") as handle:
        handle.truncate(1000)
    before = snapshot(world["repo"])
    lines = len(audit_entries(world))
    proc = ingest(playbook, world, keys, tar, world["v3chunks"]["sha256"])
    _assert_refused(world, proc, before, lines, message="it is truncated or damaged", step="chunks")
    assert os.path.basename(parts[1]) in proc.stdout


def test_attack_missing_chunk(world, keys, playbook):
    tar, parts = _chunk_copy(world, "missing-chunk")
    os.unlink(parts[2])
    before = snapshot(world["repo"])
    lines = len(audit_entries(world))
    proc = ingest(playbook, world, keys, tar, world["v3chunks"]["sha256"])
    missing = f"chunk {os.path.basename(parts[2])} is missing"
    _assert_refused(world, proc, before, lines, message=missing, step="chunks")


def test_ingest_chunked_main_bundle(world, keys, playbook):
    chunks = world["v3chunks"]
    proc = ingest(
        playbook, world, keys, chunks["tar"], chunks["sha256"], ingest_inventory_dest=str(world["inventory"])
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    repo = world["repo"]
    assert os.readlink(repo / "current") == "states/000002"
    index = json.loads((repo / "current" / "index.json").read_text())
    arts = index["artifacts"]
    assert set(arts["llama3.2"]) == {"3b", "latest"}
    assert arts["ollama"]["0.33.0"]["files"][0]["path"] == "ollama-linux-amd64.tar.zst"
    assert arts["site-notes"]["2"]["bundle_version"] == 2
    assert arts["jq"]["1.6-2.1"]["suites"] == ["bookworm"]  # the Debian release the .deb is for
    assert "suites" not in arts["site-notes"]["2"]
    for versions in arts.values():
        for info in versions.values():
            for f in info["files"]:
                assert sha256(repo / f["blob"]) == f["sha256"]
    shared = {f["sha256"] for f in arts["llama3.2"]["3b"]["files"]} & {
        f["sha256"] for f in arts["llama3.2"]["latest"]["files"]
    }
    assert shared, "the weights layer of llama3.2:3b and :latest is one blob"
    state = json.loads((repo / "current" / "state.json").read_text())
    assert state["high_water"] == {"stable": 3}
    assert state["previous"] == "states/000001"
    assert (repo / "states" / "000001" / "index.json").exists()
    assert list((repo / "tmp").iterdir()) == []
    assert audit_entries(world)[-1]["outcome"] == "accepted"
    # Idempotent: the same bundle again changes nothing and reads nothing.
    before = snapshot(repo)
    again = ingest(playbook, world, keys, chunks["tar"], chunks["sha256"])
    assert again.returncode == 0, again.stdout
    assert "changed=0" in again.stdout
    assert snapshot(repo) == before


def test_differential_bundle(world, keys, playbook):
    inventory = json.loads(world["inventory"].read_text())
    assert inventory["format"] == "airgap.llm.inventory"
    assert len(inventory["blobs"]) > 10
    built = world["build"](
        4, True, str(world["root"] / "out-v4"), {"bundle_inventory": str(world["inventory"])}
    )
    full = os.path.getsize(world["v3"]["tar"])
    assert os.path.getsize(built["tar"]) < full / 2
    manifest = json.loads(member(read_members(built["tar"]), "bundle.json"))
    omitted = [f for f in manifest["files"] if f["omitted"]]
    assert {f["kind"] for f in omitted} >= {"model", "ollama", "step", "wheelhouse"}
    # Nothing changed since v3, local files included (the wheelhouse, the notes): only the SBOM travels.
    shipped = [f["path"] for f in manifest["files"] if not f["omitted"]]
    assert shipped == ["sbom.cdx.json"], shipped
    assert manifest["differential"]["omitted_files"] == len(omitted)
    proc = ingest(playbook, world, keys, built["tar"], built["sha256"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    index = json.loads((world["repo"] / "current" / "index.json").read_text())
    assert index["artifacts"]["site-notes"]["4"]["bundle_version"] == 4
    assert os.readlink(world["repo"] / "current") == "states/000003"


def test_rollback_needs_audited_override(world, keys, playbook):
    members = _resign(read_members(world["v3"]["tar"]), keys, _version(1, "2026-03-01T00:00:00Z"))
    path = world["attacks"] / "override.tar"
    digest = write_tar(path, members)
    proc = ingest(
        playbook,
        world,
        keys,
        path,
        digest,
        ingest_allow_rollback=True,
        ingest_override_reason="CHG-1234 roll back to v1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = audit_entries(world)[-1]
    assert last["outcome"] == "accepted-override"
    assert "CHG-1234" in last["detail"]
    state = json.loads((world["repo"] / "current" / "state.json").read_text())
    assert state["channels"]["stable"]["version"] == 1
    assert state["high_water"]["stable"] == 4


def test_tampered_audit_log_stops_ingest(world, keys, playbook):
    log = world["root"] / "tampered.jsonl"
    lines = world["audit"].read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"integration"', '"intruder"')
    log.write_text("".join(lines))
    v2 = world["v2"]
    proc = ingest(playbook, world, keys, v2["tar"], v2["sha256"], ingest_audit_log=str(log))
    assert proc.returncode != 0
    assert "breaks at line 2" in proc.stdout


# ----------------------------------------------------------------------------------------------
# The trust policy kept by the repository


def _one_signer_bundle(world, keys, version: int) -> Tuple[str, str]:
    members = _resign(read_members(world["v3"]["tar"]), keys, _version(version, "2026-05-01T00:00:00Z"), (1,))
    path = world["attacks"] / f"one-signer-{version}.tar"
    return str(path), write_tar(path, members)


def _ingest_without_trust(playbook, world, src, digest, **extra):
    """An ingest as a new operator types it: no key files, no threshold."""
    variables = {
        "ingest_src": str(src),
        "ingest_sha256": digest,
        "ingest_repository": str(world["repo"]),
        "ingest_audit_log": str(world["audit"]),
        "ingest_operator": "integration",
    }
    variables.update(extra)
    return playbook("ingest.yml", variables)


def test_a_forgotten_threshold_still_needs_the_signatures_the_repository_pinned(world, keys, playbook):
    src, digest = _one_signer_bundle(world, keys, 7)
    before = snapshot(world["repo"])
    lines = len(audit_entries(world))
    proc = _ingest_without_trust(playbook, world, src, digest)
    _assert_refused(
        world, proc, before, lines, message="bundle has 1 of the 2 required signatures", step="signatures"
    )
    proc = _ingest_without_trust(playbook, world, src, digest, ingest_threshold=1)
    _assert_refused(
        world,
        proc,
        before,
        lines + 1,
        message="threshold 1 is lower than the 2 the policy",
        step="signatures",
    )


def test_lowering_trust_for_one_bundle_is_an_audited_override(world, keys, playbook):
    src, digest = _one_signer_bundle(world, keys, 7)
    reason = "CHG-4711 signer2 travelling"
    proc = _ingest_without_trust(playbook, world, src, digest, ingest_threshold=1, ingest_trust_reason=reason)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = audit_entries(world)[-1]
    assert last["outcome"] == "accepted-override"
    assert "trust lowered for this ingest by integration" in last["detail"]
    assert reason in last["detail"]
    policy = json.loads((world["repo"] / "trust.json").read_text())
    assert policy["threshold"] == 2


def test_setting_up_a_repository_records_its_trust_policy(world, keys, playbook):
    repo = world["root"] / "repo-setup"
    audit = world["root"] / "audit-setup.jsonl"
    variables = {
        "ingest_src": world["v2"]["tar"],
        "ingest_sha256": world["v2"]["sha256"],
        "ingest_repository": str(repo),
        "ingest_audit_log": str(audit),
        "ingest_trusted_key_files": keys["trusted"],
        "ingest_threshold": 2,
        "ingest_trust_setup": True,
        "ingest_operator": "integration",
    }
    proc = playbook("ingest.yml", variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(audit, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle]
    assert [(e["action"], e["outcome"]) for e in events] == [("trust", "established"), ("ingest", "accepted")]
    policy = json.loads((repo / "trust.json").read_text())
    assert policy["threshold"] == 2
    assert sorted(policy["keys"]) == sorted(events[-1]["key_ids"])
    again = playbook("ingest.yml", variables)
    assert again.returncode == 0, again.stdout
    assert "changed=0" in again.stdout
