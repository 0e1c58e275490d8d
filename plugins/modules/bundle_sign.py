#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle_sign
short_description: Add a signature to a built transfer bundle (low side, one signer at a time)
version_added: 0.2.0
description:
  - Signs the C(bundle.json) of a bundle that M(airgap.llm.bundle_build) built (and the first
    signer signed) with one more key, so that each of the k signers a repository's trust policy
    asks for signs with their own key and passphrase, on their own turn, and no single vault holds
    every passphrase. M(airgap.llm.bundle_ingest) counts the distinct trusted keys that signed.
  - Before signing, reads the bundle once and checks what is signed - its SHA-256 against
    O(sha256) (the digest the previous signer gave you; without it, against the bundle's own
    C(.sha256)), every chunk against the chunk list, the archive (nothing unsafe or unlisted),
    C(bundle.json) (strict) and every file it lists against its digest and size. Files a
    differential bundle left out cannot be checked here (the high side does that).
  - The same bytes are written meanwhile under temporary names with C(signatures/<key id>.sig)
    added before the end of the archive; only when every check passed are they renamed over the
    bundle (or its chunks, cut at the size of the first chunk unless O(chunk_size) says otherwise),
    and the chunk list and C(.sha256) are written last. Any failure leaves the bundle as it was.
  - The bundle's SHA-256 changes with every signature; give the last signer's C(sha256) to the
    high side out of band.
  - Idempotent. A bundle this key has signed already is recognised from the tar headers alone (no
    member is read) and left as it is.
requirements:
  - cryptography
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Reads and checks the whole bundle as a real run does, and writes nothing.
options:
  bundle:
    description:
      - The bundle as M(airgap.llm.bundle_build) wrote it, C(<dest>/airgap-llm-<channel>-<version>.tar);
        for a chunked bundle the same name (its chunks and C(.chunks.sha256) lie next to it).
    type: path
    required: true
  key:
    description:
      - Your private signing key (from M(airgap.llm.bundle_keygen)).
    type: path
    required: true
  passphrase:
    description:
      - Its passphrase, from your own Ansible Vault file.
    type: str
    required: true
  sha256:
    description:
      - The bundle's SHA-256 as the previous signer (or the builder) gave it to you, 64 hexadecimal
        digits with or without C(sha256:). The bundle is not signed when it differs.
    type: str
  chunk_size:
    description:
      - For a chunked bundle, the size of the chunks written (as in M(airgap.llm.bundle_build), V(40MB)
        decimal, V(40M) or V(40MiB) binary). Defaults to the size of the bundle's first chunk.
    type: str
seealso:
  - module: airgap.llm.bundle_build
  - module: airgap.llm.bundle_keygen
  - module: airgap.llm.bundle_ingest
"""

EXAMPLES = r"""
- name: Add my signature to bundle 42 (the builder signed it first)
  airgap.llm.bundle_sign:
    bundle: /srv/bundles/out/airgap-llm-stable-000042.tar
    key: /etc/airgap-llm/keys/signer2.key
    passphrase: "{{ bundle_key_passphrase }}"
    sha256: "{{ digest_from_the_previous_signer }}"
  register: signed

- name: The digest to pass on (to the next signer, or to the high side out of band)
  ansible.builtin.debug:
    msg: "{{ signed.sha256 }}"
"""

RETURN = r"""
bundle:
  description: The bundle (O(bundle)).
  returned: always
  type: str
key_id:
  description: Id of the key that signs (O(key)).
  returned: always
  type: str
  sample: 3eeb3a0d87a6b801
key_ids:
  description: Ids of every key whose signature the bundle holds (in check mode, would hold).
  returned: success
  type: list
  elements: str
sha256:
  description:
    - SHA-256 of the whole bundle as it is now, the value to pass on (null in check mode when it
      would change).
  returned: success
  type: str
previous_sha256:
  description: SHA-256 the bundle's C(.sha256) listed before.
  returned: always
  type: str
size:
  description: Size of the bundle in bytes after signing.
  returned: when signed
  type: int
chunk_size:
  description: O(chunk_size) in bytes (null without it).
  returned: always
  type: int
chunks:
  description: The chunks (C(path), C(sha256), C(size)) after signing; empty for a whole tarball.
  returned: when signed
  type: list
  elements: dict
msg:
  description: What was done.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.cosign import add_signature  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import require_cryptography  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import parse_size  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bundle": {"type": "path", "required": True},
            "key": {"type": "path", "required": True, "no_log": False},
            "passphrase": {"type": "str", "required": True, "no_log": True},
            "sha256": {"type": "str"},
            "chunk_size": {"type": "str"},
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    with fail_on_error(module, f"signing {params['bundle']}", fields={"bundle": params["bundle"]}):
        chunk_size = parse_size(params["chunk_size"])[0] if params["chunk_size"] else None
        result = add_signature(
            params["bundle"],
            params["key"],
            params["passphrase"],
            expected_sha256=params["sha256"],
            chunk_size=chunk_size,
            check_mode=module.check_mode,
        )
    module.exit_json(chunk_size=chunk_size, **result)


if __name__ == "__main__":
    main()
