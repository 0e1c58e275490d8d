# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.wheelhouse: wheel names, exact pins, the hash lock, the one check, and the download.

The download runs a fake pip (a script that writes the wheels it is asked for into --dest), so
nothing here reaches an index.
"""

from __future__ import annotations

import hashlib
import os
import sys

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import wheelhouse as wh

FAKE_PIP = r"""
import os, sys
args = sys.argv[1:]
assert args[0] == "download", args
dest = args[args.index("--dest") + 1]
with open(os.environ["FAKE_PIP_LOG"], "a", encoding="utf-8") as log:
    log.write(" ".join(args) + "\n")
WHEELS = (("demo-1.0-py3-none-any.whl", b"demo wheel"), ("dep_lib-2.0-py3-none-any.whl", b"dep wheel"))
for name, body in WHEELS:
    with open(os.path.join(dest, name), "wb") as handle:
        handle.write(body)
extra = os.environ.get("FAKE_PIP_EXTRA")
if extra:
    with open(os.path.join(dest, extra), "wb") as handle:
        handle.write(b"extra")
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_house(tmp_path, wheels, lock_lines=None):
    """A wheelhouse directory with ``wheels`` (name -> bytes) and a lock (rendered unless given)."""
    house = tmp_path / "house"
    house.mkdir()
    locked = []
    for name, body in wheels.items():
        (house / name).write_bytes(body)
        dist, version = wh.parse_wheel_name(name)
        locked.append(wh.LockedWheel(dist, version, sha(body), name))
    if lock_lines is None:
        (house / wh.LOCK_NAME).write_bytes(wh.render_lock(locked, None))
    else:
        (house / wh.LOCK_NAME).write_text("".join(line + "\n" for line in lock_lines))
    entries = [(p.name, str(p), p.stat().st_size) for p in sorted(house.iterdir())]
    return house, entries


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("aiohttp-3.14.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ("aiohttp", "3.14.5")),
        ("Open_WebUI-0.12.4-py3-none-any.whl", ("open-webui", "0.12.4")),
        ("pkg-1.0-1build-py3-none-any.whl", ("pkg", "1.0")),
    ],
)
def test_wheel_names_are_parsed_and_normalised(filename, expected):
    assert wh.parse_wheel_name(filename) == expected


@pytest.mark.parametrize(
    "filename", ["pkg-1.0.tar.gz", "pkg-1.0-py3-none.whl", "../pkg-1.0-py3-none-any.whl", ""]
)
def test_anything_else_is_no_wheel(filename):
    with pytest.raises(wh.WheelhouseError, match="is not a wheel file name"):
        wh.parse_wheel_name(filename)


def test_exact_pins_only():
    assert wh.parse_pin("Open_WebUI[all]==0.12.4", "requirements") == ("open-webui", "0.12.4")
    for text in ("open-webui>=0.12", "open-webui", "https://x/open_webui.whl", "-e ."):
        with pytest.raises(wh.WheelhouseError, match="not an exact pin"):
            wh.parse_pin(text, "requirements")


def test_the_lock_round_trips():
    wheels = [
        wh.LockedWheel("b", "2.0", "b" * 64, "b-2.0-py3-none-any.whl"),
        wh.LockedWheel("a", "1.0", "a" * 64, "a-1.0-py3-none-any.whl"),
    ]
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    raw = wh.render_lock(wheels, target)
    assert raw.startswith(b"# airgap.llm wheelhouse: python 3.11, cp, manylinux_2_36_x86_64; 2 wheels\n")
    assert wh.parse_lock(raw, "lock") == sorted(wheels)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (b"", "pins no wheels"),
        (b"# only a comment\n", "pins no wheels"),
        (b"a==1.0\n", "is not 'name==version --hash=sha256"),
        (b"a>=1.0 --hash=sha256:" + b"a" * 64 + b"\n", "not an exact pin"),
        (
            b"a==1.0 --hash=sha256:" + b"a" * 64 + b"\nA==2.0 --hash=sha256:" + b"b" * 64 + b"\n",
            "pinned twice",
        ),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_lock_is_refused_with_its_reason(text, needle):
    with pytest.raises(wh.WheelhouseError, match=needle):
        wh.parse_lock(text, "lock")


def test_target_platforms_cover_older_glibc_and_legacy_aliases():
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    assert target.platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_5_x86_64" in target.platforms
    assert "manylinux_2_4_x86_64" not in target.platforms
    assert "manylinux2014_x86_64" in target.platforms
    assert target.abis == ("cp311", "abi3", "none")
    args = target.pip_args()
    assert args[:3] == ["--only-binary=:all:", "--python-version", "3.11"]
    for bad in (
        ("3", "cp", "manylinux_2_36_x86_64"),
        ("3.11", "pp", "manylinux_2_36_x86_64"),
        ("3.11", "cp", "Linux x86"),
    ):
        with pytest.raises(wh.WheelhouseError):
            wh.Target.make(*bad)


def test_a_consistent_wheelhouse_passes_with_every_digest(tmp_path):
    _house, entries = make_house(tmp_path, {"a-1.0-py3-none-any.whl": b"A", "b_c-2.0-py3-none-any.whl": b"B"})
    locked, digests = wh.check_wheelhouse(entries, "house")
    assert [(w.name, w.version) for w in locked] == [("a", "1.0"), ("b-c", "2.0")]
    assert digests["a-1.0-py3-none-any.whl"] == sha(b"A")
    assert set(digests) == {"a-1.0-py3-none-any.whl", "b_c-2.0-py3-none-any.whl", wh.LOCK_NAME}


def test_a_wheel_outside_the_lock_is_refused(tmp_path):
    house, entries = make_house(tmp_path, {"a-1.0-py3-none-any.whl": b"A"})
    (house / "b-1.0-py3-none-any.whl").write_bytes(b"B")
    entries.append(("b-1.0-py3-none-any.whl", str(house / "b-1.0-py3-none-any.whl"), 1))
    with pytest.raises(wh.WheelhouseError, match=r"b-1\.0-py3-none-any\.whl is not in the lock"):
        wh.check_wheelhouse(entries, "house")


def test_a_changed_wheel_is_refused(tmp_path):
    house, entries = make_house(tmp_path, {"a-1.0-py3-none-any.whl": b"A"})
    (house / "a-1.0-py3-none-any.whl").write_bytes(b"tampered")
    with pytest.raises(wh.WheelhouseError, match=r"a==1\.0 \(sha256 [0-9a-f]{64}\) has no wheel"):
        wh.check_wheelhouse(entries, "house")


def test_a_wheel_under_another_name_is_refused(tmp_path):
    lines = [f"b==1.0 --hash=sha256:{sha(b'A')}"]
    _house, entries = make_house(tmp_path, {"a-1.0-py3-none-any.whl": b"A"}, lock_lines=lines)
    with pytest.raises(wh.WheelhouseError, match=r"is a 1\.0 but its digest is locked as b==1\.0"):
        wh.check_wheelhouse(entries, "house")


def test_no_lock_or_a_stray_file_is_refused(tmp_path):
    house, entries = make_house(tmp_path, {"a-1.0-py3-none-any.whl": b"A"})
    without_lock = [e for e in entries if e[0] != wh.LOCK_NAME]
    with pytest.raises(wh.WheelhouseError, match=r"no requirements\.lock"):
        wh.check_wheelhouse(without_lock, "house")
    (house / "setup.py").write_text("")
    with pytest.raises(wh.WheelhouseError, match="neither a wheel"):
        wh.check_wheelhouse([*entries, ("setup.py", str(house / "setup.py"), 0)], "house")


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    log.write_text("")
    monkeypatch.setenv("FAKE_PIP_LOG", str(log))
    monkeypatch.delenv("FAKE_PIP_EXTRA", raising=False)
    return [sys.executable, str(script)], log


def test_download_makes_a_locked_wheelhouse_once(tmp_path, fake_pip):
    pip, log = fake_pip
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    dest = str(tmp_path / "out" / "demo-1.0")
    changed, wheels, lock_sha = wh.download(dest, target, requirements=["demo==1.0"], pip=pip)
    assert changed
    assert {(w.name, w.version) for w in wheels} == {("demo", "1.0"), ("dep-lib", "2.0")}
    raw = (tmp_path / "out" / "demo-1.0" / wh.LOCK_NAME).read_bytes()
    assert lock_sha == sha(raw)
    assert b"--python-version 3.11" in log.read_bytes()
    assert sorted(os.listdir(dest)) == [
        "demo-1.0-py3-none-any.whl",
        "dep_lib-2.0-py3-none-any.whl",
        wh.LOCK_NAME,
    ]
    calls = log.read_text().count("download")
    # The same request again: nothing downloaded, the same lock.
    assert wh.download(dest, target, requirements=["demo==1.0"], pip=pip) == (False, wheels, lock_sha)
    assert log.read_text().count("download") == calls
    # Reproducing the lock: every wheel checked against it, the same files.
    again = str(tmp_path / "again")
    changed, wheels_again, _sha = wh.download(again, target, lock=raw, pip=pip)
    assert changed
    assert sorted(wheels_again) == sorted(wheels)
    assert "--require-hashes" in log.read_text().splitlines()[-1]


def test_download_check_mode_writes_nothing(tmp_path, fake_pip):
    pip, log = fake_pip
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    dest = tmp_path / "demo"
    assert wh.download(str(dest), target, requirements=["demo==1.0"], pip=pip, check_mode=True) == (
        True,
        [],
        None,
    )
    assert not dest.exists()
    assert log.read_text() == ""


def test_download_refuses_a_source_archive_and_leaves_nothing(tmp_path, fake_pip, monkeypatch):
    pip, _log = fake_pip
    monkeypatch.setenv("FAKE_PIP_EXTRA", "demo-1.0.tar.gz")
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    with pytest.raises(wh.WheelhouseError, match="not wheels"):
        wh.download(str(tmp_path / "demo"), target, requirements=["demo==1.0"], pip=pip)
    assert not (tmp_path / "demo").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".demo.")]


def test_download_refuses_a_pin_pip_did_not_deliver(tmp_path, fake_pip):
    pip, _log = fake_pip
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    with pytest.raises(wh.WheelhouseError, match=r"did not download demo==9\.9 \(got 1\.0\)"):
        wh.download(str(tmp_path / "demo"), target, requirements=["demo==9.9"], pip=pip)


def test_download_request_errors():
    target = wh.Target.make("3.11", "cp", "manylinux_2_36_x86_64")
    with pytest.raises(wh.WheelhouseError, match="give the pins"):
        wh.download("/nonexistent/x", target)
    with pytest.raises(wh.WheelhouseError, match="not both"):
        wh.download("/nonexistent/x", target, requirements=["a==1"], lock=b"a==1 --hash=sha256:" + b"a" * 64)
    with pytest.raises(wh.WheelhouseError, match="not an exact pin"):
        wh.download("/nonexistent/x", target, requirements=["a>=1"])
