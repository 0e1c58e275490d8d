# Copyright: airgap.llm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP(S) downloader of the collection (standard library only).

:func:`fetch` streams a URL into a temporary file beside the destination while hashing it (one
pass, :func:`_digest.copy_and_hash`), checks the expected SHA-256 and size, fsyncs and renames.
A failed or mismatching download leaves the destination as it was. :func:`fetch_bytes` reads a
small document (a ``sha256sum.txt``) into memory with a size limit.

TLS: ``ca_file`` pins the trust anchors (the system store otherwise), ``client_cert`` and
``client_key`` authenticate the client. Proxies from the environment are ignored: air-gapped
sites must not leak requests to whatever ``https_proxy`` says.

The request is built by :func:`_open`, which takes a start offset, so that resuming with an HTTP
``Range`` request only needs the partial file's prefix hashed first and ``offset`` passed on.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DigestError,
    copy_and_hash,
    fsync_dir,
    is_sha256_hex,
)

USER_AGENT = "airgap.llm-fetch/1"
DEFAULT_TIMEOUT = 60.0


class FetchError(Exception):
    """A download failed or its content did not match the pin; ``str()`` says what to do."""


class FetchOptions:
    """Connection settings shared by every request of one task."""

    def __init__(
        self,
        ca_file: Optional[str] = None,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.ca_file = ca_file
        self.client_cert = client_cert
        self.client_key = client_key
        self.timeout = timeout
        self.headers = dict(headers or {})


def _context(options: FetchOptions) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if options.client_cert:
            context.load_cert_chain(options.client_cert, options.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"cannot set up TLS (ca_file/client_cert/client_key): {exc}") from None
    return context


def _open(url: str, options: FetchOptions, offset: int = 0) -> Any:
    """Open ``url`` and return the response; ``offset`` > 0 asks for the bytes from there on."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https URLs can be downloaded")
    handlers: list = [urllib.request.ProxyHandler({})]
    if parsed.scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=_context(options)))
    opener = urllib.request.build_opener(*handlers)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    headers.update(options.headers)
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    try:
        return opener.open(request, timeout=options.timeout)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"{url}: cannot connect: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise FetchError(f"{url}: {exc}") from None


def _content_length(response: Any) -> Optional[int]:
    value = response.headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def fetch(
    url: str,
    dest: str,
    sha256: str,
    *,
    options: Optional[FetchOptions] = None,
    size: Optional[int] = None,
    mode: int = 0o644,
) -> Dict[str, Any]:
    """Download ``url`` to ``dest``; the content must hash to ``sha256`` (and be ``size`` bytes).

    Returns ``sha256``, ``size``. Raises :class:`FetchError` naming the URL, expected and actual
    values on any mismatch or transport error; ``dest`` is then untouched.
    """
    if not is_sha256_hex(sha256):
        raise FetchError(f"{url}: the pinned sha256 must be 64 lower-case hex digits, got {sha256!r}")
    options = options or FetchOptions()
    directory = os.path.dirname(os.path.abspath(dest))
    response = _open(url, options)
    expected = size if size is not None else _content_length(response)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=directory)
    try:
        try:
            with response:
                actual, count = copy_and_hash(
                    response, fd, expected_size=expected, src_name=url, dest_name=tmp
                )
            os.fchmod(fd, mode)
            os.fsync(fd)
        except DigestError as exc:
            raise FetchError(f"download failed: {exc}") from None
        except OSError as exc:
            raise FetchError(f"{url}: transfer interrupted: {exc}") from None
        finally:
            os.close(fd)
        if actual != sha256:
            raise FetchError(
                f"{url}: sha256 mismatch: expected {sha256}, got {actual} ({count} bytes). The upstream "
                "file changed or was tampered with; check the pin against the upstream release page."
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return {"sha256": actual, "size": count}


def fetch_bytes(url: str, options: Optional[FetchOptions] = None, limit: int = 1 << 20) -> bytes:
    """Read a small document (at most ``limit`` bytes) into memory."""
    options = options or FetchOptions()
    response = _open(url, options)
    try:
        with response:
            data = response.read(limit + 1)
    except OSError as exc:
        raise FetchError(f"{url}: transfer interrupted: {exc}") from None
    if len(data) > limit:
        raise FetchError(f"{url}: larger than {limit} bytes, refusing to read it into memory")
    return data


def parse_checksums(text: str, filename: str, origin: str) -> str:
    """Find ``filename`` in a ``sha256sum``-style listing (``<hex>  ./name`` or ``<hex> *name``)."""
    found = []
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            continue
        digest, name = parts[0].lower(), parts[1].strip()
        name = name.lstrip("*")
        if name.startswith("./"):
            name = name[2:]
        if name == filename and is_sha256_hex(digest):
            found.append(digest)
    if not found:
        raise FetchError(f"{origin} lists no sha256 for {filename}")
    if len(set(found)) > 1:
        raise FetchError(f"{origin} lists conflicting sha256 values for {filename}")
    return found[0]
