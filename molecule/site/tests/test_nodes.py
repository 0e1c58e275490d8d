"""Both Ollama nodes: the pinned release and models, served on loopback only, hardened, offline."""

import json

import pytest

testinfra_hosts = ["ansible://site-node1", "ansible://site-node2"]

PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "no_proxy")


def test_release_side_by_side_and_linked(host, pins):
    link = host.file("/usr/local/bin/ollama")
    assert link.is_symlink
    assert link.linked_to == "/opt/ollama/0.33.1/bin/ollama"
    assert host.file("/opt/ollama/0.33.1/lib/ollama").is_directory
    archive = host.file("/var/cache/airgap-llm/ollama/ollama-0.33.1-linux-amd64.tar.zst")
    assert archive.sha256sum == pins["releases"]["0.33.1"]["sha256"]
    assert (
        host.run("cd /opt/ollama/0.33.1 && sha256sum --check --strict --quiet .airgap-llm-files.sha256").rc
        == 0
    )
    user = host.user("ollama")
    assert user.home == "/var/lib/ollama"
    assert user.shell == "/usr/sbin/nologin"
    assert host.file("/var/lib/ollama/.ollama/id_ed25519").mode == 0o600


def test_unit_is_hardened_and_scores_at_most_2(host):
    out = host.check_output("systemd-analyze security --no-pager ollama.service | tail -n 1")
    score = float(out.split(":")[1].split()[0])
    assert score <= 2.0, out
    env = host.check_output("systemctl show --value --property=Environment ollama.service")
    for needed in (
        "OLLAMA_HOST=127.0.0.1:11434",
        "OLLAMA_NOPRUNE=1",
        "OLLAMA_NO_CLOUD=1",
        "OLLAMA_MODELS=/var/lib/ollama/models",
        "HOME=/var/lib/ollama",
    ):
        assert needed in env.split()
    main_pid = host.check_output("systemctl show --value --property=MainPID ollama.service")
    process_env = host.check_output(f"tr '\\0' '\\n' < /proc/{main_pid}/environ")
    assert not [line for line in process_env.splitlines() if line.split("=")[0] in PROXIES]
    unit = host.file("/etc/systemd/system/ollama.service").content_string
    assert "IPAddressDeny=any" in unit and "IPAddressAllow=localhost" in unit
    if host.backend.get_hostname() == "site-node2":
        assert "DeviceAllow=char-nvidia-uvm rw" in unit and "PrivateDevices=no" in unit
        # Both driver generations: 535 registers nvidia-frontend, 545 and newer nvidia and nvidiactl.
        for group in ("nvidia-frontend", "nvidia", "nvidiactl", "nvidia-uvm", "nvidia-caps"):
            assert f"DeviceAllow=char-{group} rw" in unit
        # After gpu_driver's device unit, which this node (no GPU, no driver) lacks: Ollama runs anyway.
        assert "After=airgap-nvidia-devices.service" in unit and "Wants=airgap-nvidia-devices.service" in unit
    else:
        assert "PrivateDevices=yes" in unit


def test_listens_on_loopback_only_and_refuses_foreign_hosts(host):
    assert host.socket("tcp://127.0.0.1:11434").is_listening
    main_pid = host.check_output("systemctl show --value --property=MainPID ollama.service")
    listening = [
        line.split()[3]
        for line in host.check_output("ss -H -l -t -n -p").splitlines()
        if f"pid={main_pid}," in line
    ]
    assert listening == ["127.0.0.1:11434"]
    code = host.check_output(
        "curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example' http://127.0.0.1:11434/api/version"
    )
    assert code == "403"
    status = json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/status"))
    assert status["cloud"]["disabled"] is True


def test_serves_exactly_the_pinned_models(host, pins):
    tags = json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/tags"))
    served = {m["name"]: "sha256:" + m["digest"] for m in tags["models"]}
    assert served == {m["name"]: m["manifest_digest"] for m in pins["models"]}
    facts = json.loads(host.file("/etc/ansible/facts.d/airgap_ollama_models.fact").content_string)
    for model in pins["models"]:
        recorded = facts["models"][model["name"]]
        assert recorded["manifest_digest"] == model["manifest_digest"]
        assert recorded["installed_at"].endswith("Z")


def test_node_has_no_route_out(host):
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""


@pytest.mark.parametrize("path", ["/etc/apt/sources.list.d", "/etc/apt/sources.list"])
def test_apt_points_at_the_internal_repository_only(host, path):
    sources = host.run(f"cat {path} {path}/* 2>/dev/null").stdout
    for line in sources.splitlines():
        if line.strip().startswith(("deb ", "URIs:")):
            assert "site-repo" in line, line
