# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""X.509 for the internal CA: CA material (made here or imported, always checked) and certificate facts.

The CA material is what step-ca needs and nothing else: the root certificate, the intermediate
certificate and the intermediate key encrypted with the CA password (PKCS#8), in upstream's layout
under the CA directory::

    certs/root_ca.crt            0644 root:root
    certs/intermediate_ca.crt    0644 root:root
    secrets/intermediate_ca_key  0440 root:<CA group>  (encrypted; step-ca opens it with --password-file)
    secrets/root_ca_key          0400 root:root             (only when the material was made here)

Every check says which certificate or key failed, what was expected and what to do. No message,
return value or diff ever holds key material or the password: keys appear only as the fingerprint
of their public half.

Certificate facts (:func:`certificate_facts`) are what verify.yml reports and what decides whether
a certificate must be issued again: names, issuer, serial, validity, days left and whether the
chain leads to the internal root.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import stat
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, quote
from ansible_collections.airgap.llm.plugins.module_utils._io import Owner, atomic_write, read_bounded

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_CRYPTOGRAPHY = False

__all__ = [
    "FILES",
    "HAS_CRYPTOGRAPHY",
    "KEY_TYPES",
    "PEM_LIMIT",
    "Material",
    "PkiError",
    "certificate_facts",
    "check_material",
    "check_root",
    "describe_material",
    "generate_material",
    "load_certificates",
    "make_material",
    "material_summary",
]

PEM_LIMIT = 256 * 1024
"""Bytes of PEM a certificate chain, a key or a file of the CA directory may have."""

KEY_TYPES = ("ec-p256", "ec-p384")
FILES = {
    "root": "certs/root_ca.crt",
    "intermediate": "certs/intermediate_ca.crt",
    "intermediate_key": "secrets/intermediate_ca_key",
    "root_key": "secrets/root_ca_key",
}
_PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.S)
_PEM_ANY_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_SECONDS_PER_DAY = 86400


class PkiError(AirgapError):
    """CA material or a certificate that cannot be used; ``str()`` says which, why and what to do."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _not_before(cert: Any) -> datetime.datetime:
    # not_valid_before_utc appeared in cryptography 42; Debian 12 has 38.
    return _utc(getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before)


def _not_after(cert: Any) -> datetime.datetime:
    return _utc(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_bytes(value: Any, what: str) -> bytes:
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if not isinstance(data, (bytes, bytearray)):
        raise PkiError(f"{what} must be PEM text, got {type(value).__name__}.")
    if len(data) > PEM_LIMIT:
        raise PkiError(
            f"{what} is {len(data)} bytes long; PEM of a certificate chain or key is at most {PEM_LIMIT}."
        )
    return bytes(data)


def _fingerprint(cert: Any) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(cert_name: Any) -> str:
    return cert_name.rfc4514_string()


def load_certificates(pem: Any, what: str) -> List[Any]:
    """Every certificate of a PEM text, in order; anything else in it (a key, garbage) is refused."""
    data = _as_bytes(pem, what)
    blocks = _PEM_CERT_RE.findall(data)
    others = [m.decode("ascii", "replace") for m in _PEM_ANY_RE.findall(data) if m != b"CERTIFICATE"]
    if others:
        raise PkiError(
            f"{what} holds a {others[0]} block besides certificates: give the certificate(s) only, and "
            "never a private key where a certificate is expected."
        )
    if not blocks:
        raise PkiError(
            f"{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----); got {quote(data[:60])}."
        )
    certs = []
    for index, block in enumerate(blocks, 1):
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise PkiError(f"{what}: certificate {index} cannot be read ({exc}).") from None
    return certs


def _verify_signature(cert: Any, issuer_public_key: Any) -> bool:
    """Whether ``cert`` is signed by the key (cryptography 38 has no verify_directly_issued_by)."""
    try:
        if isinstance(issuer_public_key, ec.EllipticCurvePublicKey):
            issuer_public_key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        elif isinstance(issuer_public_key, rsa.RSAPublicKey):
            issuer_public_key.verify(
                cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
            )
        elif isinstance(issuer_public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _issued_by(cert: Any, issuer: Any) -> bool:
    return cert.issuer == issuer.subject and _verify_signature(cert, issuer.public_key())


def _is_ca(cert: Any) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _dns_names(cert: Any) -> List[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name) for name in san.get_values_for_type(x509.DNSName)]


def _public_fingerprint(key: Any) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def certificate_facts(
    pem: Any, root_pem: Any = None, now: Optional[datetime.datetime] = None
) -> Dict[str, Any]:
    """Facts of the first certificate of ``pem`` (a leaf, with its chain after it).

    With ``root_pem``, ``chains_to_root`` says whether leaf, the certificates after it and then the
    root each sign the one before, and ``chain_problem`` says where that fails. Nothing is raised for
    an expired or foreign certificate: the facts say so, the caller decides.
    """
    now = now or _now()
    chain = load_certificates(pem, "the certificate")
    leaf = chain[0]
    not_before, not_after = _not_before(leaf), _not_after(leaf)
    lifetime = max(1.0, (not_after - not_before).total_seconds())
    remaining = (not_after - now).total_seconds()
    facts: Dict[str, Any] = {
        "subject": _name(leaf.subject),
        "issuer": _name(leaf.issuer),
        "serial": format(leaf.serial_number, "x"),
        "names": _dns_names(leaf),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "lifetime_seconds": int(lifetime),
        "remaining_seconds": int(remaining),
        "remaining_percent": round(max(0.0, remaining) * 100.0 / lifetime, 1),
        "days_left": round(remaining / _SECONDS_PER_DAY, 3),
        "expired": remaining <= 0,
        "not_yet_valid": now < not_before,
        "fingerprint_sha256": _fingerprint(leaf),
        "public_key_sha256": _public_fingerprint(leaf.public_key()),
        "is_ca": _is_ca(leaf),
        "chain_length": len(chain),
        "chains_to_root": None,
        "chain_problem": None,
    }
    if root_pem is not None and root_pem != "":
        roots = load_certificates(root_pem, "the root certificate")
        facts["chain_problem"] = _chain_problem(chain, roots[0], now)
        facts["chains_to_root"] = facts["chain_problem"] is None
    return facts


def _chain_problem(chain: Sequence[Any], root: Any, now: datetime.datetime) -> Optional[str]:
    for index, cert in enumerate(chain):
        label = "the certificate" if index == 0 else f"chain certificate {index + 1} ({_name(cert.subject)})"
        if _not_after(cert) < now:
            return f"{label} expired on {_iso(_not_after(cert))}"
        following = chain[index + 1] if index + 1 < len(chain) else None
        if following is not None and _issued_by(cert, following):
            continue
        if _issued_by(cert, root):
            return None
        if cert.subject == root.subject and _fingerprint(cert) == _fingerprint(root):
            return None
        return f"{label} (issuer {_name(cert.issuer)}) is not signed by " + (
            _name(following.subject) if following is not None else f"the internal root {_name(root.subject)}"
        )
    return "the chain ends without reaching the internal root"


# ------------------------------------------------------------------------------------ CA material


class Material:
    """Checked CA material: certificates and keys as objects, and the PEM bytes to store."""

    def __init__(
        self,
        root: Any,
        intermediate: Any,
        intermediate_key_pem: bytes,
        root_key_pem: Optional[bytes] = None,
        warnings: Optional[List[str]] = None,
    ) -> None:
        self.root = root
        self.intermediate = intermediate
        self.intermediate_key_pem = intermediate_key_pem
        self.root_key_pem = root_key_pem
        self.warnings = warnings or []

    def files(self) -> Dict[str, bytes]:
        """What each file of the CA directory holds (the root key only when there is one)."""
        out = {
            "root": self.root.public_bytes(serialization.Encoding.PEM),
            "intermediate": self.intermediate.public_bytes(serialization.Encoding.PEM),
            "intermediate_key": self.intermediate_key_pem,
        }
        if self.root_key_pem is not None:
            out["root_key"] = self.root_key_pem
        return out


def _password_bytes(password: Any) -> bytes:
    if not isinstance(password, str) or password == "":
        raise PkiError(
            "The CA password is empty: step-ca needs it to open the intermediate key. Put it in Ansible "
            "Vault (step_ca_password) or an AWX credential; it is never stored in defaults."
        )
    return password.encode("utf-8")


def _load_key(pem: bytes, password: bytes, what: str) -> Any:
    if b"PRIVATE KEY-----" not in pem:
        raise PkiError(f"{what} holds no PEM private key (-----BEGIN ENCRYPTED PRIVATE KEY-----).")
    try:
        return serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        raise PkiError(
            f"{what} is not encrypted: step-ca opens the intermediate key with the CA password, and an "
            "unencrypted key must not lie on disk. Encrypt it, for example with 'openssl pkcs8 -topk8 -v2 "
            "aes256'."
        ) from None
    except ValueError:
        raise PkiError(
            f"The CA password does not decrypt {what}: give the password the key was encrypted with "
            "(step_ca_password, from Ansible Vault)."
        ) from None
    except Exception as exc:  # unsupported algorithms surface as UnsupportedAlgorithm
        raise PkiError(f"{what} cannot be read ({type(exc).__name__}: {exc}).") from None


def check_material(
    root_pem: Any,
    intermediate_pem: Any,
    intermediate_key_pem: Any,
    password: Any,
    *,
    where: str = "the given",
    root_key_pem: Any = None,
    now: Optional[datetime.datetime] = None,
) -> Material:
    """Check that the material is usable by step-ca; raise :class:`PkiError` naming the first problem.

    ``where`` names the source in messages ("the given" for imported material, or the directory).
    """
    now = now or _now()
    password_bytes = _password_bytes(password)
    root = load_certificates(root_pem, f"{where} root certificate")[0]
    intermediates = load_certificates(intermediate_pem, f"{where} intermediate certificate")
    intermediate = intermediates[0]
    key_pem = _as_bytes(intermediate_key_pem, f"{where} intermediate key").strip() + b"\n"
    root_label = f"root certificate ({_name(root.subject)})"
    int_label = f"intermediate certificate ({_name(intermediate.subject)})"

    if root.issuer != root.subject or not _verify_signature(root, root.public_key()):
        raise PkiError(
            f"{where} {root_label} is not self-signed (issuer {_name(root.issuer)}): give the root of the "
            "CA, the certificate that signs the intermediate, not the intermediate or a leaf."
        )
    if not _is_ca(root):
        raise PkiError(f"{where} {root_label} is not a CA certificate (basicConstraints CA:TRUE is missing).")
    if not _is_ca(intermediate):
        raise PkiError(
            f"{where} {int_label} is not a CA certificate (basicConstraints CA:TRUE is missing): step-ca "
            "signs with it, so it must be an intermediate CA."
        )
    if not _issued_by(intermediate, root):
        raise PkiError(
            f"{where} {int_label} does not chain to the given {root_label}: it names "
            f"{_name(intermediate.issuer)} "
            f"as its issuer"
            + ("" if intermediate.issuer != root.subject else " but the root's key did not sign it")
            + ". Give the intermediate that this root signed, or the root that signed this intermediate."
        )
    for label, cert in ((root_label, root), (int_label, intermediate)):
        if _not_after(cert) <= now:
            raise PkiError(f"{where} {label} expired on {_iso(_not_after(cert))}: issue a new one.")
        if _not_before(cert) > now:
            raise PkiError(
                f"{where} {label} is valid only from {_iso(_not_before(cert))}: check this host's clock."
            )
    if _not_after(intermediate) > _not_after(root):
        raise PkiError(
            f"{where} {int_label} is valid until {_iso(_not_after(intermediate))}, after its root expires "
            f"({_iso(_not_after(root))}); clients would reject what it signs after that. Issue it for a "
            "shorter time."
        )
    key = _load_key(key_pem, password_bytes, f"{where} intermediate key")
    if _public_fingerprint(key.public_key()) != _public_fingerprint(intermediate.public_key()):
        raise PkiError(
            f"{where} intermediate key does not belong to the {int_label}: their public keys differ. Give "
            "the key the intermediate was issued for."
        )
    root_key_bytes = None
    if root_key_pem is not None:
        root_key_bytes = _as_bytes(root_key_pem, f"{where} root key").strip() + b"\n"
        root_key = _load_key(root_key_bytes, password_bytes, f"{where} root key")
        if _public_fingerprint(root_key.public_key()) != _public_fingerprint(root.public_key()):
            raise PkiError(f"{where} root key does not belong to the {root_label}: their public keys differ.")
    warnings = []
    days = (_not_after(intermediate) - now).total_seconds() / _SECONDS_PER_DAY
    if days < 30:
        warnings.append(
            f"The {int_label} expires in {days:.0f} days ({_iso(_not_after(intermediate))}): renew it."
        )
    return Material(root, intermediate, key_pem, root_key_bytes, warnings)


def _curve(key_type: str) -> Any:
    if key_type == "ec-p256":
        return ec.SECP256R1()
    if key_type == "ec-p384":
        return ec.SECP384R1()
    raise PkiError(f"Key type {quote(key_type)} is not supported: expected one of {', '.join(KEY_TYPES)}.")


def _encrypt(key: Any, password: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _issue_ca(
    subject: Any,
    key: Any,
    issuer: Any,
    issuer_key: Any,
    *,
    days: int,
    path_length: int,
    now: datetime.datetime,
) -> Any:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(
        issuer_key, hashes.SHA256() if isinstance(key.curve, ec.SECP256R1) else hashes.SHA384()
    )


def _ca_name(common_name: str, organization: str) -> Any:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def generate_material(
    name: str,
    password: Any,
    *,
    key_type: str = "ec-p256",
    root_days: int = 3650,
    intermediate_days: int = 1825,
    root: Any = None,
    root_key_pem: Optional[bytes] = None,
    now: Optional[datetime.datetime] = None,
) -> Material:
    """Make a root (unless ``root`` and its encrypted key are given) and an intermediate it signs."""
    now = now or _now()
    password_bytes = _password_bytes(password)
    if not name or len(name) > 60 or any(ord(c) < 32 for c in name):
        raise PkiError(
            f"The CA name {quote(name)} must be 1 to 60 printable characters (it names both certificates)."
        )
    if not 1 <= intermediate_days < root_days:
        raise PkiError(
            f"The intermediate is to be valid for {intermediate_days} days and the root for {root_days}: the "
            "intermediate must expire before its root (and both be at least a day)."
        )
    curve = _curve(key_type)
    if root is None:
        root_key = ec.generate_private_key(curve)
        root = _issue_ca(
            _ca_name(f"{name} Root CA", name),
            root_key,
            None,
            root_key,
            days=root_days,
            path_length=1,
            now=now,
        )
        root = x509.load_pem_x509_certificate(root.public_bytes(serialization.Encoding.PEM))
        root_key_pem = _encrypt(root_key, password_bytes)
    else:
        if root_key_pem is None:
            raise PkiError("A new intermediate needs the root key, which this CA directory does not hold.")
        root_key = _load_key(root_key_pem, password_bytes, "the root key")
    if not isinstance(root_key, ec.EllipticCurvePrivateKey):
        raise PkiError("The root key is not an EC key; this module makes EC (P-256, P-384) CAs only.")
    intermediate_key = ec.generate_private_key(curve)
    days = min(intermediate_days, int((_not_after(root) - now).total_seconds() // _SECONDS_PER_DAY) - 1)
    if days < 1:
        raise PkiError(
            f"The root certificate expires on {_iso(_not_after(root))}: no intermediate can be issued."
        )
    intermediate = _issue_ca(
        _ca_name(f"{name} Intermediate CA", name),
        intermediate_key,
        root.subject,
        root_key,
        days=days,
        path_length=0,
        now=now,
    )
    return Material(root, intermediate, _encrypt(intermediate_key, password_bytes), root_key_pem)


def material_summary(material: Optional[Material]) -> Dict[str, Any]:
    """What may be shown of the material: subjects, fingerprints, expiry, the root certificate. No keys."""
    if material is None:
        return {
            "root_certificate": None,
            "root_subject": None,
            "root_fingerprint": None,
            "root_not_after": None,
            "intermediate_subject": None,
            "intermediate_fingerprint": None,
            "intermediate_not_after": None,
        }
    return {
        "root_certificate": material.root.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "root_subject": _name(material.root.subject),
        "root_fingerprint": _fingerprint(material.root),
        "root_not_after": _iso(_not_after(material.root)),
        "intermediate_subject": _name(material.intermediate.subject),
        "intermediate_fingerprint": _fingerprint(material.intermediate),
        "intermediate_not_after": _iso(_not_after(material.intermediate)),
    }


# ------------------------------------------------------------------------------- the CA directory


def _modes(group: Owner) -> Dict[str, Tuple[int, Owner]]:
    root_owner = Owner(0, 0)
    return {
        "root": (0o644, root_owner),
        "intermediate": (0o644, root_owner),
        "intermediate_key": (0o440, Owner(0, group.gid)),
        "root_key": (0o400, root_owner),
    }


def _read_existing(path: str) -> Dict[str, Optional[bytes]]:
    out: Dict[str, Optional[bytes]] = {}
    for kind, rel in FILES.items():
        full = os.path.join(path, rel)
        try:
            out[kind] = read_bounded(full, PEM_LIMIT)
        except FileNotFoundError:
            out[kind] = None
        except AirgapError as exc:
            raise PkiError(f"{full} cannot be read: {exc}") from None
    return out


def make_material(
    path: str,
    mode: str,
    password: Any,
    key_group: Optional[str],
    *,
    check_mode: bool,
    root_pem: Any = None,
    intermediate_pem: Any = None,
    intermediate_key_pem: Any = None,
    name: str = "",
    key_type: str = "ec-p256",
    root_days: int = 3650,
    intermediate_days: int = 1825,
) -> Dict[str, Any]:
    """Bring the CA directory ``path`` to checked material; returns what was (or would be) written.

    ``import``: the given material is checked and written where the files differ. ``generate``: the
    material in the directory is kept when it checks out with the password; what is missing is
    made (a root and an intermediate, or only a new intermediate when the root and its key are
    there). Files are written atomically with their modes; only differences are written.
    """
    for sub in ("certs", "secrets"):
        if not os.path.isdir(os.path.join(path, sub)):
            raise PkiError(
                f"{os.path.join(path, sub)} is not a directory: create the CA directory layout first."
            )
    owner = Owner.resolve(None, key_group)
    existing = _read_existing(path)
    where = f"the CA material in {path}:"
    action = "none"
    if mode == "import":
        material: Optional[Material] = check_material(
            root_pem, intermediate_pem, intermediate_key_pem, password
        )
    elif mode == "generate":
        if existing["root"] and existing["intermediate"] and existing["intermediate_key"]:
            material = check_material(
                existing["root"],
                existing["intermediate"],
                existing["intermediate_key"],
                password,
                where=where,
                root_key_pem=existing["root_key"],
            )
        else:
            root, root_key_pem = None, None
            if existing["root"]:
                root = check_root(existing["root"], where)
                root_key_pem = existing["root_key"]
                if root_key_pem is None:
                    raise PkiError(
                        f"{path} holds a root certificate but neither a complete intermediate nor the root "
                        "key to issue one: restore the intermediate certificate and key from a backup, or "
                        "import the material (step_ca_material: import)."
                    )
                _load_key(root_key_pem, _password_bytes(password), f"{where} root key")
                action = "intermediate"
            elif existing["intermediate"] or existing["intermediate_key"]:
                raise PkiError(
                    f"{path} holds an intermediate but no root certificate: restore certs/root_ca.crt, or "
                    "remove the partial material to create a new CA."
                )
            else:
                _password_bytes(password)
                action = "create"
            material = (
                None
                if check_mode
                else generate_material(
                    name,
                    password,
                    key_type=key_type,
                    root_days=root_days,
                    intermediate_days=intermediate_days,
                    root=root,
                    root_key_pem=root_key_pem,
                )
            )
    else:
        raise PkiError(f"Mode {quote(mode)} is unknown: expected import or generate.")

    modes = _modes(owner)
    written: List[str] = []
    if material is None:  # check mode, material still to be made
        written = [
            os.path.join(path, FILES[k]) for k in ("root", "intermediate", "intermediate_key", "root_key")
        ]
        if action == "intermediate":
            written = written[1:3]
    else:
        for kind, data in material.files().items():
            full = os.path.join(path, FILES[kind])
            want_mode, file_owner = modes[kind]
            if existing.get(kind) == data:
                st = os.lstat(full)
                if stat.S_ISREG(st.st_mode) and not file_owner.wants(st, want_mode):
                    continue
                if not check_mode:
                    file_owner.apply(full, want_mode)
                written.append(full)
                continue
            if not check_mode:
                atomic_write(full, data, want_mode, file_owner.uid, file_owner.gid)
            written.append(full)
        if action == "none" and written:
            action = "update"
    result = material_summary(material)
    if material is None and existing["root"] and action == "intermediate":
        root = check_root(existing["root"], where)
        result.update(
            root_certificate=existing["root"].decode("ascii"),
            root_subject=_name(root.subject),
            root_fingerprint=_fingerprint(root),
            root_not_after=_iso(_not_after(root)),
        )
    result.update(action=action, written=written, expiry_warnings=material.warnings if material else [])
    result["changed"] = bool(written)
    result["before"] = _describe_existing(existing)
    return result


def _describe_existing(existing: Dict[str, Optional[bytes]]) -> str:
    """The public side of what the CA directory held before (certificates only; keys are never read here)."""
    lines = []
    for kind in ("root", "intermediate"):
        data = existing.get(kind)
        if not data:
            continue
        try:
            cert = load_certificates(data, kind)[0]
        except PkiError:
            lines.append(f"{kind}: (unreadable)")
            continue
        lines.append(
            f"{kind}: {_name(cert.subject)} sha256 {_fingerprint(cert)} until {_iso(_not_after(cert))}"
        )
    for kind in ("intermediate_key", "root_key"):
        if existing.get(kind):
            lines.append(f"{FILES[kind]}: present (encrypted; not shown)")
    return "".join(line + "\n" for line in lines)


def check_root(pem: bytes, where: str) -> Any:
    root = load_certificates(pem, f"{where} root certificate")[0]
    if root.issuer != root.subject or not _verify_signature(root, root.public_key()):
        raise PkiError(f"{where} root certificate ({_name(root.subject)}) is not self-signed.")
    return root


def describe_material(summary: Dict[str, Any]) -> str:
    """The public side of the material as a diff shows it."""
    if not summary.get("root_fingerprint"):
        return ""
    return (
        f"root: {summary['root_subject']} sha256 {summary['root_fingerprint']} until "
        f"{summary['root_not_after']}\n"
        f"intermediate: {summary['intermediate_subject']} sha256 {summary['intermediate_fingerprint']} "
        f"until {summary['intermediate_not_after']}\n"
    )
