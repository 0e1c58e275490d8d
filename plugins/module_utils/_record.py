# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The verification record: which files a full pass proved to have which SHA-256.

Lets ``ollama_verify mode=fast``, ``ollama_model`` and ``artifact`` trust an unchanged file
without reading it again (see :class:`VerificationRecord`).
"""

from __future__ import annotations

import os
import stat
from typing import Dict, Iterable, Optional

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    NotRegularError,
    StatKey,
    atomic_write,
    describe_oserror,
    open_regular,
)

__all__ = ["VerificationRecord"]


class VerificationRecord:
    """Which files a full pass proved to have which SHA-256, keyed by their :class:`StatKey`.

    ``mode: fast`` trusts a file whose current ``StatKey`` is in the record with the digest it
    must have, and reads nothing.  The record is JSON
    ``{"format": 1, "entries": {"<dev>:<ino>:<size>:<mtime_ns>:<ctime_ns>": "<hex>"}}``.

    A record is only trusted if it is a regular file owned by root or by the current user and
    not writable by group or others (see :meth:`load`); otherwise it is ignored (everything is
    hashed again) and :attr:`ignored_reason` says why.  :meth:`save` writes atomically.
    """

    FORMAT = 1
    MAX_BYTES = 64 * 1024 * 1024

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: Dict[StatKey, str] = {}
        self.ignored_reason: Optional[str] = None
        self._dirty = False

    @classmethod
    def load(cls, path: str) -> VerificationRecord:
        record = cls(path)
        try:
            fd, st = open_regular(path)
        except FileNotFoundError:
            return record
        except NotRegularError:
            record.ignored_reason = "it is not a regular file"
            return record
        except OSError as exc:
            record.ignored_reason = f"cannot open it: {describe_oserror(exc)}"
            return record
        try:
            if st.st_uid not in (0, os.geteuid()):
                record.ignored_reason = f"it is owned by uid {st.st_uid}, not root or uid {os.geteuid()}"
                return record
            if st.st_mode & 0o022:
                record.ignored_reason = (
                    f"it is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
                )
                return record
            if st.st_size > cls.MAX_BYTES:
                record.ignored_reason = f"it is larger than {cls.MAX_BYTES} bytes"
                return record
            with os.fdopen(os.dup(fd), "rb") as handle:
                raw = handle.read(cls.MAX_BYTES + 1)
        finally:
            os.close(fd)
        try:
            data = _json.loads(raw, "it", limit=cls.MAX_BYTES, max_depth=2)
        except _json.JSONError:
            record.ignored_reason = "it is not valid JSON"
            return record
        if (
            not isinstance(data, dict)
            or data.get("format") != cls.FORMAT
            or not isinstance(data.get("entries"), dict)
        ):
            record.ignored_reason = "it has an unknown format"
            return record
        for text, hexdigest in data["entries"].items():
            key = StatKey.decode(text) if isinstance(text, str) else None
            if key is not None and is_sha256_hex(hexdigest):
                record.entries[key] = hexdigest
        return record

    def lookup(self, key: StatKey) -> Optional[str]:
        """The digest a full pass proved for a file with exactly this ``StatKey``, or None."""
        return self.entries.get(key)

    def is_verified(self, key: StatKey, hexdigest: str) -> bool:
        return self.entries.get(key) == hexdigest

    def add(self, key: StatKey, hexdigest: str) -> None:
        if self.entries.get(key) != hexdigest:
            self.entries[key] = hexdigest
            self._dirty = True

    def discard_digest(self, hexdigest: str) -> None:
        for key in [k for k, v in self.entries.items() if v == hexdigest]:
            del self.entries[key]
            self._dirty = True

    def retain(self, keys: Iterable[StatKey]) -> None:
        """Forget every entry whose key is not in ``keys`` (files gone or changed)."""
        keep = set(keys)
        for key in [k for k in self.entries if k not in keep]:
            del self.entries[key]
            self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def save(self, dir_mode: int = 0o755) -> None:
        """Write the record atomically (mode 0644, owned by the current user) if it changed."""
        if not self._dirty:
            return
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, dir_mode)
        payload = {
            "format": self.FORMAT,
            "entries": {key.encode(): value for key, value in sorted(self.entries.items())},
        }
        atomic_write(self.path, _json.dumps(payload, indent=0))
        self._dirty = False
