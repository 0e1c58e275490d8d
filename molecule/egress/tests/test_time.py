"""Time from the internal server only: chrony on the nodes uses egress-repo and nothing else."""

from probes import ipv4

testinfra_hosts = ["ansible://egress-node12", "ansible://egress-node13"]


def test_chrony_syncs_from_the_internal_server_only(host, node):
    repo_ip = ipv4(node("egress-repo"))
    sources = [line.split(",") for line in host.check_output("chronyc -n -c sources").splitlines()]
    assert [(s[1], s[2]) for s in sources] == [("*", repo_ip)]
    tracking = host.check_output("chronyc -n -c tracking").split(",")
    assert tracking[1] == repo_ip and tracking[-1] == "Normal"
    directives = [
        line.split()[0]
        for line in host.file("/etc/chrony/chrony.conf").content_string.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert directives.count("server") == 1
    assert not {"pool", "sourcedir", "confdir", "peer", "allow"} & set(directives)
    assert "server egress-repo iburst" in host.file("/etc/chrony/chrony.conf").content_string.splitlines()
    # Containers share the host's clock: chronyd measures and serves, it does not set it.
    assert '-x"' in host.file("/etc/default/chrony").content_string
    # A client serves nobody: no NTP port open.
    assert ":123 " not in host.check_output("ss -H -u -l -n")


def test_the_server_serves_its_own_clock(node):
    repo = node("egress-repo")
    tracking = repo.check_output("chronyc -n -c tracking").split(",")
    assert tracking[0] == "7F7F0101"  # LOCAL
    assert "allow " in repo.file("/etc/chrony/chrony.conf").content_string
    assert any(":123" in line.split()[3] for line in repo.check_output("ss -H -u -l -n").splitlines())
