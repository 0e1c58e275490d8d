# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CA material (made, imported, checked, written) and certificate facts."""

from __future__ import annotations

import datetime
import os
import stat

import pytest
from ansible_collections.airgap.llm.plugins.module_utils import _pki
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PASSWORD = "correct horse battery staple"  # noqa: S105 - test CA password
NOW = datetime.datetime.now(datetime.timezone.utc)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def material():
    return _pki.generate_material("Test Site", PASSWORD, root_days=30, intermediate_days=20)


@pytest.fixture(scope="module")
def other():
    return _pki.generate_material("Other Site", PASSWORD, root_days=30, intermediate_days=20)


def intermediate_key(material):
    return serialization.load_pem_private_key(material.intermediate_key_pem, PASSWORD.encode())


def leaf(issuer, issuer_key, names, *, hours=1, start=None):
    key = ec.generate_private_key(ec.SECP256R1())
    start = start or NOW - datetime.timedelta(minutes=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert


# ------------------------------------------------------------------------------------ CA material


def test_generated_material_checks_out_and_is_encrypted(material):
    files = material.files()
    assert set(files) == {"root", "intermediate", "intermediate_key", "root_key"}
    assert b"ENCRYPTED PRIVATE KEY" in files["intermediate_key"]
    assert b"ENCRYPTED PRIVATE KEY" in files["root_key"]
    checked = _pki.check_material(files["root"], files["intermediate"], files["intermediate_key"], PASSWORD)
    assert checked.intermediate.issuer == checked.root.subject
    summary = _pki.material_summary(checked)
    assert summary["root_subject"] == "CN=Test Site Root CA,O=Test Site"
    assert summary["intermediate_subject"] == "CN=Test Site Intermediate CA,O=Test Site"
    assert "PRIVATE" not in repr(summary)


@pytest.mark.parametrize("password", ["", None])
def test_missing_password_is_refused_with_where_to_put_it(material, password):
    files = material.files()
    with pytest.raises(_pki.PkiError, match=r"CA password is empty.*Ansible Vault"):
        _pki.check_material(files["root"], files["intermediate"], files["intermediate_key"], password)


def test_wrong_password_is_refused_and_not_shown(material):
    files = material.files()
    with pytest.raises(_pki.PkiError) as err:
        _pki.check_material(
            files["root"], files["intermediate"], files["intermediate_key"], "not the password"
        )
    assert "does not decrypt the given intermediate key" in str(err.value)
    assert "not the password" not in str(err.value)


def test_intermediate_of_another_root_does_not_chain(material, other):
    with pytest.raises(_pki.PkiError, match="does not chain to the given root certificate") as err:
        _pki.check_material(
            material.files()["root"],
            other.files()["intermediate"],
            other.files()["intermediate_key"],
            PASSWORD,
        )
    assert "CN=Other Site Root CA,O=Other Site" in str(err.value)  # the issuer it names


def test_same_name_but_other_key_does_not_chain(material):
    impostor = _pki.generate_material("Test Site", PASSWORD, root_days=30, intermediate_days=20)
    with pytest.raises(_pki.PkiError, match=r"does not chain.*root's key did not sign it"):
        _pki.check_material(
            material.files()["root"],
            impostor.files()["intermediate"],
            impostor.files()["intermediate_key"],
            PASSWORD,
        )


def test_key_of_another_intermediate_is_refused(material, other):
    files = material.files()
    with pytest.raises(_pki.PkiError, match="does not belong to the intermediate"):
        _pki.check_material(files["root"], files["intermediate"], other.files()["intermediate_key"], PASSWORD)


def test_unencrypted_key_is_refused(material):
    files = material.files()
    plain = intermediate_key(material).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(_pki.PkiError, match="is not encrypted"):
        _pki.check_material(files["root"], files["intermediate"], plain, PASSWORD)


def test_intermediate_given_as_root_is_refused(material):
    files = material.files()
    with pytest.raises(_pki.PkiError, match=r"root certificate .* is not self-signed"):
        _pki.check_material(files["intermediate"], files["intermediate"], files["intermediate_key"], PASSWORD)


def test_private_key_where_a_certificate_belongs_is_refused(material):
    files = material.files()
    with pytest.raises(_pki.PkiError, match="ENCRYPTED PRIVATE KEY block besides certificates"):
        _pki.check_material(
            files["root"] + files["intermediate_key"],
            files["intermediate"],
            files["intermediate_key"],
            PASSWORD,
        )


def test_expired_and_overlong_intermediates_are_refused(material):
    files = material.files()
    later = NOW + datetime.timedelta(days=25)
    with pytest.raises(_pki.PkiError, match="expired on"):
        _pki.check_material(
            files["root"], files["intermediate"], files["intermediate_key"], PASSWORD, now=later
        )
    with pytest.raises(_pki.PkiError, match="intermediate must expire before its root"):
        _pki.generate_material("Long", PASSWORD, root_days=10, intermediate_days=10)


def test_intermediate_close_to_expiry_warns(material):
    files = material.files()
    checked = _pki.check_material(files["root"], files["intermediate"], files["intermediate_key"], PASSWORD)
    assert checked.warnings and "expires in" in checked.warnings[0]


# ------------------------------------------------------------------------------- the CA directory


def read(path, rel):
    with open(os.path.join(path, rel), "rb") as handle:
        return handle.read()


def ca_dir(tmp_path):
    for sub in ("certs", "secrets"):
        (tmp_path / sub).mkdir()
    return str(tmp_path)


def modes(path):
    return {
        kind: stat.S_IMODE(os.stat(os.path.join(path, rel)).st_mode)
        for kind, rel in _pki.FILES.items()
        if os.path.exists(os.path.join(path, rel))
    }


def test_generate_makes_a_ca_once_and_keeps_it(tmp_path):
    path = ca_dir(tmp_path)
    planned = _pki.make_material(path, "generate", PASSWORD, None, check_mode=True, name="Site")
    assert planned["action"] == "create" and planned["changed"] and planned["root_certificate"] is None
    assert not os.listdir(os.path.join(path, "certs"))  # check mode wrote nothing
    made = _pki.make_material(path, "generate", PASSWORD, None, check_mode=False, name="Site")
    assert made["action"] == "create" and len(made["written"]) == 4
    assert modes(path) == {"root": 0o644, "intermediate": 0o644, "intermediate_key": 0o440, "root_key": 0o400}
    again = _pki.make_material(path, "generate", PASSWORD, None, check_mode=False, name="Site")
    assert again["action"] == "none" and not again["changed"]
    assert again["root_fingerprint"] == made["root_fingerprint"]
    assert "present (encrypted; not shown)" in again["before"]


def test_generate_refuses_the_wrong_password_for_the_ca_in_place(tmp_path):
    path = ca_dir(tmp_path)
    _pki.make_material(path, "generate", PASSWORD, None, check_mode=False, name="Site")
    before = {name: read(path, rel) for name, rel in _pki.FILES.items()}
    with pytest.raises(
        _pki.PkiError, match=r"password does not decrypt the CA material in .*intermediate key"
    ):
        _pki.make_material(path, "generate", "another password", None, check_mode=False, name="Site")
    assert before == {name: read(path, rel) for name, rel in _pki.FILES.items()}


def test_generate_issues_a_new_intermediate_for_the_root_in_place(tmp_path):
    path = ca_dir(tmp_path)
    made = _pki.make_material(path, "generate", PASSWORD, None, check_mode=False, name="Site")
    os.unlink(os.path.join(path, _pki.FILES["intermediate"]))
    os.unlink(os.path.join(path, _pki.FILES["intermediate_key"]))
    planned = _pki.make_material(path, "generate", PASSWORD, None, check_mode=True, name="Site")
    assert planned["action"] == "intermediate" and planned["root_fingerprint"] == made["root_fingerprint"]
    renewed = _pki.make_material(path, "generate", PASSWORD, None, check_mode=False, name="Site")
    assert renewed["action"] == "intermediate" and renewed["root_fingerprint"] == made["root_fingerprint"]
    assert renewed["intermediate_fingerprint"] != made["intermediate_fingerprint"]


def test_import_writes_only_what_differs_and_fixes_modes(tmp_path, material, other):
    path = ca_dir(tmp_path)
    files = material.files()
    args = {
        "root_pem": files["root"],
        "intermediate_pem": files["intermediate"],
        "intermediate_key_pem": files["intermediate_key"],
    }
    first = _pki.make_material(path, "import", PASSWORD, None, check_mode=False, **args)
    assert first["action"] == "update" and len(first["written"]) == 3
    assert "root_key" not in modes(path)
    os.chmod(os.path.join(path, _pki.FILES["intermediate_key"]), 0o644)
    fixed = _pki.make_material(path, "import", PASSWORD, None, check_mode=False, **args)
    assert fixed["written"] == [os.path.join(path, _pki.FILES["intermediate_key"])]
    assert modes(path)["intermediate_key"] == 0o440
    assert not _pki.make_material(path, "import", PASSWORD, None, check_mode=False, **args)["changed"]
    with pytest.raises(_pki.PkiError, match="does not chain"):
        _pki.make_material(
            path,
            "import",
            PASSWORD,
            None,
            check_mode=False,
            root_pem=files["root"],
            intermediate_pem=other.files()["intermediate"],
            intermediate_key_pem=other.files()["intermediate_key"],
        )
    assert read(path, _pki.FILES["intermediate"]) == files["intermediate"]


def test_missing_layout_is_refused(tmp_path):
    with pytest.raises(_pki.PkiError, match="is not a directory"):
        _pki.make_material(str(tmp_path), "generate", PASSWORD, None, check_mode=True)


# ----------------------------------------------------------------------------- certificate facts


def test_facts_of_a_leaf_with_its_chain(material, other):
    cert = leaf(material.intermediate, intermediate_key(material), ["a.site.test", "b.site.test"], hours=4)
    chain = pem(cert) + pem(material.intermediate)
    facts = _pki.certificate_facts(chain, pem(material.root))
    assert facts["names"] == ["a.site.test", "b.site.test"]
    assert facts["issuer"] == "CN=Test Site Intermediate CA,O=Test Site"
    assert facts["chains_to_root"] is True and facts["chain_problem"] is None
    assert facts["serial"] == format(cert.serial_number, "x")
    assert 0 < facts["days_left"] < 0.17 and 90 < facts["remaining_percent"] <= 100
    assert not facts["expired"] and not facts["is_ca"] and facts["chain_length"] == 2
    foreign = _pki.certificate_facts(chain, pem(other.root))
    assert foreign["chains_to_root"] is False
    assert "is not signed by the internal root CN=Other Site Root CA,O=Other Site" in foreign["chain_problem"]
    alone = _pki.certificate_facts(pem(cert), pem(material.root))
    assert alone["chains_to_root"] is False  # the intermediate is missing from the file


def test_facts_of_an_expired_certificate(material):
    cert = leaf(
        material.intermediate,
        intermediate_key(material),
        ["old.site.test"],
        start=NOW - datetime.timedelta(hours=3),
    )
    facts = _pki.certificate_facts(pem(cert) + pem(material.intermediate), pem(material.root))
    assert facts["expired"] and facts["days_left"] < 0 and facts["remaining_percent"] == 0
    assert facts["chains_to_root"] is False and "expired on" in facts["chain_problem"]


def test_text_without_a_certificate_is_refused():
    with pytest.raises(_pki.PkiError, match="holds no PEM certificate"):
        _pki.certificate_facts("not a certificate")
    with pytest.raises(_pki.PkiError, match="at most"):
        _pki.certificate_facts("x" * (_pki.PEM_LIMIT + 1))
