#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_verify
short_description: Verify the manifests and blobs of an Ollama model store
version_added: 0.1.0
description:
  - Checks every manifest of an Ollama store (or the models named) against the schema Ollama
    writes, and every blob they reference against its SHA-256 digest and size.
  - Ollama itself checks digests only while pulling; a blob damaged on disk goes unnoticed until
    a model fails to load. This module is the check.
  - Hashing runs in parallel threads (C(jobs)); C(hashlib) releases the GIL, so two threads use two
    cores.
  - A full pass writes a verification record, C(.airgap-llm/verified.json) in the store (outside
    C(blobs/), so Ollama never prunes it). With O(mode=fast) a blob whose device, inode, size,
    mtime and ctime still match the record is not read again.
  - Any problem other than a reported orphan fails the task, with a message naming each model,
    blob, expected and actual value, and what to do.
  - Takes the store lock shared, so it waits for a running M(airgap.llm.ollama_model).
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
  - airgap.llm.ollama_store
attributes:
  check_mode:
    details: The store is read the same way; the verification record is not written.
options:
  models:
    description:
      - Model names to verify, as Ollama accepts them (C(llama3.2:3b), C(ns/model:tag),
        C(host/ns/model:tag); a missing tag is C(latest)).
      - Empty means every manifest in the store.
    type: list
    elements: str
    default: []
  mode:
    description:
      - V(full) hashes every referenced blob.
      - V(fast) trusts a blob whose device, inode, size, mtime_ns and ctime_ns match the
        verification record written by an earlier pass, and hashes the rest.
    type: str
    choices: [full, fast]
    default: full
  orphans:
    description:
      - What to do with files in C(blobs/) that no manifest references (Ollama deletes them when
        it starts unless C(OLLAMA_NOPRUNE) is set).
      - V(report) lists them in RV(problems) without failing; V(fail) fails the task; V(ignore)
        does not look.
    type: str
    choices: [ignore, report, fail]
    default: report
seealso:
  - module: airgap.llm.ollama_model
  - module: airgap.llm.ollama_export
notes:
  - Only manifests exactly four directory levels under C(manifests/) are considered, as Ollama
    does. Symbolic links inside the store are reported, never followed.
"""

EXAMPLES = r"""
- name: Verify every model, hashing every blob
  airgap.llm.ollama_verify:
    path: /usr/share/ollama/.ollama/models

- name: Quick check before starting Ollama (re-reads only blobs that changed since the last full pass)
  airgap.llm.ollama_verify:
    path: /usr/share/ollama/.ollama/models
    mode: fast

- name: Verify two models with one worker and fail on unreferenced blobs
  airgap.llm.ollama_verify:
    path: /srv/ollama/models
    models:
      - llama3.2:3b
      - nomic-embed-text
    jobs: 1
    orphans: fail
  register: verified
"""

RETURN = r"""
models:
  description: One entry per model whose manifest could be read.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Short model name, as C(ollama list) shows it.
      type: str
      sample: llama3.2:3b
    fullname:
      description: Fully qualified name.
      type: str
      sample: registry.ollama.ai/library/llama3.2:3b
    manifest_digest:
      description: SHA-256 of the manifest file, the digest C(ollama list) reports.
      type: str
      sample: sha256:a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72
    size:
      description: Sum of the sizes the manifest declares (config and layers).
      type: int
      sample: 2019393189
    blobs:
      description:
        - Each blob once, with C(digest), C(size), C(media_type) and C(status) (V(ok) or a
          problem kind).
      type: list
      elements: dict
    ok:
      description: Whether every blob of the model is intact.
      type: bool
problems:
  description:
    - Everything found wrong. C(kind) is one of V(missing), V(size), V(digest), V(unreadable),
      V(manifest), V(orphan); C(model) and C(digest) are null where they do not apply; C(path) is
      relative to the store; C(hint) says what to do.
  returned: always
  type: list
  elements: dict
  sample:
    - model: llama3.2:3b
      digest: sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff
      kind: digest
      expected: sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff
      actual: sha256:5e1b2cd3a14bd3f3c2e4b5e4cf0c5f0f5a0b2d9c3d58c6d1a7c1d7d3e4f5a6b7
      path: blobs/sha256-dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff
      hint: the blob is corrupt or was altered; install the model again with airgap.llm.ollama_model
bytes_hashed:
  description: Bytes read and hashed in this run (0 for an unchanged store in V(fast) mode).
  returned: always
  type: int
  sample: 2019393189
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - after the documentation, as Ansible modules are
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import (  # noqa: E402
    Store,
    check_jobs,
    store_argument_spec,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.verify import format_problems, verify_store  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **store_argument_spec(),
            "models": {"type": "list", "elements": "str", "default": []},
            "mode": {"type": "str", "choices": ["full", "fast"], "default": "full"},
            "orphans": {"type": "str", "choices": ["ignore", "report", "fail"], "default": "report"},
        },
        supports_check_mode=True,
    )
    params = module.params
    empty = {"models": [], "problems": [], "bytes_hashed": 0}
    what = f"verification of store {params['path']}"
    with fail_on_error(module, what, fields=empty):
        check_jobs(params["jobs"])
        store = Store(params["path"])
        store.check_layout(must_exist=True)
        with store.lock(exclusive=False, timeout=params["lock_timeout"], create=False):
            result = verify_store(
                store,
                models=params["models"],
                mode=params["mode"],
                jobs=params["jobs"],
                orphans=params["orphans"],
                write_record=not module.check_mode,
            )
    for warning in result.pop("warnings"):
        module.warn(warning)
    failing = [p for p in result["problems"] if p["kind"] != "orphan" or params["orphans"] == "fail"]
    if failing:
        module.fail_json(
            msg=f"Ollama store {params['path']}: {len(failing)} problem(s): {format_problems(failing)}",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
