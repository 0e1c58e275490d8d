# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_errors.quote and describe: untrusted text enters a message escaped and bounded."""

from __future__ import annotations

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._errors import QUOTE_LIMIT, describe, quote


def test_short_plain_text_reads_as_repr():
    assert quote("artifacts/a.bin") == "'artifacts/a.bin'"


@pytest.mark.parametrize(
    "text",
    ["a\nb", "\x1b[31mred\x1b[0m", "bidi \u202e txt.exe", "nul\x00", "surrogate \udcff", "tab\t", "\x7f"],
)
def test_control_invisible_and_non_ascii_characters_are_escaped(text):
    shown = quote(text)
    assert shown.isascii()
    assert all(32 <= ord(c) < 127 for c in shown), shown


def test_long_text_is_cut_and_says_how_much():
    shown = quote("x" * 5_000_000)
    assert shown == "'" + "x" * QUOTE_LIMIT + "' (and 4999880 more characters)"
    worst = quote("\U0001f600" * 5_000_000)
    assert len(worst) < 12 * QUOTE_LIMIT


def test_bytes_are_read_as_utf8_and_bounded():
    assert quote(b"abc\xff") == "'abc\\udcff'"
    assert len(quote(b"\xff" * 10_000_000)) < 12 * QUOTE_LIMIT


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "null"),
        (True, "true"),
        (12, "12"),
        (10**100, "an integer of more than 40 digits"),
        (1.5, "1.5"),
        ([1, 2, 3], "a list of 3 items"),
        ({"a": 1}, "an object with 1 keys"),
        ("a\nb", "'a\\nb'"),
    ],
)
def test_describe(value, shown):
    assert describe(value) == shown
