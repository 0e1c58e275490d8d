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
    or from a local copy (the repository directory on the ingest host or a mount of it, or an
    C(index.json) carried over).
  - Give O(base_url), O(index) or both. Without O(base_url) the result has no URLs; with O(index) set
    to the repository directory each file also names its blob there (C(blob)), for
    M(airgap.llm.artifact)'s C(src), and a model names the directory as C(src) for
    M(airgap.llm.ollama_model).
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
        at C(<base_url>/blobs/sha256/<digest>). Required unless O(index) is given.
    type: str
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
  loop: "{{ lookup('airgap.llm.repo_index', 'open-webui:0.6.5', base_url='https://repo.example',
    index='/srv/airgap-llm/repo').files }}"

- name: Install a model from the repository on this host, pinned by the index
  airgap.llm.ollama_model:
    name: "{{ model.model }}"
    path: /var/lib/ollama/models
    src: "{{ model.src }}"
    manifest_digest: "{{ model.manifest_digest }}"
  vars:
    model: "{{ lookup('airgap.llm.repo_index', 'llama3.2:3b', index='/srv/airgap-llm/repo') }}"
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
      description:
        - Every file of the artifact, each with C(path), C(sha256), C(size), C(url) (null without
          O(base_url)) and C(blob) (its path in the repository directory O(index); null otherwise).
      type: list
      elements: dict
    url:
      description: URL of the artifact's only file (null when it has several, or without O(base_url)).
      type: str
    blob:
      description: Path of the only file's blob in the repository directory O(index) (null otherwise).
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
    model:
      description: For models, the Ollama model name (for the O(airgap.llm.ollama_model#module:name) option).
      type: str
    src:
      description:
        - For models, where M(airgap.llm.ollama_model) installs it from, C(<base_url>/ollama/<manifest
          hex>/) with O(base_url), else the repository directory O(index) (null for a copied index.json).
      type: str
"""

import os  # noqa: E402
from typing import Any, Dict, List, Optional  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils import _json  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._digest import is_sha256_hex  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import describe  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import SourceReadError, read_bounded  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (  # noqa: E402
    FetchError,
    FetchOptions,
    fetch_bytes,
    tls_options,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.listing import shown  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import (  # noqa: E402
    INDEX_FORMAT,
    RepoError,
    index_files,
)

MAX_INDEX = 64 << 20


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


def _resolve(doc: Dict[str, Any], term: str, base_url: str, repository: Optional[str]) -> Dict[str, Any]:
    name, sep, version = term.partition(":")
    if not sep or not name or not version:
        raise AnsibleLookupError(f"{term!r}: give name:version (a version is always required)")
    artifacts = doc["artifacts"]
    if name not in artifacts:
        known = ", ".join(shown(k) for k in sorted(artifacts)[:50]) or "none"
        raise AnsibleLookupError(
            f"{name} is not in the repository index {doc['_where']} (it holds: {known}); ingest a bundle "
            "that carries it"
        )
    versions = artifacts[name]
    where = f"the repository index {doc['_where']}: artifacts.{name}"
    if not isinstance(versions, dict):
        raise AnsibleLookupError(f"{where} must be an object, got {describe(versions)}")
    if version not in versions:
        known = ", ".join(shown(k) for k in sorted(versions)[:50]) or "none"
        raise AnsibleLookupError(
            f"{name} version {version} is not in the repository index {doc['_where']} (versions: {known})"
        )
    entry = versions[version]
    try:
        checked = index_files(entry, f"{where}.{version}")
    except RepoError as exc:
        raise AnsibleLookupError(str(exc)) from None
    files: List[Dict[str, Any]] = []
    for item in checked:
        digest = item["sha256"]
        files.append(
            dict(
                item,
                url=f"{base_url}/blobs/sha256/{digest}" if base_url else None,
                blob=os.path.join(repository, "blobs", "sha256", digest) if repository else None,
            )
        )
    single = files[0] if len(files) == 1 else {}
    result = {
        "name": name,
        "version": version,
        "kind": entry.get("kind"),
        "files": files,
        "url": single.get("url"),
        "blob": single.get("blob"),
        "sha256": single.get("sha256"),
        "size": single.get("size"),
        "path": single.get("path"),
    }
    if entry.get("kind") == "model":
        pin = entry.get("manifest_digest")
        result["manifest_digest"] = pin
        result["model"] = entry.get("model")
        hexdigest = pin[len("sha256:") :] if isinstance(pin, str) and pin.startswith("sha256:") else pin
        if base_url and is_sha256_hex(hexdigest):
            result["src"] = f"{base_url}/ollama/{hexdigest}/"
        else:
            result["src"] = repository
    return result


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        base_url = (self.get_option("base_url") or "").rstrip("/")
        index = self.get_option("index") or ""
        if not base_url and not index:
            raise AnsibleLookupError(
                "give base_url (the https URL of the artifact repository) or index (the repository's "
                "directory, or an index.json, on the controller)"
            )
        if base_url and not base_url.startswith("https://"):
            raise AnsibleLookupError(f"base_url {base_url!r} must be an https URL of the artifact repository")
        options = tls_options(
            {key: self.get_option(key) for key in ("ca_file", "client_cert", "client_key", "timeout")}
        )
        doc = _read_index(index, base_url, options)
        repository = os.path.abspath(index) if index and os.path.isdir(index) else None
        return [_resolve(doc, str(term), base_url, repository) for term in terms]
