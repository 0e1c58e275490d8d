# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Container image tarballs: the image ID they carry.

``podman save`` and ``docker save`` write a ``docker-archive`` (``manifest.json`` naming the
config file) or an ``oci-archive`` (``index.json`` -> manifest -> config). The image ID is the
SHA-256 of the config, and ``podman load`` keeps it (the registry's manifest digest is not kept),
so the ID read here is the one a node sees after loading: the bundle records it, the role checks
it after ``podman load``.

The tarball is untrusted: only the few JSON members needed are read, each bounded and parsed with
the strict reader, and the config's bytes are hashed to prove the ID.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from typing import Any, Dict, List, Optional

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe, quote

__all__ = ["ImageError", "image_id"]

MAX_JSON = 4 << 20
DIGEST_RE = re.compile(r"\Asha256:([0-9a-f]{64})\Z")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class ImageError(AirgapError):
    """The tarball is no image archive, or holds more than one image, or its config is inconsistent."""


def _plain(name: str) -> str:
    return name[2:] if name.startswith("./") else name


def _member(archive: tarfile.TarFile, members: Dict[str, tarfile.TarInfo], name: str, where: str) -> bytes:
    info = members.get(_plain(name))
    if info is None or not info.isfile():
        raise ImageError(
            f"{where}: the archive has no file {quote(name)}; it is not an image saved by podman or docker"
        )
    if info.size > MAX_JSON:
        raise ImageError(
            f"{where}: {quote(name)} is {info.size} bytes, more than an image's JSON ({MAX_JSON})"
        )
    handle = archive.extractfile(info)
    if handle is None:
        raise ImageError(f"{where}: cannot read {quote(name)}")
    with handle:
        return handle.read(MAX_JSON + 1)


def _json_member(archive: tarfile.TarFile, members: Dict[str, tarfile.TarInfo], name: str, where: str) -> Any:
    raw = _member(archive, members, name, where)
    try:
        return _json.loads(raw, f"{where}: {name}", limit=MAX_JSON, max_depth=16)
    except _json.JSONError as exc:
        raise ImageError(str(exc)) from None


def _config_from_docker(manifest: Any, where: str) -> str:
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise ImageError(
            f"{where}: manifest.json must describe exactly one image, got {describe(manifest)}; save one "
            "image per tarball"
        )
    config = manifest[0].get("Config")
    if not isinstance(config, str) or not config:
        raise ImageError(f"{where}: manifest.json names no Config file")
    return config


def _blob_name(digest: Any, where: str, what: str) -> str:
    match = DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if not match:
        raise ImageError(f"{where}: the {what} digest {describe(digest)} is not sha256:<64 hex>")
    return f"blobs/sha256/{match.group(1)}"


def _config_from_oci(archive: tarfile.TarFile, members: Dict[str, tarfile.TarInfo], where: str) -> str:
    index = _json_member(archive, members, "index.json", where)
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or len(manifests) != 1 or not isinstance(manifests[0], dict):
        raise ImageError(
            f"{where}: index.json must list exactly one image manifest, got {describe(manifests)}; save one "
            "image (one platform) per tarball"
        )
    entry = manifests[0]
    if entry.get("mediaType") == OCI_INDEX:
        raise ImageError(f"{where}: the image is a multi-platform index; save the image of one platform")
    manifest = _json_member(archive, members, _blob_name(entry.get("digest"), where, "manifest"), where)
    if not isinstance(manifest, dict) or manifest.get("mediaType", MANIFEST_TYPES[0]) not in MANIFEST_TYPES:
        raise ImageError(f"{where}: the manifest in index.json is not an image manifest")
    config = manifest.get("config")
    if not isinstance(config, dict):
        raise ImageError(f"{where}: the image manifest has no config")
    return _blob_name(config.get("digest"), where, "config")


def image_id(path: str, where: Optional[str] = None) -> Dict[str, Any]:
    """The image of a tarball: ``{"image_id": "sha256:<hex>", "format": ..., "tags": [...]}``.

    ``format`` is ``docker-archive`` or ``oci-archive``; ``tags`` the names a docker-archive records.
    """
    where = where or path
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(
            f"{where}: cannot read it as a tar archive ({exc}); it is not an image tarball"
        ) from None
    with archive:
        try:
            members = {_plain(m.name): m for m in archive.getmembers()}
        except (OSError, tarfile.TarError) as exc:
            raise ImageError(f"{where}: the tar archive is damaged ({exc})") from None
        tags: List[str] = []
        if "manifest.json" in members:
            manifest = _json_member(archive, members, "manifest.json", where)
            config = _config_from_docker(manifest, where)
            found = manifest[0].get("RepoTags") or []
            tags = [t for t in found if isinstance(t, str)] if isinstance(found, list) else []
            kind = "docker-archive"
        elif "index.json" in members:
            config = _config_from_oci(archive, members, where)
            kind = "oci-archive"
        else:
            raise ImageError(
                f"{where}: no manifest.json or index.json; it is not a docker-archive or oci-archive image "
                "(podman save --format docker-archive or oci-archive)"
            )
        raw = _member(archive, members, config, where)
    digest = hashlib.sha256(raw).hexdigest()
    named = re.search(r"([0-9a-f]{64})(?:\.json)?\Z", config)
    if named and named.group(1) != digest:
        raise ImageError(
            f"{where}: the config {quote(config)} hashes to sha256:{digest}, not to the digest in its name; "
            "the tarball is damaged"
        )
    return {"image_id": f"sha256:{digest}", "format": kind, "tags": tags}
