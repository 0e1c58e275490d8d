"""Every refusal of the issue's acceptance, each with its message, and nothing changed by any of them.

One playbook run holds them all (one ansible start instead of five): each refusal is an include of the
role inside a block whose rescue keeps the message; the last task prints what was kept.
"""

import json
import os

from ansible_collections.airgap.llm.plugins.module_utils import _pki
from ansible_collections.airgap.llm.tests.scenario import ROOT

testinfra_hosts = ["ansible://stepca-ca"]

PASSWORD = "molecule-only-ca-password"  # noqa: S105 - the scenario's test CA password
PLAY = """
- name: Refusals of the CA
  hosts: stepca-ca
  gather_facts: false
  vars: &message
    # A failed loop keeps each item's message in results.
    message: >-
      {{ ansible_failed_result.msg if ansible_failed_result.results is not defined else
         ansible_failed_result.results | selectattr('failed', 'defined') | selectattr('failed')
         | map(attribute='msg') | join(' ') }}
  tasks:
    - name: Missing CA password
      block:
        - name: Run the CA role without a password
          ansible.builtin.include_role:
            name: airgap.llm.step_ca
          vars:
            step_ca_password: ""
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused_missing_password: "{{ message }}"
    - name: Wrong CA password
      block:
        - name: Run the CA role with another password
          ansible.builtin.include_role:
            name: airgap.llm.step_ca
          vars:
            step_ca_password: not-the-ca-password
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused_wrong_password: "{{ message }}"
    - name: Imported intermediate of another root
      block:
        - name: Run the CA role importing a foreign intermediate
          ansible.builtin.include_role:
            name: airgap.llm.step_ca
          vars:
            step_ca_material: import
            step_ca_root_certificate: "{{ foreign.root }}"
            step_ca_intermediate_certificate: "{{ foreign.intermediate }}"
            step_ca_intermediate_key: "{{ foreign.intermediate_key }}"
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused_foreign_intermediate: "{{ message }}"

- name: Refusals of a node
  hosts: stepca-node1
  gather_facts: false
  vars: *message
  pre_tasks:
    # The CA's plays above were all refused before it shared its root: read it as site.yml does.
    - name: Read the internal root
      ansible.builtin.import_tasks: "@CA_ROOT_TASKS@"
  tasks:
    - name: A name outside the policy
      block:
        - name: Run the certificate role for a name outside dns.podman
          ansible.builtin.include_role:
            name: airgap.llm.step_cert
          vars:
            step_cert_node_names: [stepca-node1.example.org]
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused_outside_policy: "{{ message }}"
    - name: A CA that cannot reach the node on the challenge port
      block:
        - name: Find the node's address on the CA host
          ansible.builtin.command:
            argv: [getent, ahostsv4, stepca-node1.dns.podman]
          delegate_to: stepca-ca
          register: node_address
          changed_when: false
        - name: Cut the CA host off from the node (a route into nothing)
          ansible.builtin.command:
            argv: [ip, route, add, blackhole, "{{ node_address.stdout.split()[0] }}/32"]
          delegate_to: stepca-ca
          changed_when: true
        - name: Run the certificate role for a new certificate
          ansible.builtin.include_role:
            name: airgap.llm.step_cert
          vars:
            step_cert_certificates:
              - name: unreachable
                names: [stepca-node1.dns.podman]
      rescue:
        - name: Keep the message
          ansible.builtin.set_fact:
            refused_unreachable: "{{ message }}"
      always:
        - name: Give the CA host its route back
          ansible.builtin.command:
            argv: [ip, route, del, blackhole, "{{ node_address.stdout.split()[0] }}/32"]
          delegate_to: stepca-ca
          changed_when: true
          when: node_address.stdout is defined

- name: Report
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Print what was refused
      ansible.builtin.debug:
        msg:
          refusals:
            missing_password: "{{ hostvars['stepca-ca'].refused_missing_password | default(None) }}"
            wrong_password: "{{ hostvars['stepca-ca'].refused_wrong_password | default(None) }}"
            foreign_intermediate: "{{ hostvars['stepca-ca'].refused_foreign_intermediate | default(None) }}"
            outside_policy: "{{ hostvars['stepca-node1'].refused_outside_policy | default(None) }}"
            unreachable: "{{ hostvars['stepca-node1'].refused_unreachable | default(None) }}"
"""
# Everything a refused run could have touched on the CA host and node1 (the node certificate and key,
# which the renewal timer replaces on its own, and the CA's database left out).
FINGERPRINT = (
    "find /etc/step-ca /etc/airgap-llm /etc/systemd/system /var/lib/step-ca -xdev "
    r"\( -path /var/lib/step-ca/db -o -path '/etc/airgap-llm/tls/node.*' \) -prune -o "
    r"\( -printf '%p %y %m %u:%g %s\n' -type f -exec sha256sum {} + \) 2>/dev/null | sort"
)


def refusals(report):
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == "Print what was refused":
                return task["hosts"]["localhost"]["msg"]["refusals"]
    raise AssertionError("the report task did not run")


def test_each_refusal_is_clear_and_changes_nothing(host, node, playbook_json, tmp_path):
    foreign = _pki.generate_material("Foreign", PASSWORD, root_days=30, intermediate_days=20).files()
    mine = host.file("/etc/step-ca/certs/root_ca.crt").content_string
    extra = tmp_path / "foreign.json"
    extra.write_text(
        json.dumps(
            {
                "foreign": {
                    "root": mine,  # our root, but an intermediate (and its key) that another root signed
                    "intermediate": foreign["intermediate"].decode(),
                    "intermediate_key": foreign["intermediate_key"].decode(),
                }
            }
        )
    )
    play = tmp_path / "refusals.yml"
    play.write_text(PLAY.replace("@CA_ROOT_TASKS@", os.path.join(ROOT, "playbooks", "tasks", "ca_root.yml")))
    node1 = node("stepca-node1")
    before = {"ca": host.check_output(FINGERPRINT), "node1": node1.check_output(FINGERPRINT)}

    rc, report, text = playbook_json(str(play), "-e", f"@{extra}")
    assert rc == 0, text[-4000:]
    seen = refusals(report)

    assert "step_ca_password is missing or empty" in seen["missing_password"]
    assert "Put it in Ansible Vault" in seen["missing_password"]
    assert "The CA password does not decrypt the CA material in /etc/step-ca" in seen["wrong_password"]
    assert "not-the-ca-password" not in text
    assert PASSWORD not in text
    assert (
        "the given intermediate certificate (CN=Foreign Intermediate CA,O=Foreign) does not chain to the "
        "given "
        "root certificate (CN=airgap.llm molecule CA Root CA,O=airgap.llm molecule CA)"
    ) in seen["foreign_intermediate"]
    assert foreign["intermediate_key"].decode().splitlines()[1] not in text
    assert "stepca-node1.example.org is outside the CA's policy" in seen["outside_policy"]
    assert "names directly under dns.podman" in seen["outside_policy"]
    assert (
        "The CA host stepca-ca cannot reach stepca-node1 on TCP port 80 (http-01) under "
        "stepca-node1.dns.podman"
    ) in seen["unreachable"]
    assert "allow TCP 80 from stepca-ca to stepca-node1" in seen["unreachable"]

    after = {"ca": host.check_output(FINGERPRINT), "node1": node1.check_output(FINGERPRINT)}
    assert after == before
    assert "blackhole" not in host.check_output("ip route")
    unreachable = "/etc/airgap-llm/tls/unreachable.crt /etc/airgap-llm/step_cert/unreachable.conf"
    assert node1.run(f"ls {unreachable}").rc != 0
    assert host.service("step-ca").is_running


def test_the_ca_itself_refuses_a_name_outside_its_policy(node):
    """Server side, whatever a client is told: lego on node1 asks for a name outside dns.podman."""
    node1 = node("stepca-node1")
    # Under the renewal script's lock, so that the node's own renewal never races this client for port 80.
    out = node1.run(
        "flock /var/lib/airgap-llm/step_cert/.lock env "
        "LEGO_CA_CERTIFICATES=/etc/airgap-llm/tls/internal-root.pem lego --server "
        "https://stepca-ca.dns.podman/acme/acme/directory --path /tmp/lego-policy --accept-tos "
        "--email root@stepca-node1.dns.podman --domains stepca-node1.example.org --http run; rc=$?; rm -rf "
        "/tmp/lego-policy; exit $rc"
    )
    assert out.rc != 0
    assert (
        "not authorized" in (out.stdout + out.stderr).lower() or "policy" in (out.stdout + out.stderr).lower()
    )
    # The negative control: the same client, the same CA, a name inside the policy (no certificate is kept).
    ok = node1.run(
        "flock /var/lib/airgap-llm/step_cert/.lock env "
        "LEGO_CA_CERTIFICATES=/etc/airgap-llm/tls/internal-root.pem lego --server "
        "https://stepca-ca.dns.podman/acme/acme/directory --path /tmp/lego-policy --accept-tos "
        "--email root@stepca-node1.dns.podman --domains stepca-node1.dns.podman --http run; rc=$?; rm -rf "
        "/tmp/lego-policy; exit $rc"
    )
    assert ok.rc == 0, ok.stdout + ok.stderr
