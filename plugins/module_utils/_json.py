# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Strict JSON: the one reader and the one writer of every JSON document the collection handles.

Everything read from transfer media, from a server or from disk (``bundle.json``, Ollama
manifests, ``index.json``, ``state.json``, inventories, records, audit lines) goes through
:func:`loads` or :func:`load_file`, which refuse, with a message naming the document:

* more than ``limit`` bytes, or nesting deeper than ``max_depth`` (the parser's own recursion
  guard stops pathological nesting; the depth of what it built is then measured without
  recursion);
* text that is not UTF-8, and strings holding lone surrogates (not Unicode);
* duplicate keys in one object (readers disagree on which one counts, so a reviewer's parser could
  read another document than ours);
* ``NaN``, ``Infinity``, ``-Infinity`` and numbers too large to be finite (not JSON; strict clients
  cannot parse them back).

The documents are then checked field by field by their owners before use (see
:func:`expect` for the common shapes). :func:`dumps` and :func:`canonical` write only standard
JSON (``allow_nan=False``, ASCII, sorted keys).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import read_bounded

__all__ = ["MAX_DEPTH", "JSONError", "canonical", "dumps", "expect", "load_file", "loads"]

MAX_DEPTH = 16
"""Deepest nesting accepted unless a reader asks for less; the collection's documents nest 6 levels."""

_TOKEN_RE = re.compile(r'[\[\]{}"\\]')
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

_KINDS: Dict[str, Tuple[type, ...]] = {
    "an object": (dict,),
    "a list": (list,),
    "a string": (str,),
    "an integer": (int,),
    "a boolean": (bool,),
}


class JSONError(AirgapError):
    """A document is not strict JSON, is too large or too deep, or has the wrong shape."""


def _text_depth(text: str) -> int:
    """Deepest bracket nesting of JSON text, strings skipped; one linear pass over the tokens.

    Used only to word the error when the parser gave up on the nesting.
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _TOKEN_RE.finditer(text):
        char, pos = match.group(), match.start()
        if pos == escaped_at:
            continue
        if char == "\\":
            escaped_at = pos + 1
        elif char == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _measure(doc: Any, surrogates: bool) -> Tuple[int, bool]:
    """Nesting depth of a parsed document and whether a string in it holds a lone surrogate."""
    deepest = 0
    lone = False
    stack = [(doc, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            if surrogates:
                lone = lone or any(_SURROGATE_RE.search(key) for key in item)
            stack.extend((value, depth) for value in item.values())
        elif isinstance(item, list):
            depth += 1
            stack.extend((value, depth) for value in item)
        elif surrogates and isinstance(item, str) and _SURROGATE_RE.search(item):
            lone = True
        deepest = max(deepest, depth)
    return deepest, lone


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {quote(key)} (readers disagree on which one counts)")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {quote(text, 40)} is too large to be finite")
    return value


def loads(raw: Any, what: str, *, limit: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` (bytes or text) strictly; ``what`` names the document in every error."""
    if len(raw) > limit:
        raise JSONError(f"{what} is larger than {limit} bytes")
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_constant, parse_float=_finite
        )
    except json.JSONDecodeError as exc:
        raise JSONError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise JSONError(
            f"{what} is JSON nested {_text_depth(text)} levels deep, more than the limit of {max_depth}"
        ) from None
    except ValueError as exc:
        raise JSONError(f"{what} is not valid JSON: {exc}") from None
    depth, lone = _measure(doc, bool(_SURROGATE_ESCAPE_RE.search(text)))
    if depth > max_depth:
        raise JSONError(f"{what} is JSON nested {depth} levels deep, more than the limit of {max_depth}")
    if lone:
        raise JSONError(f"{what} is not valid JSON: a string holds a lone UTF-16 surrogate (not Unicode)")
    return doc


def load_file(path: str, what: str, *, limit: int, max_depth: int = MAX_DEPTH) -> Any:
    """Read a regular file (never through a symbolic link) of at most ``limit`` bytes and parse it.

    Raises :class:`JSONError` for what is in the file, and the ``OSError`` or ``FileError`` of
    :func:`_io.read_bounded` when it cannot be read.
    """
    return loads(read_bounded(path, limit), what, limit=limit, max_depth=max_depth)


def expect(value: Any, kind: str, where: str) -> Any:
    """Return ``value`` if it is of ``kind`` (``an object``, ``a list``, ``a string``, ``an integer``,
    ``a boolean``); raise :class:`JSONError` naming ``where``, the kind expected and what was found.
    Integers are at most 2**63 - 1 and never booleans."""
    types = _KINDS[kind]
    ok = isinstance(value, types)
    if kind == "an integer":
        ok = ok and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if not ok:
        raise JSONError(f"{where} must be {kind}, got {describe(value)}")
    return value


def dumps(doc: Any, indent: int = 1) -> bytes:
    """``doc`` as standard JSON (sorted keys, ASCII, never NaN or Infinity), indented, ending in a newline."""
    return (json.dumps(doc, indent=indent, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n").encode(
        "ascii"
    )


def canonical(doc: Any) -> bytes:
    """``doc`` as compact standard JSON (sorted keys, no spaces, ASCII): the form that is hashed."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )
