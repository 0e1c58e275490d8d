#!/usr/bin/python
# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: wheelhouse
short_description: Download exact Python wheels for a target Python and lock every one by SHA-256 (low side)
version_added: 0.2.0
description:
  - Makes a wheelhouse on the low side, for a bundle artifact of kind C(wheelhouse), made of the wheels of
    exact pins, downloaded by C(pip download --only-binary=:all:) for the target node's Python
    (version, implementation, ABIs, platforms), never for the machine that runs the task, and
    C(requirements.lock), a pip requirements file that pins every wheel of the directory by name,
    version and SHA-256.
  - A node installs the wheelhouse with C(pip install --no-index --no-deps --require-hashes
    --find-links <dir> -r requirements.lock), so nothing is resolved or downloaded there, and every
    wheel is checked against the lock, whose own digest the role pins.
  - The wheels come from O(requirements) resolved with their dependencies (every pin exact,
    C(name==version)), from O(no_deps) taken without theirs (a package whose dependency list
    another set replaces, as Open WebUI's C(requirements-slim.txt) does), or from an earlier
    O(lock) reproduced exactly (each wheel checked against its recorded digest by pip).
  - O(dest) is replaced whole (built beside it and renamed) or left as it was. It is left alone
    when its lock records the same request and its wheels match the lock.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: Reports whether the wheelhouse would be downloaded; runs no pip and writes nothing.
options:
  dest:
    description:
      - The wheelhouse directory to make (its parent is created).
    type: path
    required: true
  requirements:
    description:
      - Exact pins (C(name==version), extras allowed) resolved with their dependencies.
    type: list
    elements: str
    default: []
  no_deps:
    description:
      - Exact pins downloaded without their dependencies.
    type: list
    elements: str
    default: []
  constraints:
    description:
      - Exact pins that constrain the resolution of O(requirements), for example V(torch==2.13.0+cpu).
    type: list
    elements: str
    default: []
  lock:
    description:
      - A C(requirements.lock) written earlier by this module, to reproduce exactly. Mutually
        exclusive with the pins.
    type: path
  python_version:
    description:
      - The target's Python version, V(3.11) for Debian 12.
    type: str
    required: true
  implementation:
    description:
      - The target's Python implementation.
    type: str
    choices: [cp, py]
    default: cp
  platform:
    description:
      - The target's newest wheel platform tag; for C(manylinux_2_N_<arch>) every older glibc level
        and its legacy alias are accepted too. V(manylinux_2_36_x86_64) is Debian 12 on amd64.
    type: str
    default: manylinux_2_36_x86_64
  index_url:
    description:
      - The package index to download from (pip's configured index when not set).
    type: str
  find_links:
    description:
      - Directories or URLs with wheels to use besides the index (pip C(--find-links)).
    type: list
    elements: str
    default: []
  no_index:
    description:
      - Use O(find_links) only, no index.
    type: bool
    default: false
  pip:
    description:
      - The pip command, as a list (default the Python running the module, C(-m pip)).
    type: list
    elements: str
    default: []
notes:
  - Runs on the low side, with access to the package index. Bundle the result with
    M(airgap.llm.bundle_build) as an artifact of kind C(wheelhouse) and C(path) the directory.
seealso:
  - module: airgap.llm.bundle_build
"""

EXAMPLES = r"""
- name: Open WebUI 0.12.4, slim set, for Debian 12 (python 3.11 on amd64)
  airgap.llm.wheelhouse:
    dest: /srv/low-side/open-webui-0.12.4-slim
    no_deps: [open-webui==0.12.4]
    requirements: "{{ lookup('ansible.builtin.file', 'requirements-slim.txt').splitlines()
      | map('regex_replace', '\\s*#.*$', '') | select | list }}"
    python_version: "3.11"
    platform: manylinux_2_36_x86_64

- name: The same wheelhouse again, months later, byte for byte
  airgap.llm.wheelhouse:
    dest: /srv/low-side/open-webui-0.12.4-slim
    lock: /srv/low-side/locks/open-webui-0.12.4-slim.lock
    python_version: "3.11"
"""

RETURN = r"""
dest:
  description: The wheelhouse directory.
  returned: always
  type: str
  sample: /srv/low-side/open-webui-0.12.4-slim
lock_sha256:
  description:
    - SHA-256 of C(requirements.lock), the pin a role installs by; null in check mode before a download.
  returned: always
  type: str
  sample: 2c6e0a4a8c0c8d6b0d1f0f1c5e7d2b9a4a6f8e1c3b5d7f9a0c2e4f6a8b0d2f4a
wheels:
  description: Every wheel, with C(name), C(version), C(sha256) and C(filename).
  returned: always
  type: list
  elements: dict
count:
  description: How many wheels the wheelhouse holds.
  returned: always
  type: int
  sample: 176
target:
  description: The target the wheels are for (Python version, implementation, platforms accepted).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import read_bounded  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.wheelhouse import (  # noqa: E402
    MAX_LOCK,
    Target,
    download,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "requirements": {"type": "list", "elements": "str", "default": []},
            "no_deps": {"type": "list", "elements": "str", "default": []},
            "constraints": {"type": "list", "elements": "str", "default": []},
            "lock": {"type": "path"},
            "python_version": {"type": "str", "required": True},
            "implementation": {"type": "str", "choices": ["cp", "py"], "default": "cp"},
            "platform": {"type": "str", "default": "manylinux_2_36_x86_64"},
            "index_url": {"type": "str"},
            "find_links": {"type": "list", "elements": "str", "default": []},
            "no_index": {"type": "bool", "default": False},
            "pip": {"type": "list", "elements": "str", "default": []},
        },
        mutually_exclusive=[("lock", "requirements"), ("lock", "no_deps"), ("lock", "constraints")],
        supports_check_mode=True,
    )
    params = module.params
    with fail_on_error(module, f"wheelhouse {params['dest']}", fields={"dest": params["dest"]}):
        target = Target.make(params["python_version"], params["implementation"], params["platform"])
        index_args = []
        if params["no_index"]:
            index_args.append("--no-index")
        elif params["index_url"]:
            index_args += ["--index-url", params["index_url"]]
        for link in params["find_links"]:
            index_args += ["--find-links", link]
        lock = read_bounded(params["lock"], MAX_LOCK, follow_symlinks=True) if params["lock"] else None
        changed, wheels, lock_sha256 = download(
            params["dest"],
            target,
            requirements=params["requirements"],
            no_deps=params["no_deps"],
            constraints=params["constraints"],
            lock=lock,
            pip=params["pip"],
            index_args=index_args,
            check_mode=module.check_mode,
        )
    module.exit_json(
        changed=changed,
        dest=params["dest"],
        lock_sha256=lock_sha256,
        wheels=[w._asdict() for w in wheels],
        count=len(wheels),
        target={
            "python_version": target.python_version,
            "implementation": target.implementation,
            "platforms": list(target.platforms),
            "abis": list(target.abis),
        },
    )


if __name__ == "__main__":
    main()
