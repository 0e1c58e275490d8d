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


@pytest.mark.parametrize("prefix", ["", "sha256:", "SHA256:"])
def test_spec_digests_are_taken_with_or_without_their_prefix(prefix):
    art = {"name": "a", "version": "1", "url": "https://x/a", "sha256": prefix + "AB" * 32}
    art["checksums_url"], art["checksums_sha256"] = "https://x/sums", prefix + "cd" * 32
    (parsed,) = _spec.BundleSpec({"version": 1, "artifacts": [art]}, NOW).artifacts
    assert (parsed.sha256, parsed.checksums_sha256) == ("ab" * 32, "cd" * 32)


def test_a_spec_digest_one_digit_short_says_so_and_names_the_artifact():
    art = {"name": "a", "version": "1", "path": "a.bin", "sha256": "ab" * 31 + "a"}
    with pytest.raises(_spec.BundleError) as info:
        _spec.BundleSpec({"version": 1, "artifacts": [art]}, NOW)
    assert str(info.value).startswith("artifact a 1: sha256 'abab")
    assert "it has 63 hexadecimal digits, not 64" in str(info.value)


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


def _raw(doc) -> bytes:
    return _spec.dumps_manifest(doc)


def _deep(levels: int) -> dict:
    doc = _manifest()
    inner: dict = {}
    doc["differential"] = inner
    for _level in range(levels):
        inner["x"] = {}
        inner = inner["x"]
    return doc


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            _raw(_manifest()).replace(b'"version": 3', b'"version": 3, "version": 4'),
            "duplicate key 'version'",
        ),
        (_raw(_manifest()).replace(b'"size": 1', b'"size": NaN'), "NaN is not valid JSON"),
        (_raw(_manifest()).replace(b'"size": 1', b'"size": 1e999'), "too large to be finite"),
        (_raw(_deep(20)), "nested 22 levels deep"),
        (b"[" * 50_000 + b"]" * 50_000, "nested 50000 levels deep"),
        (
            _raw(
                _manifest(
                    artifacts=[{"name": "a", "version": "1", "kind": "file", "source": "x", "files": [{}]}]
                )
            ),
            "artifacts[0].files[0] an object with 0 keys is not a path listed in files",
        ),
        (_raw(_manifest(artifacts=[["a"]])), "artifacts[0] must be an object, got a list of 1 items"),
        (_raw(_manifest(artifacts={"a": 1})), "artifacts must be a list, got an object with 1 keys"),
        (
            _raw(
                _manifest(
                    artifacts=[{"name": "a", "version": "1", "kind": "file", "source": "x", "files": "a"}]
                )
            ),
            "artifacts[0].files must be a non-empty list, got 'a'",
        ),
        (_raw(_manifest(file_size=2**64)), "files[0].size must be a non-negative integer below 2**63"),
        (
            _raw(_manifest(file_size=True)),
            "files[0].size must be a non-negative integer below 2**63, got true",
        ),
        (_raw(_manifest(file_name="../x")), "files[0].name must be letters"),
        (_raw(_manifest(extra=1)), "the top level has unknown keys 'extra'"),
        (_raw(_manifest(version=None)), "version must be a positive integer below 2**63, got null"),
        (_raw(_manifest(format="\x1b[2J" + "A" * 10_000)), "format is '\\x1b[2JAAAA"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed_bundle_json_is_refused_naming_the_field(raw, needle):
    with pytest.raises(_spec.BundleError) as info:
        _spec.parse_manifest(raw)
    message = str(info.value)
    assert needle in message
    assert len(message) < 2000
    assert all(32 <= ord(c) < 127 for c in message)


def test_a_model_artifact_needs_its_manifest_digest():
    doc = _manifest(
        artifacts=[
            {
                "name": "m",
                "version": "1",
                "kind": "model",
                "source": "x",
                "files": ["artifacts/file/a/1/a.bin"],
                "model": "m:1",
                "manifest_digest": "sha256:" + "b" * 64,
            }
        ]
    )
    assert _spec.parse_manifest(_raw(doc))["artifacts"][0]["model"] == "m:1"
    doc["artifacts"][0]["manifest_digest"] = float("0")
    with pytest.raises(_spec.BundleError, match="manifest_digest must be 'sha256:'"):
        _spec.parse_manifest(_raw(doc))


def test_a_file_that_belongs_to_no_artifact_is_refused():
    doc = _manifest()
    doc["artifacts"] = []
    with pytest.raises(
        _spec.BundleError, match=r"files\[0\].path 'artifacts/file/a/1/a.bin' belongs to no artifact"
    ):
        _spec.validate_manifest(doc)
