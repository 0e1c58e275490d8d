#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: repo_list
short_description: List what the artifact repository serves (high side)
version_added: 0.2.0
description:
  - Reads the repository's C(current) state and lists every artifact version it serves, with its
    name, version, kind, total size, digest (of its one file, or a model's manifest digest; every
    file of a multi-file artifact with its own digest), the bundle that brought it (channel,
    version, digest), and when and by whom that bundle was ingested.
  - Returns the rows for tools (C(artifacts)) and the same as aligned text lines for people
    (C(lines); C(playbooks/repo_list.yml) prints them). M(airgap.llm.bundle_ingest) reports what an
    ingest added and found already there in the same shape.
  - Reads only the index, the state and each bundle's C(ingest.json); no blob is read.
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: The module only reads; check mode lists the same.
options:
  repository:
    description:
      - Root of the artifact repository (the directory holding C(blobs/), C(states/) and C(current)).
    type: path
    required: true
  names:
    description:
      - Only these artifacts, each as V(name) (every version) or V(name:version). A name the
        repository does not serve fails the task, listing the names it serves.
    type: list
    elements: str
    default: []
seealso:
  - module: airgap.llm.bundle_ingest
  - module: airgap.llm.repo_inventory
  - plugin: airgap.llm.repo_index
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: List what the repository serves
  airgap.llm.repo_list:
    repository: /srv/airgap-llm/repo
  register: served

- name: Show it
  ansible.builtin.debug:
    msg: "{{ served.lines }}"

- name: The pinned digest of one model, for the ollama_models lock
  airgap.llm.repo_list:
    repository: /srv/airgap-llm/repo
    names: ["llama3.2:3b"]
  register: model
"""

RETURN = r"""
repository:
  description: Absolute path of the repository.
  returned: always
  type: str
current:
  description: The state C(current) points at, relative to the repository (null when none yet).
  returned: always
  type: str
  sample: states/000007
state:
  description: Sequence number of that state (0 when none yet).
  returned: always
  type: int
channels:
  description: Per channel, the version and bundle digest served.
  returned: always
  type: dict
  sample:
    stable:
      version: 43
      bundle_sha256: 5540f238b4d216a56701d19765a9e3f4cead5616292151c68ded08ba83da8f9b
artifacts:
  description: One row per artifact version served, sorted by name and version.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Logical name.
      type: str
    version:
      description: Version.
      type: str
    kind:
      description: Kind (C(file), C(ollama), C(model), C(wheelhouse), C(deb), ...).
      type: str
    size:
      description: Bytes of all its files.
      type: int
    digest:
      description:
        - C(sha256:<hex>) of its only file; for a model its manifest digest (the pin of
          C(ollama_models_list)); null when it has several files (see C(files)).
      type: str
    files:
      description: Every file, with C(path) (inside the artifact), C(sha256) and C(size).
      type: list
      elements: dict
    channel:
      description: Channel of the bundle that brought it.
      type: str
    bundle_version:
      description: Version of that bundle.
      type: int
    bundle_sha256:
      description: Outer digest of that bundle.
      type: str
    ingested_at:
      description: When that bundle was ingested (UTC).
      type: str
      sample: "2026-11-29T11:49:38.532249Z"
    ingested_by:
      description: Who ingested it (the ingest's operator).
      type: str
    model:
      description: For models, the Ollama model name.
      type: str
      returned: for models
    suites:
      description: For C(.deb) artifacts built for given Debian releases, those releases.
      type: list
      elements: str
      returned: when the bundle named them
lines:
  description: The same as aligned text, a header line first, for the play output.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.listing import list_repository  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "path", "required": True},
            "names": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    with fail_on_error(module, f"listing of {params['repository']}", prefix_domain=True):
        result = list_repository(params["repository"], params["names"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
