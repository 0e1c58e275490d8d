# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_ollama.store: the store lock."""

from __future__ import annotations

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import LockTimeoutError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.tests import ollama_store as gen

# ------------------------------------------------------------------------------------------- lock


def test_the_store_lock_excludes_a_second_writer(tmp_path):
    root = str(tmp_path)
    store = Store(root)
    with gen.lock_held_elsewhere(root):
        waited = r"locked by another run \(waited 0.3 s"
        with pytest.raises(LockTimeoutError, match=waited), store.lock(exclusive=True, timeout=0.3):
            pass
        with pytest.raises(LockTimeoutError), store.lock(exclusive=False, timeout=0.1):
            pass
    with store.lock(exclusive=True, timeout=1):
        pass
