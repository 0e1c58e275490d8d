#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: repo_inventory
short_description: Export the digests an artifact repository holds, for differential bundles
version_added: 0.1.0
description:
  - Lists every blob of the repository (C(blobs/sha256/<hex>) and its size, nothing else, no
    names, no contents) with the repository state and channel versions, and writes it as JSON to
    O(dest). Carry that file to the low side and give it to M(airgap.llm.bundle_build) as
    C(inventory), and files the repository already holds are then left out of the bundle.
  - Reads only directory entries (no blob is read). Writes O(dest) atomically, and only when its
    content changed.
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Reports whether O(dest) would change.
options:
  repository:
    description:
      - Root of the artifact repository.
    type: path
    required: true
  dest:
    description:
      - File to write the inventory to.
    type: path
    required: true
seealso:
  - module: airgap.llm.bundle_build
  - module: airgap.llm.bundle_ingest
"""

EXAMPLES = r"""
- name: Export the repository inventory for the low side
  airgap.llm.repo_inventory:
    repository: /srv/airgap-llm/repo
    dest: /media/usb/inventory.json
"""

RETURN = r"""
dest:
  description: Path of the inventory file.
  returned: always
  type: str
blobs:
  description: Number of blobs listed.
  returned: always
  type: int
  sample: 118
bytes:
  description: Total size of the blobs listed.
  returned: always
  type: int
state:
  description: Repository state sequence number the inventory was taken at.
  returned: always
  type: int
sha256:
  description: SHA-256 of the inventory file's content.
  returned: always
  type: str
"""

import hashlib  # noqa: E402 - after the documentation, as in every Ansible module
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils import _json  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import RepoError, Repository  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    with fail_on_error(module, f"inventory of {params['repository']}", prefix_domain=True):
        repo = Repository(params["repository"])
        if not repo.exists():
            raise RepoError(f"{params['repository']} is not an artifact repository (no blobs/sha256/)")
        inventory = repo.inventory()
        data = _json.dumps(inventory, indent=1)
        try:
            with open(params["dest"], "rb") as handle:
                changed = handle.read() != data
        except FileNotFoundError:
            changed = True
        if changed and not module.check_mode:
            atomic_write(params["dest"], data)
    module.exit_json(
        changed=changed,
        dest=os.path.abspath(params["dest"]),
        blobs=len(inventory["blobs"]),
        bytes=sum(inventory["blobs"].values()),
        state=inventory["state"],
        sha256=hashlib.sha256(data).hexdigest(),
    )


if __name__ == "__main__":
    main()
