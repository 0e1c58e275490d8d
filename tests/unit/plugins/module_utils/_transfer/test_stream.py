# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.stream.parse_size: chunk sizes in the units media are sold in, and saying which was used."""

from __future__ import annotations

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import stream as _stream


@pytest.mark.parametrize(
    ("given", "size", "how"),
    [
        ("40MB", 40_000_000, "decimal: 1 MB = 1,000,000 bytes"),
        ("40 mb", 40_000_000, "decimal: 1 MB = 1,000,000 bytes"),
        ("4GB", 4_000_000_000, "decimal: 1 GB = 1,000,000,000 bytes"),
        ("700kB", 700_000, "decimal: 1 KB = 1,000 bytes"),
        ("40MiB", 41_943_040, "binary: 1 MiB = 1,048,576 bytes)"),
        ("40M", 41_943_040, "binary: 1 MiB = 1,048,576 bytes; write 40MB for 40,000,000 bytes"),
        ("4G", 4 << 30, "binary: 1 GiB = 1,073,741,824 bytes; write 4GB for 4,000,000,000 bytes"),
        ("1048576", 1_048_576, "a plain number is bytes"),
    ],
)
def test_a_size_is_read_in_the_units_given_and_says_which(given, size, how):
    parsed, note = _stream.parse_size(given)
    assert parsed == size
    assert note.startswith(f"chunk_size {given.strip()} = {size:,} bytes (")
    assert how in note


def test_a_40mb_medium_takes_40mb_chunks_not_40m_ones():
    medium = 40_000_000
    assert _stream.parse_size("40MB")[0] <= medium < _stream.parse_size("40M")[0]


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("40 megabytes", "is not a size: give bytes (40000000), a decimal size (40MB"),
        ("-5M", "is not a size"),
        ("4.7GB", "is not a size"),
        ("100", "is 100 bytes; give at least 512 bytes"),
    ],
)
def test_a_size_that_is_no_size_is_refused_naming_the_variable(given, needle):
    with pytest.raises(_stream.StreamError) as info:
        _stream.parse_size(given, "bundle_chunk_size")
    assert str(info.value).startswith(f"bundle_chunk_size {given!r} ")
    assert needle in str(info.value)
