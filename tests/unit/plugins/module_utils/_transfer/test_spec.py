# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.spec: the bundle spec and bundle.json are validated with a reason for each refusal."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import spec as _spec

NOW = datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)
PASS = "unit-test-passphrase"  # noqa: S105 - throwaway key


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"version": 0, "artifacts": [{}]}, "positive integer"),
        ({"version": 1, "artifacts": []}, "non-empty artifacts"),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1", "url": "https://x/a"}]}, "pinned sha256"),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1"}]}, "exactly one of url or path"),
        ({"version": 1, "artifacts": [{"name": "../a", "version": "1", "path": "p"}]}, "may only hold"),
        (
            {"version": 1, "channel": "Bad/ch", "artifacts": [{"name": "a", "version": "1", "path": "p"}]},
            "channel",
        ),
        ({"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "p", "kind": "exe"}]}, "kind"),
        (
            {"version": 1, "bogus": 1, "artifacts": [{"name": "a", "version": "1", "path": "p"}]},
            "unknown keys",
        ),
        (
            {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "p"}] * 2},
            "listed twice",
        ),
        (
            {"version": 1, "artifacts": [{"name": "a", "version": "1", "path": "p", "suites": ["bookworm"]}]},
            "suites applies to kind deb only",
        ),
        (
            {
                "version": 1,
                "artifacts": [{"name": "a", "version": "1", "path": "p", "kind": "deb", "suites": "trixie"}],
            },
            "list of Debian codenames",
        ),
        (
            {
                "version": 1,
                "artifacts": [{"name": "a", "version": "1", "path": "p", "kind": "deb", "suites": []}],
            },
            "list of Debian codenames",
        ),
        (
            {
                "version": 1,
                "artifacts": [{"name": "a", "version": "1", "path": "p", "kind": "deb", "suites": ["../x"]}],
            },
            "list of Debian codenames",
        ),
    ],
)
def test_spec_errors(spec, needle):
    with pytest.raises(_spec.BundleError, match=needle):
        _spec.BundleSpec(spec, NOW)


def test_spec_deb_suites_are_sorted_and_unique():
    spec = _spec.BundleSpec(
        {
            "version": 1,
            "artifacts": [
                {
                    "name": "zstd",
                    "version": "1.5",
                    "path": "z.deb",
                    "kind": "deb",
                    "suites": ["trixie", "bookworm", "trixie"],
                },
                {"name": "jq", "version": "1.6", "path": "j.deb", "kind": "deb"},
            ],
        },
        NOW,
    )
    assert [art.suites for art in spec.artifacts] == [["bookworm", "trixie"], None]


def _manifest(**change):
    files = [
        {
            "path": "artifacts/file/a/1/a.bin",
            "sha256": "a" * 64,
            "size": 1,
            "kind": "file",
            "name": "a",
            "version": "1",
            "source": "file:///a",
            "license": None,
            "omitted": False,
        }
    ]
    doc = {
        "format": "airgap.llm.bundle",
        "format_version": 1,
        "channel": "stable",
        "version": 3,
        "created": "2026-11-01T00:00:00Z",
        "expires": "2026-12-01T00:00:00Z",
        "differential": None,
        "artifacts": [
            {"name": "a", "version": "1", "kind": "file", "source": "x", "files": [files[0]["path"]]}
        ],
        "files": files,
    }
    for key, value in change.items():
        if key.startswith("file_"):
            files[0][key[5:]] = value
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({}, None),
        ({"format_version": 2}, "update the collection"),
        ({"file_path": "/etc/passwd"}, "safe relative path"),
        ({"file_path": "a/../../b"}, "safe relative path"),
        ({"file_path": "bundle.json"}, "reserved"),
        ({"file_sha256": "XYZ"}, "hex digits"),
        ({"file_size": -1}, "non-negative"),
        ({"file_omitted": "no"}, "true or false"),
        ({"expires": "tomorrow"}, "UTC time"),
    ],
)
def test_validate_manifest(change, needle):
    if needle is None:
        assert _spec.validate_manifest(_manifest())["version"] == 3
        return
    with pytest.raises(_spec.BundleError, match=needle):
        _spec.validate_manifest(_manifest(**change))


@pytest.mark.parametrize(
    ("kind", "suites", "ok"),
    [
        ("deb", ["bookworm", "trixie"], True),
        ("file", ["bookworm"], False),
        ("deb", [], False),
        ("deb", ["Bad"], False),
    ],
)
def test_validate_manifest_suites(kind, suites, ok):
    doc = _manifest()
    doc["files"][0]["kind"] = doc["artifacts"][0]["kind"] = kind
    doc["artifacts"][0]["suites"] = suites
    if ok:
        assert _spec.validate_manifest(doc)["artifacts"][0]["suites"] == suites
        return
    with pytest.raises(_spec.BundleError, match="suites must be absent"):
        _spec.validate_manifest(doc)
