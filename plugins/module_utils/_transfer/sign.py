# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ed25519 signing keys and detached signatures over ``bundle.json``.

A key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key. A signature
file ``signatures/<key id>.sig`` holds the base64 of the 64-byte Ed25519 signature over the exact
bytes of ``bundle.json`` (so ``openssl pkeyutl -verify -rawin`` can check it by hand).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR: Optional[str] = None
except ImportError as _exc:  # pragma: no cover - depends on the environment
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = str(_exc)

__all__ = [
    "CRYPTOGRAPHY_IMPORT_ERROR",
    "HAS_CRYPTOGRAPHY",
    "SignError",
    "key_id",
    "keygen",
    "keygen_plan",
    "load_private_key",
    "load_public_key",
    "public_pem",
    "require_cryptography",
    "sign",
    "verify_threshold",
]

KEY_ID_RE = re.compile(r"^[0-9a-f]{16}$")
SIG_SUFFIX = ".sig"


class SignError(AirgapError):
    """Key handling or signature verification failed."""


def require_cryptography(module: Any) -> None:
    """Fail the task with Ansible's standard message when the ``cryptography`` library is missing."""
    if not HAS_CRYPTOGRAPHY:
        from ansible.module_utils.basic import missing_required_lib  # noqa: PLC0415 - only on failure

        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)


def _require() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise SignError(f"the Python library cryptography is required: {CRYPTOGRAPHY_IMPORT_ERROR}")


def key_id(public_key: Any) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Any) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(data: str, origin: str) -> Any:
    """Load an Ed25519 public key from PEM text; ``origin`` names it in errors."""
    _require()
    try:
        key = serialization.load_pem_public_key(data.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SignError(f"{origin} is not a PEM public key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignError(f"{origin} is not an Ed25519 public key")
    return key


def load_private_key(path: str, passphrase: Optional[str]) -> Any:
    _require()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SignError(f"cannot read private key {path}: {exc}") from None
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode("utf-8") if passphrase else None)
    except TypeError as exc:
        raise SignError(f"private key {path}: {exc} (check the passphrase in Vault)") from None
    except ValueError:
        raise SignError(
            f"cannot decrypt private key {path}: wrong passphrase or not a PEM private key"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignError(f"private key {path} is not an Ed25519 key")
    return key


def keygen_plan(path: str, public_path: str, passphrase: str, force: bool) -> Dict[str, Any]:
    """What :func:`keygen` would do: ``generate``, ``write_public`` or ``none``, plus the key id if known."""
    _require()
    if len(passphrase) < 12:
        raise SignError("the private key passphrase must be at least 12 characters")
    if force or not os.path.exists(path):
        return {"action": "generate", "key_id": None}
    key = load_private_key(path, passphrase)
    pem = public_pem(key.public_key())
    try:
        with open(public_path, encoding="ascii") as handle:
            current = handle.read()
    except (OSError, UnicodeDecodeError):
        current = None
    return {"action": "none" if current == pem else "write_public", "key_id": key_id(key.public_key())}


def keygen(path: str, public_path: str, passphrase: str, force: bool = False) -> Dict[str, Any]:
    """Create (or keep) a passphrase-protected Ed25519 key pair. Returns action, key_id, public_key."""
    plan = keygen_plan(path, public_path, passphrase, force)
    if plan["action"] == "generate":
        key = ed25519.Ed25519PrivateKey.generate()
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
        )
        atomic_write(os.path.abspath(path), data, mode=0o600)
    else:
        key = load_private_key(path, passphrase)
    pem = public_pem(key.public_key())
    if plan["action"] != "none":
        atomic_write(os.path.abspath(public_path), pem.encode("ascii"), mode=0o644)
    return {"action": plan["action"], "key_id": key_id(key.public_key()), "public_key": pem}


def sign(private_key: Any, message: bytes) -> Tuple[str, bytes]:
    """Return (key id, signature file content)."""
    signature = private_key.sign(message)
    return key_id(private_key.public_key()), base64.b64encode(signature) + b"\n"


def verify_threshold(
    message: bytes,
    signatures: Dict[str, bytes],
    trusted: Sequence[Any],
    threshold: int,
) -> List[str]:
    """Check ``signatures`` (key id -> signature file content) against ``trusted`` public keys.

    A signature that claims a trusted key id but does not verify is refused outright (it means
    tampering or corruption). Signatures by unknown keys are not counted. Fewer than ``threshold``
    good signatures by distinct trusted keys is refused. Returns the ids of the keys that signed.
    """
    _require()
    if threshold < 1:
        raise SignError("the signature threshold must be at least 1")
    by_id = {key_id(k): k for k in trusted}
    if len(by_id) < threshold:
        raise SignError(
            f"only {len(by_id)} distinct trusted keys are configured but the threshold is {threshold}"
        )
    good: List[str] = []
    unknown: List[str] = []
    for kid in sorted(signatures):
        if kid not in by_id:
            unknown.append(kid)
            continue
        try:
            raw = base64.b64decode(signatures[kid].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignError(f"signature signatures/{kid}.sig is not valid base64: it was altered") from None
        try:
            by_id[kid].verify(raw, message)
        except InvalidSignature:
            raise SignError(
                f"signature signatures/{kid}.sig does not verify against trusted key {kid}: bundle.json or "
                "the signature was altered; do not use this bundle, ask the low side for a new one"
            ) from None
        good.append(kid)
    if len(good) < threshold:
        detail = "valid signatures by trusted keys: {}".format(", ".join(good) or "none")
        if unknown:
            detail += "; signatures by keys that are not trusted here: {}".format(", ".join(unknown))
        raise SignError(
            f"bundle has {len(good)} of the {threshold} required signatures ({detail}); have it signed by "
            "more trusted keys, or pin the right public keys in trusted_keys"
        )
    return good
