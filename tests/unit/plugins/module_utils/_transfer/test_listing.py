# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.listing: what the repository serves, as rows for tools and lines for people."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import listing as _listing
from ansible_collections.airgap.llm.plugins.module_utils._transfer import repo as _repo


@pytest.fixture
def served(site, bundles):
    site.establish(bundles.build(11, name="-list"))
    site.ingest(bundles.build(12, name="-list"))
    return site


def test_the_listing_names_every_artifact_with_its_bundle_and_when(served, bundles):
    listing = _listing.list_repository(str(served.repo))
    assert listing["current"] == "states/000002"
    assert listing["channels"]["stable"]["version"] == 12
    rows = {(r["name"], r["version"]): r for r in listing["artifacts"]}
    assert sorted(rows) == [("app", "11.0"), ("app", "12.0"), ("sbom", "11"), ("sbom", "12"), ("tool", "2")]
    app = rows[("app", "12.0")]
    blob = served.repo / "blobs" / "sha256" / app["files"][0]["sha256"]
    assert app["digest"] == "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    assert app["size"] == blob.stat().st_size
    assert (app["kind"], app["channel"], app["bundle_version"]) == ("file", "stable", 12)
    assert app["ingested_by"] == "unit"
    assert rows[("tool", "2")]["bundle_version"] == 11  # unchanged since the bundle that brought it
    assert rows[("tool", "2")]["suites"] == ["bookworm"]
    lines = listing["lines"]
    assert (
        lines[0] == f"Repository {served.repo} serves states/000002 (channel stable version 12): 5 artifacts"
    )
    assert lines[1].split() == ["NAME", "VERSION", "KIND", "SIZE", "BUNDLE", "INGESTED", "DIGEST"]
    assert lines[3].split()[:6] == [
        "app",
        "12.0",
        "file",
        *_listing.human_size(app["size"]).split(),
        "stable",
    ]
    assert lines[3].endswith(app["digest"])


def test_names_choose_rows_and_an_unknown_name_lists_what_is_served(served):
    rows = _listing.list_repository(str(served.repo), ["app:12.0", "tool"])["artifacts"]
    assert [(r["name"], r["version"]) for r in rows] == [("app", "12.0"), ("tool", "2")]
    with pytest.raises(_repo.RepoError) as info:
        _listing.list_repository(str(served.repo), ["tol", "app:13.0"])
    assert str(info.value).startswith(
        "tol is not served; app 13.0 is not served (versions served: 11.0, 12.0) by repository"
    )
    assert "(it serves: app, sbom, tool)" in str(info.value)


def test_a_path_that_is_no_repository_says_so(tmp_path):
    with pytest.raises(_repo.RepoError, match="is not an artifact repository"):
        _listing.list_repository(str(tmp_path))


def test_a_damaged_index_entry_is_named_not_listed(served):
    path = served.repo / "current" / "index.json"
    doc = json.loads(path.read_text())
    doc["artifacts"]["app"]["12.0"]["files"][0]["size"] = -1
    path.chmod(0o644)
    path.write_text(json.dumps(doc))
    with pytest.raises(_repo.RepoError) as info:
        _listing.list_repository(str(served.repo))
    assert "artifacts.app.12.0.files[0].size must be a non-negative integer, got -1" in str(info.value)


def test_names_from_a_hostile_index_are_escaped_in_the_lines():
    row = {
        "name": "x\x1b[2J",
        "version": "1",
        "kind": "file",
        "size": 3,
        "files": [{"path": "a", "sha256": "a" * 64, "size": 3}],
        "digest": None,
        "channel": "stable",
        "bundle_version": 1,
        "ingested_at": "2026-11-29T11:49:38.532249Z",
    }
    (header, line) = _listing.format_rows([row])
    assert "\x1b" not in line
    assert line.startswith("'x\\x1b[2J'")
    assert "2026-11-29T11:49:38Z" in line and line.endswith("1 files")
    assert header.startswith("NAME")


@pytest.mark.parametrize(
    ("size", "shown"), [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (98 << 20, "98.0 MiB")]
)
def test_sizes_are_shown_in_binary_units(size, shown):
    assert _listing.human_size(size) == shown
