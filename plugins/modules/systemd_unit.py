#!/usr/bin/python
# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: systemd_unit
short_description: Render a hardened systemd unit or drop-in, scored before it is installed
version_added: 0.1.0
description:
  - Renders a systemd unit (service, socket, timer, path, target, mount) or a drop-in for one from
    structured data, writes it atomically, and reports whether a C(daemon-reload) is due.
  - Service units, and drop-ins of services, get the C(strict) hardening profile in their
    C([Service]) section. It grants no privileges or capabilities and gives a read-only system,
    private C(/tmp) and devices, a system-call filter, kernel and proc protection, and
    loopback-only IP traffic (C(IPAddressDeny=any), C(IPAddressAllow=localhost)).
  - Named O(relaxations) loosen the profile explicitly; keys given in O(sections) win over it,
    and a key set to null is left out.
  - The exposure of a service is scored with C(systemd-analyze security --offline) on a private
    copy of the unit (with the unit a drop-in extends) before anything is written; the task fails
    when it is above O(max_exposure).
  - With O(verify=true), C(systemd-analyze verify) checks a changed unit against the host (the
    programs it starts, its dependencies), and any directive systemd would ignore fails the task,
    since a mistyped hardening key silently weakens a unit.
author:
  - airgap.llm contributors (@airgap-llm)
extends_documentation_fragment:
  - airgap.llm.attributes
attributes:
  check_mode:
    details: The unit is rendered and scored; C(systemd-analyze verify) is not run, because the programs
      the unit starts may be installed by tasks that check mode skips.
  diff_mode:
    support: full
options:
  name:
    description:
      - The unit name, for example V(ollama.service) or V(cert-renewer@.timer).
    type: str
    required: true
  dropin:
    description:
      - Write a drop-in C(<path>/<name>.d/<dropin>) for the unit instead of the unit itself, for
        example V(10-hardening.conf) to harden a unit that a package installed.
    type: str
  path:
    description:
      - The directory that holds units.
    type: path
    default: /etc/systemd/system
  state:
    description:
      - V(present) writes the unit; V(absent) removes it (the drop-in only, when O(dropin) is given).
    type: str
    choices: [present, absent]
    default: present
  sections:
    description:
      - 'The unit as a mapping of sections to mappings of keys and values, for example
        C({"Service": {"ExecStart": "/usr/local/bin/ollama serve"}}). A value is a string, number
        or boolean (rendered C(yes)/C(no)), a list (the key repeated once per item, for example
        C(Environment) or C(ExecStartPre)), or null to leave the key out, also to drop a
        directive of the profile.'
      - Values may not contain line breaks. C(Environment) items are C(NAME=value) and are quoted
        as systemd expects.
      - Required with O(state=present).
    type: dict
  hardening:
    description:
      - The hardening profile merged into C([Service]). Defaults to V(strict) for services and
        drop-ins of services; other unit types take no profile and accept only V(none).
    type: str
    choices: [strict, none]
  relaxations:
    description:
      - Named, explicit relaxations of the V(strict) profile.
      - V(nvidia_gpu) lets the service open the NVIDIA device nodes and only those
        (C(PrivateDevices=no), C(DevicePolicy=closed), C(DeviceAllow=) for the groups of both driver
        generations, C(nvidia-frontend) up to 535, C(nvidia) and C(nvidiactl) from 545 on,
        C(nvidia-uvm) and C(nvidia-caps) in both) and drops C(ProcSubset=pid), because drivers 570 and
        newer read C(/proc/driver/nvidia).
      - V(network) allows IP traffic beyond loopback (a front door such as a reverse proxy).
      - V(bind_privileged_ports) keeps C(CAP_NET_BIND_SERVICE) for ports below 1024.
      - V(write_execute) turns off C(MemoryDenyWriteExecute) for JIT compilers and cffi callbacks.
      - V(host_users) turns off C(PrivateUsers) for services that must see the host's users and groups.
    type: list
    elements: str
    choices: [bind_privileged_ports, host_users, network, nvidia_gpu, write_execute]
    default: []
  max_exposure:
    description:
      - Fail when C(systemd-analyze security) scores the service above this (0.0 to 10.0). Bands are
        9.0+ UNSAFE, 7.5+ EXPOSED, 5.0+ MEDIUM, 1.0+ OK, below OK SAFE.
      - Units other than services are not scored.
    type: float
    default: 2.0
  score:
    description:
      - Score services with C(systemd-analyze security --offline). Turn off only where systemd is
        older than 250, which cannot score offline; the task then installs an unscored unit.
    type: bool
    default: true
  verify:
    description:
      - Check a changed unit with C(systemd-analyze verify) before writing it.
    type: bool
    default: true
  header:
    description:
      - A comment written at the top of the file.
    type: str
    default: Managed by Ansible (airgap.llm.systemd_unit). Local changes are overwritten.
notes:
  - The file is written to a temporary name in the same directory, flushed to disk and renamed into
    place, owned by root with mode C(0644). Reload systemd when RV(daemon_reload) is true, for
    example with M(ansible.builtin.systemd_service) and C(daemon_reload=true) in a handler.
seealso:
  - name: systemd.exec(5)
    description: The sandboxing directives the strict profile sets.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html
"""

EXAMPLES = r"""
- name: Ollama, loopback only, with NVIDIA GPU access
  airgap.llm.systemd_unit:
    name: ollama.service
    relaxations: [nvidia_gpu]
    sections:
      Unit:
        Description: Ollama
        After: network-online.target
      Service:
        ExecStart: /usr/local/bin/ollama serve
        User: ollama
        Group: ollama
        StateDirectory: ollama
        Environment:
          - OLLAMA_HOST=127.0.0.1:11434
          - OLLAMA_NOPRUNE=1
          - OLLAMA_NO_CLOUD=1
        Restart: on-failure
      Install:
        WantedBy: multi-user.target
  register: ollama_unit
  notify: Restart ollama

- name: Harden a unit that a package installed, keeping its network access
  airgap.llm.systemd_unit:
    name: nginx.service
    dropin: 50-airgap-hardening.conf
    relaxations: [network, bind_privileged_ports]
    sections:
      Service:
        ReadWritePaths: [/var/log/nginx, /run]

- name: A timer takes no hardening profile
  airgap.llm.systemd_unit:
    name: airgap-verify.timer
    sections:
      Timer:
        OnCalendar: daily
        Persistent: true
      Install:
        WantedBy: timers.target
"""

RETURN = r"""
path:
  description: The file written or removed.
  returned: always
  type: str
  sample: /etc/systemd/system/ollama.service
exposure:
  description: The exposure C(systemd-analyze security) gives the service, or null when not scored.
  returned: always
  type: float
  sample: 1.3
daemon_reload:
  description: Whether the unit files changed, so that systemd must reload them.
  returned: always
  type: bool
  sample: true
content:
  description: The rendered file (with O(state=present)).
  returned: when state is present
  type: str
  sample: "[Service]\nExecStart=/usr/local/bin/ollama serve\n"
"""

import os  # noqa: E402 - after the documentation, as Ansible modules are

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._errors import fail_on_error  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write, fsync_dir  # noqa: E402
from ansible_collections.airgap.llm.plugins.module_utils._systemd import (  # noqa: E402
    RELAXATIONS,
    SCORE_MIN_VERSION,
    SystemdUnitError,
    check_dropin_name,
    find_analyze,
    find_base_unit,
    hardening_directives,
    render_unit,
    score_exposure,
    systemd_version,
    unit_kind,
    verify_unit,
)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemdUnitError(f"Cannot read the existing unit {path}: {exc}.") from exc


def _mode_ok(path):
    st = os.stat(path)
    return st.st_uid == 0 and st.st_gid == 0 and (st.st_mode & 0o7777) == 0o644


def run(module):
    p = module.params
    name = p["name"]
    kind = unit_kind(name)
    dropin = p["dropin"]
    if dropin is not None:
        check_dropin_name(dropin)
    directory = os.path.join(p["path"], name + ".d") if dropin else p["path"]
    target = os.path.join(directory, dropin or name)
    result = {"changed": False, "path": target, "exposure": None, "daemon_reload": False}

    current = _read(target)
    if p["state"] == "absent":
        if current is not None:
            result.update(changed=True, daemon_reload=True, diff={"before": current, "after": ""})
            if not module.check_mode:
                os.unlink(target)
                fsync_dir(directory)
        return result

    if p["sections"] is None:
        raise SystemdUnitError(
            "sections is required with state=present: give the unit as {Section: {Key: value}}."
        )
    profile = p["hardening"] or ("strict" if kind == "service" else "none")
    if kind != "service" and profile != "none":
        raise SystemdUnitError(
            f"{name} is a {kind} unit: hardening profiles apply to services only. "
            "Leave hardening unset or 'none'."
        )
    content = render_unit(p["sections"], hardening_directives(profile, p["relaxations"]), p["header"])
    result["content"] = content

    search = [p["path"], "/usr/lib/systemd/system", "/lib/systemd/system"]
    base_text = find_base_unit(name, search) if dropin else None
    if dropin and base_text is None and kind == "service" and p["score"]:
        raise SystemdUnitError(
            f"The drop-in {dropin} extends {name}, which is not installed in any of {', '.join(search)}, "
            "so its exposure cannot be scored. Install the unit first."
        )

    analyze = find_analyze()
    if kind == "service" and p["score"]:
        if analyze is None or systemd_version(analyze) < SCORE_MIN_VERSION:
            raise SystemdUnitError(
                f"Scoring {name} needs systemd-analyze from systemd {SCORE_MIN_VERSION} or newer "
                "(security --offline). Set score to false to install without a score."
            )
        exposure = score_exposure(analyze, name, content, dropin, base_text)
        result["exposure"] = exposure
        if exposure > p["max_exposure"]:
            raise SystemdUnitError(
                f"{name}{' with drop-in ' + dropin if dropin else ''} scores {exposure} on systemd-analyze "
                f"security, above max_exposure {p['max_exposure']}. Remove relaxations or keys that loosen "
                "the profile, or raise max_exposure deliberately."
            )

    content_changed = current != content
    if not content_changed and _mode_ok(target):
        return result
    result["changed"] = True
    result["daemon_reload"] = content_changed
    result["diff"] = {
        "before": current or "",
        "after": content,
        "before_header": target,
        "after_header": target,
    }
    if module.check_mode:
        return result
    if content_changed and p["verify"] and analyze is not None:
        verify_unit(analyze, name, content, dropin, base_text)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    atomic_write(target, content.encode("utf-8"), mode=0o644, uid=0, gid=0)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "dropin": {"type": "str"},
            "path": {"type": "path", "default": "/etc/systemd/system"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "sections": {"type": "dict"},
            "hardening": {"type": "str", "choices": ["strict", "none"]},
            "relaxations": {"type": "list", "elements": "str", "choices": sorted(RELAXATIONS), "default": []},
            "score": {"type": "bool", "default": True},
            "max_exposure": {"type": "float", "default": 2.0},
            "verify": {"type": "bool", "default": True},
            "header": {
                "type": "str",
                "default": "Managed by Ansible (airgap.llm.systemd_unit). Local changes are overwritten.",
            },
        },
        required_if=[("state", "present", ("sections",))],
        supports_check_mode=True,
    )
    with fail_on_error(module, f"unit {module.params['name']}"):
        result = run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
