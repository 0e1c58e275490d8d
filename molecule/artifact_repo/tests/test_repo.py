"""The repository host: nginx serves the ingested repository read-only over HTTPS, hardened."""

import os
import re

testinfra_hosts = ["ansible://artifact-repo"]

TLS = "/etc/airgap-llm/artifact_repo/tls"
CURL = f"curl -s --max-time 10 --cacert {TLS}/client-ca.crt --resolve artifact-repo:443:127.0.0.1"
CLIENT = "--cert /root/client.crt --key /root/client.key"


def test_nginx_runs_unprivileged_under_the_hardening_dropin(host):
    assert host.service("nginx").is_running and host.service("nginx").is_enabled
    dropin = host.file("/etc/systemd/system/nginx.service.d/50-airgap-llm-hardening.conf")
    assert dropin.is_file and "ProtectSystem=strict" in dropin.content_string
    # The live unit, as systemd loaded it with the drop-in, scores at most 2.0.
    out = host.check_output("systemd-analyze security --no-pager nginx.service | tail -n 1")
    score = float(re.search(r"exposure level for nginx.service: (\d+\.\d+)", out).group(1))
    assert score <= 2.0, out
    users = host.check_output("ps -o user= -C nginx").split()
    assert users and set(users) == {"www-data"}, users
    listening = host.check_output("ss -Htlnp")
    assert ":443 " in listening and ":80 " not in listening


def test_a_client_without_a_certificate_is_refused(host, index):
    digest = index["artifacts"]["site-notes"]["1"]["files"][0]["sha256"]
    no_cert = host.run(f"{CURL} -o /dev/null -w '%{{http_code}}' https://artifact-repo/blobs/sha256/{digest}")
    assert no_cert.stdout == "400", no_cert.stdout


def test_http_methods_listing_and_private_paths(host, node, index):
    client = node("artifact-client")
    key = client.file("/etc/airgap-llm/repo_client/client.key").content_string
    crt = client.file("/etc/airgap-llm/repo_client/client.crt").content_string
    host.run("umask 077 && cat > /root/client.key <<'EOF'\n" + key.strip() + "\nEOF")
    host.run("cat > /root/client.crt <<'EOF'\n" + crt.strip() + "\nEOF")
    digest = index["artifacts"]["site-notes"]["1"]["files"][0]["sha256"]
    base = f"{CURL} {CLIENT} -o /dev/null -w '%{{http_code}}'"
    requests = {
        "GET blob": f"https://artifact-repo/blobs/sha256/{digest}",
        "HEAD blob": f"-I https://artifact-repo/blobs/sha256/{digest}",
        "index": "https://artifact-repo/current/index.json",
        "POST": f"-X POST https://artifact-repo/blobs/sha256/{digest}",
        "PUT": f"-X PUT https://artifact-repo/blobs/sha256/{digest}",
        "DELETE": "-X DELETE https://artifact-repo/current/index.json",
        "listing": "https://artifact-repo/blobs/sha256/",
        "root": "https://artifact-repo/",
        "apt listing": "https://artifact-repo/apt/pool/",
        "lock": "https://artifact-repo/.lock",
        "staging": "https://artifact-repo/tmp/",
        "bundles": "https://artifact-repo/bundles/",
    }
    script = "; ".join(f"{base} {args}; echo" for args in requests.values())
    codes = dict(zip(requests, host.check_output(script).split()))
    assert codes == {
        "GET blob": "200",
        "HEAD blob": "200",
        "index": "200",
        "POST": "405",
        "PUT": "405",
        "DELETE": "405",
        "listing": "404",
        "root": "404",
        "apt listing": "403",
        "lock": "404",
        "staging": "404",
        "bundles": "404",
    }, codes
    # TLS 1.2 and 1.3 only.
    index_url = "https://artifact-repo/current/index.json"
    assert host.run(f"{CURL} {CLIENT} --tlsv1.1 --tls-max 1.1 {index_url}").rc != 0
    assert host.run(f"{CURL} {CLIENT} --tlsv1.2 --tls-max 1.2 -f {index_url}").rc == 0
    # Every request is in the access log, with the client certificate's subject.
    log = host.file("/var/log/nginx/artifact_repo.access.log").content_string
    assert f'GET /blobs/sha256/{digest} HTTP/1.1" 200' in log and "CN=artifact-client" in log


def carried_packages(suite):
    """(package, version) of every .deb the scenario bundled for ``suite``, from the file names."""
    folder = os.path.join(os.environ["AIRGAP_TEST_DEBS"], suite)
    return {tuple(name.split("_")[:2]) for name in os.listdir(folder) if name.endswith(".deb")}


def test_apt_repository_serves_each_release_its_own_signed_suite(host):
    apt = "/srv/airgap-llm/apt"
    host.check_output(f"gpg --batch --dearmor < {apt}/airgap-llm-archive.asc > /root/archive.gpg")
    for suite in ("bookworm", "trixie"):
        assert host.run(f"gpgv --keyring /dev/null {apt}/dists/{suite}/InRelease").rc != 0  # not unsigned
        assert host.run(f"gpgv --keyring /root/archive.gpg {apt}/dists/{suite}/InRelease").rc == 0
        packages = host.file(f"{apt}/dists/{suite}/main/binary-amd64/Packages").content_string
        stanzas = [
            dict(re.findall(r"^(Package|Version|Filename): (\S+)$", s, re.M)) for s in packages.split("\n\n")
        ]
        listed = {(s["Package"], s["Version"].replace(":", "%3a")) for s in stanzas if s}
        # Exactly the packages bundled for this release, each from the pool of this suite.
        assert listed == carried_packages(suite), suite
        assert all(s["Filename"].startswith(f"pool/{suite}/main/") for s in stanzas if s)
    # Pool and indexes are one generation, switched together.
    assert host.check_output(f"readlink {apt}/pool {apt}/dists").split() == [
        ".current/pool",
        ".current/dists",
    ]
    # The signing key stays on this host, private.
    assert host.file("/etc/airgap-llm/artifact_repo/gnupg").mode == 0o700
