"""The CA host: the real step-ca from the repository, hardened, with checked material, bbolt and backups."""

import json
import re

testinfra_hosts = ["ansible://stepca-ca"]

CA_URL = "https://stepca-ca.dns.podman"
ROOT = "/etc/step-ca/certs/root_ca.crt"


def exposure(host, unit):
    out = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -n 1")
    return float(re.search(r"exposure level for \S+: (\d+\.\d+)", out).group(1))


def test_the_pinned_release_runs_as_its_own_user_hardened(host, release):
    assert host.file("/usr/local/bin/step-ca").linked_to == f"/opt/step-ca/{release['version']}/step-ca"
    assert f"Smallstep CA/{release['version']} " in host.check_output("/usr/local/bin/step-ca version")
    pid = host.check_output("systemctl show --value --property=MainPID step-ca.service")
    assert host.check_output(f"ps -o user= -p {pid}").strip() == "step"
    assert exposure(host, "step-ca.service") <= 2.0
    assert exposure(host, "step-ca-backup.service") <= 2.0
    unit = host.file("/etc/systemd/system/step-ca.service").content_string
    assert "--password-file=/etc/step-ca/secrets/password /etc/step-ca/config/ca.json" in unit


def test_ca_material_is_readable_by_whom_it_must_be_only(host):
    out = host.check_output(
        "stat -c '%n %U:%G %a' /etc/step-ca/certs/root_ca.crt /etc/step-ca/certs/intermediate_ca.crt "
        "/etc/step-ca/secrets/intermediate_ca_key /etc/step-ca/secrets/root_ca_key "
        "/etc/step-ca/secrets/password "
        "/etc/step-ca/config/ca.json"
    )
    assert out.splitlines() == [
        "/etc/step-ca/certs/root_ca.crt root:root 644",
        "/etc/step-ca/certs/intermediate_ca.crt root:root 644",
        "/etc/step-ca/secrets/intermediate_ca_key root:step 440",
        "/etc/step-ca/secrets/root_ca_key root:root 400",
        "/etc/step-ca/secrets/password root:step 440",
        "/etc/step-ca/config/ca.json root:step 640",
    ]
    keys = host.check_output(
        "head -n 1 /etc/step-ca/secrets/intermediate_ca_key /etc/step-ca/secrets/root_ca_key"
    )
    assert keys.count("-----BEGIN ENCRYPTED PRIVATE KEY-----") == 2


def test_ca_json_bbolt_acme_durations_policy(host):
    config = json.loads(host.file("/etc/step-ca/config/ca.json").content_string)
    assert config["db"] == {"type": "bbolt", "dataSource": "/var/lib/step-ca/db/bbolt.db"}
    assert config["dnsNames"] == ["stepca-ca.dns.podman"]
    (acme,) = config["authority"]["provisioners"]
    assert (acme["type"], acme["name"], acme["challenges"]) == ("ACME", "acme", ["http-01"])
    assert acme["claims"]["defaultTLSCertDuration"] == "4m"
    assert config["authority"]["policy"]["x509"] == {
        "allow": {"dns": ["*.dns.podman"]},
        "allowWildcardNames": False,
    }


def test_serves_health_and_its_root_over_tls_from_that_root(host):
    assert json.loads(host.check_output(f"curl -sS --cacert {ROOT} {CA_URL}/health")) == {"status": "ok"}
    served = host.check_output(f"curl -sS --cacert {ROOT} {CA_URL}/roots.pem")
    assert served.strip() == host.file(ROOT).content_string.strip()
    # The negative control: trusting another CA instead of the root, the CA's certificate is refused.
    assert (
        host.run(f"curl -sS --cacert /usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt {CA_URL}/health").rc
        != 0
    )


def test_database_backup_on_demand_and_on_a_timer(host):
    assert host.service("step-ca-backup.timer").is_enabled and host.service("step-ca-backup.timer").is_running
    before = set(host.check_output("ls /var/backups/step-ca").split())
    host.check_output("systemctl start step-ca-backup.service")
    after = set(host.check_output("ls /var/backups/step-ca").split())
    (new,) = after - before
    assert re.match(r"^bbolt-\d{8}T\d{6}Z\.db$", new)
    path = f"/var/backups/step-ca/{new}"
    assert host.file(path).user == "step" and host.file(path).mode == 0o600
    # A bbolt file: the meta page's magic 0xED0CDAED (little-endian) right after the 16-byte page header.
    assert host.check_output(f"od -An -tx1 -j16 -N4 {path}").split() == ["ed", "da", "0c", "ed"]
    assert "step-ca-backup: /var/lib/step-ca/db/bbolt.db copied to" in host.check_output(
        "journalctl -u step-ca-backup.service --no-pager -o cat"
    )


def test_issuance_is_in_the_journal(host):
    journal = host.check_output("journalctl -u step-ca.service --no-pager -o cat")
    finalized = re.findall(r"path=/acme/acme/order/\S+/finalize .*status=200 ", journal)
    assert len(finalized) >= 4  # repository, node1, node2 and at least one renewal
