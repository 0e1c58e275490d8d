# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory of a small site on this machine (make demo, benchmarks/fleet.py).

    python3 tests/site_inventory.py WORK REPO NODE[:PROFILE]... --version V [--operator NAME]

prints an inventory for molecule/site/converge.yml and playbooks/site.yml: the repository host REPO
and the Ollama nodes (profile cpu, or nvidia without devices required), every one reached as
production reaches it (SSH as airgap-admin through WORK/ssh/config, which the shared create step
writes, root through sudo), the fixtures and test PKI under WORK/site.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, Optional, Sequence

PINS = "{{ lookup('ansible.builtin.file', site_test_dir ~ '/fixtures/pins.json') | from_json }}"


def inventory(work: str, repo: str, nodes: Dict[str, str], version: str, operator: str) -> dict:
    """The inventory as a mapping; ``nodes`` maps each Ollama node to its profile."""
    site = f"{work}/site"
    ssh = {
        "ansible_connection": "ssh",
        "ansible_user": "airgap-admin",
        "ansible_become": True,
        "ansible_ssh_common_args": f"-F {work}/ssh/config",
    }
    ollama_hosts = {
        name: (
            {"ollama_binary_profile": "nvidia", "ollama_binary_nvidia_require_devices": False}
            if profile == "nvidia"
            else {"ollama_binary_profile": "cpu"}
        )
        for name, profile in nodes.items()
    }
    return {
        "all": {
            "vars": {
                "site_test_dir": site,
                "site_pins": PINS,
                "airgap_repository_url": f"https://{repo}",
                "airgap_repository_ca_file": "/usr/local/share/ca-certificates/airgap-llm-ca.crt",
                "airgap_repository_index": "{{ site_test_dir }}/index.json",
                "airgap_audit_host": repo,
                "airgap_operator": operator,
            },
            "children": {
                "site_nodes": {"hosts": {name: None for name in (repo, *nodes)}, "vars": ssh},
                "repository": {
                    "hosts": {repo: None},
                    "vars": {
                        "artifact_repo_server_name": repo,
                        "artifact_repo_tls_certificate_src": "{{ site_test_dir }}/pki/server.crt",
                        "artifact_repo_tls_key_src": "{{ site_test_dir }}/pki/server.key",
                    },
                },
                "repository_clients": {
                    "children": {"ollama": None},
                    "vars": {
                        "repo_client_ca_certificate_src": "{{ site_test_dir }}/pki/ca.crt",
                        "repo_client_apt_url": f"https://{repo}/apt",
                        "repo_client_apt_key": f"{{{{ hostvars['{repo}'].artifact_repo_apt_public_key }}}}",
                    },
                },
                "ollama": {
                    "hosts": ollama_hosts,
                    "vars": {
                        "ollama_binary_version": version,
                        "ollama_binary_sha256": "{{ site_pins.releases[ollama_binary_version].sha256 }}",
                        "ollama_models_exclusive": True,
                        "ollama_models_list": "{{ site_pins.models }}",
                    },
                },
            },
        }
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("work")
    parser.add_argument("repo")
    parser.add_argument("nodes", nargs="+", help="NAME or NAME:nvidia")
    parser.add_argument("--version", required=True, help="the Ollama release the nodes run")
    parser.add_argument("--operator", default="demo")
    args = parser.parse_args(argv)
    nodes = {name: profile or "cpu" for name, _sep, profile in (item.partition(":") for item in args.nodes)}
    # JSON is YAML: the inventory is printed as JSON so that no YAML library is needed here.
    json.dump(inventory(args.work, args.repo, nodes, args.version, args.operator), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
