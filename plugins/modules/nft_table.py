#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nft_table
short_description: Apply one nftables table atomically, checked first, rolled back unless confirmed
version_added: 0.2.0
description:
  - Makes the live nftables table O(family) O(name) what the ruleset file O(src) on the node defines,
    and touches no other table.
  - The file is checked with C(nft -c -f) against the running kernel, then loaded into an empty
    network namespace (C(unshare --net)) next to a sentinel table. A file that defines no such
    table, or that removes or adds any other (a C(flush ruleset), a second table), is refused. The
    listing the namespace gives (C(nft -s list table)) is compared with the live table's; when they
    are equal nothing is done, however the file is spelled.
  - A change is applied with one C(nft -f) (one netlink transaction, all of it or nothing). Write
    O(src) so that it replaces the table as a whole, for example C(table inet t),
    C(delete table inet t), then C(table inet t { ... }).
  - With O(rollback_after), the live table (or its absence) is first saved to O(rollback_file) and a
    transient systemd timer is armed (C(systemd-run --on-active)) that starts O(rollback_unit), a
    service that loads that file, after that many seconds. O(state=confirmed) disarms it. A change
    that cuts the controller's SSH session cannot be confirmed, so the previous table comes back by
    itself. An earlier change that was never confirmed keeps its saved table (the last confirmed
    one) and gets a fresh timeout.
  - O(state=absent) deletes the table and disarms a pending rollback.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: >-
      The file is checked and compared, nothing is applied or armed. When O(src) or C(nft) is not on
      the node yet (a fresh node whose earlier tasks were only predicted), a change is predicted.
  diff_mode:
    support: full
    details: The live table's stateless listing before, and the one O(src) gives after.
options:
  name:
    description: The table's name.
    type: str
    required: true
  family:
    description: The table's family.
    type: str
    choices: [inet, ip, ip6]
    default: inet
  src:
    description:
      - The ruleset file on the node. Required with O(state=present).
      - With O(state=confirmed), when given, the live table must still be the one it defines (else the
        rollback ran already, and the task fails).
    type: path
  state:
    description:
      - V(present) applies O(src); V(confirmed) disarms a pending rollback; V(absent) deletes the table.
    type: str
    choices: [present, confirmed, absent]
    default: present
  rollback_after:
    description:
      - Seconds after which a change not confirmed is rolled back. V(0) applies without a rollback.
    type: int
    default: 0
  rollback_unit:
    description:
      - A service unit (installed beforehand) that loads O(rollback_file) with C(nft -f). The timer
        that starts it is named after it (C(x.service) is started by the transient C(x.timer)).
      - Required with O(rollback_after) and with O(state=confirmed).
    type: str
  rollback_file:
    description:
      - Where the table to go back to is saved (mode C(0600)), written atomically. Removed on
        confirmation.
      - Required with O(rollback_after).
    type: path
notes:
  - Needs C(nft) (Debian package C(nftables)), C(unshare) (C(util-linux)) and systemd, and root.
seealso:
  - name: nft(8)
    description: Ruleset files, the C(-c) check and the C(-s) stateless listing.
    link: https://www.netfilter.org/projects/nftables/manpage.html
"""

EXAMPLES = r"""
- name: Apply the egress guard; roll back in 120 s unless confirmed
  airgap.llm.nft_table:
    name: airgap_egress
    src: /etc/airgap-llm/egress_guard/candidate.nft
    rollback_after: 120
    rollback_unit: airgap-egress-guard-rollback.service
    rollback_file: /var/lib/airgap-llm/egress_guard/rollback.nft
  register: guard

- name: A new SSH session still gets through
  ansible.builtin.meta: reset_connection

- name: Confirm the change (disarm the rollback)
  airgap.llm.nft_table:
    name: airgap_egress
    src: /etc/airgap-llm/egress_guard/candidate.nft
    state: confirmed
    rollback_unit: airgap-egress-guard-rollback.service
    rollback_file: /var/lib/airgap-llm/egress_guard/rollback.nft
  when: guard.rollback_armed
"""

RETURN = r"""
rollback_armed:
  description: Whether a rollback is pending after the task (armed now, or by an earlier run never confirmed).
  returned: always
  type: bool
  sample: true
table:
  description:
    - The live table after the task (before it, in check mode), or null when there is none.
    - C(handle), C(rules) (how many), C(chains) (each C(name), C(type), C(hook), C(priority), C(policy);
      C(hook) is null for a regular chain) and C(counters) (named counters, each C(packets) and C(bytes)).
  returned: always
  type: dict
  sample:
    family: inet
    name: airgap_egress
    handle: 4
    rules: 14
    chains:
      - {name: output, type: filter, hook: output, priority: 0, policy: drop}
    counters:
      denied_out: {packets: 3, bytes: 180}
"""

import os  # noqa: E402 - after the documentation, as Ansible modules are

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._guard import nft as _nft  # noqa: E402

_ENVIRON = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}


def _run(module: AnsibleModule) -> dict:
    p = module.params
    family, name = p["family"], p["name"]
    _nft.check_table_name(family, name)

    def runner(argv):
        # A known PATH (nft lives in /usr/sbin) and untranslated messages, which are matched.
        return module.run_command(list(argv), environ_update=_ENVIRON)

    state = p["state"]
    if state == "present" and not p["src"]:
        raise _nft.NftError("src is required with state=present: the ruleset file that defines the table")
    if p["rollback_after"] < 0:
        raise _nft.NftError(f"rollback_after must be 0 or more seconds, got {p['rollback_after']}")
    if state == "confirmed" and not p["rollback_unit"]:
        raise _nft.NftError("rollback_unit is required with state=confirmed: the rollback to disarm")
    nft = module.get_bin_path("nft")
    if nft is None or (state == "present" and not os.path.exists(p["src"])):
        if module.check_mode:
            missing = "nft" if nft is None else p["src"]
            return {
                "changed": True,
                "rollback_armed": state == "present" and p["rollback_after"] > 0,
                "table": None,
                "msg": f"{missing} is not on the node yet: the real run installs it, and applies the table",
            }
        if nft is None:
            raise _nft.NftError("nft is not installed: install the Debian package nftables first")
        raise _nft.NftError(f"the ruleset file {p['src']} does not exist")

    if state == "present":
        result = _nft.apply(
            runner,
            family=family,
            name=name,
            src=p["src"],
            rollback_after=p["rollback_after"],
            rollback_unit=p["rollback_unit"],
            rollback_file=p["rollback_file"],
            check_mode=module.check_mode,
        )
    elif state == "confirmed":
        result = _nft.confirm(
            runner,
            family=family,
            name=name,
            src=p["src"],
            rollback_unit=p["rollback_unit"],
            rollback_file=p["rollback_file"],
            check_mode=module.check_mode,
        )
    else:
        result = _nft.remove(
            runner, family=family, name=name, rollback_unit=p["rollback_unit"], check_mode=module.check_mode
        )
    before, after = result.pop("before", None), result.pop("after", None)
    if module._diff and result["changed"] and before is not None:
        result["diff"] = {
            "before": before,
            "after": after,
            "before_header": f"live table {family} {name}",
            "after_header": p["src"] or "(removed)",
        }
    result["table"] = _nft.read_table(runner, family, name)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "family": {"type": "str", "choices": ["inet", "ip", "ip6"], "default": "inet"},
            "src": {"type": "path"},
            "state": {"type": "str", "choices": ["present", "confirmed", "absent"], "default": "present"},
            "rollback_after": {"type": "int", "default": 0},
            "rollback_unit": {"type": "str"},
            "rollback_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    with fail_on_error(module, f"nftables table {module.params['family']} {module.params['name']}"):
        result = _run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
