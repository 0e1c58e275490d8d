"""Certificates over ACME from the internal CA: on every node, served by nginx, renewed, trusted alone."""

import json
import re
import time

testinfra_hosts = ["ansible://stepca-repo"]

NODES = ("stepca-repo", "stepca-node1", "stepca-node2")
ROOT = "/etc/airgap-llm/tls/internal-root.pem"
REPO_CERT = "/etc/airgap-llm/artifact_repo/tls/server.crt"
RENEWED = re.compile(r"step-cert repository: renewed serial ([0-9a-f]+) -> ([0-9a-f]+) ")


def cert_facts(host, path):
    """Serial, names and whether the chain leads to the internal root, in one remote call."""
    out = host.check_output(
        f"openssl x509 -noout -serial -ext subjectAltName -in {path} | tr -d ' '; "
        f"openssl verify -CAfile {ROOT} -untrusted {path} {path}"
    )
    return {
        "serial": re.search(r"serial=([0-9A-F]+)", out).group(1).lower(),
        "names": sorted(re.findall(r"DNS:([^,\s]+)", out)),
        "verified": out.rstrip().endswith(": OK"),
    }


def test_every_node_has_its_certificate_from_the_internal_ca_and_the_key_is_roots(node):
    for name in NODES:
        host = node(name)
        facts = cert_facts(host, "/etc/airgap-llm/tls/node.crt")
        assert facts["verified"] and facts["names"] == [f"{name}.dns.podman"], (name, facts)
        key = host.check_output("stat -c '%U:%G %a' /etc/airgap-llm/tls/node.key")
        assert key == "root:root 600", name


def test_repository_key_is_readable_by_nginx_only(host):
    out = host.check_output(
        "stat -c '%n %U:%G %a' /etc/airgap-llm/artifact_repo/tls/server.key /etc/airgap-llm/artifact_repo/tls"
    )
    assert out.splitlines() == [
        "/etc/airgap-llm/artifact_repo/tls/server.key root:www-data 640",
        "/etc/airgap-llm/artifact_repo/tls root:www-data 750",
    ]
    assert exposure_of(host, "airgap-step-cert-repository.service") <= 2.0


def exposure_of(host, unit):
    out = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -n 1")
    return float(re.search(r"exposure level for \S+: (\d+\.\d+)", out).group(1))


def test_renewal_is_observed_new_serial_served_without_restarting_nginx(host, node):
    """Certificates live 4 minutes, renewed below half of that: wait for a renewal if none is in yet."""
    deadline = time.monotonic() + 300
    while True:
        journal = host.check_output("journalctl -t airgap-step-cert-repository --no-pager -o json")
        entries = [json.loads(line) for line in journal.splitlines()]
        renewals = [(e, RENEWED.search(e.get("MESSAGE", ""))) for e in entries]
        renewals = [(e, m) for e, m in renewals if m]
        if renewals or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert renewals, "no renewal of the repository certificate within 5 minutes"
    first_entry, first = renewals[0]
    assert first.group(1) != first.group(2)
    nginx = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show --property=MainPID,NRestarts,ActiveEnterTimestampMonotonic nginx.service"
        ).splitlines()
    )
    # nginx came up before the first renewal and was never restarted since: the renewal reloaded it.
    assert int(nginx["ActiveEnterTimestampMonotonic"]) < int(first_entry["__MONOTONIC_TIMESTAMP"])
    assert nginx["NRestarts"] == "0"
    assert host.check_output(f"ps -o comm= -p {nginx['MainPID']}") == "nginx"
    # What nginx presents, seen from another node over the network, is the certificate on disk, and a
    # renewed one (not the first serial issued).
    for _attempt in range(3):
        on_disk = cert_facts(host, REPO_CERT)["serial"]
        served = (
            node("stepca-node1")
            .check_output(
                "openssl s_client -connect stepca-repo.dns.podman:443 -servername stepca-repo.dns.podman "
                f"-CAfile {ROOT} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial"
            )
            .split("=", 1)[1]
            .lower()
        )
        if served == on_disk:
            break
        time.sleep(2)  # a renewal between the two reads
    assert served == on_disk
    # The role issued the first certificate (over the bootstrap one); the journal has that too.
    issued = [e for e in entries if "step-cert repository: issued serial " in e.get("MESSAGE", "")]
    assert issued, "the first issuance is not in the journal"
    first_serial = re.search(r"-> ([0-9a-f]+)", issued[0]["MESSAGE"]).group(1)
    assert served != first_serial
    assert served in {m.group(2) for _e, m in renewals} | {
        m.group(2)
        for m in RENEWED.finditer(host.check_output("journalctl -t airgap-step-cert-repository -o cat"))
    }


def test_a_node_that_trusts_nothing_but_the_internal_root(node):
    root = node("stepca-node2").file(ROOT).content_string
    fingerprints = {}
    for name in ("stepca-node2", "stepca-node1"):
        out = node(name).check_output(
            "awk '/BEGIN CERT/{n++} {print > \"/tmp/ca-split-\" n}' /etc/ssl/certs/ca-certificates.crt; "
            "for f in /tmp/ca-split-*; do openssl x509 -noout -fingerprint -sha256 -in $f; done | sort -u; "
            "rm -f /tmp/ca-split-*"
        )
        fingerprints[name] = set(out.splitlines())
    root_fp = node("stepca-node2").check_output(f"openssl x509 -noout -fingerprint -sha256 -in {ROOT}")
    assert fingerprints["stepca-node2"] == {root_fp}
    assert (
        len(fingerprints["stepca-node1"]) > 100 and root_fp in fingerprints["stepca-node1"]
    )  # the negative control
    # A certificate from one of Debian's public roots is refused on node2 and accepted on node1.
    check = (
        "openssl verify -CAfile /etc/ssl/certs/ca-certificates.crt "
        "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt"
    )
    assert node("stepca-node2").run(check).rc != 0
    assert node("stepca-node1").run(check).rc == 0
    # The repository (served by the internal CA) works for node2 through apt and the system store.
    node2 = node("stepca-node2")
    ca_file = node2.file("/usr/local/share/ca-certificates/airgap-llm-ca.crt").content_string
    assert ca_file.count("BEGIN CERTIFICATE") == 1 and ca_file.strip() == root.strip()
    node2.check_output("apt-get -q update")
    index = node2.check_output("curl -sSf https://stepca-repo.dns.podman/current/index.json")
    assert "step-ca" in json.loads(index)["artifacts"]
