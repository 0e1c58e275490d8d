# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: repo_index
short_description: Resolve logical artifact names and versions through the artifact repository index
version_added: 0.1.0
description:
  - Reads the index of the artifact repository that ingest maintains (C(current/index.json)) and turns
    each C(name:version) into the URL, SHA-256 and size of its files, for M(airgap.llm.artifact) and
    the roles.
  - The index is read on the controller, once per lookup, either from the repository over HTTPS
    (C(<base_url>/current/index.json), through the internal CA, optionally with a client certificate)
    or from a local copy (the repository directory on the ingest host, or an C(index.json) carried over).
    Resolving on the controller pins every node of a play to the same digests, works in check mode
    before anything exists on the nodes, and never lets a node choose what it verifies against.
  - A version is always required; there is no C(latest).
author:
  - airgap.llm contributors (@airgap-llm)
options:
  _terms:
    description:
      - Artifacts as C(name:version), for example V(ollama:0.33.0) or V(llama3.2:3b).
    type: list
    elements: str
    required: true
  base_url:
    description:
      - The repository's https base URL, for example V(https://repo.example). The URLs returned point
        at C(<base_url>/blobs/sha256/<digest>).
    type: str
    required: true
  index:
    description:
      - Where to read the index instead of C(<base_url>/current/index.json), as a path on the controller to
        the repository directory (its C(current/index.json) is read) or to an C(index.json) file.
    type: path
  timeout:
    description:
      - Seconds to wait for the repository.
    default: 30
extends_documentation_fragment:
  - airgap.llm.tls_client
notes:
  - The index is trusted as the repository serves it; the digests it lists are those ingest verified
    against the signed bundle manifest.
"""

EXAMPLES = r"""
- name: Fetch the Ollama release named in the index
  airgap.llm.artifact:
    url: "{{ release.url }}"
    sha256: "{{ release.sha256 }}"
    size: "{{ release.size }}"
    dest: /var/cache/airgap-llm/{{ release.path }}
    ca_file: /etc/airgap-llm/ca.crt
  vars:
    release: "{{ lookup('airgap.llm.repo_index', 'ollama:0.33.0', base_url='https://repo.example',
      ca_file='/etc/airgap-llm/ca.crt') }}"

- name: Every file of a wheelhouse, from a copy of the index on the controller
  ansible.builtin.debug:
    msg: "{{ item.path }} {{ item.sha256 }}"
  loop: "{{ lookup('airgap.llm.repo_index', 'open-webui-wheels-slim:0.12.4', base_url='https://repo.example',
    index='/srv/airgap-llm/repo').files }}"
"""

RETURN = r"""
_raw:
  description: One entry per term.
  type: list
  elements: dict
  contains:
    name:
      description: The logical name.
      type: str
    version:
      description: The version.
      type: str
    kind:
      description: The artifact kind (C(file), C(ollama), C(deb), C(model), ...).
      type: str
    files:
      description: Every file of the artifact, each with C(path), C(url), C(sha256) and C(size).
      type: list
      elements: dict
    url:
      description: URL of the artifact's only file (null when it has several).
      type: str
    sha256:
      description: SHA-256 of the only file (null when it has several).
      type: str
    size:
      description: Size in bytes of the only file (null when it has several).
      type: int
    path:
      description: File name of the only file inside the artifact (null when it has several).
      type: str
    manifest_digest:
      description: For models, the SHA-256 of the Ollama manifest.
      type: str
    image_id:
      description:
        - For container images, the image ID the bundle recorded (C(sha256:) and the digest of the
          image's config), which C(podman load) keeps; null when the bundle recorded none.
      type: str
"""

import os  # noqa: E402
import re  # noqa: E402
from typing import Any, Dict, List  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils import _json  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import describe, quote  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import SourceReadError, read_bounded  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (  # noqa: E402
    FetchError,
    FetchOptions,
    fetch_bytes,
    tls_options,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import INDEX_FORMAT  # noqa: E402

MAX_INDEX = 64 << 20
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def _read_index(index: str, base_url: str, options: FetchOptions) -> Dict[str, Any]:
    if index:
        path = os.path.join(index, "current", "index.json") if os.path.isdir(index) else index
        where = path
        try:
            raw = read_bounded(path, MAX_INDEX, follow_symlinks=True)
        except SourceReadError as exc:
            raise AnsibleLookupError(f"cannot read the repository index {path}: {exc.reason}") from None
        except OSError as exc:
            raise AnsibleLookupError(f"cannot read the repository index {path}: {exc.strerror}") from None
    else:
        where = f"{base_url}/current/index.json"
        try:
            raw = fetch_bytes(where, options, limit=MAX_INDEX)
        except FetchError as exc:
            raise AnsibleLookupError(f"cannot read the repository index: {exc}") from None
    if len(raw) > MAX_INDEX:
        raise AnsibleLookupError(f"the repository index {where} is larger than {MAX_INDEX} bytes")
    try:
        doc = _json.loads(raw, f"the repository index {where}", limit=MAX_INDEX, max_depth=8)
    except _json.JSONError as exc:
        raise AnsibleLookupError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise AnsibleLookupError(f"{where} is not an airgap.llm repository index (format {INDEX_FORMAT})")
    if not isinstance(doc.get("artifacts"), dict):
        raise AnsibleLookupError(f"{where} is not an airgap.llm repository index (format {INDEX_FORMAT})")
    doc["_where"] = where
    return doc


def _shown(key: str) -> str:
    """A name from the index for a message: as it is when plain, else quoted and escaped."""
    return key if _PLAIN.match(key) else quote(key, 60)


def _resolve(doc: Dict[str, Any], term: str, base_url: str) -> Dict[str, Any]:
    name, sep, version = term.partition(":")
    if not sep or not name or not version:
        raise AnsibleLookupError(f"{term!r}: give name:version (a version is always required)")
    artifacts = doc["artifacts"]
    if name not in artifacts:
        known = ", ".join(_shown(k) for k in sorted(artifacts)[:50]) or "none"
        raise AnsibleLookupError(
            f"{name} is not in the repository index {doc['_where']} (it holds: {known}); ingest a bundle "
            "that carries it"
        )
    versions = artifacts[name]
    where = f"the repository index {doc['_where']}: artifacts.{name}"
    if not isinstance(versions, dict):
        raise AnsibleLookupError(f"{where} must be an object, got {describe(versions)}")
    if version not in versions:
        known = ", ".join(_shown(k) for k in sorted(versions)[:50]) or "none"
        raise AnsibleLookupError(
            f"{name} version {version} is not in the repository index {doc['_where']} (versions: {known})"
        )
    entry = versions[version]
    where = f"{where}.{version}"
    if not isinstance(entry, dict) or not isinstance(entry.get("files", []), list):
        raise AnsibleLookupError(f"{where} must be an object with a files list, got {describe(entry)}")
    files: List[Dict[str, Any]] = []
    for number, item in enumerate(entry.get("files", [])):
        if not isinstance(item, dict):
            raise AnsibleLookupError(f"{where}.files[{number}] must be an object, got {describe(item)}")
        digest = item.get("sha256")
        if not is_sha256_hex(digest):
            raise AnsibleLookupError(f"{name} {version}: the index lists a bad digest {describe(digest)}")
        size = item.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise AnsibleLookupError(
                f"{where}.files[{number}].size must be a non-negative integer, got {describe(size)}"
            )
        path = item.get("path")
        if not isinstance(path, str):
            raise AnsibleLookupError(f"{where}.files[{number}].path must be a string, got {describe(path)}")
        files.append(
            {
                "path": path,
                "sha256": digest,
                "size": size,
                "url": f"{base_url}/blobs/sha256/{digest}",
            }
        )
    single = files[0] if len(files) == 1 else {}
    result = {
        "name": name,
        "version": version,
        "kind": entry.get("kind"),
        "files": files,
        "url": single.get("url"),
        "sha256": single.get("sha256"),
        "size": single.get("size"),
        "path": single.get("path"),
    }
    if entry.get("kind") == "model":
        result["manifest_digest"] = entry.get("manifest_digest")
    if entry.get("kind") == "container_image":
        result["image_id"] = entry.get("image_id")
    return result


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        base_url = (self.get_option("base_url") or "").rstrip("/")
        if not base_url.startswith("https://"):
            raise AnsibleLookupError(f"base_url {base_url!r} must be an https URL of the artifact repository")
        options = tls_options(
            {key: self.get_option(key) for key in ("ca_file", "client_cert", "client_key", "timeout")}
        )
        doc = _read_index(self.get_option("index") or "", base_url, options)
        return [_resolve(doc, str(term), base_url) for term in terms]
