# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.ingest in process, one section per promise: bounded events, the ordered transaction,
only verified bytes filed, recovery after a crash, strict bundle.json, the strict archive end, and
the trust policy kept by the repository."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import repo as _repo
from ansible_collections.airgap.llm.plugins.module_utils._transfer import trust as _trust
from ansible_collections.airgap.llm.tests.transfer_kit import entry, read_members, resign, write_tar


@pytest.fixture(scope="module")
def v(bundles):
    """Bundles of versions 1 to 4 (signed by signers 0 and 1), and version 5 signed by signer 0 only."""
    built = {n: bundles.build(n) for n in (1, 2, 3, 4)}
    built["5-one-signer"] = bundles.build(5, signed_by=(0,), name="-one")
    return built


def _refused(site, call, step, *needles):
    """``call`` is refused at ``step`` with every needle; the repository is byte for byte as it was."""
    before = site.snapshot()
    events = len(site.events())
    with pytest.raises(_ingest.Refused) as info:
        call()
    message = str(info.value)
    assert info.value.step == step, message
    for needle in needles:
        assert needle in message, message
    assert len(message) < 4000
    assert all(32 <= ord(c) < 127 for c in message), message
    assert site.snapshot() == before
    after = site.events()
    assert len(after) == events + 1
    assert after[-1]["outcome"] == "refused"
    assert _audit.verify(str(site.audit))["broken_at"] is None
    return message


def _tampered(site, bundle, name, members, tail=b""):
    path = site.repo.parent / name
    return {"tar": str(path), "sha256": write_tar(path, members, tail)}


# ------------------------------------------------------------------ 1. bounded and escaped events


def test_a_refusal_quoting_megabytes_from_the_media_cannot_block_the_next_ingest(site, v):
    site.establish(v[1])
    members = read_members(v[2]["tar"])
    # A name of 800 KB (the pax header limit is 1 MiB), with terminal escapes and newlines.
    name = "artifacts/" + "\x1b[2J\n\u202e" * 100_000
    bad = _tampered(site, v[2], "huge-name.tar", [*members, entry(name, b"x")])
    message = _refused(
        site, lambda: site.ingest(bad), "extraction", "archive entry 'artifacts/\\x1b[2J\\n\\u202e"
    )
    assert "more characters)" in message
    with open(site.audit, "rb") as handle:
        assert max(len(line) for line in handle) < _audit.MAX_LINE
    assert site.ingest(v[2])["current"] == "states/000002"
    assert _audit.verify(str(site.audit))["broken_at"] is None


# ------------------------------------------------------------------ 2. one ordered transaction


def test_the_accepted_event_is_durable_before_current_moves(site, v, monkeypatch):
    site.establish(v[1])
    seen = []
    real = _repo.Repository.switch_current

    def switch(repo, rel):
        seen.append((site.events()[-1], site.current()))
        real(repo, rel)

    monkeypatch.setattr(_repo.Repository, "switch_current", switch)
    result = site.ingest(v[2])
    ((event, current_then),) = seen
    assert event["outcome"] == "accepted"
    assert event["hash"] == result["audit_hash"]
    assert "current -> states/000002 (was states/000001)" in event["detail"]
    assert current_then == "states/000001"
    assert site.current() == "states/000002"
    assert not (site.repo / "journal.json").exists()


def test_a_failed_accepted_event_leaves_everything_as_it_was_and_says_so(site, v, monkeypatch):
    site.establish(v[1])
    before = site.snapshot()
    real = _audit.append

    def append(path, **fields):
        if fields["outcome"].startswith("accepted"):
            raise _audit.AuditError(f"cannot append to audit log {path}: No space left on device")
        return real(path, **fields)

    monkeypatch.setattr(_audit, "append", append)
    with pytest.raises(_ingest.IngestError) as info:
        site.ingest(v[2])
    message = str(info.value)
    assert "the accepted event could not be written to the audit log" in message
    assert "No space left on device" in message
    assert "the repository still serves states/000001" in message
    assert site.snapshot() == before
    assert site.events()[-1]["outcome"] == "accepted"  # the first ingest's event, nothing after it


def test_a_failed_switch_is_undone_and_recorded(site, v, monkeypatch):
    site.establish(v[1])
    before = site.snapshot()

    def switch(repo, rel):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_repo.Repository, "switch_current", switch)
    with pytest.raises(_ingest.IngestError, match="states/000002 could not be made current") as info:
        site.ingest(v[2])
    assert "the repository still serves states/000001" in str(info.value)
    assert site.snapshot() == before
    accepted, failed = site.events()[-2:]
    assert accepted["outcome"] == "accepted"
    assert failed["outcome"] == "failed"
    assert f"the accepted event {accepted['hash']} did not take effect" in failed["detail"]
    assert "still serves states/000001" in failed["detail"]


# ------------------------------------------------------------------ 3. only verified bytes filed


def test_a_signature_by_a_key_that_is_not_trusted_is_refused_by_name(site, v, signers):
    site.establish(v[1], keys=(0, 1))
    members = resign(read_members(v[2]["tar"]), signers, lambda raw: raw, by=(0, 1, 2))
    bad = _tampered(site, v[2], "extra-signature.tar", members)
    _refused(
        site,
        lambda: site.ingest(bad),
        "extraction",
        f"archive entry 'signatures/{signers[2]['id']}.sig' is a signature by key {signers[2]['id']}, "
        "which is not trusted here, so no check covers it",
    )


def test_what_is_kept_of_a_bundle_is_what_was_verified(site, v, signers):
    result = site.establish(v[1], threshold=1, keys=(0, 1, 2))
    meta = site.repo / "bundles" / "stable"
    (directory,) = os.listdir(meta)
    assert sorted(os.listdir(meta / directory)) == ["bundle.json", "ingest.json", "signatures"]
    kept = sorted(name[: -len(".sig")] for name in os.listdir(meta / directory / "signatures"))
    assert kept == result["key_ids"] == sorted([signers[0]["id"], signers[1]["id"]])
    index = json.loads((site.repo / "current" / "index.json").read_text())
    for versions in index["artifacts"].values():
        for info in versions.values():
            for item in info["files"]:
                assert os.path.exists(site.repo / item["blob"])
    listed = {
        item["sha256"]
        for versions in index["artifacts"].values()
        for info in versions.values()
        for item in info["files"]
    }
    assert set(os.listdir(site.repo / "blobs" / "sha256")) == listed


# ------------------------------------------------------------------ 4. recovery under the lock


class Crash(BaseException):
    """The process dies here: no handler runs, nothing is cleaned up."""


def test_an_ingest_killed_between_its_writes_is_undone_by_the_next_one(site, v, monkeypatch):
    site.establish(v[1])

    def crash(repo, rel):
        raise Crash

    monkeypatch.setattr(_repo.Repository, "switch_current", crash)
    with pytest.raises(Crash):
        site.ingest(v[2])
    monkeypatch.undo()
    assert (site.repo / "states" / "000002").is_dir()
    assert (site.repo / "journal.json").exists()
    assert site.current() == "states/000001"
    result = site.ingest(v[2])
    assert result["current"] == "states/000002"
    assert any("undid it" in line for line in result["recovered"])
    recover = [e for e in site.events() if e["action"] == "recover"]
    assert len(recover) == 1
    assert "never made states/000002 current" in recover[0]["detail"]
    assert "the repository serves states/000001" in recover[0]["detail"]
    assert not (site.repo / "journal.json").exists()


def test_an_ingest_killed_after_the_switch_is_finished_by_the_next_one(site, v, monkeypatch):
    site.establish(v[1])

    def crash(repo):
        raise Crash

    monkeypatch.setattr(_repo.Repository, "remove_journal", crash)
    with pytest.raises(Crash):
        site.ingest(v[2])
    monkeypatch.undo()
    assert site.current() == "states/000002"
    assert (site.repo / "journal.json").exists()
    result = site.ingest(v[3])
    assert result["current"] == "states/000003"
    assert result["recovered"] == [
        f"the interrupted ingest of bundle {v[2]['sha256']} had made states/000002 current: finished it "
        "(journal removed)"
    ]
    assert sorted(os.listdir(site.repo / "states")) == ["000001", "000002", "000003"]


def test_a_damaged_journal_is_named_with_what_to_do(site, v):
    site.establish(v[1])
    (site.repo / "journal.json").write_text('{"format": "airgap.llm.ingest-journal", "state": "../../etc"}')
    with pytest.raises(
        _repo.RepoError, match=r"journal.json: state '\.\./\.\./etc' is not a repository path"
    ):
        site.ingest(v[2])
    assert site.current() == "states/000001"


def test_staging_left_by_a_crash_is_removed_and_recorded_even_when_the_bundle_is_refused(site, v):
    site.establish(v[1])
    (site.repo / "tmp" / "ingest-dead1234").mkdir()
    (site.repo / "tmp" / "ingest-dead1234" / "000001").write_bytes(b"half a blob")
    (site.repo / "tmp" / "state-999-2").mkdir()
    os.symlink("states/000009", site.repo / ".current-999")
    junk = _tampered(site, v[2], "junk.tar", [entry("nothing", b"")])
    with pytest.raises(_ingest.Refused):
        site.ingest(junk)
    assert os.listdir(site.repo / "tmp") == []
    assert not os.path.lexists(site.repo / ".current-999")
    recover, refused = site.events()[-2:]
    assert recover["action"] == "recover"
    assert "tmp/ingest-dead1234" in recover["detail"]
    assert ".current-999" in recover["detail"]
    assert refused["outcome"] == "refused"


def test_a_state_left_between_two_renames_by_an_earlier_version_no_longer_jams_ingest(site, v):
    site.establish(v[1])
    site.ingest(v[2])
    # What an earlier version left when it died after renaming states/000002 into place but
    # before switching current: a complete state that was never current.
    os.unlink(site.repo / "current")
    os.symlink("states/000001", site.repo / "current")
    result = site.ingest(v[3])
    assert result["current"] == "states/000003"
    state = json.loads((site.repo / "current" / "state.json").read_text())
    assert state["previous"] == "states/000001"
    assert state["high_water"] == {"stable": 3}
    assert "numbering continues at states/000003" in site.events()[-1]["detail"]


def test_after_an_audited_rollback_of_current_numbering_continues_and_replays_stay_refused(site, v):
    site.establish(v[1])
    site.ingest(v[2])
    site.ingest(v[3])
    os.unlink(site.repo / "current")
    os.symlink("states/000001", site.repo / "current")  # the operator points current back
    _audit.append(str(site.audit), action="rollback", outcome="ok", operator="unit", detail="current -> 1")
    _refused(site, lambda: site.ingest(v[2]), "version", "is older than version 3, already ingested")
    result = site.ingest(v[4])
    assert result["current"] == "states/000004"
    index = json.loads((site.repo / "current" / "index.json").read_text())
    assert sorted(index["artifacts"]["app"]) == ["1.0", "4.0"]


def test_a_refused_ingest_writes_nothing_but_its_refusal(site, v):
    site.establish(v[1])
    members = read_members(v[2]["tar"])
    name = next(i.name for i, _d in members if i.name.startswith("artifacts/"))
    flipped = [(i, (d[:-1] + bytes([d[-1] ^ 1])) if i.name == name else d) for i, d in members]
    bad = _tampered(site, v[2], "flipped.tar", flipped)
    _refused(site, lambda: site.ingest(bad), "artifact digests", "the artifact was altered or damaged")
    assert not (site.repo / "bundles" / "stable" / f"000002-{bad['sha256'][:12]}").exists()


# ------------------------------------------------------------------ 5. strict bundle.json


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda raw: raw.replace(b'"channel": "stable"', b'"channel": "stable", "channel": "other"'),
            "duplicate key 'channel'",
        ),
        (lambda raw: raw.replace(b'"size": ', b'"size": NaN, "x": ', 1), "NaN is not valid JSON"),
        (
            lambda raw: raw.replace(b'"differential": null', b'"differential": ' + b"[" * 5000 + b"]" * 5000),
            "nested 5001 levels deep",
        ),
        (
            lambda raw: raw.replace(b'"files": [\n    "', b'"files": [\n    {"a": 1}, "', 1),
            "artifacts[0].files[0] an object with 1 keys is not a path listed in files",
        ),
        (
            lambda raw: raw.replace(b'"license": "MIT"', b'"license": ["MIT"]', 1),
            "license must be null or a string, got a list of 1 items",
        ),
    ],
    ids=["duplicate-key", "nan", "deep", "wrong-type-in-artifacts", "license-list"],
)
def test_a_signed_but_malformed_bundle_json_is_refused_naming_the_field(site, v, signers, change, needle):
    site.establish(v[1])
    members = resign(read_members(v[2]["tar"]), signers, change)
    bad = _tampered(site, v[2], "malformed.tar", members)
    _refused(site, lambda: site.ingest(bad), "signatures", "bundle.json is signed but not valid", needle)


def test_the_index_written_is_strict_json(site, v):
    site.establish(v[1])
    for name in ("index.json", "state.json"):
        raw = (site.repo / "current" / name).read_bytes()
        assert isinstance(_json.loads(raw, name, limit=1 << 20), dict)


# ------------------------------------------------------------------ 6. the archive's end


def _end(data: bytes) -> int:
    offset = 0
    while data[offset : offset + 512] != b"\x00" * 512:
        info = tarfile.TarInfo.frombuf(data[offset : offset + 512], "utf-8", "surrogateescape")
        offset += 512 + info.size + (-info.size) % 512
    return offset


@pytest.mark.parametrize(
    ("cut", "needle"),
    [(1024, "data follows the end-of-archive marker"), (512, "a header follows a lone zero block")],
)
def test_members_hidden_after_the_end_of_the_archive_are_refused(site, v, cut, needle):
    site.establish(v[1])
    with open(v[2]["tar"], "rb") as handle:
        data = handle.read()
    hidden = site.repo.parent / "hidden.tar"
    write_tar(hidden, [entry("artifacts/deb/tool/2/tool_2_all.deb", b"#!/bin/sh\nevil\n")])
    raw = data[: _end(data) + cut] + hidden.read_bytes()
    path = site.repo.parent / "appended.tar"
    path.write_bytes(raw)
    bad = {"tar": str(path), "sha256": hashlib.sha256(raw).hexdigest()}
    _refused(site, lambda: site.ingest(bad), "extraction", needle)


# ------------------------------------------------------------------ 7. the trust policy


def test_the_first_ingest_records_the_trust_it_was_given_and_audits_it(site, v, signers):
    result = site.establish(v[1], threshold=2, keys=(0, 1, 2))
    assert result["trust"] == {
        "key_ids": sorted(s["id"] for s in signers),
        "threshold": 2,
        "recorded": True,
        "override": False,
    }
    policy = _trust.load_policy(str(site.repo / "trust.json"))
    assert policy.threshold == 2
    assert policy.key_ids == sorted(s["id"] for s in signers)
    assert "trust policy recorded by this first ingest: 2 of the keys" in site.events()[-1]["detail"]


def test_an_ingest_without_keys_or_threshold_uses_the_policy(site, v):
    site.establish(v[1], threshold=2)
    # The operator forgets the threshold: the repository still requires 2 signatures.
    _refused(site, lambda: site.ingest(v["5-one-signer"]), "signatures", "1 of the 2 required signatures")
    assert site.ingest(v[2])["trust"]["threshold"] == 2


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"threshold": 1}, "threshold 1 is lower than the 2 the policy requires"),
        ({"keys": (0, 2)}, "is not pinned by the policy"),
    ],
)
def test_asking_for_less_trust_is_refused_before_the_media_is_read(site, v, signers, extra, needle):
    site.establish(v[1], threshold=2, keys=(0, 1))
    options = {"threshold": extra.get("threshold")}
    if "keys" in extra:
        options["trusted_keys"] = [signers[n]["pem"] for n in extra["keys"]]
    missing = {"tar": str(site.repo.parent / "not-there.tar"), "sha256": v[2]["sha256"]}
    _refused(site, lambda: site.ingest(missing, **options), "signatures", "asks for less trust than", needle)


def test_an_audited_override_names_who_lowered_trust_and_why(site, v, signers):
    site.establish(v[1], threshold=2, keys=(0, 1))
    result = site.ingest(v["5-one-signer"], threshold=1, trust_override_reason="CHG-7 signer1 on leave")
    assert result["trust"]["override"] is True
    event = site.events()[-1]
    assert event["outcome"] == "accepted-override"
    assert event["operator"] == "unit"
    assert "trust lowered for this ingest by unit" in event["detail"]
    assert "CHG-7 signer1 on leave" in event["detail"]
    ingest_json = json.loads(
        next((site.repo / "bundles" / "stable").glob("000005-*/ingest.json")).read_text()
    )
    assert "CHG-7 signer1 on leave" in ingest_json["trust"]
    assert _trust.load_policy(str(site.repo / "trust.json")).threshold == 2


def test_stricter_trust_needs_no_override(site, v, signers):
    site.establish(v[1], threshold=1, keys=(0, 1))
    result = site.ingest(v[2], threshold=2, trusted_keys=[signers[0]["pem"], signers[1]["pem"]])
    assert result["trust"] == {
        "key_ids": sorted([signers[0]["id"], signers[1]["id"]]),
        "threshold": 2,
        "recorded": False,
        "override": False,
    }


def test_a_repository_without_a_policy_needs_explicit_trust(site, v, signers):
    with pytest.raises(_ingest.IngestError, match="has no trust policy"):
        site.ingest(v[1])
    with pytest.raises(_ingest.IngestError, match="has no trust policy"):
        site.ingest(v[1], trusted_keys=[signers[0]["pem"]])
    assert not site.repo.exists()
    assert site.events()[-1]["outcome"] == "failed"


def test_repo_trust_sets_up_then_changes_only_with_a_reason(site, v, signers):
    pems = [s["pem"] for s in signers]
    first = _trust.record_policy(str(site.repo), pems, 2, audit_log=str(site.audit), operator="alice")
    assert first["changed"] is True
    again = _trust.record_policy(str(site.repo), pems, 2, audit_log=str(site.audit), operator="alice")
    assert again["changed"] is False
    with pytest.raises(_trust.TrustError, match="needs reason"):
        _trust.record_policy(str(site.repo), pems, 1, audit_log=str(site.audit), operator="alice")
    before = site.snapshot()
    planned = _trust.record_policy(
        str(site.repo), pems, 3, audit_log=str(site.audit), operator="alice", reason="CHG-9", check_mode=True
    )
    assert planned["changed"] is True
    assert site.snapshot() == before
    _trust.record_policy(str(site.repo), pems, 3, audit_log=str(site.audit), operator="alice", reason="CHG-9")
    events = [e for e in site.events() if e["action"] == "trust"]
    assert [e["outcome"] for e in events] == ["established", "changed"]
    assert "(was 2 of the keys" in events[1]["detail"]
    assert "reason: CHG-9" in events[1]["detail"]
    # The policy now needs all three: an ingest giving the earlier 2 of 3 is refused.
    _refused(site, lambda: site.ingest(v[1], threshold=2), "signatures", "threshold 2 is lower than the 3")


def test_a_damaged_policy_is_named_with_what_to_do(site, v):
    site.establish(v[1])
    (site.repo / "trust.json").write_text(
        '{"format": "airgap.llm.trust-policy", "threshold": 2, "threshold": 1}'
    )
    with pytest.raises(_ingest.IngestError, match=r"duplicate key 'threshold'.*airgap\.llm\.repo_trust"):
        site.ingest(v[2])


def test_chunked_bundle_still_ingests(site, bundles, signers):
    chunked = bundles.build(6, chunk_size=4096, name="-chunks")
    tar = chunked["tar"]
    assert not os.path.exists(tar)
    result = site.ingest(chunked, trusted_keys=[s["pem"] for s in signers[:2]], threshold=2)
    assert result["current"] == "states/000001"


# ------------------------------------------------------------------ 8. what an operator types


def test_the_digest_is_taken_with_its_sha256_prefix_and_in_capitals(site, v):
    site.establish(v[1])
    result = site.ingest({"tar": v[2]["tar"], "sha256": "sha256:" + v[2]["sha256"].upper()})
    assert result["bundle_sha256"] == v[2]["sha256"]
    assert site.events()[-1]["bundle_sha256"] == v[2]["sha256"]


def test_a_digest_one_digit_short_is_named_before_anything_is_written(site, v):
    site.establish(v[1])
    before, events = site.snapshot(), site.events()
    with pytest.raises(_ingest.IngestError) as info:
        site.ingest({"tar": v[2]["tar"], "sha256": v[2]["sha256"][:-1]})
    assert "sha256 '" + v[2]["sha256"][:20] in str(info.value)
    assert "it has 63 hexadecimal digits, not 64" in str(info.value)
    assert (site.snapshot(), site.events()) == (before, events)


def _media_copy(site, bundle, folder, with_sha256_file):
    """The bundle (or its chunks and chunk list) copied to other "media", with or without its .sha256."""
    media = site.repo.parent / folder
    media.mkdir()
    source = os.path.dirname(bundle["tar"])
    base = os.path.basename(bundle["tar"])
    for name in os.listdir(source):
        if name.startswith(base) and (with_sha256_file or name != base + ".sha256"):
            shutil.copyfile(os.path.join(source, name), media / name)
    return str(media / base)


@pytest.mark.parametrize("with_sha256_file", [True, False])
def test_a_mistyped_digest_is_refused_without_offering_the_right_one_for_a_paste(site, v, with_sha256_file):
    site.establish(v[1])
    typo = v[2]["sha256"][:-1] + ("0" if v[2]["sha256"][-1] != "0" else "1")
    tar = _media_copy(site, v[2], "media", with_sha256_file)
    message = _refused(site, lambda: site.ingest({"tar": tar, "sha256": typo}), "outer digest")
    if with_sha256_file:
        assert f"on the media lists another sha256 than the one given out of band ({typo})" in message
    else:
        assert f"does not have the sha256 given out of band ({typo})" in message
    assert v[2]["sha256"] not in message
    assert "never take it from the media" in message


def test_a_mistyped_digest_of_a_chunked_bundle_is_refused_without_offering_the_right_one(site, bundles):
    chunked = bundles.build(6, chunk_size=4096, name="-chunks-typo")
    site.establish(bundles.build(1, name="-typo"))
    tar = _media_copy(site, chunked, "media", with_sha256_file=False)
    message = _refused(site, lambda: site.ingest({"tar": tar, "sha256": "0" * 64}), "chunks")
    assert "every chunk matches its list, but together they do not have the sha256" in message
    assert chunked["sha256"] not in message


def test_the_ingest_summary_says_what_was_added_and_what_was_already_there(site, v):
    first = site.establish(v[1])
    assert [(r["name"], r["version"]) for r in first["added"]] == [
        ("app", "1.0"),
        ("sbom", "1"),
        ("tool", "2"),
    ]
    assert first["already_there"] == first["replaced"] == []
    assert first["already_ingested"] is False
    second = site.ingest(v[2])
    assert [(r["name"], r["version"]) for r in second["added"]] == [("app", "2.0"), ("sbom", "2")]
    (tool,) = second["already_there"]
    # The unchanged .deb keeps the bundle that first brought it, and when.
    assert (tool["name"], tool["bundle_version"], tool["bundle_sha256"]) == ("tool", 1, v[1]["sha256"])
    assert tool["ingested_at"] == first["added"][0]["ingested_at"]
    assert tool["ingested_by"] == "unit"
    index = json.loads((site.repo / "current" / "index.json").read_text())
    assert index["artifacts"]["tool"]["2"]["bundle_version"] == 1
    lines = second["lines"]
    assert lines[0].startswith(f"Bundle {v[2]['sha256']} accepted: channel stable version 2")
    assert lines[1] == "added 2, already there 1, replaced 0; new blobs 2 (" + lines[1].split("(")[1]
    assert lines[2].split() == ["STATUS", "NAME", "VERSION", "KIND", "SIZE", "BUNDLE", "INGESTED", "DIGEST"]
    assert [line.split("  ")[0] for line in lines[3:]] == ["added", "added", "already there"]
    assert len({line.index("sha256:") for line in lines[3:]}) == 1  # aligned columns


def test_a_repeated_ingest_says_already_ingested_and_lists_what_it_brought(site, v):
    site.establish(v[1])
    site.ingest(v[2])
    before = site.snapshot()
    again = site.ingest(v[2])
    assert again["changed"] is False
    assert again["already_ingested"] is True
    assert "is already ingested on " in again["lines"][0] and "by unit" in again["lines"][0]
    assert again["lines"][0].endswith("nothing was changed")
    assert sorted(r["name"] for r in again["already_there"]) == ["app", "sbom", "tool"]
    assert again["added"] == again["replaced"] == []
    assert site.snapshot() == before


def test_check_mode_says_what_an_ingest_would_add(site, v):
    site.establish(v[1])
    before = site.snapshot()
    planned = _ingest.ingest(site.options(v[2]["tar"], v[2]["sha256"]), check_mode=True)
    assert [r["name"] for r in planned["added"]] == ["app", "sbom"]
    assert all(r["ingested_at"] is None for r in planned["added"])
    assert [r["name"] for r in planned["already_there"]] == ["tool"]
    assert site.snapshot() == before


def test_the_first_ingest_on_a_fresh_host_creates_the_directories_above_the_repository(tmp_path, v, signers):
    repo = tmp_path / "srv" / "airgap-llm" / "repo"  # /srv/airgap-llm does not exist on a fresh host
    options = _ingest.IngestOptions(
        src=v[1]["tar"],
        sha256=v[1]["sha256"],
        repository=str(repo),
        audit_log=str(tmp_path / "log" / "audit.jsonl"),
        operator="unit",
        trusted_keys=[s["pem"] for s in signers],
        threshold=2,
    )
    assert _ingest.ingest(options)["current"] == "states/000001"
    assert (repo / "current" / "index.json").is_file()
