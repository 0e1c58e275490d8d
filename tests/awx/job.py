# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a job template the way AWX 24.6.1 runs it (``awx/main/tasks/jobs.py`` RunJob, and
``awx/main/tasks/receptor.py`` AWXReceptorJob for an execution node), without AWX's database:

1. the launch: survey answers checked, extra vars in AWX's precedence (template, survey defaults,
   answers), ``awx_*``/``tower_*`` variables over them; prompts refused unless the template asks;
2. the private data directory as RunJob writes it: ``project/`` (a copy of the project),
   ``inventory/hosts`` (the inventory script, 0700), ``env/extravars`` (safe_dump: only the
   template's own values may hold Jinja), ``env/cmdline``, ``env/settings``, the custom credentials'
   files and extra vars rendered in a Jinja sandbox (rules.inject_credential), ``cp/``;
3. ansible-runner exactly as AWX drives it: ``transmit`` of the directory and the runner parameters
   (process isolation with podman, ``--user=root``, the site's container options, the pull policy of
   the execution environment, the machine credential's key for ssh-agent) into ``ansible-runner
   worker --private-data-dir=... --delete`` (what receptor starts on an execution node), whose
   event stream ``process`` reads back;
4. AWX's clean-up: the private data directory is removed (AWX_CLEANUP_PATHS), the worker's with
   ``--delete``. What AWX keeps is returned: status, rc, the events and their stdout, the job's
   safe environment and arguments.

``inspect`` (a callable) sees the private data directory after the run and before the clean-up,
as a test that must prove a secret was really there.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import ansible_runner
from ansible_runner.utils import args2cmdline

from . import rules

# AWX's settings that reach every job (awx/settings/defaults.py): ANSIBLE_* go into the environment.
AWX_ANSIBLE_SETTINGS = {
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
    "ANSIBLE_FORCE_COLOR": "True",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
}


@dataclass
class Site:
    """What an AWX holds for the jobs: objects as awx_objects.yml defined them, and the site's own."""

    templates: Dict[str, Dict[str, Any]]
    credential_types: Dict[str, Dict[str, Any]]
    # name -> {"type": credential type name or "Machine", "inputs": {...}}
    credentials: Dict[str, Dict[str, Any]]
    inventory: Dict[str, Any]  # AWX's inventory script data (groups, hosts, vars, _meta.hostvars)
    inventory_id: int
    inventory_name: str
    project_dir: str  # the project's checkout (AWX copies it into each job)
    ee_image: str
    ee_pull: str
    base_path: str  # AWX_ISOLATION_BASE_PATH
    worker_base_path: str  # the execution node's
    container_run_options: List[str]  # DEFAULT_CONTAINER_RUN_OPTIONS
    show_paths: List[str] = field(default_factory=list)  # AWX_ISOLATION_SHOW_PATHS
    next_id: int = 1800


@dataclass
class Job:
    id: int
    template: str
    status: str
    rc: Optional[int]
    stdout: str
    events: List[Dict[str, Any]]
    stats: Dict[str, Dict[str, int]]
    job_args: str
    job_env: Dict[str, str]
    extra_vars: Dict[str, Any]
    left_behind: List[str]

    @property
    def changed(self) -> int:
        return sum(self.stats.get("changed", {}).values())

    def record(self) -> Dict[str, Any]:
        """What AWX's database keeps of the job."""
        return {
            "id": self.id,
            "name": self.template,
            "status": self.status,
            "rc": self.rc,
            "job_args": self.job_args,
            "job_env": self.job_env,
            "extra_vars": self.extra_vars,
            "stats": self.stats,
            "result_stdout": self.stdout,
            "events": self.events,
        }


class LaunchError(ValueError):
    pass


def launch(
    site: Site,
    template_name: str,
    *,
    limit: Optional[str] = None,
    job_type: Optional[str] = None,
    diff_mode: Optional[bool] = None,
    extra_vars: Optional[Dict[str, Any]] = None,
    user: Optional[Dict[str, Any]] = None,
    schedule: Optional[Dict[str, Any]] = None,
    workflow: Optional[Dict[str, Any]] = None,
    inspect: Optional[Callable[[str], None]] = None,
) -> Job:
    """Launch a job template; a workflow's extra vars (its survey answers) reach every node's job
    whatever the template prompts for, as WorkflowJobNode.get_job_kwargs passes them."""
    template = site.templates[template_name]
    prompts = {"limit": limit, "job_type": job_type, "diff_mode": diff_mode}
    refused = [
        name
        for name, value in prompts.items()
        if value is not None and not template.get(f"ask_{name}_on_launch")
    ]
    if refused:
        raise LaunchError(f"{template_name} does not prompt for {', '.join(refused)} on launch")
    try:
        if workflow:
            variables = rules.launch_extra_vars(template, workflow.get("extra_vars") or {}, validate=False)
        else:
            variables = rules.launch_extra_vars(template, extra_vars or {})
    except ValueError as exc:
        raise LaunchError(str(exc)) from None
    site.next_id += 1
    job_id = site.next_id
    job = {
        "id": job_id,
        "limit": limit if limit is not None else template.get("limit") or "",
        "job_type": job_type or template.get("job_type") or "run",
        "diff_mode": diff_mode if diff_mode is not None else bool(template.get("diff_mode")),
        "become_enabled": bool(template.get("become_enabled")),
        "forks": template.get("forks") or 0,
        "verbosity": template.get("verbosity") or 0,
        "launch_type": "workflow" if workflow else "scheduled" if schedule else "manual",
    }
    meta = awx_meta_vars(site, template_name, job, user=user, schedule=schedule, workflow=workflow)
    return _run(site, template, template_name, job, variables, meta, inspect)


def awx_meta_vars(site, template_name, job, *, user=None, schedule=None, workflow=None) -> Dict[str, Any]:
    """UnifiedJob.awx_meta_vars and Job.awx_meta_vars: each name under both prefixes, awx_ and tower_."""
    values: Dict[str, Any] = {"job_id": job["id"], "job_launch_type": job["launch_type"]}
    if workflow:
        values.update(
            workflow_job_id=workflow["id"],
            workflow_job_name=workflow["name"],
            workflow_job_launch_type=workflow.get("launch_type", "manual"),
        )
    if schedule and not user:
        values.update(schedule_id=schedule["id"], schedule_name=schedule["name"])
    if user:
        values.update({f"user_{k}": user.get(k, "") for k in ("email", "first_name", "last_name")})
        values.update(user_id=user["id"], user_name=user["username"])
    values.update(
        inventory_id=site.inventory_id,
        inventory_name=site.inventory_name,
        project_revision="",
        project_scm_branch="",
        job_template_id=zlib.crc32(template_name.encode()) % 1000,
        job_template_name=template_name,
        execution_node="execution-node",
    )
    prefixes = rules.JOB_VARIABLE_PREFIXES
    return {f"{prefix}_{name}": value for prefix in prefixes for name, value in values.items()}


def _write(path: str, data: str, mode: int = 0o600) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(data)
    return path


def _credentials(site: Site, template: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [dict(site.credentials[name], name=name) for name in template.get("credentials") or []]


def _run(site, template, template_name, job, variables, meta, inspect) -> Job:  # noqa: PLR0917
    credentials = _credentials(site, template)
    machine = next((c for c in credentials if c["type"] == "Machine"), None)
    # BaseTask.build_private_data_dir: awx_<id>_ under AWX_ISOLATION_BASE_PATH, 0700; inventory/ and env/.
    pdd = tempfile.mkdtemp(prefix=f"awx_{job['id']}_", dir=site.base_path)
    os.chmod(pdd, stat.S_IRWXU)
    worker_dir = os.path.join(site.worker_base_path, os.path.basename(pdd))
    try:
        for sub in ("inventory", "env"):
            os.mkdir(os.path.join(pdd, sub))
        # RunProjectUpdate.make_local_copy: the project into the job's directory.
        shutil.copytree(site.project_dir, os.path.join(pdd, "project"), symlinks=True)
        # RunJob.build_extra_vars_file: template extra vars (and the launch's), then the awx_* ones;
        # only the template's own values are safe from !unsafe.
        extra = dict(variables)
        extra.update(meta)
        _write(
            os.path.join(pdd, "env", "extravars"), rules.safe_dump(extra, template.get("extra_vars") or {})
        )
        args = _build_args(job, machine)
        env = _build_env(site, job, pdd)
        safe_env = rules.build_safe_env(env)
        safe_cred_env: Dict[str, str] = {}
        for credential in credentials:
            if credential["type"] == "Machine":
                continue
            ctype = site.credential_types[credential["type"]]
            rules.inject_credential(ctype, credential["inputs"], env, safe_cred_env, args, pdd)
        safe_env.update(safe_cred_env)
        _write(os.path.join(pdd, "env", "cmdline"), args2cmdline(*args))
        inventory = _write(
            os.path.join(pdd, "inventory", "hosts"),
            # BaseTask.write_inventory_file, byte for byte
            "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(site.inventory),  # noqa: UP031
            0o700,
        )
        settings = {"job_timeout": 0, "suppress_ansible_output": True, "suppress_output_file": True}
        _write(os.path.join(pdd, "env", "settings"), json.dumps(settings))
        params: Dict[str, Any] = {
            "ident": job["id"],
            "private_data_dir": pdd,
            "playbook": template["playbook"],
            "inventory": inventory,
            "suppress_env_files": True,
            "envvars": env,
            "fact_cache_type": "",
            # BaseTask.build_execution_environment_params
            "container_image": site.ee_image,
            "process_isolation": True,
            "process_isolation_executable": "podman",
            "container_options": ["--user=root", *site.container_run_options, f"--pull={site.ee_pull}"],
        }
        if site.show_paths:
            params["container_volume_mounts"] = [
                p if p.count(":") == 2 else f"{p}:{p}:z" for p in site.show_paths
            ]
        if machine and machine["inputs"].get("ssh_key_data"):
            params["ssh_key"] = machine["inputs"]["ssh_key_data"]
        events, status = _transmit_work_process(params, worker_dir)
        if inspect is not None:
            inspect(pdd)
    finally:
        shutil.rmtree(pdd, ignore_errors=True)  # AWX_CLEANUP_PATHS
    left = [p for p in (pdd, worker_dir) if os.path.exists(p)]
    stats: Dict[str, Dict[str, int]] = {}
    for event in events:
        if event.get("event") == "playbook_on_stats":
            data = event.get("event_data", {})
            stats = {
                k: data.get(k) or {}
                for k in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
            }
    return Job(
        id=job["id"],
        template=template_name,
        status=status["status"],
        rc=status["rc"],
        stdout="\n".join(e["stdout"] for e in events if e.get("stdout")),
        events=events,
        stats=stats,
        job_args=args2cmdline(*args),
        job_env=safe_env,
        extra_vars=_displayed_extra_vars(template, variables),
        left_behind=left,
    )


def _displayed_extra_vars(template, variables):
    """What AWX shows as the job's extra vars: survey password answers replaced by $encrypted$."""
    passwords = {
        e["variable"] for e in (template.get("survey_spec") or {}).get("spec", []) if e["type"] == "password"
    }
    return {k: ("$encrypted$" if k in passwords else v) for k, v in variables.items()}


def _build_args(job, machine) -> List[str]:
    """RunJob.build_args."""
    inputs = machine["inputs"] if machine else {}
    args: List[str] = []
    if job["job_type"] == "check":
        args.append("--check")
    args += ["-u", inputs.get("username") or "root"]
    if job["become_enabled"]:
        args.append("--become")
    if job["diff_mode"]:
        args.append("--diff")
    if inputs.get("become_method"):
        args += ["--become-method", inputs["become_method"]]
    if inputs.get("become_username"):
        args += ["--become-user", inputs["become_username"]]
    if job["forks"]:
        args.append(f"--forks={job['forks']:d}")
    if job["limit"]:
        args += ["-l", job["limit"]]
    if job["verbosity"]:
        args.append("-%s" % ("v" * min(5, job["verbosity"])))
    return args


def _build_env(site, job, pdd) -> Dict[str, str]:
    """BaseTask.build_env and RunJob.build_env (no ansible.cfg in the project)."""
    env = dict(AWX_ANSIBLE_SETTINGS)
    env["AWX_PRIVATE_DATA_DIR"] = pdd
    env["JOB_ID"] = str(job["id"])
    env["INVENTORY_ID"] = str(site.inventory_id)
    env["PROJECT_REVISION"] = ""
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "False"
    env["MAX_EVENT_RES"] = "700000"
    env["AWX_HOST"] = "https://awx.invalid"
    os.mkdir(os.path.join(pdd, "cp"), 0o700)
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = "/runner/cp"
    for key, folder, default in (
        (
            "ANSIBLE_COLLECTIONS_PATHS",
            "requirements_collections",
            "~/.ansible/collections:/usr/share/ansible/collections",
        ),
        (
            "ANSIBLE_ROLES_PATH",
            "requirements_roles",
            "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
        ),
        (
            "ANSIBLE_COLLECTIONS_PATH",
            "requirements_collections",
            "~/.ansible/collections:/usr/share/ansible/collections",
        ),
    ):
        env[key] = os.pathsep.join([os.path.join(rules.CONTAINER_ROOT, folder), *default.split(":")])
    return env


def _transmit_work_process(params: Dict[str, Any], worker_dir: str):
    """transmit | ansible-runner worker --delete | process, as AWX and receptor chain them."""
    runner = os.path.join(os.path.dirname(sys.executable), "ansible-runner")
    worker = subprocess.Popen(
        [runner, "worker", f"--private-data-dir={worker_dir}", "--delete"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert worker.stdin is not None and worker.stdout is not None

    def transmit() -> None:
        try:
            ansible_runner.interface.run(streamer="transmit", _output=worker.stdin, **params)
        finally:
            worker.stdin.close()

    sender = threading.Thread(target=transmit, daemon=True)
    sender.start()
    events: List[Dict[str, Any]] = []
    status: Dict[str, Any] = {}

    def on_event(event: Dict[str, Any]) -> bool:
        events.append(event)
        return True

    def on_status(data: Dict[str, Any], runner_config: Any) -> None:
        status["last"] = data.get("status")

    result = ansible_runner.interface.run(
        streamer="process",
        quiet=True,
        _input=worker.stdout,
        event_handler=on_event,
        status_handler=on_status,
        **params,
    )
    sender.join(timeout=60)
    stderr = worker.stderr.read().decode(errors="replace") if worker.stderr else ""
    worker.wait(timeout=60)
    # The worker exits with the playbook's rc (2 failed, 4 unreachable): AWX takes the job's status
    # from the streamed result. Only a stream that never reached a result is an error of the run.
    if result.status not in ("successful", "failed", "timeout", "canceled") or not events:
        raise RuntimeError(f"ansible-runner worker exited {worker.returncode}, no result: {stderr[-2000:]}")
    return events, {"status": result.status, "rc": result.rc}
