# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of many files on a test node in one remote command each (testinfra hosts).

A loop of ``host.file(path).exists`` costs one round trip per path; these ask once.
"""

from __future__ import annotations

import shlex
from typing import Dict, Iterable, Set


def existing(host, paths: Iterable[str]) -> Set[str]:
    """Which of ``paths`` exist on ``host`` (links count, even dangling ones)."""
    paths = list(paths)
    if not paths:
        return set()
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = host.check_output(f'for p in {quoted}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done')
    return set(out.splitlines())


def sha256sums(host, paths: Iterable[str]) -> Dict[str, str]:
    """SHA-256 of each of ``paths`` on ``host``; a missing or unreadable file fails the check."""
    paths = list(paths)
    if not paths:
        return {}
    out = host.check_output("sha256sum -- " + " ".join(shlex.quote(p) for p in paths))
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines()}
