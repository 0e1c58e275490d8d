# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where models are installed from: a directory in store layout, or an https URL of one."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from typing import Iterator, Optional

from ansible_collections.airgap.llm.plugins.module_utils._io import (
    NotRegularError,
    advise_sequential,
    open_regular,
)
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import (
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

__all__ = ["HttpsSource", "LocalSource", "make_source"]


class LocalSource:
    """A directory in store layout (``manifests/...`` and ``blobs/sha256-<hex>``)."""

    def __init__(self, path: str) -> None:
        self.root = os.path.realpath(path)
        self.label = path
        if not os.path.isdir(self.root):
            raise SourceError(
                f"source {path} is not a directory; give a directory in store layout or an https URL"
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
            raise SourceError(f"model {name}: the source has no manifest {path}; check `name` and `src`")
        return raw

    @contextlib.contextmanager
    def open_blob(self, layer: Layer) -> Iterator[int]:
        path = self.store.blob_path(layer.hex)
        try:
            fd, _st = open_regular(path)
        except NotRegularError as exc:
            raise SourceError(f"cannot open source blob {self.describe(layer)}: {exc.reason}") from None
        except OSError as exc:
            raise SourceError(f"cannot open source blob {self.describe(layer)}: {exc.strerror}") from None
        try:
            advise_sequential(fd)
            yield fd
        finally:
            os.close(fd)


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


def make_source(src: str, ca_file: Optional[str] = None, timeout: float = 60.0, validate_certs: bool = True):
    if src.startswith(("https://", "http://")) or "://" in src:
        return HttpsSource(src, ca_file, timeout, validate_certs)
    return LocalSource(src)
