#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact
short_description: Fetch one artifact from the internal repository, checked against its SHA-256
version_added: 0.1.0
description:
  - Places one file at O(dest) from an https O(url) (normally a blob of the internal artifact
    repository) or from a file O(src) on the managed node, and only if its bytes hash to O(sha256).
  - The bytes are hashed while they stream (one pass), written to a temporary name beside O(dest),
    given O(mode), O(owner) and O(group), flushed to disk and renamed over O(dest). A source that
    does not match the digest is refused and O(dest) is left as it was.
  - An interrupted download (dropped connection, timeout, killed process) keeps what it received in
    C(.<name>.<first 16 digits of sha256>.part) beside O(dest); the next run asks the server only for
    the rest with an HTTP C(Range) request, hashing the kept prefix once from disk.
  - When O(dest) already holds the artifact nothing is transferred. Whether it does is decided without
    reading it again when its device, inode, size, modification and change times equal those recorded
    when it was last hashed or written (the verification record, O(record)); otherwise it is hashed
    once and the record updated. Any write, C(touch) or replacement changes the change time, so a
    modified file is always hashed again.
  - Resolve a logical name and version to the O(url) and O(sha256) of a blob with the
    P(airgap.llm.repo_index#lookup) lookup.
  - O(files) places several artifacts in one task (the files of a wheelhouse, say), each exactly as a
    single one is placed, with the options that are not per file shared.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
  - airgap.llm.tls_client
attributes:
  check_mode:
    details: Reports whether the artifact would be transferred or its attributes changed; contacts no server
      and writes nothing, not even the verification record. A O(dest) whose directory does not exist yet
      (an earlier task creates it in the real run) is reported as a transfer to a new file.
  diff_mode:
    support: full
    details: The diff shows digest, size, mode, owner and group of O(dest) before and after.
options:
  dest:
    description:
      - The file to create or replace. Its directory must exist; in check mode a missing directory is
        taken to be created by an earlier task, unless a part of its path is a file.
      - Required unless O(files) is given.
    type: path
  files:
    description:
      - Several artifacts to place, each a mapping with C(dest), C(sha256), C(url) or C(src), and
        optional C(size), as the options of the same names. Mutually exclusive with those options.
    type: list
    elements: dict
  url:
    description:
      - The https URL to download, for example C(https://repo.example/blobs/sha256/<digest>).
      - Exactly one of O(url) and O(src) is required.
    type: str
  src:
    description:
      - A file on the managed node to copy, for example from mounted transfer media.
    type: path
  sha256:
    description:
      - The SHA-256 the artifact must have, as 64 hexadecimal digits, optionally prefixed C(sha256:).
      - Required unless O(files) is given.
    type: str
  size:
    description:
      - The size in bytes the artifact must have, when known (the repository index lists it). A source
        that proves longer is cut off at once instead of being read to the end.
    type: int
  timeout:
    description:
      - Seconds to wait for the connection and for each read from the server. A transfer that stalls
        longer is interrupted and can be resumed by the next run.
  resume:
    description:
      - Keep the bytes of an interrupted download and continue from them on the next run.
      - With V(false) an interrupted download leaves nothing behind and the next run starts over.
    type: bool
    default: true
  owner:
    description:
      - User name (or numeric id) that owns O(dest). By default a new file belongs to the connecting
        user and an existing one keeps its owner.
    type: str
  group:
    description:
      - Group name (or numeric id) of O(dest), defaulting as O(owner) does.
    type: str
  mode:
    description:
      - Permissions of O(dest) as an octal string such as V('0644'). Symbolic modes are not supported.
    type: raw
    default: "0644"
  record:
    description:
      - The verification record that lets later runs trust an unchanged O(dest) without reading it. It is
        ignored (and every destination hashed) unless it is a regular file owned by the connecting user or
        root that group and others cannot write.
    type: path
    default: /var/lib/airgap-llm/artifact-record.json
notes:
  - The temporary and partial files live in the directory of O(dest), so that the final rename is
    atomic; that file system needs room for a second copy while a replacement is transferred.
  - A partial file is only continued for the same O(dest) and O(sha256); a complete download with the
    wrong digest is deleted, never resumed.
seealso:
  - plugin: airgap.llm.repo_index
    plugin_type: lookup
    description: Resolve a logical name and version to the URL and digest of its blob.
"""

EXAMPLES = r"""
- name: Resolve the Ollama release through the repository index
  ansible.builtin.set_fact:
    ollama_release: "{{ lookup('airgap.llm.repo_index', 'ollama:0.33.0', base_url='https://repo.example',
      ca_file='/etc/airgap-llm/ca.crt') }}"

- name: Fetch it, checked against its digest
  airgap.llm.artifact:
    url: "{{ ollama_release.url }}"
    sha256: "{{ ollama_release.sha256 }}"
    size: "{{ ollama_release.size }}"
    dest: /var/cache/airgap-llm/ollama-linux-amd64.tar.zst
    ca_file: /etc/airgap-llm/ca.crt
    client_cert: /etc/airgap-llm/client.crt
    client_key: /etc/airgap-llm/client.key
    owner: root
    group: root
    mode: "0644"

- name: Fetch every file of a wheelhouse in one task
  airgap.llm.artifact:
    files: >-
      {%- set out = [] -%}
      {%- for file in wheelhouse.files -%}
        {%- set _ = out.append({'url': file.url, 'sha256': file.sha256, 'size': file.size,
                                'dest': '/var/cache/airgap-llm/wheels/' ~ file.path}) -%}
      {%- endfor -%}
      {{ out }}
    ca_file: /etc/airgap-llm/ca.crt
    mode: "0644"
  vars:
    wheelhouse: "{{ lookup('airgap.llm.repo_index', 'open-webui-wheels-slim:0.12.4',
      base_url='https://repo.example', ca_file='/etc/airgap-llm/ca.crt') }}"

- name: Copy an artifact from mounted transfer media
  airgap.llm.artifact:
    src: /media/usb/step-ca_linux_0.30.0_amd64.tar.gz
    sha256: sha256:8a4f2c1d0b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a
    dest: /var/cache/airgap-llm/step-ca_linux_0.30.0_amd64.tar.gz
    mode: "0640"
"""

RETURN = r"""
dest:
  description: The absolute path of the destination.
  returned: always
  type: str
  sample: /var/cache/airgap-llm/ollama-linux-amd64.tar.zst
sha256:
  description: The digest O(dest) has (or will have, in check mode).
  returned: always
  type: str
  sample: 8a4f2c1d0b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a
size:
  description: The size of O(dest) in bytes; in check mode before a transfer, O(size) (null if not given).
  returned: always
  type: int
  sample: 1048576
source:
  description: The O(url) or O(src) the artifact comes from.
  returned: always
  type: str
  sample: https://repo.example/blobs/sha256/8a4f2c1d0b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a
verified_by:
  description:
    - How the content of O(dest) was established. V(record) means the verification record matched its
      stat data and nothing was read; V(hash) means it was read and hashed; V(transfer) means it was
      hashed while it was transferred; null means O(dest) (or its directory) did not exist (check mode).
  returned: always
  type: str
  sample: record
transferred:
  description: Bytes received from the source by this run (0 when nothing was transferred).
  returned: always
  type: int
  sample: 524288
resumed_from:
  description:
    - Bytes of an earlier, interrupted download that were kept and not transferred again (0 when the
      transfer started at the beginning). In check mode, the size of the partial file a real run would
      continue.
  returned: always
  type: int
  sample: 524288
record_ignored:
  description: Why the verification record was not trusted (null when it was, or when there was none).
  returned: always
  type: str
  sample: it is writable by group or others (mode 0666)
files:
  description:
    - With O(files), the result of each file (C(dest), C(sha256), C(size), C(source), C(verified_by),
      C(transferred), C(resumed_from), C(changed)), in the order given; the top-level C(transferred) is
      their sum. The other top-level keys are then absent.
  returned: when O(files) is given
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import tls_argument_spec, tls_options  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.place import (  # noqa: E402
    DEFAULT_RECORD,
    ArtifactError,
    Placement,
    place,
)


def _placement(params, item=None):
    if params["timeout"] <= 0:
        raise ArtifactError(f"timeout must be more than 0 seconds, got {params['timeout']}")
    item = item if item is not None else params
    return Placement(
        dest=item["dest"],
        sha256=item["sha256"],
        url=item.get("url"),
        src=item.get("src"),
        size=item.get("size"),
        owner=params["owner"],
        group=params["group"],
        mode=params["mode"],
        record=params["record"],
        resume=params["resume"],
        fetch_options=tls_options(params),
    )


def _place_files(module, params):
    """Place every item of ``files``; the per-file results and their sum."""
    results = []
    for number, item in enumerate(params["files"]):
        where = f"files[{number}]"
        unknown = sorted(set(item) - {"dest", "sha256", "url", "src", "size"})
        if (
            unknown
            or not item.get("dest")
            or not item.get("sha256")
            or bool(item.get("url")) == bool(item.get("src"))
        ):
            raise ArtifactError(
                f"{where} must be a mapping with dest, sha256, url or src (one of them) and optional size"
                + (f"; unknown keys: {', '.join(unknown)}" if unknown else "")
            )
        wanted = dict(item)
        if wanted.get("size") is not None and not isinstance(wanted["size"], int):
            try:
                wanted["size"] = int(wanted["size"])
            except (TypeError, ValueError):
                raise ArtifactError(f"{where}.size must be a number of bytes, got {item['size']!r}") from None
        done = place(_placement(params, wanted), check_mode=module.check_mode)
        done.pop("record_ignored", None)
        results.append(done)
    diffs = [r.pop("diff") for r in results if "diff" in r]
    out = {
        "changed": any(r["changed"] for r in results),
        "files": results,
        "transferred": sum(r["transferred"] for r in results),
    }
    if diffs:
        out["diff"] = diffs
    return out


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path"},
            "files": {"type": "list", "elements": "dict"},
            "url": {"type": "str"},
            "src": {"type": "path"},
            "sha256": {"type": "str"},
            "size": {"type": "int"},
            **tls_argument_spec(),
            "resume": {"type": "bool", "default": True},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "raw", "default": "0644"},
            "record": {"type": "path", "default": DEFAULT_RECORD},
        },
        mutually_exclusive=[
            ("url", "src"),
            ("files", "dest"),
            ("files", "url"),
            ("files", "src"),
            ("files", "sha256"),
        ],
        required_one_of=[("url", "src", "files")],
        required_by={"url": ("dest", "sha256"), "src": ("dest", "sha256")},
        supports_check_mode=True,
    )
    params = module.params
    if params["files"] is not None:
        with fail_on_error(module, f"cannot place {len(params['files'])} files"):
            result = _place_files(module, params)
        module.exit_json(**result)
    fields = {"dest": params["dest"], "sha256": params["sha256"]}
    with fail_on_error(module, f"cannot place {params['dest']}", fields=fields):
        result = place(_placement(params), check_mode=module.check_mode)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
