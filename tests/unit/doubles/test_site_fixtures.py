# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""site_fixtures.py --release DIR: the path that puts an operator's real Ollama release in the bundle."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from ansible_collections.airgap.llm.tests.doubles import build_ollama, site_fixtures

VERSION = "0.41.2"


@pytest.fixture
def release_dir(tmp_path):
    """A directory as an operator fills it from the release page: archive, sha256sum.txt, VERSION."""
    packed = tmp_path / "packed"
    digest = build_ollama.build(VERSION, str(packed))
    release = tmp_path / "release"
    release.mkdir()
    shutil.copyfile(packed / build_ollama.ARCHIVE, release / build_ollama.ARCHIVE)
    # Upstream's file lists every asset of the release, names prefixed with "./".
    (release / "sha256sum.txt").write_text(
        f"{'0' * 64}  ./ollama-darwin.tgz\n"
        f"{digest}  ./{build_ollama.ARCHIVE}\n"
        f"{'1' * 64}  ./OllamaSetup.exe\n"
    )
    (release / "VERSION").write_text(VERSION + "\n")
    return release, digest


def test_a_real_release_replaces_the_stand_ins_and_is_pinned_by_upstreams_digest(tmp_path, release_dir):
    release, digest = release_dir
    pins = site_fixtures.build(str(tmp_path / "fixtures"), model_size=4096, release=str(release))
    assert pins["releases"] == {VERSION: {"sha256": digest, "broken": False}}
    with open(tmp_path / "fixtures" / "spec.yml", encoding="utf-8") as handle:
        spec = json.load(handle)
    ollama = [a for a in spec["artifacts"] if a["kind"] == "ollama"]
    assert ollama == [
        {
            "name": "ollama",
            "version": VERSION,
            "kind": "ollama",
            "path": f"releases/{VERSION}/{build_ollama.ARCHIVE}",
            "sha256": digest,
            "license": "MIT",
        }
    ]
    copied = tmp_path / "fixtures" / "releases" / VERSION / build_ollama.ARCHIVE
    assert copied.read_bytes() == (release / build_ollama.ARCHIVE).read_bytes()


@pytest.mark.parametrize("missing", [build_ollama.ARCHIVE, "sha256sum.txt", "VERSION"])
def test_an_incomplete_release_directory_is_named_with_what_it_lacks(tmp_path, release_dir, missing):
    release, _digest = release_dir
    os.unlink(release / missing)
    with pytest.raises(SystemExit, match=rf"AIRGAP_OLLAMA_RELEASE={release} lacks {missing}"):
        site_fixtures.build(str(tmp_path / "fixtures"), model_size=4096, release=str(release))
    assert not (tmp_path / "fixtures").exists(), "nothing is written before the release is checked"


def test_an_archive_that_does_not_match_sha256sum_is_refused(tmp_path, release_dir):
    release, digest = release_dir
    with open(release / build_ollama.ARCHIVE, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(SystemExit, match=f"sha256sum.txt lists {digest}"):
        site_fixtures.build(str(tmp_path / "fixtures"), model_size=4096, release=str(release))


def test_a_version_file_that_is_not_a_version_is_refused(tmp_path, release_dir):
    release, _digest = release_dir
    (release / "VERSION").write_text("latest\n")
    with pytest.raises(SystemExit, match="VERSION holds 'latest'"):
        site_fixtures.build(str(tmp_path / "fixtures"), model_size=4096, release=str(release))


def _debs(tmp_path, files):
    for rel, data in files.items():
        path = tmp_path / "debs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return str(tmp_path / "debs")


def test_debs_are_artifacts_of_their_debian_suite(tmp_path):
    debs = _debs(
        tmp_path,
        {
            "bookworm/zstd_1.5.4+dfsg2-5_amd64.deb": b"zstd for 12",
            "trixie/zstd_1.5.7+dfsg-1_amd64.deb": b"zstd for 13",
            "bookworm/tzdata_2025b-0+deb12u1_all.deb": b"same file",
            "trixie/tzdata_2025b-0+deb12u1_all.deb": b"same file",
            "trixie/README": b"not a package",
        },
    )
    found = {(a["name"], a["version"]): a["suites"] for a in site_fixtures.deb_artifacts(debs)}
    assert found == {
        ("tzdata", "2025b-0+deb12u1"): ["bookworm", "trixie"],
        ("zstd", "1.5.4+dfsg2-5"): ["bookworm"],
        ("zstd", "1.5.7+dfsg-1"): ["trixie"],
    }


def test_debs_with_one_version_and_other_bytes_in_two_suites_are_refused(tmp_path):
    debs = _debs(tmp_path, {"bookworm/jq_1.6_amd64.deb": b"one", "trixie/jq_1.6_amd64.deb": b"other"})
    with pytest.raises(SystemExit, match=r"jq 1\.6 differs between suites"):
        site_fixtures.deb_artifacts(debs)
