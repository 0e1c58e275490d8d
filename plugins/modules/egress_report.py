#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: egress_report
short_description: Account for the attempts an nftables egress guard denied since the last look
version_added: 0.2.0
description:
  - Reads the guard's table (O(family) O(table)), that is whether it exists, its base chains with
    their hooks and policies, and its named O(counters) of denied packets. The difference to the values
    recorded at the last look is the number of denied attempts since then; when the table was
    replaced in between (a new ruleset, a reboot, a rollback; its handle changed) its counters
    started again at zero, the whole value counts, and RV(counters_restarted) says so.
  - Reads the lines the guard's log gained since the last look (LOGEMU lines that ulogd writes for
    the guard's C(log group) rule, tagged C(<prefix>-out), C(<prefix>-in) or C(<prefix>-fwd)),
    across one rotation of the log (C(<log>.1)), at most O(max_bytes), and groups them by
    destination (outgoing and forwarded) and by source (incoming). The log is rate-limited; the
    counters give the number, the log the destinations of the attempts it kept.
  - Records where this look stopped (counter values, the table's handle, the log's inode and
    offset, the time) in O(state_file), replaced atomically. The module judges nothing; the caller
    decides what a missing guard or a policy that is not C(drop) means.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: >-
      Reads and reports as a real run does and records nothing, so the next look counts from the same
      place.
  idempotent:
    support: none
    details: Every look is recorded (that is what "since the last look" counts from), and reports a change.
options:
  table:
    description: The guard's table.
    type: str
    required: true
  family:
    description: The table's family.
    type: str
    choices: [inet, ip, ip6]
    default: inet
  counters:
    description: The table's named counters of denied packets, by direction (V(out), V(in), V(fwd)).
    type: dict
    default: {out: denied_out, in: denied_in, fwd: denied_fwd}
  log:
    description: The log file the guard's logged attempts go to (written by ulogd's LOGEMU output).
    type: path
    required: true
  prefix:
    description: The log prefix of the guard's rules, without the C(-out), C(-in) or C(-fwd) that follows.
    type: str
    default: airgap-egress
  state_file:
    description: Where the last look is recorded.
    type: path
    required: true
  top:
    description: How many destinations (and sources) to list, most frequent first.
    type: int
    default: 20
  max_bytes:
    description: >-
      The most of the log read in one look; a longer backlog is read from its end and the rest counted
      as skipped.
    type: int
    default: 67108864
notes:
  - Needs C(nft) (Debian package C(nftables)) and root.
seealso:
  - module: airgap.llm.nft_table
"""

EXAMPLES = r"""
- name: Denied attempts since the last run
  airgap.llm.egress_report:
    table: airgap_egress
    log: /var/log/airgap-llm/egress/denied.log
    state_file: /var/lib/airgap-llm/egress_guard/accounting.json
  register: denied

- name: Fail when the guard is gone
  ansible.builtin.assert:
    that: denied.present
"""

RETURN = r"""
present:
  description: Whether the table exists.
  returned: always
  type: bool
  sample: true
table:
  description: The table (as M(airgap.llm.nft_table) returns it), or null when it does not exist.
  returned: always
  type: dict
since:
  description: The time of the last look (UTC, ISO 8601), or null on the first.
  returned: always
  type: str
  sample: "2026-11-29T12:00:00Z"
time:
  description: The time of this look.
  returned: always
  type: str
denied:
  description: >-
    By direction: C(counter) (its name), C(total) (packets it counted since the table was loaded, null
    when the table or counter is missing) and C(since_last) (since the last look).
  returned: always
  type: dict
  sample:
    out: {counter: denied_out, total: 3, since_last: 1}
counters_restarted:
  description: The table was replaced since the last look, so its counters started again at zero.
  returned: always
  type: bool
logged:
  description: >-
    C(lines) (logged attempts read), C(by_direction), C(unparsed) (lines of the guard that did not
    parse), C(skipped_bytes) (backlog beyond O(max_bytes)), C(log_restarted) (the log is neither the
    one recorded nor its first rotation: what was written in between is unknown), C(log_present).
  returned: always
  type: dict
destinations:
  description: >-
    Logged outgoing and forwarded attempts grouped by C(direction), C(protocol), C(address) and C(port),
    with C(count), C(uids) (local users whose sockets tried) and C(first)/C(last) (log timestamps),
    most frequent first, at most O(top).
  returned: always
  type: list
  elements: dict
  sample:
    - {direction: out, protocol: TCP, address: 10.89.3.7, port: 8080, count: 2, uids: [0],
       first: "Nov 29 12:05:30", last: "Nov 29 12:05:31"}
distinct_destinations:
  description: How many different destinations were logged (RV(destinations) lists at most O(top)).
  returned: always
  type: int
sources:
  description: Logged incoming attempts, grouped as RV(destinations) are, by source address and local port.
  returned: always
  type: list
  elements: dict
distinct_sources:
  description: How many different sources were logged.
  returned: always
  type: int
state_problem:
  description: Why the recorded last look could not be used (it is started afresh), or null.
  returned: always
  type: str
"""

import datetime  # noqa: E402 - after the documentation, as Ansible modules are

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._guard import accounting as _accounting  # noqa: E402

_ENVIRON = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}


def _run(module: AnsibleModule) -> dict:
    p = module.params
    if module.get_bin_path("nft") is None:
        raise _accounting.AccountingError("nft is not installed: the egress guard is not on this node")

    def runner(argv):
        return module.run_command(list(argv), environ_update=_ENVIRON)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _accounting.account(
        runner,
        family=p["family"],
        table=p["table"],
        counters={str(k): str(v) for k, v in p["counters"].items()},
        log=p["log"],
        prefix=p["prefix"],
        state_path=p["state_file"],
        now=now,
        top=p["top"],
        max_bytes=p["max_bytes"],
        check_mode=module.check_mode,
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "table": {"type": "str", "required": True},
            "family": {"type": "str", "choices": ["inet", "ip", "ip6"], "default": "inet"},
            "counters": {
                "type": "dict",
                "default": {"out": "denied_out", "in": "denied_in", "fwd": "denied_fwd"},
            },
            "log": {"type": "path", "required": True},
            "prefix": {"type": "str", "default": "airgap-egress"},
            "state_file": {"type": "path", "required": True},
            "top": {"type": "int", "default": 20},
            "max_bytes": {"type": "int", "default": 64 << 20},
        },
        supports_check_mode=True,
    )
    with fail_on_error(module, f"egress accounting of {module.params['table']}"):
        result = _run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
