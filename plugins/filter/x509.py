# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters on X.509 certificates, run on the controller (documented in x509_info.yml)."""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible.errors import AnsibleFilterError
from ansible_collections.airgap.llm.plugins.module_utils._pki import (
    HAS_CRYPTOGRAPHY,
    PkiError,
    certificate_facts,
)


def x509_info(pem: Any, root: Any = None, errors: str = "strict") -> Dict[str, Any]:
    """Facts of the first certificate of ``pem``; with ``root``, whether its chain leads there.

    ``errors="report"`` returns ``{"error": message}`` for text that holds no usable certificate
    instead of failing the task.
    """
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError(
            "airgap.llm.x509_info needs the Python library cryptography on the controller"
        )
    if errors not in ("strict", "report"):
        raise AnsibleFilterError(f"airgap.llm.x509_info: errors must be strict or report, not {errors!r}")
    try:
        return certificate_facts(pem, root)
    except PkiError as exc:
        if errors == "report":
            return {"error": str(exc)}
        raise AnsibleFilterError(f"airgap.llm.x509_info: {exc}") from None


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"x509_info": x509_info}
