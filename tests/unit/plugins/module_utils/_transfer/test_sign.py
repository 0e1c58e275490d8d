"""Ed25519 key generation, signing and k-of-n verification."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign

PASS = "correct horse battery"  # noqa: S105 - test key passphrase


def _key(tmp_path, name):
    priv = tmp_path / (name + ".key")
    pub = tmp_path / (name + ".pub")
    result = _sign.keygen(str(priv), str(pub), PASS)
    return _sign.load_private_key(str(priv), PASS), result


def test_keygen_writes_encrypted_key_and_is_idempotent(tmp_path):
    priv = tmp_path / "k.key"
    pub = tmp_path / "k.pub"
    first = _sign.keygen(str(priv), str(pub), PASS)
    assert first["action"] == "generate"
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in priv.read_bytes()
    assert pub.read_text() == first["public_key"]
    before = priv.read_bytes()
    second = _sign.keygen(str(priv), str(pub), PASS)
    assert second["action"] == "none"
    assert second["key_id"] == first["key_id"]
    assert priv.read_bytes() == before
    pub.unlink()
    third = _sign.keygen(str(priv), str(pub), PASS)
    assert third["action"] == "write_public"
    assert pub.read_text() == first["public_key"]


def test_wrong_passphrase_and_short_passphrase(tmp_path):
    _key(tmp_path, "a")
    with pytest.raises(_sign.SignError, match="wrong passphrase"):
        _sign.load_private_key(str(tmp_path / "a.key"), "not the passphrase")
    with pytest.raises(_sign.SignError, match="at least 12"):
        _sign.keygen(str(tmp_path / "b.key"), str(tmp_path / "b.pub"), "short")


def _trusted(*results):
    return [_sign.load_public_key(r["public_key"], "test") for r in results]


def test_threshold_verification(tmp_path):
    k1, r1 = _key(tmp_path, "one")
    k2, r2 = _key(tmp_path, "two")
    _k3, r3 = _key(tmp_path, "three")
    message = b'{"bundle": 1}\n'
    sigs = dict([_sign.sign(k1, message), _sign.sign(k2, message)])
    trusted = _trusted(r1, r2, r3)
    assert _sign.verify_threshold(message, sigs, trusted, 2) == sorted([r1["key_id"], r2["key_id"]])
    with pytest.raises(_sign.SignError, match="2 of the 3 required"):
        _sign.verify_threshold(message, sigs, trusted, 3)
    with pytest.raises(_sign.SignError, match="does not verify"):
        _sign.verify_threshold(message + b" ", sigs, trusted, 1)


def test_unknown_key_is_not_counted(tmp_path):
    k1, r1 = _key(tmp_path, "one")
    _k2, r2 = _key(tmp_path, "two")
    message = b"payload"
    sigs = dict([_sign.sign(k1, message)])
    with pytest.raises(_sign.SignError, match="not trusted here: {}".format(r1["key_id"])):
        _sign.verify_threshold(message, sigs, _trusted(r2), 1)


def test_flipped_signature_refused(tmp_path):
    k1, r1 = _key(tmp_path, "one")
    kid, sig = _sign.sign(k1, b"m")
    raw = bytearray(base64.b64decode(sig))
    raw[5] ^= 1
    with pytest.raises(_sign.SignError, match="does not verify"):
        _sign.verify_threshold(b"m", {kid: base64.b64encode(bytes(raw))}, _trusted(r1), 1)
    with pytest.raises(_sign.SignError, match="base64"):
        _sign.verify_threshold(b"m", {kid: b"!!!"}, _trusted(r1), 1)


def test_threshold_larger_than_trusted_set(tmp_path):
    _k1, r1 = _key(tmp_path, "one")
    with pytest.raises(_sign.SignError, match="threshold is 2"):
        _sign.verify_threshold(b"m", {}, _trusted(r1, r1), 2)


def test_public_key_must_be_ed25519():
    with pytest.raises(_sign.SignError, match="not a PEM public key"):
        _sign.load_public_key("garbage", "trusted_keys[0]")
