# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_transfer.place: check mode on a new node, where an earlier task creates dest's directory.

The module end to end (transfers, resume, record) is tested in tests/unit/plugins/modules/test_artifact.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import FetchOptions
from ansible_collections.airgap.llm.plugins.module_utils._transfer.place import (
    ArtifactError,
    Placement,
    place,
)

DATA = b"release archive bytes\n" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()


def _tree(root):
    return sorted(
        os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files
    )


@pytest.fixture
def media(tmp_path):
    src = tmp_path / "media" / "ollama.tar.zst"
    src.parent.mkdir()
    src.write_bytes(DATA)
    return src


def _spec(dest, record, **extra):
    args = {"dest": str(dest), "sha256": DIGEST, "record": str(record), "mode": "0640", "size": len(DATA)}
    args.update(extra)
    return Placement(**args)


@pytest.mark.parametrize("depth", [1, 3])
def test_check_mode_predicts_a_transfer_into_a_directory_that_does_not_exist_yet(tmp_path, depth):
    node = tmp_path / "node"
    node.mkdir()
    directory = node.joinpath(*["cache"] * depth)
    spec = _spec(
        directory / "ollama.tar.zst",
        node / "record" / "artifact-record.json",
        url="https://127.0.0.1:9/blobs/sha256/" + DIGEST,
        fetch_options=FetchOptions(timeout=1),
    )

    result = place(spec, check_mode=True)

    assert result["changed"] is True
    assert result["verified_by"] is None and result["transferred"] == 0 and result["size"] == len(DATA)
    assert result["diff"]["before"] == ""
    assert f"sha256: {DIGEST}\n" in result["diff"]["after"]
    assert f"size: {len(DATA)}\n" in result["diff"]["after"] and "mode: 0640\n" in result["diff"]["after"]
    assert result["diff"]["after_header"] == str(directory / "ollama.tar.zst")
    assert _tree(node) == []  # nothing written: no directory, no record, no lock, no partial file


def test_the_real_run_still_refuses_a_missing_directory(tmp_path, media):
    dest = tmp_path / "node" / "cache" / "ollama.tar.zst"
    with pytest.raises(ArtifactError, match=r"cache, does not exist; create it first"):
        place(_spec(dest, tmp_path / "record.json", src=str(media)))
    assert not dest.parent.exists()


def test_check_mode_refuses_a_file_in_the_way_of_the_directory(tmp_path, media):
    node = tmp_path / "node"
    node.mkdir()
    (node / "cache").write_text("not a directory")
    dest = node / "cache" / "ollama" / "ollama.tar.zst"
    with pytest.raises(ArtifactError, match=r"does not exist; create it first.*cache is in its way"):
        place(_spec(dest, tmp_path / "record.json", src=str(media)), check_mode=True)


def test_the_prediction_matches_the_real_run_once_the_directory_exists(tmp_path, media):
    """check (directory missing) -> directory created -> real -> check -> real."""
    dest = tmp_path / "node" / "cache" / "ollama.tar.zst"
    record = tmp_path / "node" / "record.json"
    predicted = place(_spec(dest, record, src=str(media)), check_mode=True)

    dest.parent.mkdir(parents=True)  # what the earlier ansible.builtin.file task does in the real run
    real = place(_spec(dest, record, src=str(media)))
    assert predicted["changed"] and real["changed"]
    assert predicted["diff"]["after"] == real["diff"]["after"]
    assert real["verified_by"] == "transfer" and dest.read_bytes() == DATA

    for check_mode in (True, False):
        again = place(_spec(dest, record, src=str(media)), check_mode=check_mode)
        assert not again["changed"] and again["verified_by"] == "record" and "diff" not in again
