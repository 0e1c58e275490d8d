"""Hash-chained audit log: append, verify, tamper detection."""

from __future__ import annotations

import json
import threading

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit

DIGEST = "ab" * 32


def _write(path, n=3):
    for i in range(n):
        _audit.append(
            str(path),
            action="ingest",
            outcome="accepted" if i % 2 else "refused",
            operator="alice",
            bundle_sha256=DIGEST,
            key_ids=["k1"],
            detail=f"event {i}",
        )


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_append_chains_entries(tmp_path):
    log = tmp_path / "audit" / "audit.jsonl"
    _write(log)
    entries = [json.loads(line) for line in _lines(log)]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == _audit.GENESIS
    assert entries[1]["prev"] == entries[0]["hash"]
    assert entries[2]["prev"] == entries[1]["hash"]
    assert entries[2]["operator"] == "alice"
    assert entries[2]["bundle_sha256"] == DIGEST
    assert entries[2]["key_ids"] == ["k1"]
    result = _audit.verify(str(log))
    assert result == {
        "entries": 3,
        "last_seq": 3,
        "last_hash": entries[2]["hash"],
        "broken_at": None,
        "broken_file": None,
        "problem": None,
        "files": [{"path": str(log), "entries": 3, "first_seq": 1, "last_seq": 3}],
    }


def test_verify_missing_log_is_empty(tmp_path):
    assert _audit.verify(str(tmp_path / "none.jsonl"))["entries"] == 0


@pytest.mark.parametrize(
    ("mutate", "line", "needle"),
    [
        (lambda ls: ls.__setitem__(1, ls[1].replace(b"alice", b"mallo")), 2, "altered"),
        (lambda ls: ls.pop(1), 2, "seq"),
        (lambda ls: ls.__setitem__(3, ls[3][:-10]), 4, "incomplete"),
        (lambda ls: ls.__setitem__(0, b"not json\n"), 1, "not valid JSON"),
        (lambda ls: ls.insert(3, ls[2]), 4, "seq"),
    ],
    ids=["changed-field", "removed-line", "truncated", "garbage", "duplicated"],
)
def test_verify_names_first_broken_entry(tmp_path, mutate, line, needle):
    log = tmp_path / "audit.jsonl"
    _write(log, 4)
    lines = _lines(log)
    mutate(lines)
    log.write_bytes(b"".join(lines))
    result = _audit.verify(str(log))
    assert result["broken_at"] == line
    assert needle in result["problem"]


def test_rehashed_entry_breaks_link_of_next(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 3)
    lines = _lines(log)
    entry = json.loads(lines[0])
    entry["outcome"] = "accepted"
    entry["hash"] = _audit.entry_hash(entry)
    lines[0] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    result = _audit.verify(str(log))
    assert result["broken_at"] == 2
    assert "prev" in result["problem"]


def test_append_refuses_broken_tail(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    lines = _lines(log)
    log.write_bytes(lines[0] + lines[1].replace(b"event 1", b"event X"))
    before = log.read_bytes()
    with pytest.raises(_audit.AuditError, match="does not match its hash"):
        _audit.append(str(log), action="ingest", outcome="refused", operator="alice")
    assert log.read_bytes() == before


def test_concurrent_appends_keep_chain(tmp_path):
    log = tmp_path / "audit.jsonl"

    def worker(n):
        for i in range(10):
            _audit.append(str(log), action="deploy", outcome="ok", operator=f"op{n}", detail=str(i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _audit.verify(str(log))
    assert result["entries"] == 40
    assert result["broken_at"] is None


def test_bad_bundle_digest_refused(tmp_path):
    with pytest.raises(_audit.AuditError, match="64 lower-case hex"):
        _audit.append(
            str(tmp_path / "a.jsonl"), action="ingest", outcome="ok", operator="alice", bundle_sha256="xyz"
        )


def _forge(path, detail: str, **fields) -> None:
    """Append an entry as an earlier, unbounded writer would have (valid hash and chain)."""
    state = _audit.verify(str(path))
    entry = {
        "seq": state["entries"] + 1,
        "prev": state["last_hash"],
        "time": "2026-01-01T00:00:00.000000Z",
        "operator": "old",
        "action": "ingest",
        "outcome": "refused",
        "bundle_sha256": None,
        "key_ids": [],
        "detail": detail,
    }
    entry.update(fields)
    entry["hash"] = _audit.entry_hash(entry)
    with open(path, "ab") as handle:
        handle.write(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n")


def test_a_huge_detail_is_bounded_and_the_next_append_still_works(tmp_path):
    log = tmp_path / "audit.jsonl"
    quoted = "archive entry '" + "\x1b\u202e\n" * 2_000_000 + "' is unlisted"
    entry = _audit.append(str(log), action="ingest", outcome="refused", operator="alice", detail=quoted)
    line = _lines(log)[0]
    assert len(line) < _audit.MAX_LINE
    assert entry["detail"].endswith(f"... ({len(quoted) - _audit.MAX_DETAIL} more characters cut)")
    assert b"\n" not in line[:-1]
    _audit.append(str(log), action="ingest", outcome="accepted", operator="alice", detail="next")
    assert _audit.verify(str(log))["entries"] == 2


def test_a_multi_megabyte_line_of_an_older_writer_is_read_by_both_readers(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 1)
    _forge(log, "x" * (3 << 20))
    assert len(_lines(log)[1]) > 3 << 20
    assert _audit.verify(str(log))["broken_at"] is None
    entry = _audit.append(str(log), action="ingest", outcome="accepted", operator="alice")
    assert entry["seq"] == 3
    result = _audit.verify(str(log))
    assert (result["entries"], result["last_seq"], result["last_hash"]) == (3, 3, entry["hash"])
    assert result["broken_at"] is None and result["problem"] is None


def test_both_readers_refuse_a_line_past_the_read_limit(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    _write(log, 1)
    _forge(log, "y" * 5000)
    monkeypatch.setattr(_audit, "MAX_READ_LINE", 4096)
    result = _audit.verify(str(log))
    assert result["broken_at"] == 2
    assert "longer than 4096 bytes" in result["problem"]
    before = log.read_bytes()
    with pytest.raises(_audit.AuditError, match="longer than 4096 bytes"):
        _audit.append(str(log), action="ingest", outcome="refused", operator="alice")
    assert log.read_bytes() == before


def _rewrite_last(log, change) -> None:
    lines = _lines(log)
    entry = json.loads(lines[-1])
    change(entry)
    entry["hash"] = _audit.entry_hash(entry)
    lines[-1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))


def _raw_last(log, old: bytes, new: bytes) -> None:
    lines = _lines(log)
    assert old in lines[-1]
    lines[-1] = lines[-1].replace(old, new, 1)
    log.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    "damage",
    [
        lambda log: _rewrite_last(log, lambda e: e.update(seq="3")),
        lambda log: _rewrite_last(log, lambda e: e.update(key_ids="k1")),
        lambda log: _rewrite_last(log, lambda e: e.update(detail=["a"])),
        lambda log: _rewrite_last(log, lambda e: e.update(extra=1)),
        lambda log: _rewrite_last(log, lambda e: e.pop("operator")),
        lambda log: _rewrite_last(log, lambda e: e.update(bundle_sha256="nope")),
        lambda log: _raw_last(log, b'"detail":"event 2"', b'"detail":NaN'),
        lambda log: _raw_last(log, b'"action":"ingest"', b'"action":"ingest","action":"ingest"'),
        lambda log: _raw_last(log, b"{", b"["),
    ],
    ids=[
        "seq-text",
        "key-ids-text",
        "detail-list",
        "extra-field",
        "missing-field",
        "bad-digest",
        "nan",
        "dup-key",
        "not-object",
    ],
)
def test_verify_and_the_tail_check_agree_on_a_broken_last_entry(tmp_path, damage):
    log = tmp_path / "audit.jsonl"
    _write(log, 3)
    assert _audit.verify(str(log))["broken_at"] is None
    damage(log)
    assert _audit.verify(str(log))["broken_at"] == 3
    before = log.read_bytes()
    with pytest.raises(_audit.AuditError, match="run verify"):
        _audit.append(str(log), action="ingest", outcome="refused", operator="alice")
    assert log.read_bytes() == before


# --- rotation: the chain goes on across files ------------------------------------------------------


def _rotate(log, suffix):
    """What logrotate does with nocreate: rename the log; the next append starts a new file."""
    rotated = log.with_name(log.name + suffix)
    log.rename(rotated)
    return rotated


def test_first_event_of_a_new_file_chains_to_the_last_of_the_rotated_one(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 3)
    last_before = json.loads(_lines(log)[-1])
    rotated = _rotate(log, "-20261129-1764417600")
    entry = _audit.append(str(log), action="deploy", outcome="ok", operator="bob")
    assert entry["seq"] == 4
    assert entry["prev"] == last_before["hash"]
    assert len(_lines(log)) == 1
    result = _audit.verify(str(log))
    assert result["broken_at"] is None, result["problem"]
    assert (result["entries"], result["last_seq"], result["last_hash"]) == (4, 4, entry["hash"])
    assert result["files"] == [
        {"path": str(rotated), "entries": 3, "first_seq": 1, "last_seq": 3},
        {"path": str(log), "entries": 1, "first_seq": 4, "last_seq": 4},
    ]


def test_an_emptied_log_also_continues_the_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    _rotate(log, ".1")
    log.write_bytes(b"")  # logrotate with 'create' leaves an empty file
    entry = _audit.append(str(log), action="deploy", outcome="ok", operator="bob")
    assert entry["seq"] == 3
    assert _audit.verify(str(log))["broken_at"] is None


def test_verify_walks_archives_in_chain_order_whatever_their_names(tmp_path):
    log = tmp_path / "audit.jsonl"
    names = [".3", ".2", ".1"]  # logrotate's numbering: the highest is the oldest
    for suffix in names:
        _write(log, 2)
        _rotate(log, suffix)
    _write(log, 2)
    result = _audit.verify(str(log))
    assert result["broken_at"] is None, result["problem"]
    assert result["entries"] == 8
    assert [f["first_seq"] for f in result["files"]] == [1, 3, 5, 7]
    assert [f["path"].rsplit("/", 1)[1] for f in result["files"]] == [
        "audit.jsonl.3",
        "audit.jsonl.2",
        "audit.jsonl.1",
        "audit.jsonl",
    ]


def test_the_lock_and_other_files_are_not_archives(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    (tmp_path / "audit.jsonl.bak").write_bytes(b"junk\n")
    (tmp_path / "audit.jsonl-old").write_bytes(b"junk\n")
    (tmp_path / "audit.jsonl.1.gz").write_bytes(b"junk\n")
    assert sorted(p.rsplit("/", 1)[1] for p in _audit.archives(str(log))) == []
    assert (tmp_path / "audit.jsonl.lock").exists()
    assert _audit.verify(str(log))["entries"] == 2


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda archives: archives[1].unlink(), "a rotated file is missing"),
        (
            lambda archives: archives[0].write_bytes(
                archives[0].read_bytes().replace(b"event 1", b"event X")
            ),
            "altered",
        ),
        (lambda archives: archives[0].write_bytes(_lines(archives[0])[0]), "a rotated file is missing"),
    ],
    ids=["archive-removed", "archive-altered", "archive-truncated"],
)
def test_a_damaged_or_missing_archive_breaks_the_chain(tmp_path, damage, needle):
    log = tmp_path / "audit.jsonl"
    rotated = []
    for n in range(3):
        _write(log, 2)
        rotated.append(_rotate(log, f"-2026112{n}-176441760{n}"))
    _write(log, 1)
    assert _audit.verify(str(log))["entries"] == 7
    damage(rotated)
    result = _audit.verify(str(log))
    assert result["broken_at"] is not None
    assert needle in result["problem"], result["problem"]


def test_the_oldest_archive_must_start_the_chain(tmp_path):
    """Pruning the oldest rotated file is seen: the chain must start at seq 1."""
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    oldest = _rotate(log, ".2")
    _write(log, 2)
    _rotate(log, ".1")
    oldest.unlink()
    result = _audit.verify(str(log))
    assert result["broken_at"] == 1
    assert "expected 1" in result["problem"]


def test_append_refuses_to_continue_a_broken_archive(tmp_path):
    log = tmp_path / "audit.jsonl"
    _write(log, 2)
    rotated = _rotate(log, ".1")
    lines = _lines(rotated)
    rotated.write_bytes(lines[0] + lines[1].replace(b"event 1", b"event X"))
    with pytest.raises(_audit.AuditError, match=r"rotated audit log .*audit\.jsonl\.1"):
        _audit.append(str(log), action="deploy", outcome="ok", operator="bob")


def test_concurrent_appends_across_a_rotation_keep_one_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    done = threading.Event()

    def worker(n):
        for i in range(15):
            _audit.append(str(log), action="deploy", outcome="ok", operator=f"op{n}", detail=str(i))

    def rotator():
        count = 0
        while not done.is_set() and count < 5:
            if log.exists():
                count += 1
                log.rename(log.with_name(f"audit.jsonl-{count}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    spinner = threading.Thread(target=rotator)
    for t in [*threads, spinner]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    spinner.join()
    result = _audit.verify(str(log))
    assert result["broken_at"] is None, result["problem"]
    assert result["entries"] == 45
