# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.names: model names filled in as Ollama does; names that could escape are refused."""

from __future__ import annotations

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import InvalidNameError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName

# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
        ("llama3.2:3b", ("registry.ollama.ai", "library", "llama3.2", "3b")),
        ("llama3.2:3b-instruct-q4_K_M", ("registry.ollama.ai", "library", "llama3.2", "3b-instruct-q4_K_M")),
        ("jmorgan/tiny:v1", ("registry.ollama.ai", "jmorgan", "tiny", "v1")),
        ("repo.internal:5000/team/model:1.0", ("repo.internal:5000", "team", "model", "1.0")),
        ("https://repo.internal/team/model", ("repo.internal", "team", "model", "latest")),
        ("_x/a..b:_t", ("registry.ollama.ai", "_x", "a..b", "_t")),
    ],
)
def test_names_are_filled_in_as_ollama_does(text, parts):
    name = ModelName.parse(text)
    assert tuple(name) == parts
    assert name.relpath == "manifests/" + "/".join(parts)


def test_display_is_the_shortest_form():
    assert ModelName.parse("registry.ollama.ai/library/llama3.2:latest").display == "llama3.2:latest"
    assert ModelName.parse("ns/m").display == "ns/m:latest"
    assert ModelName.parse("h/ns/m:t").display == "h/ns/m:t"
    assert ModelName.parse("h/ns/m:t").fullname == "h/ns/m:t"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the model part is empty"),
        ("..", "'..', which could escape the store"),
        ("../etc:passwd", "'..', which could escape the store"),
        ("a/../b", "'..', which could escape the store"),
        ("ns/..:t", "'..', which could escape the store"),
        ("m:..", "'..', which could escape the store"),
        ("/etc/passwd", "absolute names"),
        ("a//b", "the namespace part is empty"),
        ("ns/:t", "the model part is empty"),
        ("m:", "the tag part is empty"),
        (":t", "the model part is empty"),
        ("a/b/c/d", "more than three"),
        ("ns.x/m", "contains '.'"),
        ("-m", "must start with a letter"),
        ("m t", "contains ' '"),
        ("m\x00", "contains '\\x00'"),
        ("m/x:t\\y", "contains '\\\\'"),
        ("m" * 81, "longer than 80"),
        (42, "must be a string"),
    ],
)
def test_names_that_could_escape_or_ollama_rejects_are_refused(text, reason):
    with pytest.raises(InvalidNameError) as info:
        ModelName.parse(text)
    assert reason in str(info.value)
    assert "invalid model name" in str(info.value)
