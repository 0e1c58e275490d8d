"""The repository node: nginx installed from carried-in packages, running under systemd."""

testinfra_hosts = ["ansible://harness-repo"]


def test_systemd_is_pid1_and_healthy(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running")
    failed = host.check_output("systemctl --failed --no-legend --plain")
    assert state.stdout.strip() == "running", failed


def test_nginx_runs_as_a_systemd_service(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled
    main_pid = int(host.check_output("systemctl show --value -p MainPID nginx"))
    assert main_pid > 1
    cgroup = host.file(f"/proc/{main_pid}/cgroup").content_string
    assert "/system.slice/nginx.service" in cgroup
    assert host.socket("tcp://0.0.0.0:80").is_listening
    # Served read-only: a write method is refused, a missing file is a plain 404.
    put = host.run("curl -s -o /dev/null -w '%{http_code}' -X PUT --data x http://localhost/payload.txt")
    assert put.stdout == "403"
    listing = host.run("curl -s -o /dev/null -w '%{http_code}' http://localhost/")
    assert listing.stdout in {"403", "404"}
