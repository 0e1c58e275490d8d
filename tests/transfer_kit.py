# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tar surgery for the transfer tests: read a bundle's members, change them, write them back, sign again."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tarfile
from typing import Any, Callable, Dict, List, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign

Members = List[Tuple[tarfile.TarInfo, bytes]]


def read_members(path) -> Members:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]


def write_tar(path, members: Members, tail: bytes = b"") -> str:
    """Write ``members`` as a PAX tar (``tail`` appended after it); return its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for original, data in members:
            info = copy.copy(original)
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    raw = buffer.getvalue() + tail
    with open(path, "wb") as handle:
        handle.write(raw)
    return hashlib.sha256(raw).hexdigest()


def entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> Tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    return info, data


def resign(
    members: Members,
    signers: List[Dict[str, Any]],
    change: Callable[[bytes], bytes],
    by: Sequence[int] = (0, 1),
) -> Members:
    """Replace bundle.json by ``change(bundle.json)`` and sign it again with the signers ``by``."""
    raw = change(next(d for i, d in members if i.name == "bundle.json"))
    out = [
        (i, raw if i.name == "bundle.json" else d) for i, d in members if not i.name.startswith("signatures/")
    ]
    for n in by:
        kid, signature = _sign.sign(signers[n]["key"], raw)
        out.append(entry(f"signatures/{kid}.sig", signature))
    return out


def write_wheelhouse(directory, wheels: Dict[str, bytes]) -> int:
    """Make ``directory`` a wheelhouse as airgap.llm.wheelhouse does: the wheels and their hash lock.

    ``wheels`` maps wheel file names (``name-version-...whl``) to their bytes; returns the size of
    the ``requirements.lock`` written.
    """
    os.makedirs(directory, exist_ok=True)
    lines = []
    for name, body in sorted(wheels.items()):
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(body)
        dist, version = name.split("-")[:2]
        digest = hashlib.sha256(body).hexdigest()
        lines.append(f"{dist.replace('_', '-').lower()}=={version} --hash=sha256:{digest}  # {name}\n")
    lock = os.path.join(directory, "requirements.lock")
    with open(lock, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return os.path.getsize(lock)
