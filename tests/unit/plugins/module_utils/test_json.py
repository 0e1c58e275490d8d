# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_json: the one strict reader refuses what readers disagree on; the writer writes only standard JSON."""

from __future__ import annotations

import json
import math

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError


def _loads(raw, **limits):
    limits.setdefault("limit", 1 << 20)
    return _json.loads(raw, "doc.json", **limits)


def test_a_plain_document_parses():
    assert _loads(b'{"a": [1, 2.5, "x", null, true], "b": {"c": "\\ud83d\\ude00"}}') == {
        "a": [1, 2.5, "x", None, True],
        "b": {"c": "\U0001f600"},
    }


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"version": 1, "version": 2}', "duplicate key 'version'"),
        (b'{"a": {"k": 1, "k": 1}}', "duplicate key 'k'"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": 1e400}', "too large to be finite"),
        (b'{"a": "\\udc80"}', "lone UTF-16 surrogate"),
        (b'{"\\ud800": 1}', "lone UTF-16 surrogate"),
        (b"\xff{}", "not UTF-8"),
        (b'{"a": 1', "not valid JSON: Expecting"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_what_readers_disagree_on_is_refused(raw, needle):
    with pytest.raises(_json.JSONError) as info:
        _loads(raw)
    assert str(info.value).startswith("doc.json ")
    assert needle in str(info.value)


def test_depth_limit_is_exact_and_pathological_nesting_is_refused_with_its_depth():
    assert _loads(b"[[[[1]]]]", max_depth=4) == [[[[1]]]]
    with pytest.raises(_json.JSONError, match="nested 5 levels deep, more than the limit of 4"):
        _loads(b"[[[[[1]]]]]", max_depth=4)
    with pytest.raises(_json.JSONError, match="nested 3 levels deep"):
        _loads(b'{"a": {"b": {"c": "[[[[[[[[[[\\"]]"}}}', max_depth=2)
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(_json.JSONError, match="nested 200000 levels deep"):
        _loads(deep, limit=1 << 20)


def test_brackets_inside_strings_do_not_count():
    assert _loads(b'{"a": "[[[[{{{{\\\\"}', max_depth=1) == {"a": "[[[[{{{{\\"}


def test_size_limit():
    assert _loads(b"[1]", limit=3) == [1]
    with pytest.raises(_json.JSONError, match="larger than 3 bytes"):
        _loads(b"[10]", limit=3)


def test_expect_names_the_field_and_what_it_found():
    assert _json.expect(3, "an integer", "x.size") == 3
    for value, shown in [
        (True, "true"),
        (2**63, "9223372036854775808"),
        ("3", "'3'"),
        ([1, 2], "a list of 2"),
    ]:
        with pytest.raises(_json.JSONError) as info:
            _json.expect(value, "an integer", "files[0].size")
        assert str(info.value).startswith(f"files[0].size must be an integer, got {shown}")
    with pytest.raises(_json.JSONError, match="artifacts must be an object, got 'x'"):
        _json.expect("x", "an object", "artifacts")


def test_load_file_reads_bounded_and_never_follows_a_link(tmp_path):
    (tmp_path / "a.json").write_bytes(b'{"a": 1}')
    assert _json.load_file(str(tmp_path / "a.json"), "a.json", limit=100) == {"a": 1}
    (tmp_path / "link.json").symlink_to(tmp_path / "a.json")
    with pytest.raises(FileError, match="symbolic link"):
        _json.load_file(str(tmp_path / "link.json"), "link.json", limit=100)
    with pytest.raises(FileError, match="more than the limit of 4"):
        _json.load_file(str(tmp_path / "a.json"), "a.json", limit=4)


def test_writer_writes_only_standard_json():
    doc = {"b": [1, "é"], "a": None}
    assert _json.dumps(doc) == (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("ascii")
    assert _json.canonical(doc) == b'{"a":null,"b":[1,"\\u00e9"]}'
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="JSON compliant"):
            _json.dumps({"x": bad})
        with pytest.raises(ValueError, match="JSON compliant"):
            _json.canonical([bad])
