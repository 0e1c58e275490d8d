# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: sha256
short_description: Whether a value is a SHA-256 digest as the collection's modules accept it
version_added: 0.2.0
description:
  - True when the value is 64 hexadecimal digits, with or without C(sha256:) first (case and
    surrounding white space do not matter), exactly as every module of the collection parses a
    digest an operator gives. For the preflight checks of playbooks, which must refuse a mistyped
    digest with their own message before anything is written.
options:
  _input:
    description: The value to check.
    type: raw
    required: true
author:
  - airgap.llm contributors (@airgap-llm)
"""

EXAMPLES = r"""
- name: Check the digest received out of band before anything is written
  ansible.builtin.assert:
    that: ingest_sha256 is airgap.llm.sha256
    fail_msg: ingest_sha256 must be 64 hexadecimal digits, with or without sha256 first
"""

RETURN = r"""
_value:
  description: Whether the value is a SHA-256 digest.
  type: bool
"""

from ansible_collections.airgap.llm.plugins.module_utils._digest import (  # noqa: E402
    DigestError,
    parse_sha256,
)


def sha256(value) -> bool:
    try:
        parse_sha256(value)
    except DigestError:
        return False
    return True


class TestModule:
    def tests(self):
        return {"sha256": sha256}
