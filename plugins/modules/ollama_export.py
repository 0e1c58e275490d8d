#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_export
short_description: Export Ollama models (manifest plus exactly the blobs it references) for transfer
version_added: 0.1.0
description:
  - Writes O(dest)C(/manifests/...) (the manifest files byte for byte), O(dest)C(/blobs/sha256-<hex>)
    (each referenced blob once, shared blobs once) and O(dest)C(/models.json) (name, manifest
    digest, blob digests and sizes, C(exported_at)).
  - Every blob is hashed while it is copied; a corrupt or truncated source blob fails the task and
    leaves O(dest) as it was (blobs are staged in O(dest)C(/blobs/.airgap-llm-staging-*)).
  - Idempotent. Blobs already in O(dest) and intact are not copied again (V(fast) trusts the
    verification record in O(dest)C(/.airgap-llm/)); C(models.json) keeps its C(exported_at) when
    nothing else changed.
  - O(dest) must be empty, missing, or an earlier export. Manifests and blobs of an earlier export
    that this export no longer contains are removed, so O(dest) holds exactly O(models).
  - O(dest)C(/.airgap-llm/) holds local state (lock, verification record); bundles should leave it out.
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
  - airgap.llm.ollama_store
  - airgap.llm.ollama_store.VERIFY
attributes:
  check_mode:
    details: Reports what would be copied, written or removed.
options:
  models:
    description:
      - Model names to export (C(llama3.2:3b), C(ns/model:tag), C(host/ns/model:tag)). Empty means
        every manifest in the store.
    type: list
    elements: str
    default: []
  dest:
    description:
      - Directory to write the export into; created when missing.
    type: path
    required: true
seealso:
  - module: airgap.llm.ollama_model
  - module: airgap.llm.ollama_verify
notes:
  - O(path) is the source store, read under its shared lock; O(verify) and O(jobs) apply to the blobs
    already in O(dest), and O(lock_timeout) to both locks.
"""

EXAMPLES = r"""
- name: Export two models for the bundle
  airgap.llm.ollama_export:
    path: /usr/share/ollama/.ollama/models
    models:
      - llama3.2:3b
      - nomic-embed-text:latest
    dest: /srv/bundle/staging/models
  register: exported

- name: Export every model in a store
  airgap.llm.ollama_export:
    path: /var/lib/ollama/models
    dest: /srv/bundle/staging/models
"""

RETURN = r"""
dest:
  description: The export directory.
  returned: always
  type: str
  sample: /srv/bundle/staging/models
models:
  description:
    - The models exported, as written to C(models.json) (C(name), C(fullname), C(manifest_path),
      C(manifest_digest), C(size), C(blobs) with C(digest), C(size), C(media_type)).
  returned: always
  type: list
  elements: dict
blobs_copied:
  description: Digests copied (or that would be, in check mode).
  returned: always
  type: list
  elements: str
blobs_removed:
  description: Digests of an earlier export removed from O(dest) because no exported model uses them.
  returned: always
  type: list
  elements: str
manifests_written:
  description: Models whose manifest file was written.
  returned: always
  type: list
  elements: str
manifests_removed:
  description: Models of an earlier export removed from O(dest).
  returned: always
  type: list
  elements: str
bytes_copied:
  description: Bytes copied and hashed.
  returned: always
  type: int
  sample: 2019393189
bytes_hashed:
  description: Bytes of blobs already in O(dest) read to check them.
  returned: always
  type: int
  sample: 0
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.export import export_models  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import (  # noqa: E402
    Store,
    check_jobs,
    store_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **store_argument_spec(verify=True),
            "models": {"type": "list", "elements": "str", "default": []},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    empty = {"dest": params["dest"], "models": [], "blobs_copied": [], "blobs_removed": []}
    what = f"export of {params['path']} to {params['dest']}"
    with fail_on_error(module, what, fields=empty):
        check_jobs(params["jobs"])
        result = export_models(
            Store(params["path"]),
            params["models"],
            params["dest"],
            check_mode=module.check_mode,
            mode=params["verify"],
            jobs=params["jobs"],
            lock_timeout=params["lock_timeout"],
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
