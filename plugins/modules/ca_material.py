#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_material
short_description: Import or create the root and intermediate of the internal CA, checked, keys never shown
version_added: 0.2.0
description:
  - Puts the material step-ca needs into the CA directory O(path) in upstream's layout
    (C(certs/root_ca.crt), C(certs/intermediate_ca.crt), C(secrets/intermediate_ca_key)), or, without
    O(path), only checks the material given for import (on the controller, before anything changes on
    the CA host).
  - V(import) (the root was made offline) checks the given root, intermediate and encrypted intermediate
    key with the CA password and writes the files that differ. The root must be self-signed, both must be
    CA certificates within their validity, the intermediate must be signed by the root's key and expire
    before it, the key must be encrypted, open with the password and belong to the intermediate.
  - V(generate) (when the operator allows the CA to make its own root) keeps the material in O(path) when it
    checks out with the password, and otherwise makes what is missing with C(cryptography) on the CA host,
    an EC root (its key encrypted with the password in C(secrets/root_ca_key), mode C(0400) root only) and an
    intermediate it signs, or only a new intermediate when the root and its key are there.
  - Keys are written encrypted (PKCS#8, the best encryption C(cryptography) offers) to a temporary file,
    flushed and renamed. The intermediate key is C(0440) C(root:)O(key_group), so that only the CA's
    service reads it. No message, return value or diff holds key material or the password.
requirements:
  - cryptography
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Checks the material and the password and reports what would be written; in V(generate) mode the
      certificates that would be made cannot be shown before they exist.
  diff_mode:
    support: full
    details: Shows subjects, SHA-256 fingerprints and expiry of the root and the intermediate, never keys.
options:
  path:
    description:
      - The CA directory (C(STEPPATH)), which must hold the directories C(certs) and C(secrets). Omit it to
        check the O(mode=import) material only.
    type: path
  mode:
    description:
      - V(import) the given material, or V(generate) it on this host when it is missing.
    type: str
    choices: [import, generate]
    required: true
  password:
    description:
      - The CA password that encrypts the intermediate key (and the root key in V(generate) mode). From
        Ansible Vault or an AWX credential.
    type: str
    required: true
  root_certificate:
    description:
      - PEM root certificate (O(mode=import)).
    type: str
  intermediate_certificate:
    description:
      - PEM intermediate certificate (O(mode=import)).
    type: str
  intermediate_key:
    description:
      - PEM intermediate key encrypted with O(password) (O(mode=import)).
    type: str
  name:
    description:
      - Name of a generated CA; the certificates are C(<name> Root CA) and C(<name> Intermediate CA) with
        organization C(<name>).
    type: str
    default: airgap.llm internal CA
  key_type:
    description:
      - Keys of a generated CA.
    type: str
    choices: [ec-p256, ec-p384]
    default: ec-p256
  root_validity_days:
    description:
      - Days a generated root is valid.
    type: int
    default: 3650
  intermediate_validity_days:
    description:
      - Days a generated intermediate is valid (less than the root).
    type: int
    default: 1825
  key_group:
    description:
      - Group that may read the intermediate key (the CA service's group).
    type: str
seealso:
  - module: airgap.llm.systemd_unit
"""

EXAMPLES = r"""
- name: Check the imported CA material on the controller before anything changes
  airgap.llm.ca_material:
    mode: import
    password: "{{ vault_step_ca_password }}"
    root_certificate: "{{ lookup('ansible.builtin.file', 'files/root_ca.crt') }}"
    intermediate_certificate: "{{ lookup('ansible.builtin.file', 'files/intermediate_ca.crt') }}"
    intermediate_key: "{{ vault_step_ca_intermediate_key }}"
  delegate_to: localhost

- name: Create the CA on this host unless it has one
  airgap.llm.ca_material:
    path: /etc/step-ca
    mode: generate
    password: "{{ vault_step_ca_password }}"
    name: Example Site CA
    key_group: step
  register: ca
"""

RETURN = r"""
action:
  description: V(none), V(update) (files written or modes fixed), V(create) (a new root and intermediate) or
    V(intermediate) (a new intermediate for the existing root).
  returned: always
  type: str
  sample: none
written:
  description: Files written or whose mode or owner was fixed (or would be, in check mode).
  returned: always
  type: list
  elements: str
root_certificate:
  description: The root certificate in PEM (null in check mode when it is still to be made).
  returned: always
  type: str
root_subject:
  description: Subject of the root.
  returned: always
  type: str
  sample: CN=Example Site CA Root CA,O=Example Site CA
root_fingerprint:
  description: SHA-256 of the root certificate (DER), lower-case hex.
  returned: always
  type: str
root_not_after:
  description: When the root expires (UTC, ISO 8601).
  returned: always
  type: str
intermediate_subject:
  description: Subject of the intermediate.
  returned: always
  type: str
intermediate_fingerprint:
  description: SHA-256 of the intermediate certificate (DER), lower-case hex.
  returned: always
  type: str
intermediate_not_after:
  description: When the intermediate expires (UTC, ISO 8601).
  returned: always
  type: str
expiry_warnings:
  description: Problems that do not stop the CA yet (an intermediate that expires within 30 days), also
    shown as warnings.
  returned: always
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._pki import (  # noqa: E402
    PkiError,
    check_material,
    describe_material,
    make_material,
    material_summary,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (  # noqa: E402
    require_cryptography,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "mode": {"type": "str", "required": True, "choices": ["import", "generate"]},
            "password": {"type": "str", "required": True, "no_log": True},
            "root_certificate": {"type": "str"},
            "intermediate_certificate": {"type": "str"},
            "intermediate_key": {"type": "str", "no_log": True},
            "name": {"type": "str", "default": "airgap.llm internal CA"},
            "key_type": {"type": "str", "default": "ec-p256", "choices": ["ec-p256", "ec-p384"]},
            "root_validity_days": {"type": "int", "default": 3650},
            "intermediate_validity_days": {"type": "int", "default": 1825},
            "key_group": {"type": "str", "no_log": False},
        },
        required_if=[
            ("mode", "import", ("root_certificate", "intermediate_certificate", "intermediate_key"))
        ],
        required_by={"key_group": "path"},
        supports_check_mode=True,
    )
    require_cryptography(module)
    p = module.params
    if p["path"] is None and p["mode"] != "import":
        module.fail_json(
            msg="ca_material without path checks imported material only: give mode=import, or a path."
        )
    with fail_on_error(module, f"CA material in {p['path'] or 'the inventory'}", (PkiError,)):
        if p["path"] is None:
            material = check_material(
                p["root_certificate"], p["intermediate_certificate"], p["intermediate_key"], p["password"]
            )
            result = dict(
                material_summary(material), action="none", written=[], expiry_warnings=material.warnings
            )
            result["changed"] = False
        else:
            result = make_material(
                p["path"],
                p["mode"],
                p["password"],
                p["key_group"],
                check_mode=module.check_mode,
                root_pem=p["root_certificate"],
                intermediate_pem=p["intermediate_certificate"],
                intermediate_key_pem=p["intermediate_key"],
                name=p["name"],
                key_type=p["key_type"],
                root_days=p["root_validity_days"],
                intermediate_days=p["intermediate_validity_days"],
            )
    for warning in result["expiry_warnings"]:
        module.warn(warning)
    before = result.pop("before", "")
    if module._diff and result["changed"]:
        after = describe_material(result) or "(a new root and intermediate, made on the CA host)\n"
        if result["action"] == "update":
            after += "".join(f"written: {path}\n" for path in result["written"])
        result["diff"] = {
            "before_header": f"{p['path']} (public side)",
            "after_header": f"{p['path']} (public side)",
            "before": before,
            "after": after,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
