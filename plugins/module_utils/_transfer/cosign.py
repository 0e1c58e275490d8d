# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Add a signature to a built bundle: k of n signers, each with their own key, on their own turn.

``bundle_build`` signs with the key(s) it is given (the first signer's); every further signer runs
:func:`add_signature` on the built bundle with their own key and passphrase, so that no single
vault or person holds every passphrase. The signer first checks what they sign, in one read of the
bundle: its digest against the one they were given (or its ``.sha256``), every chunk against the
chunk list, the archive (nothing unsafe or unlisted), ``bundle.json`` (strict) and every file it
lists against its digest and size. The same bytes are written meanwhile under temporary names,
with the new ``signatures/<key id>.sig`` before the end-of-archive marker; only when every check
passed are they renamed over the bundle (or its chunks, cut at the same size), and the chunk list
and ``.sha256`` are written last, with the new digest to read to the high side.

A bundle this key has signed already is found from the tar headers alone (no member is read) and
left as it is.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import DigestError, parse_sha256
from ansible_collections.airgap.llm.plugins.module_utils._transfer.build import (
    TarWriter,
    outputs,
    read_outer,
    write_digest_files,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import ScanResult, scan
from ansible_collections.airgap.llm.plugins.module_utils._transfer.ingest import (
    SIG_RE,
    Refused,
    check_extraction,
    check_files,
    keep_in_memory,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (
    SignError,
    key_id,
    load_private_key,
    sign,
    verify_threshold,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import (
    MANIFEST,
    SIG_DIR,
    BundleError,
    parse_manifest,
    parse_time,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import (
    ChunkedSink,
    PartsSource,
    SeekingSource,
    StreamError,
    read_sums,
)

__all__ = ["add_signature"]

_ZEROS = b"\x00" * (1 << 20)
_SIGNATURE_BYTES = 64


class _Copy(PartsSource):
    """A :class:`PartsSource` whose bytes also go to ``sink``, except the zeros at the very end.

    Zero bytes are held back (counted) until a non-zero byte follows, so that when the archive has
    been read the sink holds everything up to the last non-zero byte; :meth:`pad_to` then writes
    the zeros up to where the end-of-archive marker started, and the new member goes there.
    """

    def __init__(self, parts: List[str], sink: Optional[ChunkedSink]) -> None:
        super().__init__(parts)
        self.sink = sink
        self.written = 0
        self.zeros = 0

    def read(self, n: int) -> memoryview:
        view = super().read(n)
        if self.sink is not None and len(view):
            data = bytes(view)
            kept = len(data.rstrip(b"\x00"))
            if kept:
                self._zeros(self.zeros)
                self.sink.write(data[:kept])
                self.written += kept
                self.zeros = len(data) - kept
            else:
                self.zeros += len(data)
        return view

    def _zeros(self, count: int) -> None:
        while count and self.sink is not None:
            piece = min(count, len(_ZEROS))
            self.sink.write(_ZEROS[:piece])
            self.written += piece
            count -= piece
        self.zeros = 0

    def pad_to(self, offset: int) -> None:
        """Write the zeros held back up to ``offset`` (the start of the end-of-archive marker)."""
        if offset < self.written:
            raise BundleError("the archive's end-of-archive marker is not where its data ends")
        self._zeros(offset - self.written)


def _parts(tar: str) -> Tuple[List[str], Optional[List[str]]]:
    """The files of the bundle ``tar`` in order, and their listed digests when it is chunked."""
    chunks = outputs(os.path.dirname(tar) or ".", os.path.basename(tar)[: -len(".tar")])["chunks"]
    if os.path.isfile(tar):
        return [tar], None
    if os.path.isfile(chunks):
        try:
            rows = read_sums(chunks)
        except StreamError as exc:
            raise BundleError(f"{exc}; build the bundle again") from None
        if not rows:
            raise BundleError(f"{chunks} lists no chunks; build the bundle again")
        directory = os.path.dirname(os.path.abspath(tar))
        return [os.path.join(directory, name) for _digest, name in rows], [digest for digest, _name in rows]
    raise BundleError(
        f"bundle {tar} does not exist (nor {os.path.basename(chunks)}): give the path of the .tar as "
        "bundle_build wrote it (for a chunked bundle the same name, without .partNNNN)"
    )


def _signatures(result: ScanResult) -> Dict[str, bytes]:
    return {m.group(1): data for name, data in result.memory.items() if (m := SIG_RE.match(name))}


def _check_signature_forms(signatures: Dict[str, bytes]) -> None:
    """Signatures by other keys cannot be verified here (their public keys are on the high side),
    but each must at least be what bundle_build writes: base64 of 64 bytes."""
    for kid, data in sorted(signatures.items()):
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _SIGNATURE_BYTES:
            raise BundleError(
                f"signature {SIG_DIR}{kid}.sig is not an Ed25519 signature; the bundle was altered or built "
                "by another tool: do not sign it, build it again"
            )


def _verify_read(
    tar: str,
    parts: List[str],
    listed: Optional[List[str]],
    digests: Tuple[str, List[str], List[int]],
    *,
    expected: Optional[str],
    result: ScanResult,
) -> Tuple[Dict[str, Any], bytes]:
    """Everything a signer checks before signing; returns the parsed bundle.json and its bytes."""
    whole, part_digests, _sizes = digests
    if expected is not None and whole != expected:
        raise BundleError(
            f"bundle {tar} does not have the sha256 you were given ({expected}): it is not the bundle the "
            "previous signer built or signed, or the copy is damaged. Get the bundle and its digest again; "
            "do not take the digest from the bundle's own .sha256 file"
        )
    for path, want, got in zip(parts, listed or [], part_digests):
        if want != got:
            raise BundleError(f"chunk {path} does not match its chunk list: it is damaged; copy it again")
    raw = result.memory.get(MANIFEST)
    if raw is None or result.end_offset is None:
        why = result.archive_error or "it holds no bundle.json"
        raise BundleError(f"{tar} is not a bundle built by bundle_build ({why}): do not sign it")
    try:
        manifest = parse_manifest(raw)
    except BundleError as exc:
        raise BundleError(f"{tar}: {exc}; do not sign it, build it again") from None
    signed = sorted(_signatures(result))
    try:
        check_files(manifest, result, signed)
        check_extraction(manifest, result, signed)
    except Refused as exc:
        raise BundleError(f"{tar} {exc}; do not sign it, build it again") from None
    _check_signature_forms(_signatures(result))
    return manifest, raw


def add_signature(
    tar: str,
    key_path: str,
    passphrase: str,
    *,
    expected_sha256: Optional[str] = None,
    chunk_size: Optional[int] = None,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Sign the built bundle ``tar`` with the key at ``key_path`` too; see the module docs. Returns
    the module result (``sha256`` is the bundle's new digest)."""
    expected = None
    if expected_sha256:
        try:
            expected = parse_sha256(expected_sha256, "sha256", "the digest the previous signer gave you")
        except DigestError as exc:
            raise BundleError(str(exc)) from None
    paths = outputs(os.path.dirname(tar) or ".", os.path.basename(tar)[: -len(".tar")])
    if not tar.endswith(".tar"):
        raise BundleError(f"bundle {tar} must name the .tar that bundle_build wrote")
    parts, listed = _parts(tar)
    recorded = read_outer(paths["sha256"]) if os.path.isfile(paths["sha256"]) else None
    if expected is not None and recorded is not None and expected != recorded:
        raise BundleError(
            f"{paths['sha256']} lists another digest than the one you were given ({expected}): this is not "
            "the bundle the previous signer built or signed, or the digest was mistyped. Get the bundle and "
            "its digest again; do not take the digest from the .sha256 file"
        )
    try:
        key = load_private_key(key_path, passphrase)
    except SignError as exc:
        raise BundleError(f"{exc} (bundle_key_passphrase in your own vault file)") from None
    kid = key_id(key.public_key())
    result: Dict[str, Any] = {"changed": False, "bundle": tar, "key_id": kid, "previous_sha256": recorded}
    try:
        quick = scan(SeekingSource(parts), None, keep_in_memory)
    except StreamError as exc:
        raise BundleError(str(exc)) from None
    raw = quick.memory.get(MANIFEST)
    signatures = _signatures(quick)
    if raw is not None and kid in signatures:
        try:
            verify_threshold(raw, {kid: signatures[kid]}, [key.public_key()], 1)
        except SignError as exc:
            raise BundleError(f"bundle {tar}: {exc}") from None
        result.update(
            sha256=recorded,
            key_ids=sorted(signatures),
            msg=f"bundle {tar} is signed by key {kid} already; nothing was changed",
        )
        return result
    chunked = listed is not None
    if chunked and chunk_size is None:
        chunk_size = os.path.getsize(parts[0])
    sink = None if check_mode else ChunkedSink(paths["tar"], chunk_size if chunked else None)
    source = _Copy(parts, sink)
    try:
        try:
            full = scan(source, None, keep_in_memory)
            digests = source.close()
        except StreamError as exc:
            raise BundleError(str(exc)) from None
        manifest, raw = _verify_read(tar, parts, listed, digests, expected=expected or recorded, result=full)
        kids = sorted([*_signatures(full), kid])
        if sink is None or full.end_offset is None:  # check mode (the end offset is known after the checks)
            msg = f"bundle {tar} would be signed by key {kid} too"
            result.update(changed=True, sha256=None, key_ids=kids, msg=msg)
            return result
        source.pad_to(full.end_offset)
        writer = TarWriter(sink, int(parse_time(manifest["created"], "created").timestamp()))
        try:
            writer.add_bytes(f"{SIG_DIR}{kid}.sig", sign(key, raw)[1])
            writer.finish()
        finally:
            writer.close()
        digest, written = sink.commit()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    write_digest_files(paths, digest, written, chunked)
    result.update(
        changed=True,
        sha256=digest,
        key_ids=kids,
        size=sum(size for _path, _digest, size in written),
        chunks=[{"path": p, "sha256": h, "size": s} for p, h, s in written] if chunked else [],
        msg=f"bundle {tar} signed by key {kid} too ({len(kids)} signatures); its SHA-256 is now {digest}",
    )
    return result
