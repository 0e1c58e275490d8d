#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_log
short_description: Append to, or verify, a hash-chained JSON-lines audit log
version_added: 0.1.0
description:
  - With O(state=present), appends one event to the log at O(path). Each line is a JSON object with
    C(seq), C(prev) (the hash of the line before), C(time), C(operator), C(action), C(outcome),
    C(bundle_sha256), C(key_ids), C(detail) and C(hash) (the SHA-256 of the entry's canonical JSON
    without C(hash)). The append holds an exclusive lock on O(path)C(.lock), checks the last entry,
    writes the line with a single write and fsyncs it.
  - With O(state=verified), walks the whole log and fails naming the first entry where the chain
    breaks (changed, removed, reordered or truncated lines).
  - C(airgap.llm.bundle_ingest) writes its own events (accepted and refused bundles) to the same log.
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: With O(state=present), reports the event it would append and writes nothing.
  idempotent:
    support: partial
    details: O(state=verified) changes nothing; O(state=present) appends one event on every run, by design.
options:
  path:
    description:
      - The log file. Created (mode C(0640)) with its directory when missing.
    type: path
    required: true
  state:
    description:
      - V(present) appends an event, V(verified) checks the chain.
    type: str
    choices: [present, verified]
    default: present
  action:
    description:
      - What happened, for example V(ingest), V(deploy), V(rollback). Required with O(state=present).
    type: str
  outcome:
    description:
      - How it ended, for example V(accepted), V(refused), V(ok), V(failed). Required with O(state=present).
    type: str
  operator:
    description:
      - Who did it. Required with O(state=present).
    type: str
  bundle_sha256:
    description:
      - The outer SHA-256 of the bundle concerned, if any (64 hexadecimal digits, with or without
        C(sha256:)).
    type: str
  key_ids:
    description:
      - Ids of the signing keys involved.
    type: list
    elements: str
    default: []
  detail:
    description:
      - Free text, for example the reason of a refusal or of an override.
    type: str
seealso:
  - module: airgap.llm.bundle_ingest
"""

EXAMPLES = r"""
- name: Record a deployment
  airgap.llm.audit_log:
    path: /var/log/airgap-llm/audit.jsonl
    action: deploy
    outcome: ok
    operator: "{{ lookup('ansible.builtin.env', 'SUDO_USER') }}"
    detail: "site.yml on {{ ansible_play_hosts | length }} hosts"

- name: Verify the audit log before trusting it
  airgap.llm.audit_log:
    path: /var/log/airgap-llm/audit.jsonl
    state: verified
"""

RETURN = r"""
entry:
  description: The event appended (or that would be, in check mode); absent with O(state=verified).
  returned: when state is present
  type: dict
  sample:
    seq: 12
    prev: 4f0c0d54c4b2a1f7d4e8d0e1b0d8c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978899
    time: "2026-11-22T05:00:00.000000Z"
    operator: alice
    action: deploy
    outcome: ok
    bundle_sha256: null
    key_ids: []
    detail: site.yml
    hash: 9a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9f
entries:
  description: Number of entries in the log that chain correctly (after the append, if any).
  returned: always
  type: int
  sample: 12
last_hash:
  description: Hash of the last entry that chains correctly.
  returned: always
  type: str
broken_at:
  description: Line number of the first broken entry, or null.
  returned: always
  type: int
problem:
  description: Why that entry breaks the chain, or null.
  returned: always
  type: str
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._digest import parse_sha256  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.audit import (  # noqa: E402
    GENESIS,
    AuditError,
    append,
    make_entry,
    verify,
)


def _run(module: AnsibleModule) -> dict:
    params = module.params
    if params["state"] == "verified":
        result = verify(params["path"])
        if result["broken_at"] is not None:
            raise AuditError(
                f"audit log {params['path']} breaks at line {result['broken_at']}: {result['problem']}. "
                "The log was altered or damaged there: keep a copy for investigation, do not append to it"
            )
        return dict(result, changed=False)
    missing = [k for k in ("action", "outcome", "operator") if not params[k]]
    if missing:
        raise AuditError(f"state=present needs {', '.join(missing)}")
    fields = {k: params[k] for k in ("action", "outcome", "operator", "key_ids", "detail")}
    if params["bundle_sha256"] is not None:
        fields["bundle_sha256"] = parse_sha256(params["bundle_sha256"], "bundle_sha256")
    if module.check_mode:
        state = verify(params["path"])
        if state["broken_at"] is not None:
            raise AuditError(
                f"audit log {params['path']} breaks at line {state['broken_at']}: {state['problem']}"
            )
        entry = make_entry(state["entries"] + 1, state["last_hash"] or GENESIS, **fields)
        return dict(state, changed=True, entry=entry, entries=state["entries"] + 1)
    entry = append(params["path"], **fields)
    return {
        "changed": True,
        "entry": entry,
        "entries": entry["seq"],
        "last_hash": entry["hash"],
        "broken_at": None,
        "problem": None,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "verified"], "default": "present"},
            "action": {"type": "str"},
            "outcome": {"type": "str"},
            "operator": {"type": "str"},
            "bundle_sha256": {"type": "str"},
            "key_ids": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "detail": {"type": "str"},
        },
        supports_check_mode=True,
    )
    with fail_on_error(module, f"audit log {module.params['path']}"):
        result = _run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
