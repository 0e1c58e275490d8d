# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Launch a job template, or walk a workflow, from the objects playbooks/awx_objects.yml recorded, the
way AWX runs them (tests/awx/job.py). Used by the awx Molecule scenario.

    python -m ansible_collections.airgap.llm.tests.awx.launch SITE.json RECORD.jsonl JOBS_DIR \\
        (--template NAME | --workflow NAME) [--limit L] [--job-type check] [--answers JSON]
        [--user NAME] [--credential OLD=NEW ...] [--inspect SECRETS.json]

SITE.json: credentials (with their inputs), inventory, project and paths (job.Site's fields, less
templates and credential types, which come from RECORD). Each job's record (what AWX's database keeps)
is written to JOBS_DIR/<id>.json; a summary goes to stdout as JSON: the jobs with their status,
changed count and hosts, the total of changes, and for --inspect which secrets were found in the
private data directory before AWX's clean-up (by name, never by value) and the container
command lines ansible-runner recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from . import job as awx_job
from .recorder import recorded


def load_site(site_path: str, record_path: str) -> awx_job.Site:
    with open(site_path, encoding="utf-8") as handle:
        data = json.load(handle)
    calls = recorded(record_path)
    templates = {c["params"]["name"]: c["params"] for c in calls if c["module"] == "job_template"}
    types = {c["params"]["name"]: c["params"] for c in calls if c["module"] == "credential_type"}
    ee = next(c["params"] for c in calls if c["module"] == "execution_environment")
    data.setdefault("templates", {}).update(templates)
    data["credential_types"] = types
    data.setdefault("ee_image", ee["image"])
    data.setdefault("ee_pull", ee["pull"])
    site = awx_job.Site(**{k: v for k, v in data.items() if k != "workflows"})
    site.workflows = {
        c["params"]["name"]: c["params"] for c in calls if c["module"] == "workflow_job_template"
    }  # type: ignore[attr-defined]
    return site


def _secret_finder(secrets: Dict[str, str], found: Dict[str, List[str]], commands: List[List[str]]):
    def inspect(pdd: str) -> None:
        artifacts = os.path.join(pdd, "artifacts")
        for ident in sorted(os.listdir(artifacts)) if os.path.isdir(artifacts) else []:
            command = os.path.join(artifacts, ident, "command")
            if os.path.isfile(command):
                with open(command, encoding="utf-8") as handle:
                    commands.append(json.load(handle).get("command", []))
        for root, _dirs, files in os.walk(pdd):
            for name in files:
                path = os.path.join(root, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
                for label, value in secrets.items():
                    if value.encode() in data:
                        found.setdefault(label, []).append(os.path.relpath(path, pdd))

    return inspect


def _summary(job: awx_job.Job, limit: Optional[str]) -> Dict[str, Any]:
    hosts = sorted({h for counts in job.stats.values() for h in counts})
    return {
        "id": job.id,
        "template": job.template,
        "status": job.status,
        "rc": job.rc,
        "changed": job.changed,
        "limit": limit,
        "hosts": hosts,
        "left_behind": job.left_behind,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("site")
    parser.add_argument("record")
    parser.add_argument("jobs_dir")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--template", action="append", help="a job template; several run one after the other")
    target.add_argument("--workflow")
    parser.add_argument("--limit")
    parser.add_argument("--job-type", choices=["run", "check"])
    parser.add_argument(
        "--answers", default="{}", help="survey answers (JSON): the workflow's, or {template name: answers}"
    )
    parser.add_argument("--user", default="airgap-operator")
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        help="OLD=NEW: launch with credential NEW in place of OLD",
    )
    parser.add_argument("--inspect", help="JSON file of secrets (label: value) to look for before clean-up")
    args = parser.parse_args(argv)

    site = load_site(args.site, args.record)
    # Job ids go on from the last job recorded (AWX's ids never repeat).
    os.makedirs(args.jobs_dir, exist_ok=True)
    done_ids = [int(n.split(".")[0]) for n in os.listdir(args.jobs_dir) if n.split(".")[0].isdigit()]
    site.next_id = max([site.next_id, *done_ids])
    user = {"id": 7, "username": args.user, "email": f"{args.user}@llm.internal"}
    answers = json.loads(args.answers)
    swaps = dict(item.split("=", 1) for item in args.credential)
    found: Dict[str, List[str]] = {}
    commands: List[List[str]] = []
    inspect = None
    if args.inspect:
        with open(args.inspect, encoding="utf-8") as handle:
            inspect = _secret_finder(json.load(handle), found, commands)

    def run(name: str, **kwargs: Any) -> Dict[str, Any]:
        template = site.templates[name]
        template["credentials"] = [swaps.get(c, c) for c in template.get("credentials") or []]
        job = awx_job.launch(site, name, user=user, inspect=inspect, **kwargs)
        with open(os.path.join(args.jobs_dir, f"{job.id}.json"), "w", encoding="utf-8") as out:
            json.dump(job.record(), out, indent=1, default=str)
        return _summary(job, kwargs.get("limit"))

    jobs = []
    try:
        if args.template:
            for name in args.template:
                jobs.append(
                    run(name, limit=args.limit, job_type=args.job_type, extra_vars=answers.get(name, {}))
                )
                if jobs[-1]["status"] != "successful":
                    break
        else:
            workflow = site.workflows[args.workflow]  # type: ignore[attr-defined]
            nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
            children = {
                t["identifier"]
                for n in nodes.values()
                for t in (n.get("related") or {}).get("success_nodes", [])
            }
            queue = [i for i in nodes if i not in children]
            info = {"id": 900, "name": workflow["name"], "extra_vars": answers}
            while queue:
                node = nodes[queue.pop(0)]
                summary = run(
                    node["unified_job_template"]["name"],
                    limit=node.get("limit"),
                    job_type=args.job_type,
                    workflow=info,
                )
                summary["node"] = node["identifier"]
                jobs.append(summary)
                if summary["status"] != "successful":
                    break  # only success_nodes are linked: a failed node ends the workflow
                queue += [t["identifier"] for t in (node.get("related") or {}).get("success_nodes", [])]
    except awx_job.LaunchError as exc:
        print(json.dumps({"launch_error": str(exc), "jobs": jobs}))
        return 3
    print(
        json.dumps(
            {
                "jobs": jobs,
                "changed": sum(j["changed"] for j in jobs),
                "status": "successful" if all(j["status"] == "successful" for j in jobs) else "failed",
                "secrets_found_before_cleanup": found,
                "container_commands": commands,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
