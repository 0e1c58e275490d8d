#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: repo_trust
short_description: Record the trust policy of an artifact repository (pinned signer keys and threshold)
version_added: 0.1.0
description:
  - Records which Ed25519 signing keys the repository pins and how many of them must sign a bundle,
    in C(trust.json) at the repository root. Every later M(airgap.llm.bundle_ingest) checks
    signatures against this policy, whatever its own options say; an ingest that asks for less is
    refused unless it carries an audited override.
  - This is the explicit set-up step of a repository (creating it when missing). Establishing the
    policy is recorded in the audit log (action C(trust), outcome C(established)); changing it
    later needs O(reason) and is recorded too (outcome C(changed)). The event is made durable before
    C(trust.json) changes.
  - Runs under the repository lock, so no ingest runs while the policy changes.
  - Idempotent. The same keys and threshold again change nothing and write no event.
requirements:
  - cryptography
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the policy would be established or changed, writing nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  repository:
    description:
      - Root of the artifact repository; created (empty) when missing.
    type: path
    required: true
  trusted_keys:
    description:
      - The Ed25519 public keys (PEM text) of the bundle signers to pin. Each key counts once.
    type: list
    elements: str
    required: true
  threshold:
    description:
      - How many distinct pinned keys must have signed a bundle, from 1 to the number of keys.
        There is no default. With three signers, V(2) lets one lost or stolen key neither sign a
        bundle alone nor block transfers.
    type: int
    required: true
  audit_log:
    description:
      - Hash-chained audit log that records the policy (the one M(airgap.llm.bundle_ingest) writes to).
    type: path
    required: true
  operator:
    description:
      - Who sets the policy, for the audit log and C(trust.json).
    type: str
    required: true
  reason:
    description:
      - Why the policy is set or changed, for example a change ticket. Required to change an
        existing policy.
    type: str
  lock_timeout:
    description:
      - Seconds to wait for an ingest holding the repository lock.
    type: float
    default: 60
seealso:
  - module: airgap.llm.bundle_ingest
  - module: airgap.llm.bundle_keygen
  - module: airgap.llm.audit_log
"""

EXAMPLES = r"""
- name: Set up the repository to require 2 of the 3 signers
  airgap.llm.repo_trust:
    repository: /srv/airgap-llm/repo
    trusted_keys:
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer1.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer2.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer3.key.pub') }}"
    threshold: 2
    audit_log: /var/log/airgap-llm/audit.jsonl
    operator: alice

- name: Replace the key of signer 2 (audited)
  airgap.llm.repo_trust:
    repository: /srv/airgap-llm/repo
    trusted_keys:
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer1.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer2-2027.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', '/etc/airgap-llm/trusted/signer3.key.pub') }}"
    threshold: 2
    reason: CHG-2040 signer2 key rotated
    audit_log: /var/log/airgap-llm/audit.jsonl
    operator: alice
"""

RETURN = r"""
repository:
  description: Absolute path of the repository.
  returned: always
  type: str
policy:
  description: Path of the policy file.
  returned: always
  type: str
  sample: /srv/airgap-llm/repo/trust.json
key_ids:
  description: Ids of the pinned keys (first 16 hex digits of the SHA-256 of each raw public key).
  returned: always
  type: list
  elements: str
threshold:
  description: How many distinct pinned keys must sign.
  returned: always
  type: int
previous:
  description: The policy before (C(key_ids), C(threshold)), or null when there was none.
  returned: always
  type: dict
msg:
  description: What was (or, in check mode, would be) recorded.
  returned: always
  type: str
audit_hash:
  description: Hash of the audit event written.
  returned: when changed, not in check mode
  type: str
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (  # noqa: E402
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.trust import record_policy  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "path", "required": True},
            "trusted_keys": {"type": "list", "elements": "str", "required": True, "no_log": False},
            "threshold": {"type": "int", "required": True},
            "audit_log": {"type": "path", "required": True},
            "operator": {"type": "str", "required": True},
            "reason": {"type": "str"},
            "lock_timeout": {"type": "float", "default": 60},
        },
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    with fail_on_error(module, f"trust policy of {params['repository']}", prefix_domain=True):
        result = record_policy(
            params["repository"],
            params["trusted_keys"],
            params["threshold"],
            audit_log=params["audit_log"],
            operator=params["operator"],
            reason=params["reason"],
            lock_timeout=params["lock_timeout"],
            check_mode=module.check_mode,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
