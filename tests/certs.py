# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, for tests
and benchmarks that serve HTTPS on loopback."""

from __future__ import annotations

import datetime
import ipaddress
import os


def make_certificates(directory):
    """Write ca.pem, server.pem/.key and client.pem/.key into ``directory``; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("artifact test CA"))
        .issuer_name(name("artifact test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name, san, usage):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    paths = {}

    def write(stem, cert, key=None):
        paths[stem] = os.path.join(directory, stem + ".pem")
        with open(paths[stem], "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            paths[stem + "_key"] = os.path.join(directory, stem + ".key")
            with open(paths[stem + "_key"], "wb") as handle:
                handle.write(
                    key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                )

    write("ca", ca)
    server_key, server_cert = leaf(
        "127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1")), ExtendedKeyUsageOID.SERVER_AUTH
    )
    write("server", server_cert, server_key)
    client_key, client_cert = leaf("test-client", None, ExtendedKeyUsageOID.CLIENT_AUTH)
    write("client", client_cert, client_key)
    return paths
