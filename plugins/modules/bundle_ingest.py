#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle_ingest
short_description: Verify a transfer bundle and file it into the artifact repository (high side)
version_added: 0.1.0
description:
  - Reads the bundle tarball O(src) (or its chunks, listed in O(src)C(.chunks.sha256)) once,
    staging its members in the repository's C(tmp/) while hashing them. Then runs the checks below
    in this order and refuses the bundle at the first failure, with a message that says what to do.
  - Check 1, outer digest. The whole tarball against O(sha256), the value given out of band (and
    the C(.sha256) file on the media against O(sha256)). A mismatch does not print the digest the
    media has, so that nobody pastes it in place of the value received out of band.
  - Check 2, chunks. Every chunk listed is present and matches its digest, and the reassembled
    stream matches O(sha256).
  - Check 3, signatures. At least the threshold of valid Ed25519 signatures on C(bundle.json) by
    distinct trusted keys, and no invalid signature claiming a trusted key. The keys and the
    threshold are the repository's trust policy (C(trust.json)), recorded when the repository was
    set up with M(airgap.llm.repo_trust), or by the first ingest into a repository without one from
    O(trusted_keys) and O(threshold) given explicitly (audited). O(trusted_keys) and O(threshold)
    may ask for more than the policy (a subset of its keys, a higher threshold); an ingest that asks
    for less (a lower threshold, a key the policy does not pin) is refused unless
    O(trust_override_reason) says why, which is audited with O(operator).
  - Check 4, version. The bundle version is newer than the last one ingested for its channel.
    Rollback and replay are refused unless O(allow_rollback) with an O(override_reason), which is
    audited.
  - Check 5, expiry. The bundle has not expired.
  - Check 6, artifact digests. Every file's SHA-256 and size (files a differential bundle left out
    must be in the repository already).
  - Check 7, extraction. No absolute paths, C(..), links, devices, directories, duplicate entries,
    nothing after the end-of-archive marker, and no member that no check covers (not listed in
    C(bundle.json), or a signature by a key that is not trusted); the refusal names the member.
  - Then, as one ordered transaction under the repository lock, writes a journal of what it will
    write, stores each file once in C(blobs/sha256/<hex>), keeps C(bundle.json), the verified
    signatures and C(ingest.json) under C(bundles/<channel>/), writes a new C(states/<seq>/) with
    C(state.json) and C(index.json) (logical names and versions), appends the C(accepted) event to
    O(audit_log) (durable), and only then switches the C(current) symlink with one atomic rename.
    When the event cannot be written or C(current) cannot be switched, what was written is removed
    and the message says which state the repository serves.
  - A refusal leaves the repository and C(current) exactly as they were and appends a C(refused)
    event to O(audit_log); nothing else is written. Values from the media that a message or an
    event quotes are escaped and bounded.
  - Before anything else, under the lock, an ingest interrupted earlier (a crash, a kill) is
    finished or undone from its journal and staging left in C(tmp/) is removed; the audit log
    records what was done (action C(recover)). State numbers continue after the highest in
    C(states/), also when C(current) was pointed back at an older state.
  - Idempotent. A bundle whose digest is already the last one of its channel is not read again;
    the result says C(already_ingested) and lists its artifacts as already there.
  - Reports what the bundle brought in the shape of M(airgap.llm.repo_list), as C(added) (names and
    versions the repository did not serve), C(already_there) (served before with the same files;
    they keep the bundle that first brought them) and C(replaced) (served before with other files),
    and the same as aligned text in C(lines) for the play output.
requirements:
  - cryptography
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Runs every check (reading the whole bundle) without writing to the repository or the audit log.
options:
  src:
    description:
      - Path of the bundle tarball as built (C(airgap-llm-<channel>-<version>.tar)). When it is
        missing but O(src)C(.chunks.sha256) exists, the chunks listed there are read in order.
    type: path
    required: true
  sha256:
    description:
      - The SHA-256 of the whole tarball, as received out of band (phone, paper, separate channel),
        as 64 hexadecimal digits, with or without C(sha256:) first.
    type: str
    required: true
  repository:
    description:
      - Root of the artifact repository; created on first use.
    type: path
    required: true
  trusted_keys:
    description:
      - Ed25519 public keys (PEM text) of the bundle signers. Left out, the keys pinned by the
        repository's trust policy are used. Given, they must be among the pinned keys unless
        O(trust_override_reason) is set.
      - Into a repository without a trust policy, required together with O(threshold); they are
        recorded as its policy.
    type: list
    elements: str
    default: []
  threshold:
    description:
      - How many distinct trusted keys must have signed. There is no default. Left out, the
        threshold of the repository's trust policy is used. Given, it must be at least that
        threshold unless O(trust_override_reason) is set.
      - Into a repository without a trust policy, required together with O(trusted_keys).
    type: int
  trust_override_reason:
    description:
      - Why this ingest accepts less trust than the repository's policy (a lower O(threshold), or
        O(trusted_keys) the policy does not pin), for example a change ticket. Recorded in the
        audit event and in C(ingest.json) with O(operator). Without it such an ingest is refused.
      - To change the policy for good use M(airgap.llm.repo_trust).
    type: str
  audit_log:
    description:
      - Hash-chained audit log that receives one event per ingest attempt.
    type: path
    required: true
  operator:
    description:
      - Who runs the ingest, for the audit log.
    type: str
    required: true
  allow_rollback:
    description:
      - Accept a bundle whose version is not newer than the last one of its channel. Needs
        O(override_reason); the override is recorded in the audit log and in C(ingest.json).
    type: bool
    default: false
  override_reason:
    description:
      - Why the version check is overridden (for example a change ticket).
    type: str
  verify_reused:
    description:
      - Hash again the repository blobs that a differential bundle relies on, instead of trusting
        their size.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another ingest holding the repository lock.
    type: float
    default: 60
seealso:
  - module: airgap.llm.repo_trust
  - module: airgap.llm.bundle_build
  - module: airgap.llm.repo_inventory
  - module: airgap.llm.audit_log
"""

EXAMPLES = r"""
- name: Ingest bundle 42 against the repository's trust policy (set up with airgap.llm.repo_trust)
  airgap.llm.bundle_ingest:
    src: /media/usb/airgap-llm-stable-000042.tar
    sha256: "{{ bundle_sha256 }}"
    repository: /srv/airgap-llm/repo
    audit_log: /var/log/airgap-llm/audit.jsonl
    operator: alice

- name: First ingest into a new repository, recording its trust policy (2 of 3 signers)
  airgap.llm.bundle_ingest:
    src: /media/usb/airgap-llm-stable-000001.tar
    sha256: "{{ bundle_sha256 }}"
    repository: /srv/airgap-llm/repo
    trusted_keys:
      - "{{ lookup('ansible.builtin.file', 'keys/signer1.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', 'keys/signer2.key.pub') }}"
      - "{{ lookup('ansible.builtin.file', 'keys/signer3.key.pub') }}"
    threshold: 2
    audit_log: /var/log/airgap-llm/audit.jsonl
    operator: alice

- name: A signer lost their key; take this one bundle with 1 signature (audited)
  airgap.llm.bundle_ingest:
    src: /media/usb/airgap-llm-stable-000043.tar
    sha256: "{{ bundle_sha256 }}"
    repository: /srv/airgap-llm/repo
    threshold: 1
    trust_override_reason: "CHG-2001 signer2 key lost, replacement pending"
    audit_log: /var/log/airgap-llm/audit.jsonl
    operator: alice
"""

RETURN = r"""
bundle_sha256:
  description: The outer digest of the bundle (O(sha256)).
  returned: always
  type: str
repository:
  description: Absolute path of the repository.
  returned: always
  type: str
channel:
  description: Channel of the bundle.
  returned: success
  type: str
version:
  description: Version of the bundle.
  returned: success
  type: int
key_ids:
  description: Ids of the trusted keys whose signatures verified.
  returned: when the bundle was verified
  type: list
  elements: str
files:
  description: Number of files listed in C(bundle.json).
  returned: when the bundle was verified
  type: int
artifacts:
  description: The artifacts of the bundle (C(name), C(version), C(kind)).
  returned: when the bundle was verified
  type: list
  elements: dict
override:
  description: Whether the version check passed only thanks to O(allow_rollback).
  returned: when the bundle was verified
  type: bool
msg:
  description: What happened and which state the repository serves.
  returned: always
  type: str
trust:
  description:
    - The trust the signatures were checked against. C(key_ids) and C(threshold); C(recorded) is
      true when this first ingest recorded them as the repository's policy; C(override) is true
      when they were weaker than the policy thanks to O(trust_override_reason).
  returned: when the bundle was verified
  type: dict
recovered:
  description: What was done (or, in check mode, would be done) about an earlier interrupted ingest.
  returned: always
  type: list
  elements: str
state:
  description: Sequence number of the repository state that C(current) points to.
  returned: success, not in check mode
  type: int
current:
  description: Target of the C(current) symlink, relative to the repository.
  returned: success, not in check mode
  type: str
  sample: states/000007
stored_blobs:
  description: Files newly stored in C(blobs/sha256/).
  returned: when ingested
  type: int
reused_blobs:
  description: Files the repository already held (deduplicated or left out of a differential bundle).
  returned: when ingested
  type: int
stored_bytes:
  description: Bytes newly stored.
  returned: when ingested
  type: int
audit_hash:
  description: Hash of the audit log entry written for this ingest.
  returned: when ingested
  type: str
already_ingested:
  description: Whether the bundle was ingested before (nothing was read or changed).
  returned: success
  type: bool
added:
  description:
    - Artifact versions the repository did not serve before, one row each as M(airgap.llm.repo_list)
      returns them (C(name), C(version), C(kind), C(size), C(digest), C(files), C(channel),
      C(bundle_version), C(bundle_sha256), C(ingested_at), C(ingested_by)). In check mode, what would be
      added (C(ingested_at) null).
  returned: success
  type: list
  elements: dict
already_there:
  description: Artifact versions the repository already served with the same files (rows as in C(added)).
  returned: success
  type: list
  elements: dict
replaced:
  description: Artifact versions the repository served with other files, now replaced (rows as in C(added)).
  returned: success
  type: list
  elements: dict
lines:
  description: What happened and the rows above as aligned text, for the play output.
  returned: success
  type: list
  elements: str
  sample:
    - "Bundle 5540f2...8f9b accepted: channel stable version 43; the repository serves states/000002"
    - "added 1, already there 2, replaced 0; new blobs 1 (2.5 KiB), reused 5"
    - "STATUS         NAME        VERSION  KIND        SIZE      BUNDLE     INGESTED              DIGEST"
step:
  description: The check that refused the bundle.
  returned: failed
  type: str
  sample: signatures
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.ingest import (  # noqa: E402
    IngestOptions,
    Refused,
    ingest,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (  # noqa: E402
    require_cryptography,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "repository": {"type": "path", "required": True},
            "trusted_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "threshold": {"type": "int"},
            "trust_override_reason": {"type": "str"},
            "audit_log": {"type": "path", "required": True},
            "operator": {"type": "str", "required": True},
            "allow_rollback": {"type": "bool", "default": False},
            "override_reason": {"type": "str"},
            "verify_reused": {"type": "bool", "default": False},
            "lock_timeout": {"type": "float", "default": 60},
        },
        required_if=[("allow_rollback", True, ("override_reason",))],
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    base = {"bundle_sha256": params["sha256"], "repository": params["repository"]}
    what = f"ingest of {params['src']} into {params['repository']}"
    advice = (
        "What to do: fix the cause (space, permissions, media) and run again; "
        "the repository still serves its previous state."
    )
    with fail_on_error(module, what, fields=base, prefix_domain=True, os_advice=advice):
        options = IngestOptions(
            src=params["src"],
            sha256=params["sha256"],
            repository=params["repository"],
            trusted_keys=params["trusted_keys"],
            threshold=params["threshold"],
            trust_override_reason=params["trust_override_reason"],
            audit_log=params["audit_log"],
            operator=params["operator"],
            allow_rollback=params["allow_rollback"],
            override_reason=params["override_reason"],
            verify_reused=params["verify_reused"],
            lock_timeout=params["lock_timeout"],
        )
        try:
            result = ingest(options, check_mode=module.check_mode)
        except Refused as exc:
            module.fail_json(msg=f"bundle {params['src']} {exc}", step=exc.step, changed=False, **base)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
