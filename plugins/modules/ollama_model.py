#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_model
short_description: Install or remove one Ollama model, verified and atomic
version_added: 0.1.0
description:
  - Installs a model into an Ollama store from a directory in store layout (an export made by
    M(airgap.llm.ollama_export)), from the artifact repository on disk (its root directory, on the
    ingest host or a node with the repository mounted), or from an https URL of the repository's
    Ollama view; or removes it.
  - Each needed blob is hashed while it is copied (one read pass) into a private staging
    directory inside C(blobs/); a digest or size mismatch, an unreadable source or a full disk
    fails the task and removes the staging directory, so the store stays exactly as it was.
    Only when every blob is verified are they fsynced and renamed into place, and the manifest is
    written last, atomically (temporary file, fsync, rename, fsync of the directory).
  - The staging directory is named C(blobs/.airgap-llm-staging-*). Ollama's startup pruning deletes
    plain files in C(blobs/) whose names are not C(sha256-<hex>) but never the contents of a
    directory, so a starting Ollama cannot delete a file mid-install.
  - Idempotent. When the manifest is byte-for-byte the one in C(src) and every blob is intact,
    nothing is copied or rewritten and the source blobs are not read. With O(verify=fast)
    (default) a blob whose stat still matches the verification record is not read either.
  - A damaged blob in the store is replaced from the source. When the manifest changes, blobs of
    the previous version that no other manifest references are removed.
  - O(state=absent) removes the manifest and only the blobs no other manifest references.
  - Runs under the store's exclusive lock (C(.airgap-llm/lock)); a second run waits up to
    O(lock_timeout) seconds.
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
  - airgap.llm.ollama_store
  - airgap.llm.ollama_store.VERIFY
attributes:
  check_mode:
    details:
      - Reports what would be copied, rewritten or removed, from the same checks as a real run.
      - On a new node, where O(ca_file) does not exist yet because an earlier task places it in the real
        run, the repository cannot be read. With O(manifest_digest) the outcome is then predicted from the
        store alone, with a warning; without a pin the task fails.
  diff_mode:
    support: full
    details: Before and after list the manifest digest and the blobs of the model.
options:
  name:
    description:
      - The model, as Ollama names it (C(llama3.2:3b), C(ns/model:tag), C(host/ns/model:tag);
        a missing tag is C(latest)). Names that could leave the store are refused.
    type: str
    required: true
  src:
    description:
      - A local directory in store layout (C(manifests/...) and C(blobs/sha256-<hex>)), or the
        https URL of one (only C(https://); proxies from the environment are not used; redirects
        are followed only to https). The artifact repository serves each model in that layout at
        C(<repository URL>/ollama/<manifest hex>/).
      - Or the root directory of the artifact repository (C(blobs/sha256/), C(states/),
        C(current)), as ingest files it, for example V(/srv/airgap-llm/repo). The model is found
        through the index C(current) serves; when several bundles serve different manifests for it,
        O(manifest_digest) chooses one.
      - Required with O(state=present).
    type: str
  state:
    description:
      - V(present) installs or repairs the model; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  manifest_digest:
    description:
      - Pin, the SHA-256 of the manifest file (what C(ollama list) shows as the ID), as
        C(sha256:<64 hex>) or the 64 hex digits alone. The task fails, changing nothing, if the source
        manifest differs.
    type: str
  owner:
    description:
      - Owner (name or uid) of the blobs, the manifest and directories this module creates.
      - Defaults to the owner of O(path), or the current user when O(path) does not exist yet.
    type: str
  group:
    description:
      - Group (name or gid), as for O(owner).
    type: str
  ca_file:
    description:
      - PEM file of the CA that signed the artifact repository's certificate (for an https O(src)).
        Defaults to the system trust store.
    type: path
  validate_certs:
    description:
      - Whether to verify the server certificate of an https O(src). Leave it on; digests are
        checked either way.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the https server to connect or send data.
    type: float
    default: 60
seealso:
  - module: airgap.llm.ollama_verify
  - module: airgap.llm.ollama_export
notes:
  - O(path) is created when missing. Files are created with mode 0644 and directories with 0755, as
    Ollama creates them.
  - Set C(OLLAMA_NOPRUNE=1) for the Ollama service anyway; a model whose install was interrupted
    leaves blobs without a manifest, which the next run completes.
"""

EXAMPLES = r"""
- name: Install a model from the artifact repository on this host (the ingest host, or a mount)
  airgap.llm.ollama_model:
    name: llama3.2:3b
    path: /var/lib/ollama/models
    src: /srv/airgap-llm/repo
    manifest_digest: sha256:a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72
    owner: ollama
    group: ollama

- name: Install from a verified export (airgap.llm.ollama_export) on the node
  airgap.llm.ollama_model:
    name: nomic-embed-text:v1.5
    path: /var/lib/ollama/models
    src: /var/cache/airgap-llm/export

- name: Install from the artifact repository over https (its Ollama view, by manifest digest)
  airgap.llm.ollama_model:
    name: llama3.2:3b
    path: /var/lib/ollama/models
    src: https://repo.example.internal/ollama/a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72/
    manifest_digest: a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72
    ca_file: /usr/local/share/ca-certificates/airgap-llm-ca.crt
    timeout: 30

- name: Remove a model, keeping blobs other models use
  airgap.llm.ollama_model:
    name: llama3.2:1b
    path: /var/lib/ollama/models
    state: absent
"""

RETURN = r"""
name:
  description: Short model name.
  returned: always
  type: str
  sample: llama3.2:3b
fullname:
  description: Fully qualified model name.
  returned: always
  type: str
  sample: registry.ollama.ai/library/llama3.2:3b
manifest_digest:
  description:
    - SHA-256 of the manifest file installed (present) or removed (absent; null when there was none).
  returned: always
  type: str
  sample: sha256:a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72
size:
  description: Size the manifest declares (config and layers), as C(ollama list) reports it.
  returned: always
  type: int
  sample: 2019393189
blobs_copied:
  description: Digests copied (or, in check mode, that would be copied) into the store.
  returned: always
  type: list
  elements: str
blobs_removed:
  description: Digests removed (or that would be) because no manifest references them any more.
  returned: always
  type: list
  elements: str
bytes_copied:
  description: Bytes copied and hashed from the source.
  returned: always
  type: int
  sample: 2019393189
bytes_hashed:
  description: Bytes of blobs already in the store that were read to check them.
  returned: always
  type: int
  sample: 0
copy_reasons:
  description: For each blob copied, why (C(missing), C(size), C(digest), C(unreadable)) and what was found.
  returned: when O(state=present)
  type: list
  elements: dict
permissions_fixed:
  description: Store paths (relative) whose owner, group or mode were corrected.
  returned: when O(state=present)
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._digest import parse_sha256  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import Owner  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.install import install_model  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.remove import remove_model  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.source import make_source  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import (  # noqa: E402
    Store,
    check_jobs,
    store_argument_spec,
)


def _diff_text(state):
    lines = [f"manifest_digest: {state['manifest_digest']}", "blobs:"]
    lines.extend(f"  - {blob}" for blob in state["blobs"])
    return "\n".join(lines) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **store_argument_spec(verify=True),
            "name": {"type": "str", "required": True},
            "src": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "manifest_digest": {"type": "str"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "ca_file": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "float", "default": 60},
        },
        required_if=[("state", "present", ("src",))],
        supports_check_mode=True,
    )
    params = module.params
    empty = {"name": params["name"], "manifest_digest": None, "blobs_copied": [], "blobs_removed": []}
    what = f"model {params['name']} in store {params['path']}"
    advice = (
        "Blobs are staged and the manifest is written last, so the previous manifest (if any) is still "
        "in place. What to do: fix the cause (permissions, free space, file system) and run again."
    )
    with fail_on_error(module, what, fields=empty, os_advice=advice):
        check_jobs(params["jobs"])
        pin = None
        if params["manifest_digest"] is not None:
            hint = "what 'ollama list' shows as the ID, in full, or the repository index lists"
            pin = "sha256:" + parse_sha256(params["manifest_digest"], "manifest_digest", hint)
        store = Store(params["path"])
        if params["state"] == "absent":
            result = remove_model(
                store, params["name"], check_mode=module.check_mode, lock_timeout=params["lock_timeout"]
            )
        else:
            owner = None
            if params["owner"] is not None or params["group"] is not None:
                owner = Owner.resolve(params["owner"], params["group"])
            source = make_source(
                params["src"], params["ca_file"], params["timeout"], params["validate_certs"], pin
            )
            result = install_model(
                store,
                params["name"],
                source,
                pin=pin,
                owner=owner,
                check_mode=module.check_mode,
                mode=params["verify"],
                jobs=params["jobs"],
                lock_timeout=params["lock_timeout"],
            )
    for warning in result.pop("warnings", []):
        module.warn(warning)
    diff = result.pop("diff", None)
    if module._diff and diff is not None:
        result["diff"] = {"before": _diff_text(diff["before"]), "after": _diff_text(diff["after"])}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
