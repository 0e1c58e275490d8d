"""Every node is reached as production reaches it: SSH with a key, an unprivileged account, sudo.

The controller side of that trust (the scenario's key, the pinned host keys, the SSH configuration)
is written by molecule/shared/create.yml into the ephemeral directory.
"""

import json
import os
import pathlib
import subprocess

import pytest

NODES = {"harness-repo": "13", "harness-client": "12", "harness-outside": "13"}
SSH_DIR = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "ssh")


def ssh(name, *options, command="true"):
    """Run ``command`` on ``name`` with the scenario's SSH configuration plus ``options``."""
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ssh", "-F", os.path.join(SSH_DIR, "config"), *options, name, command],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_inventory_reaches_every_node_over_ssh_with_become(pytestconfig):
    inventory = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ansible-inventory", "-i", pytestconfig.option.ansible_inventory, "--list"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hostvars = json.loads(inventory.stdout)["_meta"]["hostvars"]
    assert set(hostvars) >= set(NODES)
    for name in NODES:
        node = hostvars[name]
        assert node["ansible_connection"] == "ssh", name
        assert node["ansible_user"] == "airgap-admin", name
        assert node["ansible_become"] is True, name
        assert "StrictHostKeyChecking=no" not in node.get("ansible_ssh_common_args", ""), name


@pytest.mark.parametrize("name", sorted(NODES))
def test_checks_run_over_ssh_as_the_admin_through_sudo(node, name):
    host = node(name)
    # testinfra's ansible backend hands each command to its ssh backend (no ansible process).
    direct = host.backend.ansible_runner.get_host(name)
    assert direct is not None and direct.backend.NAME == "ssh"
    who = host.check_output("echo $(id -u) $SUDO_USER $(cut -d. -f1 /etc/debian_version)")
    assert who == f"0 airgap-admin {NODES[name]}"


def test_login_needs_the_key_and_is_never_root():
    for name in NODES:
        ok = ssh(name, command="id -un")
        assert ok.returncode == 0 and ok.stdout.strip() == "airgap-admin", ok.stderr
        root = ssh(name, "-l", "root", "-o", "ControlPath=none")
        assert root.returncode == 255 and "Permission denied" in root.stderr, root.stderr
        password = ssh(
            name,
            "-o",
            "ControlPath=none",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        )
        assert password.returncode == 255 and "Permission denied" in password.stderr, password.stderr


def test_host_keys_are_pinned_and_a_changed_key_is_refused(tmp_path):
    """Negative control for the pinning: the same command fails once the pinned key is wrong."""
    pinned = pathlib.Path(SSH_DIR, "known_hosts").read_text(encoding="utf-8").splitlines()
    assert sorted(line.split(",")[0] for line in pinned) == sorted(NODES)
    # harness-client's entry now carries harness-repo's key: a changed host key.
    names = {line.split(" ", 1)[0].split(",")[0]: line.split(" ", 1) for line in pinned}
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{names['harness-client'][0]} {names['harness-repo'][1]}\n")
    fresh = ("-o", "ControlPath=none")
    assert ssh("harness-client", *fresh).returncode == 0
    refused = ssh("harness-client", *fresh, "-o", f"UserKnownHostsFile={wrong}")
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr, refused.stderr
