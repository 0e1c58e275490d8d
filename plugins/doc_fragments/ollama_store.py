# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The options of the modules that work on an Ollama model store."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  path:
    description:
      - The Ollama store (C(OLLAMA_MODELS)), the directory holding C(manifests/) and C(blobs/).
    type: path
    required: true
  jobs:
    description:
      - Parallel hash workers. Defaults to the number of CPUs this process may use.
    type: int
  lock_timeout:
    description:
      - Seconds to wait for another run holding the store lock (C(.airgap-llm/lock)).
    type: float
    default: 60
"""

    VERIFY = r"""
options:
  verify:
    description:
      - How to check blobs already in the destination. V(fast) trusts a blob whose device, inode, size,
        mtime and ctime match the verification record written by an earlier pass, and hashes the rest;
        V(full) hashes all of them.
    type: str
    choices: [fast, full]
    default: fast
"""
