# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ollama model names: ``[host/][namespace/]model[:tag]`` and the four directories they map to."""

from __future__ import annotations

from typing import Any, NamedTuple, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import InvalidNameError

__all__ = ["DEFAULT_HOST", "DEFAULT_NAMESPACE", "DEFAULT_TAG", "ModelName"]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART_MAX = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


def _check_part(kind: str, value: str, original: Any) -> None:
    if value == "":
        raise InvalidNameError(original, f"the {kind} part is empty")
    if value in (".", ".."):
        raise InvalidNameError(original, f"the {kind} part is {value!r}, which could escape the store")
    if len(value) > _PART_MAX[kind]:
        raise InvalidNameError(original, f"the {kind} part is longer than {_PART_MAX[kind]} characters")
    first = value[0]
    if not (first.isascii() and (first.isalnum() or first == "_")):
        raise InvalidNameError(original, f"the {kind} part {value!r} must start with a letter, digit or '_'")
    for char in value[1:]:
        if char.isascii() and (char.isalnum() or char in "_-"):
            continue
        if char == "." and kind != "namespace":
            continue
        if char == ":" and kind == "host":
            continue
        raise InvalidNameError(original, f"the {kind} part {value!r} contains {char!r}")


class ModelName(NamedTuple):
    """A fully qualified Ollama model name: four parts, four directories under ``manifests/``."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, name: Any) -> ModelName:
        """Parse ``[host/][namespace/]model[:tag]`` as Ollama does; fill in the defaults.

        Raises :class:`InvalidNameError` for anything Ollama would not accept, in particular
        empty parts, ``.``/``..`` parts, absolute names and more than three ``/``-separated parts.
        """
        if not isinstance(name, str):
            raise InvalidNameError(name, "a model name must be a string")
        text = name
        if text.startswith("/"):
            raise InvalidNameError(name, "absolute names are not model names")
        for scheme in ("https://", "http://"):
            if text.startswith(scheme):
                text = text[len(scheme) :]
                break
        tag = ""
        if text.rfind(":") > text.rfind("/"):
            text, tag = text[: text.rfind(":")], text[text.rfind(":") + 1 :]
            _check_part("tag", tag, name)
        parts = text.split("/")
        if len(parts) > 3:
            raise InvalidNameError(name, "more than three '/'-separated parts (host/namespace/model)")
        host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
            _check_part("host", host, name)
            _check_part("namespace", namespace, name)
        elif len(parts) == 2:
            namespace, model = parts
            _check_part("namespace", namespace, name)
        else:
            model = parts[0]
        _check_part("model", model, name)
        return cls(host, namespace, model, tag or DEFAULT_TAG)

    @classmethod
    def from_parts(cls, parts: Tuple[str, str, str, str]) -> ModelName:
        """Name of a manifest found at ``manifests/<parts>``; raises :class:`InvalidNameError`."""
        original = "/".join(parts)
        for kind, value in zip(("host", "namespace", "model", "tag"), parts):
            _check_part(kind, value, original)
        return cls(*parts)

    @property
    def fullname(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """The shortest form, as ``ollama list`` shows it."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def relpath(self) -> str:
        return "/".join(("manifests", self.host, self.namespace, self.model, self.tag))

    def __str__(self) -> str:
        return self.display
