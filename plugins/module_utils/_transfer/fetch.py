# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one HTTP(S) downloader of the collection (standard library only).

:func:`fetch` streams a URL into a temporary file beside the destination while hashing it (one
pass, :func:`_digest.copy_and_hash`), checks the expected SHA-256 and size, fsyncs and renames.
A failed or mismatching download leaves the destination as it was. :func:`fetch_bytes` reads a
small document (a ``sha256sum.txt``) into memory with a size limit.

TLS: ``ca_file`` pins the trust anchors (the system store otherwise), ``client_cert`` and
``client_key`` authenticate the client. Proxies from the environment are ignored: air-gapped
sites must not leak requests to whatever ``https_proxy`` says.

Resume: given ``partial`` (a fixed name beside the destination, normally derived from the expected
digest so that a partial download of another version is never continued), :func:`fetch` keeps the
bytes received when a transfer breaks (connection dropped, timeout, killed process) and the next
call asks only for the rest with ``Range: bytes=<offset>-``. The prefix already on disk is read and
hashed once, the rest is hashed as it arrives (one pass over every byte). A server that ignores the
range (``200``), answers ``416`` or a ``Content-Range`` that does not start at the offset makes the
transfer start over; a complete file whose digest does not match is deleted, never resumed.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Mapping, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    SizeMismatchError,
    copy_and_hash,
    is_sha256_hex,
)
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    DestinationWriteError,
    FileError,
    NotRegularError,
    fsync_dir,
    open_regular,
    replacing,
    settle,
    write_all,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DigestMismatchError",
    "FetchError",
    "FetchOptions",
    "TransferInterrupted",
    "fetch",
    "fetch_bytes",
    "open_url",
    "parse_checksums",
    "tls_argument_spec",
    "tls_options",
]

USER_AGENT = "airgap.llm-fetch/1"
DEFAULT_TIMEOUT = 60.0


class FetchError(AirgapError):
    """A download failed or its content did not match the pin; ``str()`` says what to do."""


class DigestMismatchError(FetchError):
    """The whole file arrived but its SHA-256 (or size) is not the pinned one."""

    def __init__(self, message: str, expected: str, actual: str, size: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.size = size


class TransferInterrupted(FetchError):
    """The transfer broke off; ``kept`` bytes stay in the partial file for the next attempt."""

    def __init__(self, message: str, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


class _RangeNotSatisfiable(FetchError):
    """The server answered 416 to a Range request: the partial file cannot be continued."""


class FetchOptions:
    """Connection settings shared by every request of one task."""

    def __init__(
        self,
        *,
        ca_file: Optional[str] = None,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Optional[Dict[str, str]] = None,
        validate_certs: bool = True,
        https_only: bool = False,
    ) -> None:
        self.ca_file = ca_file
        self.client_cert = client_cert
        self.client_key = client_key
        self.timeout = timeout
        self.headers = dict(headers or {})
        # validate_certs=False is for tests and broken sites only; nothing defaults to it.
        self.validate_certs = validate_certs
        # https_only: refuse plain-http URLs and redirects to them.
        self.https_only = https_only


def tls_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The argument spec of the TLS client options (doc fragment ``airgap.llm.tls_client``)."""
    return {
        "ca_file": {"type": "path"},
        "client_cert": {"type": "path"},
        "client_key": {"type": "path", "no_log": False},
        "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
    }


def tls_options(params: Mapping[str, Any], **extra: Any) -> FetchOptions:
    """:class:`FetchOptions` from the TLS client options of a module or lookup (``params``)."""
    return FetchOptions(
        ca_file=params.get("ca_file") or None,
        client_cert=params.get("client_cert") or None,
        client_key=params.get("client_key") or None,
        timeout=params["timeout"] if params.get("timeout") is not None else DEFAULT_TIMEOUT,
        **extra,
    )


def _context(options: FetchOptions) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.ca_file if options.validate_certs else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not options.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if options.client_cert:
            context.load_cert_chain(options.client_cert, options.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"cannot set up TLS (ca_file/client_cert/client_key): {exc}") from None
    return context


class _HttpsOnlyRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 - stdlib signature
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise FetchError(f"{req.full_url} redirects to {newurl}, which is not https; refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_url(url: str, options: FetchOptions, offset: int = 0, data: Optional[bytes] = None) -> Any:
    """Open ``url`` and return the response; ``offset`` > 0 asks for the bytes from there on, and
    ``data`` makes the request a POST of those bytes (an API call; ``options.headers`` says their type).

    The one place where the collection opens a URL: proxies are never used, TLS follows
    ``options``, and with ``options.https_only`` neither the URL nor a redirect may be plain http.
    """
    parsed = urllib.parse.urlsplit(url)
    allowed = ("https",) if options.https_only else ("http", "https")
    if parsed.scheme not in allowed or not parsed.netloc:
        raise FetchError(f"{url}: only {' and '.join(allowed)} URLs can be downloaded")
    handlers: list = [urllib.request.ProxyHandler({})]
    if options.https_only:
        handlers.append(_HttpsOnlyRedirect())
    if parsed.scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=_context(options)))
    opener = urllib.request.build_opener(*handlers)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    headers.update(options.headers)
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, headers=headers, method="POST" if data is not None else "GET"
    )
    try:
        return opener.open(request, timeout=options.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _RangeNotSatisfiable(f"{url}: HTTP 416 for bytes {offset}-") from None
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
    partial: Optional[str] = None,
    uid: int = -1,
    gid: int = -1,
) -> Dict[str, Any]:
    """Download ``url`` to ``dest``; the content must hash to ``sha256`` (and be ``size`` bytes).

    Returns ``sha256``, ``size``, ``transferred`` (bytes received now) and ``resumed_from`` (bytes
    that were already in ``partial``). Raises :class:`FetchError` naming the URL, expected and
    actual values on any mismatch or transport error; ``dest`` is then untouched.

    Without ``partial`` a failed download leaves nothing behind. With ``partial`` (a path in the
    directory of ``dest``) an interrupted transfer keeps its bytes there
    (:class:`TransferInterrupted`) and the next call resumes it with a Range request. The file
    is given ``mode`` and, unless -1, ``uid``/``gid`` before it is renamed into place.
    """
    if not is_sha256_hex(sha256):
        raise FetchError(f"{url}: the pinned sha256 must be 64 lower-case hex digits, got {sha256!r}")
    options = options or FetchOptions()
    directory = os.path.dirname(os.path.abspath(dest))
    if partial is not None:
        if os.path.dirname(os.path.abspath(partial)) != directory:
            raise FetchError(f"{partial}: the partial file must be in the directory of {dest}")
        return _Resumable(
            url, dest, sha256, options=options, size=size, mode=mode, partial=partial, uid=uid, gid=gid
        ).run()
    response = open_url(url, options)
    expected = size if size is not None else _content_length(response)
    with replacing(dest, mode=mode, uid=uid, gid=gid, suffix=".part") as (fd, tmp):
        try:
            with response:
                actual, count = copy_and_hash(
                    response, fd, expected_size=expected, src_name=url, dest_name=tmp
                )
        except FileError as exc:
            raise FetchError(f"download failed: {exc}") from None
        except OSError as exc:
            raise FetchError(f"{url}: transfer interrupted: {exc}") from None
        if actual != sha256:
            raise FetchError(
                f"{url}: sha256 mismatch: expected {sha256}, got {actual} ({count} bytes). The upstream "
                "file changed or was tampered with; check the pin against the upstream release page."
            )
    return {"sha256": actual, "size": count, "transferred": count, "resumed_from": 0}


def _content_range(response: Any) -> Optional[Tuple[int, Optional[int]]]:
    """``(first byte, total or None)`` of a ``Content-Range: bytes a-b/total`` header."""
    value = response.headers.get("Content-Range") or ""
    unit, _sep, spec = value.strip().partition(" ")
    span, _sep, total = spec.partition("/")
    first, _sep, _last = span.partition("-")
    if unit != "bytes" or not first.isdigit():
        return None
    return int(first), int(total) if total.isdigit() else None


class _ResumeReader:
    """Feed ``copy_and_hash`` the partial file's prefix, then the response, appending the latter.

    ``copy_and_hash`` hashes everything this reader yields, so the digest covers the prefix read
    back from disk and the remainder as it arrives: every byte is read and hashed once. The new
    bytes are appended to the partial file here (the copy's own destination is ``/dev/null``).
    """

    def __init__(self, prefix_fd: int, prefix_len: int, response: Any, sink_fd: int, sink_name: str) -> None:
        self.prefix_fd = prefix_fd
        self.prefix_left = prefix_len
        self.response = response
        self.sink_fd = sink_fd
        self.sink_name = sink_name
        self.received = 0

    def readinto(self, buf: Any) -> int:
        if self.prefix_left:
            view = memoryview(buf)[: min(len(buf), self.prefix_left)]
            try:
                count = os.readv(self.prefix_fd, [view])
            finally:
                view.release()
            if not count:
                raise DestinationWriteError(self.sink_name, "the partial file shrank while it was read back")
            self.prefix_left -= count
            return count
        if self.response is None:
            return 0
        count = self.response.readinto(buf) or 0
        if count:
            with memoryview(buf) as whole, whole[:count] as view:
                write_all(self.sink_fd, view, self.sink_name)
            self.received += count
        return count


class _Resumable:
    """One resumable download into a fixed partial file (see :func:`fetch`)."""

    def __init__(
        self,
        url: str,
        dest: str,
        sha256: str,
        *,
        options: FetchOptions,
        size: Optional[int],
        mode: int,
        partial: str,
        uid: int,
        gid: int,
    ) -> None:
        self.url = url
        self.dest = dest
        self.sha256 = sha256
        self.options = options
        self.size = size
        self.mode = mode
        self.partial = partial
        self.uid = uid
        self.gid = gid
        self.directory = os.path.dirname(os.path.abspath(dest))

    def _open_partial(self) -> int:
        try:
            fd, _st = open_regular(self.partial, flags=os.O_RDWR | os.O_CREAT)
        except NotRegularError:
            raise FetchError(f"{self.partial} is not a regular file; remove it and run again") from None
        except OSError as exc:
            raise FetchError(f"cannot open the partial file {self.partial}: {exc.strerror}") from None
        return fd

    def _request(self, offset: int) -> Tuple[Any, int, Optional[int]]:
        """Open the URL from ``offset`` (0 = whole file); return (response, offset used, total)."""
        if offset:
            try:
                response = open_url(self.url, self.options, offset)
            except _RangeNotSatisfiable:
                response = None
            if response is not None:
                span = _content_range(response) if response.status == 206 else None
                if span is not None and span[0] == offset:
                    total = self.size if self.size is not None else span[1]
                    return response, offset, total
                response.close()
        response = open_url(self.url, self.options)
        return response, 0, self.size if self.size is not None else _content_length(response)

    def run(self) -> Dict[str, Any]:
        fd = self._open_partial()
        try:
            result = self._transfer(fd)
            settle(fd, self.mode, self.uid, self.gid)
        finally:
            os.close(fd)
        os.replace(self.partial, self.dest)
        fsync_dir(self.directory)
        return result

    def _transfer(self, fd: int) -> Dict[str, Any]:
        have = os.fstat(fd).st_size
        if self.size is not None and have > self.size:
            have = 0
        total: Optional[int]
        if self.size is not None and have == self.size:
            response, offset, total = None, have, self.size
        else:
            response, offset, total = self._request(have)
        if offset == 0:
            os.ftruncate(fd, 0)
        os.lseek(fd, offset, os.SEEK_SET)
        reader = None
        try:
            with contextlib.ExitStack() as stack:
                if response is not None:
                    stack.enter_context(response)
                if offset == 0:
                    # Written with O_DIRECT where possible (no copy into the page cache) and with
                    # writeback started as it goes, so the final fsync waits for the tail only.
                    actual, count = copy_and_hash(
                        response if response is not None else io.BytesIO(),  # nothing left to fetch
                        fd,
                        expected_size=total,
                        src_name=self.url,
                        dest_name=self.partial,
                        start_writeback=True,
                        direct=True,
                    )
                    received = count
                else:
                    prefix_fd = os.open(self.partial, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                    stack.callback(os.close, prefix_fd)
                    null_fd = os.open(os.devnull, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
                    stack.callback(os.close, null_fd)
                    reader = _ResumeReader(prefix_fd, offset, response, fd, self.partial)
                    actual, count = copy_and_hash(
                        reader, null_fd, expected_size=total, src_name=self.url, dest_name=self.partial
                    )
                    received = reader.received
        except SizeMismatchError as exc:
            if exc.more:
                self._discard(fd)
                raise FetchError(
                    f"{self.url}: the server sent more than the {exc.expected} bytes expected; the partial "
                    "file was removed. Check the pinned size and the repository copy."
                ) from None
            self._interrupted(fd, f"the connection ended after {exc.actual} of {exc.expected} bytes")
        except DestinationWriteError as exc:
            self._interrupted(fd, str(exc))
        except FileError as exc:
            self._interrupted(fd, str(exc))
        except (OSError, http.client.HTTPException) as exc:
            self._interrupted(fd, str(exc) or type(exc).__name__)
        if actual != self.sha256:
            self._discard(fd)
            raise DigestMismatchError(
                f"{self.url}: sha256 mismatch: expected {self.sha256}, got {actual} ({count} bytes); the "
                f"download was discarded and {self.dest} was left as it was. The repository copy is corrupt "
                "or does not match the pin: re-ingest the artifact or check the pinned digest.",
                self.sha256,
                actual,
                count,
            )
        return {"sha256": actual, "size": count, "transferred": received, "resumed_from": offset}

    def _discard(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            os.unlink(self.partial)

    def _interrupted(self, fd: int, reason: str) -> None:
        with contextlib.suppress(OSError):
            os.fsync(fd)
        kept = os.fstat(fd).st_size
        raise TransferInterrupted(
            f"{self.url}: transfer interrupted ({reason}); {kept} bytes are kept in {self.partial}. Run the "
            f"task again to resume; {self.dest} was left as it was.",
            kept,
        )


def fetch_bytes(
    url: str, options: Optional[FetchOptions] = None, limit: int = 1 << 20, data: Optional[bytes] = None
) -> bytes:
    """Read a small document (at most ``limit`` bytes) into memory; ``data`` is POSTed (:func:`open_url`)."""
    options = options or FetchOptions()
    response = open_url(url, options, data=data)
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
