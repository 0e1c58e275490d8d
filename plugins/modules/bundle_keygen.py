#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle_keygen
short_description: Create an Ed25519 key pair for signing transfer bundles
version_added: 0.1.0
description:
  - Generates an Ed25519 private key, encrypted with O(passphrase) (PKCS#8, the best encryption
    C(cryptography) offers), written with mode C(0600), and its public key in PEM.
  - Idempotent. An existing private key is kept (and must open with O(passphrase)); the public key
    file is rewritten only when it does not match.
  - The key id (first 16 hex digits of the SHA-256 of the raw public key) names the signature file
    in every bundle signed with the key; pin the public key on the high side (C(trusted_keys) of
    M(airgap.llm.bundle_ingest)).
requirements:
  - cryptography
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Reports whether a key would be generated or the public key rewritten.
options:
  path:
    description:
      - The private key file.
    type: path
    required: true
  public_path:
    description:
      - The public key file. Defaults to O(path) with C(.pub) appended.
    type: path
  passphrase:
    description:
      - Passphrase protecting the private key, at least 12 characters. Keep it in Ansible Vault.
    type: str
    required: true
  force:
    description:
      - Generate a new key even if O(path) exists (key rotation). The old key is replaced.
    type: bool
    default: false
seealso:
  - module: airgap.llm.bundle_build
  - module: airgap.llm.bundle_ingest
"""

EXAMPLES = r"""
- name: Create the low-side signing key (the passphrase option is never shown, so messages are)
  airgap.llm.bundle_keygen:
    path: /etc/airgap-llm/keys/signer1.key
    passphrase: "{{ vault_bundle_signer1_passphrase }}"
  register: signer1
"""

RETURN = r"""
key_id:
  description: Id of the key (null in check mode when the key would be generated).
  returned: always
  type: str
  sample: 3eeb3a0d87a6b801
public_key:
  description: The public key in PEM (absent in check mode when the key would be generated).
  returned: success
  type: str
public_path:
  description: Path of the public key file.
  returned: always
  type: str
  sample: /etc/airgap-llm/keys/signer1.key.pub
action:
  description: V(generate), V(write_public) or V(none).
  returned: always
  type: str
  sample: none
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (  # noqa: E402
    keygen,
    keygen_plan,
    require_cryptography,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "public_path": {"type": "path"},
            "passphrase": {"type": "str", "required": True, "no_log": True},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    public_path = params["public_path"] or params["path"] + ".pub"
    with fail_on_error(module, f"key pair {params['path']}"):
        if module.check_mode:
            plan = keygen_plan(params["path"], public_path, params["passphrase"], params["force"])
            result = dict(plan, changed=plan["action"] != "none")
        else:
            result = keygen(params["path"], public_path, params["passphrase"], params["force"])
            result["changed"] = result["action"] != "none"
    result["public_path"] = public_path
    module.exit_json(**result)


if __name__ == "__main__":
    main()
