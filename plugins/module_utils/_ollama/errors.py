# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Errors of the Ollama store and what an operator should do about each kind of problem."""

from __future__ import annotations

from typing import Any, Optional

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError

__all__ = [
    "HINTS",
    "BlobError",
    "InvalidNameError",
    "LockTimeoutError",
    "ManifestError",
    "NoSpaceError",
    "OllamaError",
    "PinMismatchError",
    "SourceError",
    "StoreError",
]

HINTS = {
    "missing": "install the model again with airgap.llm.ollama_model from a verified export",
    "size": "the blob is damaged; install the model again with airgap.llm.ollama_model, which replaces it "
    "from a verified source",
    "digest": "the blob is corrupt or was altered; install the model again with airgap.llm.ollama_model, "
    "which replaces it from a verified source",
    "unreadable": "make it a readable regular file (remove what is there) and install the model again with "
    "airgap.llm.ollama_model",
    "manifest": "the manifest is damaged or not an Ollama manifest; install the model again from a verified "
    "export or remove the file",
    "orphan": "no manifest references it; remove it, or set orphans=ignore",
}


class OllamaError(AirgapError):
    """Base of every error here; ``str()`` is a complete message for an operator."""


class InvalidNameError(OllamaError):
    def __init__(self, name: Any, reason: str) -> None:
        super().__init__(
            f"invalid model name {name!r}: {reason}. Use [host/][namespace/]model[:tag] with parts of "
            "letters, digits, '_', '-' and '.', each starting with a letter, digit or '_'"
        )
        self.name = name
        self.reason = reason


class ManifestError(OllamaError):
    def __init__(self, model: str, where: str, reason: str, hint: Optional[str] = None) -> None:
        super().__init__(
            f"model {model}: manifest {where}: {reason}. What to do: {hint or HINTS['manifest']}"
        )
        self.model = model
        self.where = where
        self.reason = reason


class StoreError(OllamaError):
    """The store (or a path in it) is not usable: wrong type, symlink, permissions."""


class LockTimeoutError(OllamaError):
    pass


class BlobError(OllamaError):
    """A blob does not match its manifest; carries the fields of a verify problem."""

    def __init__(
        self, model: str, digest: str, kind: str, *, expected: Any, actual: Any, where: str, hint: str = ""
    ) -> None:
        super().__init__(
            f"model {model}: blob {digest} ({where}): {kind} mismatch: expected {expected}, actual "
            f"{actual}. What to do: {hint or HINTS.get(kind, '')}"
        )
        self.model = model
        self.digest = digest
        self.kind = kind
        self.expected = expected
        self.actual = actual
        self.where = where


class SourceError(OllamaError):
    """The source (directory or URL) cannot deliver what was asked."""


class PinMismatchError(OllamaError):
    """The source manifest is not the pinned one."""


class NoSpaceError(OllamaError):
    """The destination file system has too little room for the blobs to copy."""
