"""The client: apt and airgap.llm.artifact use the internal repository only; resume; corruption."""

import hashlib

testinfra_hosts = ["ansible://artifact-client"]

DEST = "/var/lib/airgap-llm-demo"
TLS = {
    "ca_file": "/usr/local/share/ca-certificates/airgap-llm-ca.crt",
    "client_cert": "/etc/airgap-llm/repo_client/client.crt",
    "client_key": "/etc/airgap-llm/repo_client/client.key",
}

# Waits until the partial file holds at least argv[2] bytes, then SIGKILLs the process that has it
# open (the module, mid-transfer) and prints the partial file's size once that process is gone.
KILLER = r"""
import os, signal, sys, time
part, half = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        if os.stat(part).st_size >= half:
            break
    except FileNotFoundError:
        pass
    time.sleep(0.02)
else:
    sys.exit("the transfer never reached half way")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target == part:
            os.kill(int(pid), signal.SIGKILL)
            while os.path.exists(f"/proc/{pid}"):
                time.sleep(0.02)
            print(os.stat(part).st_size)
            sys.exit(0)
sys.exit("no process held the partial file")
"""


def blob(index, name, version):
    (entry,) = index["artifacts"][name][version]["files"]
    return entry


def url(entry):
    return f"https://artifact-repo/blobs/sha256/{entry['sha256']}"


def test_only_the_internal_repository_is_a_package_source(host):
    assert host.check_output("ip -4 route show default") == ""
    sources = host.check_output("find /etc/apt/sources.list* -type f 2>/dev/null; true")
    enabled = [s for s in sources.split() if not s.endswith(".disabled")]
    assert enabled == ["/etc/apt/sources.list.d/airgap-llm.sources"], sources
    text = host.file("/etc/apt/sources.list.d/airgap-llm.sources").content_string
    assert "URIs: https://artifact-repo/apt" in text and "Signed-By: /etc/apt/keyrings/airgap-llm.asc" in text
    policy = host.check_output("apt-cache policy")
    # The suite of the node's own release (Debian 13), and nothing else.
    assert "https://artifact-repo/apt trixie/main" in policy and "deb.debian.org" not in policy
    assert "bookworm" not in policy


def test_bundled_packages_install_with_proxies_refused(host):
    assert host.package("jq").is_installed
    assert host.check_output("echo '{\"a\": 1}' | jq -c .a") == "1"
    # A proxy in the environment is ignored (it does not exist: apt would fail if it used it).
    env = "http_proxy=http://192.0.2.1:3128 https_proxy=http://192.0.2.1:3128"
    update = host.run(f"{env} apt-get -o Acquire::Retries=0 update")
    assert update.rc == 0 and "192.0.2.1" not in update.stdout + update.stderr, update.stderr
    # Every other package the bundle carries resolves and downloads from the repository.
    host.check_output("apt-get clean")
    sim = host.run(f"{env} apt-get install -y --download-only --no-install-recommends nginx gpg apt-utils")
    assert sim.rc == 0, sim.stderr
    assert "artifact-repo" in sim.stdout


def test_artifacts_fetched_with_their_digests(host, index):
    large = blob(index, "large-artifact", "1")
    notes = blob(index, "site-notes", "1")
    for entry in (large, notes):
        f = host.file(f"{DEST}/{entry['path']}")
        assert f.is_file and f.mode == 0o644 and f.user == "root"
        assert f.size == entry["size"] and f.sha256sum == entry["sha256"]
    expected = hashlib.sha256(b"site notes, version 1\n").hexdigest()
    assert host.file(f"{DEST}/notes-1.txt").sha256sum == expected


def test_killed_transfer_resumes_and_ends_with_the_right_digest(host, node, index, run_module):
    large = blob(index, "large-artifact", "1")
    dest = f"{DEST}/resumed.bin"
    part = f"{DEST}/.resumed.bin.{large['sha256'][:16]}.part"
    args = dict(TLS, url=url(large), sha256=large["sha256"], size=large["size"], dest=dest)
    host.run(f"rm -f {dest} {part}")
    # Start the transfer in the background on the node (nginx limits it to 8 MB/s there) ...
    ok, started = run_module("artifact-client", "airgap.llm.artifact", args, "-B", "120", "-P", "0")
    assert ok and started.get("ansible_job_id"), started
    # ... and SIGKILL it once half the file has arrived.
    killed = host.run("python3 -c %s %s %s", KILLER, part, str(large["size"] // 2))
    assert killed.rc == 0, killed.stdout + killed.stderr
    kept = int(killed.stdout)
    assert large["size"] // 2 <= kept < large["size"]
    assert not host.file(dest).exists

    ok, resumed = run_module("artifact-client", "airgap.llm.artifact", args)
    assert ok and resumed["changed"], resumed
    assert resumed["resumed_from"] == kept and resumed["transferred"] == large["size"] - kept
    assert host.file(dest).sha256sum == large["sha256"] and not host.file(part).exists
    # The repository saw the Range request for the rest of the file, answered 206.
    log = node("artifact-repo").file("/var/log/nginx/artifact_repo.access.log").content_string
    assert f'/blobs/sha256/{large["sha256"]} HTTP/1.1" 206 {large["size"] - kept} "bytes={kept}-"' in log


def test_corrupted_blob_is_refused_and_the_old_file_kept(host, node, index, run_module):
    repo = node("artifact-repo")
    old = host.file(f"{DEST}/notes-1.txt").sha256sum
    new = blob(index, "site-notes", "2")
    path = f"/srv/airgap-llm/repo/blobs/sha256/{new['sha256']}"
    flip = (
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[0]^=1; "
        "open(p,'wb').write(b)\" "
    )
    repo.check_output(flip + path)
    try:
        args = dict(TLS, url=url(new), sha256=new["sha256"], size=new["size"], dest=f"{DEST}/notes-1.txt")
        ok, refused = run_module("artifact-client", "airgap.llm.artifact", args)
        assert not ok, refused
        msg = refused["msg"]
        assert f"expected {new['sha256']}" in msg and "left as it was" in msg, msg
        assert f"got {repo.file(path).sha256sum}" in msg
        assert host.file(f"{DEST}/notes-1.txt").sha256sum == old
        assert host.run(f"ls -A {DEST} | grep -c '\\.part$'").stdout.strip() == "0"
    finally:
        repo.check_output(flip + path)
    assert repo.file(path).sha256sum == new["sha256"]
