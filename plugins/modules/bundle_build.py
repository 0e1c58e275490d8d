#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle_build
short_description: Build a signed transfer bundle from a bundle spec (low side)
version_added: 0.1.0
description:
  - Collects every artifact of O(spec) (downloads with pinned digests, local files and directories,
    models from an Ollama store), and writes the uncompressed tarball
    O(dest)C(/airgap-llm-<channel>-<version>.tar) holding the artifacts, a CycloneDX SBOM
    (C(sbom.cdx.json)), C(bundle.json) (format version, channel, version, created and expires
    times, every file with path, sha256, size, kind, name, version, source, license) and one
    detached Ed25519 signature per signing key (C(signatures/<key id>.sig)).
  - Every byte is read once. Each file is hashed while it is written into the tar, and the tar
    stream (and each chunk) is hashed in a second thread over the same bytes. A file whose digest
    differs from its pin fails the task and leaves no output.
  - Writes C(<tarball>.sha256) last (compare it out of band on the high side) and, with
    O(chunk_size), the chunks C(<tarball>.part0000)... and C(<tarball>.chunks.sha256) instead of
    the tarball.
  - With O(inventory) (from M(airgap.llm.repo_inventory) on the high side), files of every kind
    whose digest and size the high-side repository already holds are listed with C(omitted=true) and
    not shipped (downloads and model blobs by their known digest, local files and the files of local
    directories such as wheelhouses and C(.deb) sets by a digest taken first). Only local files whose size
    some blob of the inventory has are read for that; a file that changes between that read and the
    one that ships it fails the build.
  - Downloads go through the collection's one HTTP client; proxies from the environment are ignored.
  - Idempotent. When the C(.sha256) of this channel and version exists in O(dest), nothing is done
    unless O(force). A version lower than one already built in O(dest) is refused.
requirements:
  - cryptography
  - cyclonedx-python-lib (low side only)
author:
  - airgap.llm maintainers (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
  - airgap.llm.tls_client
attributes:
  check_mode:
    details: Validates the spec and reports whether the bundle would be built; downloads nothing.
options:
  spec:
    description:
      - The bundle spec. Keys C(channel) (default V(stable)), C(version) (positive integer, higher
        for every bundle), C(expires) (UTC time like V(2026-12-31T00:00:00Z)) or C(expires_days)
        (default 30), C(ollama_store) (for models), and C(artifacts), a list of mappings with
        C(name), C(version), C(kind) (V(file), V(ollama), V(model), V(container_image),
        V(wheelhouse), V(deb), V(step), V(gpu_driver)) and either C(url) with C(sha256) and/or
        C(checksums_url) (an upstream C(sha256sum.txt), optionally pinned by C(checksums_sha256)),
        or C(path) (a file, or a directory of files), or for models C(model) (default
        C(<name>:<version>)) and optional C(store). Optional C(filename) and C(license). A V(deb)
        may name C(suites), the Debian releases (codenames such as V(bookworm), V(trixie)) it is
        built for; M(airgap.llm.bundle_ingest) records them and the artifact_repo role publishes it
        in those APT suites only (without C(suites), in every suite).
    type: dict
    required: true
  base_dir:
    description:
      - Directory that relative C(path)s of the spec are resolved against.
    type: path
    required: true
  dest:
    description:
      - Output directory for the tarball (or chunks) and digest files.
    type: path
    required: true
  signing_keys:
    description:
      - Private keys that sign C(bundle.json), one signature each.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Private key file (from M(airgap.llm.bundle_keygen)).
        type: path
        required: true
      passphrase:
        description: Its passphrase, from Ansible Vault.
        type: str
        required: true
  cache_dir:
    description:
      - Download cache, files named by their SHA-256. Defaults to O(dest)C(/.cache).
    type: path
  inventory:
    description:
      - Inventory of the high-side repository; makes a differential bundle.
    type: path
  chunk_size:
    description:
      - Split the tarball into chunks of at most this size. A plain number is bytes; V(40MB) or
        V(4GB) are decimal (powers of 1000, as media are sold, so V(40MB) is 40,000,000 bytes);
        V(40MiB) or V(40M), V(4GiB) or V(4G) are binary (powers of 1024, so V(40M) is 41,943,040
        bytes). C(chunk_size_note) in the result says how the value was read.
    type: str
  force:
    description:
      - Rebuild even if this channel and version was built already.
    type: bool
    default: false
seealso:
  - module: airgap.llm.bundle_keygen
  - module: airgap.llm.bundle_ingest
  - module: airgap.llm.repo_inventory
"""

EXAMPLES = r"""
- name: Build bundle 42 of the stable channel in 4 GiB chunks
  airgap.llm.bundle_build:
    spec:
      channel: stable
      version: 42
      expires_days: 14
      ollama_store: /var/lib/ollama/models
      artifacts:
        - name: ollama
          version: 0.33.0
          kind: ollama
          url: https://github.com/ollama/ollama/releases/download/v0.33.0/ollama-linux-amd64.tar.zst
          checksums_url: https://github.com/ollama/ollama/releases/download/v0.33.0/sha256sum.txt
          license: MIT
        - name: llama3.2
          version: 3b
          kind: model
        - name: open-webui
          version: 0.6.5
          kind: wheelhouse
          path: wheelhouse/open-webui
        - name: zstd
          version: 1.5.4+dfsg2-5
          kind: deb
          path: debs/bookworm/zstd_1.5.4+dfsg2-5_amd64.deb
          suites: [bookworm]
    base_dir: /srv/bundles
    dest: /srv/bundles/out
    chunk_size: 4G
    signing_keys:
      - path: /etc/airgap-llm/keys/signer1.key
        passphrase: "{{ vault_bundle_signer1_passphrase }}"
"""

RETURN = r"""
bundle:
  description: Path of the tarball (with O(chunk_size), the chunks carry this name plus C(.partNNNN)).
  returned: always
  type: str
  sample: /srv/bundles/out/airgap-llm-stable-000042.tar
sha256_file:
  description: Path of the outer digest file.
  returned: always
  type: str
sha256:
  description: SHA-256 of the whole tarball, the value to give the high side out of band.
  returned: when built or already present
  type: str
size:
  description: Size of the tarball in bytes.
  returned: when built or already present
  type: int
chunks:
  description: The chunks (C(path), C(sha256), C(size)); empty without O(chunk_size).
  returned: when built or already present
  type: list
  elements: dict
channel:
  description: Channel of the bundle.
  returned: always
  type: str
version:
  description: Version of the bundle.
  returned: always
  type: int
artifacts:
  description: The artifacts of the spec (C(name), C(version), C(kind)).
  returned: always
  type: list
  elements: dict
key_ids:
  description: Ids of the keys that signed C(bundle.json).
  returned: when built
  type: list
  elements: str
files:
  description: Number of files listed in C(bundle.json) (SBOM included).
  returned: when built
  type: int
omitted_files:
  description: Files left out because the high side holds them (differential bundle).
  returned: when built
  type: int
omitted_bytes:
  description: Bytes left out.
  returned: when built
  type: int
bytes_hashed:
  description: Bytes of artifact files read and hashed.
  returned: when built
  type: int
created:
  description: Creation time written to C(bundle.json).
  returned: when built
  type: str
expires:
  description: Expiry time written to C(bundle.json).
  returned: when built
  type: str
chunk_size:
  description: O(chunk_size) in bytes (null without it).
  returned: always
  type: int
  sample: 40000000
chunk_size_note:
  description: How O(chunk_size) was read (decimal or binary units), null without it.
  returned: always
  type: str
  sample: "chunk_size 40MB = 40,000,000 bytes (decimal: 1 MB = 1,000,000 bytes)"
"""

import os  # noqa: E402 - after the documentation, as in every Ansible module

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.build import BuildOptions, build  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import tls_argument_spec, tls_options  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (  # noqa: E402
    require_cryptography,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import parse_size  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "spec": {"type": "dict", "required": True},
            "base_dir": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "signing_keys": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "no_log": False,
                "options": {
                    "path": {"type": "path", "required": True},
                    "passphrase": {"type": "str", "required": True, "no_log": True},
                },
            },
            "cache_dir": {"type": "path"},
            "inventory": {"type": "path"},
            "chunk_size": {"type": "str"},
            "force": {"type": "bool", "default": False},
            **tls_argument_spec(),
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    with fail_on_error(module, f"building the bundle in {params['dest']}"):
        chunk_size, chunk_note = parse_size(params["chunk_size"]) if params["chunk_size"] else (None, None)
        options = BuildOptions(
            dest=params["dest"],
            base_dir=params["base_dir"],
            cache_dir=params["cache_dir"] or os.path.join(params["dest"], ".cache"),
            signing_keys=params["signing_keys"],
            fetch_options=tls_options(params),
            inventory=params["inventory"],
            chunk_size=chunk_size,
            force=params["force"],
        )
        result = build(params["spec"], options, check_mode=module.check_mode)
    result.update(chunk_size=chunk_size, chunk_size_note=chunk_note)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
