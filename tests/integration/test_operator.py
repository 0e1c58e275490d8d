# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an operator sees around the checks: every mistake of theirs gets its own message, checked
before anything is written; an ingest and the repository listing say what the repository serves."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign

PASSPHRASE = "operator-test-passphrase"  # noqa: S105 - throwaway test keys


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two signers' keys and two small bundles (the second adds notes), as the low side built them."""
    root = tmp_path_factory.mktemp("operator")
    keys = []
    for n in (1, 2):
        private = str(root / f"signer{n}.key")
        _sign.keygen(private, private + ".pub", PASSPHRASE)
        keys.append(private)
    (root / "wheelhouse").mkdir()
    (root / "wheelhouse" / "open_webui-0.6.5-py3-none-any.whl").write_bytes(b"w" * 4000)
    (root / "notes.txt").write_bytes(b"site notes\n")
    built = {}
    for version in (1, 2):
        artifacts = [{"name": "open-webui", "version": "0.6.5", "kind": "wheelhouse", "path": "wheelhouse"}]
        if version == 2:
            artifacts.append({"name": "notes", "version": "2", "path": "notes.txt"})
        options = _build.BuildOptions(
            dest=str(root / "media"),
            base_dir=str(root),
            cache_dir=str(root / "cache"),
            signing_keys=[{"path": k, "passphrase": PASSPHRASE} for k in keys],
            fetch_options=_fetch.FetchOptions(),
        )
        result = _build.build({"version": version, "artifacts": artifacts}, options)
        built[version] = {"tar": result["bundle"], "sha256": result["sha256"]}
    return {"root": root, "keys": keys, "bundles": built}


def _vars(media, site, **extra):
    values = {
        "ingest_src": media["bundles"][1]["tar"],
        "ingest_sha256": media["bundles"][1]["sha256"],
        "ingest_repository": str(site / "repo"),
        "ingest_audit_log": str(site / "audit" / "audit.jsonl"),
        "ingest_trusted_key_files": [k + ".pub" for k in media["keys"]],
        "ingest_threshold": 2,
        "ingest_trust_setup": True,
        "ingest_operator": "operator",
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def _nothing_written(site):
    assert not (site / "repo").exists()
    assert not (site / "audit").exists()


def _row(output, start):
    """The words of the first line of the play output's table that starts with ``start``."""
    line = next(line for line in output.splitlines() if line.strip().startswith(f'"{start}'))
    return line.strip().strip('",').split()


def _typo(digest):
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


# (what the operator did, extra vars, the message they get)
MISTAKES = [
    ("digest 63 digits", lambda m: {"ingest_sha256": m["bundles"][1]["sha256"][:-1]}, "(63 characters)"),
    ("digest with a typo letter", lambda m: {"ingest_sha256": "g" * 64}, "is not a SHA-256 digest"),
    ("no digest", lambda m: {"ingest_sha256": None}, "ingest_sha256 (not set) is not a SHA-256 digest"),
    ("no bundle", lambda m: {"ingest_src": m["bundles"][1]["tar"] + ".gz"}, "is not a bundle on this host"),
    (
        "key file name from an old runbook",
        lambda m: {"ingest_trusted_key_files": [m["keys"][0].replace(".key", ".pub"), m["keys"][1] + ".pub"]},
        "signer1.pub does not exist on this host. bundle_keygen.yml writes each public key next to its "
        "private key, as <key path>.pub (signer1.key gives signer1.key.pub)",
    ),
    (
        "threshold above the keys",
        lambda m: {"ingest_threshold": 3},
        "ingest_threshold is 3 but ingest_trusted_key_files names only 2 keys, so no bundle could pass",
    ),
    (
        "threshold in words",
        lambda m: {"ingest_threshold": "two"},
        "ingest_threshold two is not a whole number",
    ),
    (
        "threshold zero",
        lambda m: {"ingest_threshold": 0},
        "ingest_threshold 0 is not a whole number of at least 1",
    ),
    (
        "trust set-up without keys",
        lambda m: {"ingest_trusted_key_files": []},
        "ingest_trust_setup=true) needs ingest_trusted_key_files",
    ),
    (
        "no operator",
        lambda m: {"ingest_operator": ""},
        "ingest_operator is empty: neither SUDO_USER nor USER",
    ),
    (
        "rollback without a reason",
        lambda m: {"ingest_allow_rollback": True},
        "ingest_allow_rollback=true needs ingest_override_reason",
    ),
    (
        "inventory on media that is not mounted",
        lambda m: {"ingest_inventory_dest": "/media/not-mounted-here/inventory.json"},
        "the directory /media/not-mounted-here does not exist. Mount the media",
    ),
]


@pytest.mark.parametrize(("extra", "needle"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_gets_its_own_message_before_anything_is_written(
    media, playbook, tmp_path, extra, needle
):
    proc = playbook("ingest.yml", _vars(media, tmp_path, **extra(media)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stdout, proc.stdout[-3000:]
    assert "Set ingest_src" not in proc.stdout  # not the generic assertion any more
    _nothing_written(tmp_path)


def test_a_mistyped_digest_is_refused_without_showing_the_bundles_own(media, playbook, tmp_path):
    bundle = media["bundles"][1]
    proc = playbook("ingest.yml", _vars(media, tmp_path, ingest_sha256=_typo(bundle["sha256"])))
    assert proc.returncode == 2
    assert "refused at check 1 (outer digest)" in proc.stdout
    assert "lists another sha256 than the one given out of band" in proc.stdout
    assert bundle["sha256"] not in proc.stdout, "the right digest must not be offered for a paste"


def test_an_ingest_shows_what_it_added_then_already_ingested_and_the_listing_shows_it_all(
    media, playbook, tmp_path
):
    first = playbook(
        "ingest.yml", _vars(media, tmp_path, ingest_sha256="sha256:" + media["bundles"][1]["sha256"])
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "added 2, already there 0, replaced 0; new blobs 2" in first.stdout
    assert _row(first.stdout, "added   open-webui")[:4] == ["added", "open-webui", "0.6.5", "wheelhouse"]
    again = playbook("ingest.yml", _vars(media, tmp_path))
    assert again.returncode == 0, again.stdout
    assert (
        f"Bundle {media['bundles'][1]['sha256']} (channel stable version 1) is already ingested on "
        in again.stdout
    )
    assert "by operator; the repository serves states/000001: nothing was changed" in again.stdout
    assert "changed=0" in again.stdout
    second = playbook(
        "ingest.yml",
        _vars(
            media,
            tmp_path,
            ingest_src=media["bundles"][2]["tar"],
            ingest_sha256=media["bundles"][2]["sha256"].upper(),
            ingest_trust_setup=None,
            ingest_trusted_key_files=None,
            ingest_threshold=None,
        ),
    )
    assert second.returncode == 0, second.stdout
    assert "added 2, already there 1, replaced 0" in second.stdout
    assert _row(second.stdout, "already there  open-webui")[:8] == [
        "already",
        "there",
        "open-webui",
        "0.6.5",
        "wheelhouse",
        "3.9",
        "KiB",
        "stable",
    ]
    listing = tmp_path / "listing.json"
    shown = playbook(
        "repo_list.yml", {"repo_list_repository": str(tmp_path / "repo"), "repo_list_json": str(listing)}
    )
    assert shown.returncode == 0, shown.stdout
    assert (
        f"Repository {tmp_path / 'repo'} serves states/000002 (channel stable version 2): 4 artifacts"
        in shown.stdout
    )
    assert _row(shown.stdout, "NAME ") == ["NAME", "VERSION", "KIND", "SIZE", "BUNDLE", "INGESTED", "DIGEST"]
    assert _row(shown.stdout, "notes ")[-1].startswith("sha256:")
    doc = json.loads(listing.read_text())
    rows = {(r["name"], r["version"]): r for r in doc["artifacts"]}
    assert sorted(rows) == [("notes", "2"), ("open-webui", "0.6.5"), ("sbom", "1"), ("sbom", "2")]
    assert rows[("notes", "2")]["digest"].startswith("sha256:")
    assert rows[("open-webui", "0.6.5")]["bundle_version"] == 1
    assert rows[("open-webui", "0.6.5")]["ingested_by"] == "operator"
    assert doc["channels"]["stable"]["version"] == 2
    typo = playbook(
        "repo_list.yml", {"repo_list_repository": str(tmp_path / "repo"), "repo_list_names": ["open-webiu"]}
    )
    assert typo.returncode == 2
    assert "open-webiu is not served by repository" in typo.stdout
    assert "(it serves: notes, open-webui, sbom)" in typo.stdout


def test_the_listing_of_no_repository_says_what_to_do(playbook, tmp_path):
    proc = playbook("repo_list.yml", {"repo_list_repository": str(tmp_path / "nothing")})
    assert proc.returncode == 2
    assert (
        "is not an artifact repository (no blobs/sha256/): check the path, or ingest a first bundle"
        in proc.stdout
    )
    assert not (tmp_path / "nothing").exists()


def test_each_signer_signs_on_their_own_turn_with_their_own_passphrase(media, playbook, tmp_path):
    """k of n as it is meant: the builder signs with their key, the next signer adds theirs later."""
    spec = tmp_path / "spec.yml"
    spec.write_text(
        "version: 7\nartifacts:\n  - {name: open-webui, version: 0.6.5, kind: wheelhouse, path: "
        f"{media['root'] / 'wheelhouse'}}}\n"
    )
    out = tmp_path / "out"
    # Each signer's own variables: one key, one passphrase (from their own vault file in real life).
    builder = {"bundle_key_path": media["keys"][0], "bundle_key_passphrase": PASSPHRASE}
    built = playbook("bundle.yml", {"bundle_spec_file": str(spec), "bundle_dest": str(out), **builder})
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Next: each further signer adds a signature (bundle_to_sign)" in built.stdout
    tar = str(out / "airgap-llm-stable-000007.tar")
    first = (out / "airgap-llm-stable-000007.tar.sha256").read_text().split()[0]
    one_signer = playbook("ingest.yml", _vars(media, tmp_path, ingest_src=tar, ingest_sha256=first))
    assert one_signer.returncode == 2
    assert "bundle has 1 of the 2 required signatures" in one_signer.stdout
    second_signer = {"bundle_key_path": media["keys"][1], "bundle_key_passphrase": PASSPHRASE}
    signed = playbook(
        "bundle.yml", {"bundle_to_sign": tar, "bundle_sha256": "sha256:" + first, **second_signer}
    )
    assert signed.returncode == 0, signed.stdout + signed.stderr
    final = (out / "airgap-llm-stable-000007.tar.sha256").read_text().split()[0]
    assert f"SHA-256: {final}" in signed.stdout and final != first
    assert PASSPHRASE not in built.stdout + signed.stdout
    again = playbook("bundle.yml", {"bundle_to_sign": tar, **second_signer})
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
    accepted = playbook(
        "ingest.yml",
        _vars(media, tmp_path, ingest_src=tar, ingest_sha256=final, ingest_trust_setup=None),
    )
    assert accepted.returncode == 0, accepted.stdout
    assert "Trust: 2 of " in accepted.stdout
    events = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert len(events[-1]["key_ids"]) == 2 and events[-1]["outcome"] == "accepted"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"bundle_to_sign": "x.tar"}, "Give either bundle_spec_file (the bundle spec) with bundle_dest"),
        (
            {"bundle_key_path": "/nonexistent/signer1.key"},
            "got /nonexistent/signer1.key, which does not exist",
        ),
        (
            {"bundle_spec_file": "/nonexistent/spec.yml"},
            "bundle_spec_file (/nonexistent/spec.yml, which does not exist)",
        ),
        ({"bundle_chunk_size": "40 megabytes"}, "chunk_size '40 megabytes' is not a size: give bytes"),
    ],
)
def test_bundle_mistakes_get_their_own_message(media, playbook, tmp_path, extra, needle):
    spec = tmp_path / "spec.yml"
    spec.write_text(
        f"version: 1\nartifacts:\n  - {{name: a, version: '1', path: {media['root'] / 'notes.txt'}}}\n"
    )
    variables = {
        "bundle_spec_file": str(spec),
        "bundle_dest": str(tmp_path / "out"),
        "bundle_key_path": media["keys"][0],
        "bundle_key_passphrase": PASSPHRASE,
        **extra,
    }
    proc = playbook("bundle.yml", variables)
    assert proc.returncode == 2, proc.stdout
    assert needle in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_a_short_passphrase_at_keygen_is_named_and_never_shown(playbook, tmp_path):
    proc = playbook(
        "bundle_keygen.yml",
        {"bundle_key_path": str(tmp_path / "k" / "s.key"), "bundle_key_passphrase": "tooshort"},
    )
    assert proc.returncode == 2
    assert "bundle_key_passphrase is shorter than 12 characters" in proc.stdout
    assert "tooshort" not in proc.stdout + proc.stderr
    assert not (tmp_path / "k").exists()


def test_the_trust_policy_is_recorded_before_the_first_bundle(media, playbook, tmp_path):
    variables = _vars(media, tmp_path, ingest_src=None, ingest_sha256=None)
    proc = playbook("ingest.yml", variables)
    assert proc.returncode == 0, proc.stdout
    policy = json.loads((tmp_path / "repo" / "trust.json").read_text())
    assert policy["threshold"] == 2 and len(policy["keys"]) == 2
    events = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"]) for e in events] == [("trust", "established")]
    assert not list((tmp_path / "repo" / "states").iterdir())
    first = playbook(
        "ingest.yml",
        _vars(media, tmp_path, ingest_trust_setup=None, ingest_trusted_key_files=None, ingest_threshold=None),
    )
    assert first.returncode == 0, first.stdout
    assert "Trust: 2 of " in first.stdout
