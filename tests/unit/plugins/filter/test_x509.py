# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The x509_info filter: facts, or a reported error for text that holds no certificate."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.airgap.llm.plugins.filter.x509 import FilterModule
from ansible_collections.airgap.llm.plugins.module_utils import _pki

X509_INFO = FilterModule().filters()["x509_info"]


def test_facts_of_a_root_and_of_an_intermediate_against_it():
    material = _pki.generate_material(
        "Filter Test", "filter-test-password", root_days=30, intermediate_days=20
    )
    files = material.files()
    root = X509_INFO(files["root"].decode())
    assert root["is_ca"] and root["subject"] == root["issuer"] and root["chains_to_root"] is None
    intermediate = X509_INFO(files["intermediate"].decode(), root=files["root"].decode())
    assert intermediate["chains_to_root"] is True and intermediate["issuer"] == root["subject"]


def test_garbage_fails_strictly_or_is_reported():
    with pytest.raises(AnsibleFilterError, match="holds no PEM certificate"):
        X509_INFO("garbage")
    assert "holds no PEM certificate" in X509_INFO("garbage", errors="report")["error"]
    with pytest.raises(AnsibleFilterError, match="errors must be strict or report"):
        X509_INFO("garbage", errors="ignore")
