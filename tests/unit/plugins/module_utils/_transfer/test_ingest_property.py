# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property: whatever is done to a valid bundle or chunk set, ingest refuses it cleanly or accepts it as
the unmutated bundle would be accepted.

Every case starts from the same repository (trust policy 2 of signers 0 and 1, bundle 1 current) and
a valid bundle 2, then mutates it at random: members dropped, duplicated, reordered, renamed, retyped
or rewritten; header fields changed; bundle.json changed (with and without signing it again, NaN and
duplicate keys included); signatures dropped, altered or added by an untrusted key; bytes flipped,
cut, inserted or appended (zeros included); the stream split into chunks whose files are dropped,
cut, swapped or altered and whose list is edited; the digest given out of band kept or made to match.

On every case exactly one of these holds, and never a traceback:
* refused (Refused or IngestError): the message is short printable ASCII; the repository is byte for
  byte as before; the audit log has one more event, refused or failed, and its chain holds;
* accepted, bundle.json untouched: the repository is what ingesting the unmutated bundle gives (up to
  the outer digest and the times);
* accepted, bundle.json signed again by the trusted keys (a new valid bundle): what is filed is what
  that bundle.json lists, every blob holds the bytes of its name, and nothing else was stored.

``make unit`` runs AIRGAP_PROPERTY_EXAMPLES cases (default 300, the same ones every run). Set it higher
for a longer search with fresh random cases each run, e.g. ``AIRGAP_PROPERTY_EXAMPLES=5000 make unit``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import time
import traceback
from typing import Any, Dict, List, Optional

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.tests.ollama_store import snapshot
from ansible_collections.airgap.llm.tests.transfer_kit import Members, entry, read_members
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DEFAULT_EXAMPLES = 300
EXAMPLES = int(os.environ.get("AIRGAP_PROPERTY_EXAMPLES", DEFAULT_EXAMPLES))
NAME = "airgap-llm-stable-000002.tar"
TAR_TYPES = [
    tarfile.REGTYPE,
    tarfile.AREGTYPE,
    tarfile.LNKTYPE,
    tarfile.SYMTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.DIRTYPE,
    tarfile.FIFOTYPE,
    tarfile.CONTTYPE,
    b"Z",
]

# ------------------------------------------------------------------------------------- the start


@pytest.fixture(scope="module")
def start(tmp_path_factory, bundles, signers) -> Dict[str, Any]:
    root = tmp_path_factory.mktemp("property")
    first, second = bundles.build(1, name="-property"), bundles.build(2, name="-property")
    base = root / "base"
    base.mkdir()
    _ingest.ingest(
        _options(
            base,
            first["tar"],
            first["sha256"],
            trusted_keys=[signers[0]["pem"], signers[1]["pem"]],
            threshold=2,
        )
    )
    reference = root / "reference"
    shutil.copytree(base, reference, symlinks=True)
    _ingest.ingest(_options(reference, second["tar"], second["sha256"]))
    with open(second["tar"], "rb") as handle:
        raw = handle.read()
    return {
        "root": root,
        "base": base,
        "base_snapshot": snapshot(str(base / "repo")),
        "reference": _normal(reference / "repo", second["sha256"]),
        "raw": raw,
        "members": read_members(second["tar"]),
        "sha256": second["sha256"],
        "signers": signers,
        "count": {"cases": 0, "refused": 0, "accepted": 0, "accepted-new": 0},
    }


def _options(site, src, sha256, **extra) -> _ingest.IngestOptions:
    return _ingest.IngestOptions(
        src=str(src),
        sha256=sha256,
        repository=str(site / "repo"),
        audit_log=str(site / "audit.jsonl"),
        operator="property",
        **extra,
    )


def _normal(repo, digest: str) -> Dict[str, Any]:
    """The repository with the outer digest and the times taken out (what must match the reference)."""
    out: Dict[str, Any] = {}
    for rel, found in snapshot(str(repo)).items():
        value = found
        path = os.path.join(str(repo), rel)
        if value[0] == "file" and rel.endswith(("state.json", "index.json", "ingest.json")):
            with open(path, encoding="ascii") as handle:
                text = handle.read().replace(digest, "OUTER").replace(digest[:12], "OUTER")
            doc = json.loads(text)
            for key in ("created", "ingested_at"):
                doc.pop(key, None)
            value = ("json", doc)
        out[rel.replace(digest[:12], "OUTER")] = value
    return out


# --------------------------------------------------------------------------------- the mutations

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
names = st.text(max_size=40) | st.sampled_from(
    [
        "../x",
        "/etc/passwd",
        "bundle.json",
        "sbom.cdx.json",
        "a/./b",
        "a\\b",
        "x\x00y",
        "signatures/x.sig",
        "signatures/0123456789abcdef.sig",
        "artifacts/file/app/2.0/app.bin",
        "\x1b[2J\u202e",
    ]
)
member_ops = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 50)),
    st.tuples(st.just("duplicate"), st.integers(0, 50)),
    st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
    st.tuples(st.just("rename"), st.integers(0, 50), names),
    st.tuples(st.just("retype"), st.integers(0, 50), st.sampled_from(TAR_TYPES)),
    st.tuples(st.just("rewrite"), st.integers(0, 50), st.binary(max_size=64)),
    st.tuples(st.just("header"), st.integers(0, 50), st.integers(0, 2**31), st.integers(0, 0o7777)),
    st.tuples(st.just("add"), names, st.binary(max_size=64)),
    st.tuples(st.just("unsign"), st.integers(0, 1)),
    st.tuples(st.just("bad-signature"), st.integers(0, 1), st.integers(0, 87)),
)
json_ops = st.one_of(
    st.tuples(st.just("license"), st.integers(0, 3), st.none() | st.text(max_size=30)),
    st.tuples(st.just("set"), st.lists(st.integers(0, 8), min_size=1, max_size=4), json_values),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 8), min_size=1, max_size=4)),
    st.tuples(
        st.just("text"),
        st.sampled_from(
            [
                (b'"size": ', b'"size": NaN, "z": '),
                (b'"version": 2', b'"version": 2, "version": 3'),
                (b'"channel": "stable"', b'"channel": "stable", "channel": "stable"'),
                (b'"size": ', b'"size": 1e999, "z": '),
                (b'"differential": null', b'"differential": ' + b"[" * 3000 + b"]" * 3000),
                (b"{", b"["),
            ]
        ),
    ),
)
byte_ops = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 2**20)),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.binary(min_size=1, max_size=600)),
    st.tuples(
        st.just("append"),
        st.binary(min_size=1, max_size=2000) | st.integers(1, 8192).map(lambda n: b"\0" * n),
    ),
)
chunk_ops = st.one_of(
    st.tuples(st.just("drop-file"), st.integers(0, 50)),
    st.tuples(st.just("cut-file"), st.integers(0, 50), st.integers(0, 4096)),
    st.tuples(st.just("swap-files"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("flip-file"), st.integers(0, 50), st.integers(0, 4096)),
    st.tuples(st.just("list-line"), st.integers(0, 50), st.text(max_size=80)),
    st.tuples(st.just("list-swap"), st.integers(0, 50), st.integers(0, 50)),
)
cases = st.fixed_dictionaries(
    {
        "members": st.lists(member_ops, max_size=2),
        "json": st.lists(json_ops, max_size=1),
        "resign_by": st.sampled_from([(0, 1), (0, 1), (0,), (0, 2), (1, 0)]),
        "bytes": st.lists(byte_ops, max_size=2),
        "chunk_size": st.none() | st.integers(512, 8192),
        "chunks": st.lists(chunk_ops, max_size=2),
        "consistent": st.booleans(),
    }
).filter(lambda c: c["members"] or c["json"] or c["bytes"] or c["chunks"] or c["consistent"])


def _walk(doc: Any, path: List[int]):
    """The container and key a list of indices leads to inside bundle.json (None when it ends early)."""
    parent, key = None, None
    node = doc
    for index in path:
        if isinstance(node, dict) and node:
            keys = sorted(node)
            parent, key = node, keys[index % len(keys)]
        elif isinstance(node, list) and node:
            parent, key = node, index % len(node)
        else:
            break
        node = parent[key]
    return parent, key


def _change_json(raw: bytes, op) -> bytes:
    if op[0] == "text":
        old, new = op[1]
        return raw.replace(old, new, 1)
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw + b" "  # bundle.json was already rewritten into something else
    if op[0] == "license":  # mostly a new, valid bundle.json
        arts = doc.get("artifacts") if isinstance(doc, dict) else None
        if not isinstance(arts, list) or not arts or not isinstance(arts[op[1] % len(arts)], dict):
            return raw + b" "
        arts[op[1] % len(arts)]["license"] = op[2]
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    parent, key = _walk(doc, op[1])
    if parent is None:
        return raw
    if op[0] == "set":
        parent[key] = op[2]
    elif isinstance(parent, dict):
        del parent[key]
    else:
        parent.pop(key)
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def _apply_member(members: Members, op) -> Members:
    out = list(members)
    at = (op[1] % len(out)) if out and isinstance(op[1], int) else 0
    kind = op[0]
    if kind == "drop" and out:
        out.pop(at)
    elif kind == "duplicate" and out:
        out.insert(at, out[at])
    elif kind == "reorder":
        op[1].shuffle(out)
    elif kind == "rename" and out:
        info = _copy(out[at][0])
        info.name = op[2]
        out[at] = (info, out[at][1])
    elif kind == "retype" and out:
        info = _copy(out[at][0])
        info.type = op[2]
        out[at] = (info, out[at][1] if info.isfile() else b"")
    elif kind == "rewrite" and out:
        out[at] = (out[at][0], op[2])
    elif kind == "header" and out:
        info = _copy(out[at][0])
        info.mtime, info.mode = op[2], op[3]
        out[at] = (info, out[at][1])
    elif kind == "add":
        out.append(entry(op[1], op[2]))
    elif kind in ("unsign", "bad-signature"):
        sigs = [n for n, (i, _d) in enumerate(out) if i.name.startswith("signatures/")]
        if sigs:
            n = sigs[op[1] % len(sigs)]
            if kind == "unsign":
                out.pop(n)
            elif out[n][1]:
                data = bytearray(out[n][1])
                data[op[2] % len(data)] ^= 0x01
                out[n] = (out[n][0], bytes(data))
    return out


def _copy(info: tarfile.TarInfo) -> tarfile.TarInfo:
    clone = tarfile.TarInfo(info.name)
    for attr in ("size", "mtime", "mode", "type", "linkname", "uid", "gid", "uname", "gname"):
        setattr(clone, attr, getattr(info, attr))
    return clone


def _tar(members: Members) -> Optional[bytes]:
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in members:
                clone = _copy(info)
                if clone.isfile():
                    clone.size = len(data)
                    tar.addfile(clone, io.BytesIO(data))
                else:
                    clone.size = 0
                    tar.addfile(clone)
    except (ValueError, UnicodeError, OverflowError, tarfile.TarError):
        return None  # a name tarfile itself cannot write: that case is the plain bundle's
    return buffer.getvalue()


def _apply_bytes(raw: bytes, op) -> bytes:
    if not raw:
        return raw
    kind = op[0]
    if kind == "flip":
        data = bytearray(raw)
        data[op[1] % len(data)] ^= op[2]
        return bytes(data)
    if kind == "cut":
        return raw[: op[1] % len(raw)]
    if kind == "insert":
        at = op[1] % len(raw)
        return raw[:at] + op[2] + raw[at:]
    return raw + op[1]


def _media(case: Dict[str, Any], raw: bytes, start: Dict[str, Any], media) -> Dict[str, str]:
    """Write the (mutated) stream to ``media`` as a tarball or chunks; return src and the digest given."""
    given = hashlib.sha256(raw).hexdigest() if case["consistent"] else start["sha256"]
    tar = media / NAME
    if case["chunk_size"] is None:
        tar.write_bytes(raw)
        (media / (NAME + ".sha256")).write_text(f"{given}  {NAME}\n")
        return {"tar": str(tar), "sha256": given}
    size = case["chunk_size"]
    parts = [raw[i : i + size] for i in range(0, len(raw), size)] or [b""]
    names = [f"{NAME}.part{n:04d}" for n in range(len(parts))]
    for name, part in zip(names, parts):
        (media / name).write_bytes(part)
    lines = [f"{hashlib.sha256(p).hexdigest()}  {n}" for n, p in zip(names, parts)]
    for op in case["chunks"]:
        n = op[1] % len(names)
        path = media / names[n]
        if op[0] == "drop-file" and path.exists():
            path.unlink()
        elif op[0] == "cut-file" and path.exists():
            data = path.read_bytes()
            path.write_bytes(data[: op[2] % (len(data) + 1)])
        elif op[0] == "swap-files":
            other = media / names[op[2] % len(names)]
            if path.exists() and other.exists():
                a, b = path.read_bytes(), other.read_bytes()
                path.write_bytes(b)
                other.write_bytes(a)
        elif op[0] == "flip-file" and path.exists():
            data = bytearray(path.read_bytes())
            if data:
                data[op[2] % len(data)] ^= 0x40
                path.write_bytes(bytes(data))
        elif op[0] == "list-line":
            lines[n] = op[2]
        elif op[0] == "list-swap":
            m = op[2] % len(lines)
            lines[n], lines[m] = lines[m], lines[n]
    if case["consistent"]:
        # The attacker also controls the lists on the media and the digest told out of band.
        whole = hashlib.sha256()
        for n, line in enumerate(lines):
            fields = line.split()
            path = media / (fields[1] if len(fields) == 2 and "/" not in fields[1] else names[n])
            if path.is_file() and len(fields) == 2 and len(fields[0]) == 64:
                data = path.read_bytes()
                lines[n] = f"{hashlib.sha256(data).hexdigest()}  {fields[1]}"
                whole.update(data)
        given = whole.hexdigest()
    (media / (NAME + ".chunks.sha256")).write_text(
        "\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape"
    )
    return {"tar": str(tar), "sha256": given}


# ------------------------------------------------------------------------------------ the property


def _check_refused(exc: BaseException, site, start) -> None:
    message = str(exc)
    assert message, "an empty message"
    assert len(message) < 4000, message[:500]
    assert all(32 <= ord(c) < 127 for c in message), ascii(message[:500])
    assert snapshot(str(site / "repo")) == start["base_snapshot"], message
    events = [json.loads(line) for line in (site / "audit.jsonl").read_text().splitlines()]
    assert len(events) == 2, message  # the first ingest, then this refusal
    assert events[-1]["outcome"] in ("refused", "failed")
    assert _audit.verify(str(site / "audit.jsonl"))["broken_at"] is None


def _check_accepted_new(site, signed: bytes, start) -> None:
    """A bundle.json signed again by trusted keys is a new valid bundle: what it lists, and only that."""
    repo = site / "repo"
    index = json.loads((repo / "current" / "index.json").read_text())
    wanted = set()
    for versions in index["artifacts"].values():
        for info in versions.values():
            for item in info["files"]:
                wanted.add(item["sha256"])
                with open(repo / item["blob"], "rb") as handle:
                    assert hashlib.sha256(handle.read()).hexdigest() == item["sha256"]
    stored = set(os.listdir(repo / "blobs" / "sha256"))
    base = {os.path.basename(k) for k in start["base_snapshot"] if k.startswith("blobs/sha256/")}
    assert stored - base <= wanted
    kept = [p.read_bytes() for p in (repo / "bundles").glob("*/*/bundle.json")]
    assert signed in kept


def _run_case(start: Dict[str, Any], case: Dict[str, Any]) -> str:
    """Mutate, ingest, check the property; returns the outcome."""
    count = start["count"]
    count["cases"] += 1
    site = start["root"] / f"case-{count['cases']}"
    shutil.copytree(start["base"], site, symlinks=True)
    media = site / "media"
    media.mkdir()
    try:
        members = start["members"]
        for op in case["members"]:
            members = _apply_member(members, op)
        signed = None
        if case["json"]:
            raw_json = next((d for i, d in members if i.name == "bundle.json"), b"{}")
            signed = _change_json(raw_json, case["json"][0])
            kept = [
                (i, d) for i, d in members if not i.name.startswith("signatures/") and i.name != "bundle.json"
            ]
            members = [*kept, entry("bundle.json", signed)]
            for n in case["resign_by"]:
                kid, signature = _sign.sign(start["signers"][n]["key"], signed)
                members.append(entry(f"signatures/{kid}.sig", signature))
        raw = start["raw"] if not (case["members"] or case["json"]) else _tar(members)
        if raw is None:
            raw, signed = start["raw"], None
        for op in case["bytes"]:
            raw = _apply_bytes(raw, op)
        bundle = _media(case, raw, start, media)
        try:
            _ingest.ingest(_options(site, bundle["tar"], bundle["sha256"]))
        except AirgapError as exc:
            assert isinstance(exc, (_ingest.Refused, _ingest.IngestError)), repr(exc)
            _check_refused(exc, site, start)
            return "refused"
        except Exception:
            pytest.fail("ingest raised a traceback:\n" + traceback.format_exc())
        if signed is None:
            assert _normal(site / "repo", bundle["sha256"]) == start["reference"]
            return "accepted"
        _check_accepted_new(site, signed, start)
        return "accepted-new"
    finally:
        shutil.rmtree(site, ignore_errors=True)


def test_a_mutated_bundle_is_refused_cleanly_or_accepted_as_the_original(start):
    count = start["count"]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=EXAMPLES == DEFAULT_EXAMPLES,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(case=cases)
    def mutated(case):
        count[_run_case(start, case)] += 1

    began = time.monotonic()
    mutated()
    elapsed = time.monotonic() - began
    print(f"\nproperty: {count['cases']} mutated cases in {elapsed:.1f} s: {count}")
    assert count["cases"] >= EXAMPLES
    assert count["refused"] > EXAMPLES // 2, count
    assert count["accepted"] > 0, count
