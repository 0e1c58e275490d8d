# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where models are installed from: a directory in store layout, an https URL of one (the artifact
repository's Ollama view), or the artifact repository on disk (its root directory)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.parse
from typing import ContextManager, Dict, Iterator, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import quote
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    NotRegularError,
    advise_sequential,
    open_regular,
    read_bounded,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
    InvalidNameError,
    ManifestError,
    SourceError,
    StoreError,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.manifest import MANIFEST_MAX_BYTES, Layer
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (
    FetchError,
    FetchOptions,
    open_url,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.listing import shown
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import (
    RepoError,
    Repository,
    index_files,
)

__all__ = ["HttpsSource", "LocalSource", "RepositorySource", "is_repository", "make_source"]


def is_repository(path: str) -> bool:
    """Whether ``path`` is the root of an artifact repository (``blobs/sha256/`` and ``states/``)."""
    return os.path.isdir(os.path.join(path, "blobs", "sha256")) and os.path.isdir(
        os.path.join(path, "states")
    )


@contextlib.contextmanager
def _open_blob(path: str, what: str) -> Iterator[int]:
    """A readable file descriptor on the regular file ``path`` (never through a link), closed after."""
    try:
        fd, _st = open_regular(path)
    except NotRegularError as exc:
        raise SourceError(f"cannot open source blob {what}: {exc.reason}") from None
    except OSError as exc:
        raise SourceError(f"cannot open source blob {what}: {exc.strerror}") from None
    try:
        advise_sequential(fd)
        yield fd
    finally:
        os.close(fd)


class LocalSource:
    """A directory in store layout (``manifests/...`` and ``blobs/sha256-<hex>``)."""

    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)
        self.label = path
        if not os.path.isdir(self.root):
            repo = next((p for p in _parents(self.root) if is_repository(p)), None)
            hint = f"; {repo} is the artifact repository: give src: {repo} to install from it" if repo else ""
            raise SourceError(
                f"source {path} is not a directory; give a directory in store layout (an export), the "
                f"artifact repository's directory or its https URL{hint}"
            )
        self.store = Store(self.root)

    def pending(self) -> Optional[str]:
        """Why the source cannot be read yet (see :meth:`HttpsSource.pending`): a directory can always."""
        return None

    def describe(self, layer: Layer) -> str:
        return os.path.join(self.label, "blobs", layer.blob_name)

    def manifest_bytes(self, name: ModelName) -> bytes:
        path = os.path.join(self.label, name.relpath)
        try:
            raw = self.store.read_manifest_bytes(name)
        except StoreError as exc:
            raise SourceError(f"model {name}: source {exc}") from None
        if raw is None:
            raise SourceError(
                f"model {name}: the source has no manifest {path}; it holds: {self.store.model_names()}. "
                "Check `name` and `src`"
            )
        return raw

    def open_blob(self, layer: Layer) -> ContextManager[int]:
        return _open_blob(self.store.blob_path(layer.hex), self.describe(layer))


def _model_shown(text: object) -> str:
    """A model name from the index, as ``ollama list`` shows it, or escaped when it is not one."""
    try:
        return str(ModelName.parse(text))
    except InvalidNameError:
        return quote(text, 60)


def _parents(path: str) -> List[str]:
    found = []
    while os.path.dirname(path) != path:
        path = os.path.dirname(path)
        found.append(path)
    return found


class RepositorySource:
    """The artifact repository on disk: its root, as ingest files it (``blobs/sha256/<hex>``, ``current``).

    A model is found through the index ``current`` serves: the artifact of kind model whose files
    include the model's manifest path. Its manifest and blobs are read from ``blobs/sha256/``, as
    nginx serves them to nodes. When several artifacts serve different manifests for the model,
    ``pin`` (the manifest digest) chooses one; without it the task fails, listing them.
    """

    def __init__(self, path: str, pin: Optional[str] = None) -> None:
        self.repo = Repository(path)
        self.label = path
        self.pin = pin[len("sha256:") :] if pin and pin.startswith("sha256:") else pin

    def pending(self) -> Optional[str]:
        """Why the source cannot be read yet: a directory can always be read."""
        return None

    def describe(self, layer: Layer) -> str:
        return os.path.join(self.label, "blobs", "sha256", layer.hex)

    def _manifests(self, name: ModelName) -> Tuple[Dict[str, List[str]], List[str]]:
        """The manifest digests the repository serves for ``name`` (with the artifacts serving each),
        and every model it serves."""
        found: Dict[str, List[str]] = {}
        models: List[str] = []
        try:
            artifacts = self.repo.index()["artifacts"]
            for art_name in sorted(artifacts):
                for version in sorted(artifacts[art_name]):
                    entry = artifacts[art_name][version]
                    if not isinstance(entry, dict) or entry.get("kind") != "model":
                        continue
                    models.append(_model_shown(entry.get("model")))
                    for item in index_files(entry, f"artifacts.{art_name}.{version}"):
                        if item["path"] == name.relpath:
                            found.setdefault(item["sha256"], []).append(f"{shown(art_name)} {shown(version)}")
        except RepoError as exc:
            raise SourceError(f"model {name}: the artifact repository {self.label}: {exc}") from None
        return found, sorted(set(models))

    def manifest_bytes(self, name: ModelName) -> bytes:
        found, models = self._manifests(name)
        if not found:
            raise SourceError(
                f"model {name}: the artifact repository {self.label} does not serve it; it serves the models "
                f"{', '.join(models) or 'none'}. Check `name`, or ingest a bundle that "
                "carries the model"
            )
        if self.pin in found:
            chosen = self.pin
        elif len(found) == 1:
            chosen = next(iter(found))  # a pin that differs fails in install, naming both digests
        else:
            listed = "; ".join(f"sha256:{h} ({', '.join(arts)})" for h, arts in sorted(found.items()))
            raise SourceError(
                f"model {name}: the artifact repository {self.label} serves several manifests for it: "
                f"{listed}. Give manifest_digest to choose one"
            )
        path = self.repo.blob_path(chosen)
        try:
            raw = read_bounded(path, MANIFEST_MAX_BYTES)
        except (OSError, FileError) as exc:
            raise SourceError(f"model {name}: cannot read its manifest {path}: {exc}") from None
        if hashlib.sha256(raw).hexdigest() != chosen:
            raise SourceError(
                f"model {name}: the repository blob {path} does not hash to its name: the repository is "
                "damaged; restore the blob from a backup or ingest the bundle that carries the model again"
            )
        return raw

    def open_blob(self, layer: Layer) -> ContextManager[int]:
        return _open_blob(self.repo.blob_path(layer.hex), self.describe(layer))


class HttpsSource:
    """An https URL of a directory in store layout (the artifact repository), stdlib only.

    Proxies from the environment are never used; redirects are followed only to https.
    """

    def __init__(self, url: str, ca_file: Optional[str], timeout: float, validate_certs: bool) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise SourceError(f"src {url!r} is neither a local directory nor an https:// URL")
        self.base = url if url.endswith("/") else url + "/"
        self.label = self.base
        self.options = FetchOptions(
            ca_file=ca_file, timeout=timeout, validate_certs=validate_certs, https_only=True
        )

    def pending(self) -> Optional[str]:
        """Why the source cannot be read yet, or None.

        On a new node in check mode, the CA file that an earlier task puts in place (predicted, not
        written) does not exist yet; without it no TLS connection to the repository can be made.
        """
        ca_file = self.options.ca_file
        if ca_file and not os.path.lexists(ca_file):
            return f"ca_file {ca_file} does not exist yet"
        return None

    def _url(self, relpath: str) -> str:
        return self.base + "/".join(urllib.parse.quote(p, safe="") for p in relpath.split("/"))

    def describe(self, layer: Layer) -> str:
        return self._url("blobs/" + layer.blob_name)

    def _open(self, url: str):
        try:
            return open_url(url, self.options)
        except FetchError as exc:
            raise SourceError(f"GET {exc}; check src, ca_file and the server") from None

    def manifest_bytes(self, name: ModelName) -> bytes:
        url = self._url(name.relpath)
        with self._open(url) as response:
            try:
                data = response.read(MANIFEST_MAX_BYTES + 1)
            except OSError as exc:
                raise SourceError(f"model {name}: reading {url} failed: {exc}") from None
        if len(data) > MANIFEST_MAX_BYTES:
            raise ManifestError(str(name), url, f"it is larger than {MANIFEST_MAX_BYTES} bytes")
        return data

    @contextlib.contextmanager
    def open_blob(self, layer: Layer):
        with self._open(self.describe(layer)) as response:
            yield response


def make_source(
    src: str,
    ca_file: Optional[str] = None,
    timeout: float = 60.0,
    validate_certs: bool = True,
    pin: Optional[str] = None,
):
    """The source ``src`` names: an https URL, the artifact repository's directory, or a store-layout one."""
    if src.startswith(("https://", "http://")) or "://" in src:
        return HttpsSource(src, ca_file, timeout, validate_certs)
    if is_repository(src):
        return RepositorySource(src, pin)
    return LocalSource(src)
