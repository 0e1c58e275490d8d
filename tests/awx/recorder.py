# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The recording stand-in's action (tests/awx/double/README.md): validate a call of an awx.awx module
against the real module's argument spec and AWX's rules, then record it. Never contacts an AWX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from . import rules

# Run in a separate interpreter, where ansible_collections.awx.awx is the real collection (this
# stand-in shadows it only inside ansible-playbook): capture the argument spec the module hands to
# ControllerAPIModule, with the connection options every module adds, and the module's documentation.
_SPEC_PROGRAM = r"""
import importlib, json, sys
from ansible_collections.awx.awx.plugins.module_utils import controller_api
name = sys.argv[1]
captured = {}
class Captured(Exception):
    pass
def capture(self, argument_spec=None, **kwargs):
    spec = dict(argument_spec)
    spec.update(controller_api.ControllerModule.AUTH_ARGSPEC)
    for option in spec.values():
        option.pop("fallback", None)
    captured["spec"] = spec
    captured["kwargs"] = {k: v for k, v in kwargs.items() if k in (
        "mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")}
    raise Captured()
controller_api.ControllerAPIModule.__init__ = capture
module = importlib.import_module("ansible_collections.awx.awx.plugins.modules." + name)
try:
    module.main()
except Captured:
    pass
manifest = importlib.import_module("ansible_collections.awx.awx").__path__[0] + "/MANIFEST.json"
version = json.load(open(manifest))["collection_info"]["version"]
print(json.dumps({"spec": captured["spec"], "kwargs": captured["kwargs"], "doc": module.DOCUMENTATION,
                  "version": version, "path": module.__file__}))
"""
_CACHE: Dict[str, Dict[str, Any]] = {}


def real_module(name: str) -> Dict[str, Any]:
    """The real awx.awx module's argument spec, validation options, documentation and version."""
    if name not in _CACHE:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        done = subprocess.run(
            [sys.executable, "-c", _SPEC_PROGRAM, name], capture_output=True, text=True, env=env, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"cannot read awx.awx.{name}'s argument spec: {done.stderr[-1500:]}")
        _CACHE[name] = json.loads(done.stdout)
    return _CACHE[name]


def argument_errors(name: str, params: Dict[str, Any]) -> List[str]:
    module = real_module(name)
    validator = ArgumentSpecValidator(module["spec"], **module["kwargs"])
    result = validator.validate(params)
    return [str(error) for error in result.errors]


def _suboption_errors(name: str, option: str, items: List[Dict[str, Any]]) -> List[str]:
    """A list-of-dict option whose suboptions the module documents but does not validate itself."""
    import yaml

    doc = yaml.safe_load(real_module(name)["doc"])
    allowed = set(doc["options"][option]["suboptions"]) | {"related"}
    errors = []
    for index, item in enumerate(items):
        unknown = sorted(set(item) - allowed)
        if unknown:
            errors.append(f"{option}[{index}] has unknown keys {unknown} (allowed: {sorted(allowed)})")
    return errors


def _record_path() -> str:
    path = os.environ.get("AIRGAP_AWX_RECORD", "")
    if not path:
        raise RuntimeError("AIRGAP_AWX_RECORD must name the file that receives the recorded calls")
    return path


def recorded(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def awx_rule_errors(name: str, params: Dict[str, Any], before: List[Dict[str, Any]]) -> List[str]:
    """AWX's rules for the object, given the calls recorded before it (what AWX would already hold)."""
    errors: List[str] = []
    templates = {c["params"]["name"]: c["params"] for c in before if c["module"] == "job_template"}
    if name == "credential_type":
        errors += rules.credential_type_errors(params)
    elif name == "job_template":
        if params.get("survey_enabled"):
            errors += rules.survey_spec_errors(params.get("survey_spec"))
        if params.get("execution_environment") not in {
            c["params"]["name"] for c in before if c["module"] == "execution_environment"
        }:
            errors.append(f"execution environment {params.get('execution_environment')} is not defined")
    elif name == "schedule":
        errors += rules.rrule_errors(params.get("rrule") or "")
        if params.get("unified_job_template") not in templates:
            errors.append(
                f"schedule {params['name']} runs {params.get('unified_job_template')}, not a defined template"
            )
    elif name == "workflow_job_template":
        if params.get("survey_enabled"):
            errors += rules.survey_spec_errors(params.get("survey_spec"))
        nodes = params.get("workflow_nodes") or []
        errors += _suboption_errors(name, "workflow_nodes", nodes)
        identifiers = [n.get("identifier") for n in nodes]
        if len(set(identifiers)) != len(identifiers):
            errors.append(f"workflow node identifiers are not unique: {identifiers}")
        for node in nodes:
            template = templates.get((node.get("unified_job_template") or {}).get("name"))
            if template is None:
                errors.append(f"workflow node {node.get('identifier')} runs a template that is not defined")
                continue
            for prompt in ("limit", "job_type", "diff_mode"):
                if prompt in node and not template.get(f"ask_{prompt}_on_launch"):
                    errors.append(
                        f"workflow node {node['identifier']} sets {prompt}, "
                        f"which {template['name']} does not prompt for"
                    )
            for kind in ("success_nodes", "failure_nodes", "always_nodes"):
                for target in (node.get("related") or {}).get(kind, []):
                    if target.get("identifier") not in identifiers:
                        errors.append(f"workflow node {node['identifier']} links to unknown node {target}")
    return errors


class RecordingAction(ActionBase):
    MODULE = ""
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        params = json.loads(json.dumps(self._task.args, default=str))
        path = _record_path()
        before = recorded(path) if os.path.exists(path) else []
        errors = argument_errors(self.MODULE, params)
        if not errors:
            errors = awx_rule_errors(self.MODULE, params, before)
        if errors:
            result.update(
                failed=True, msg=f"awx.awx.{self.MODULE} {params.get('name')}: " + "; ".join(errors)
            )
            return result
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"module": self.MODULE, "params": params}, sort_keys=True) + "\n")
        result.update(changed=True, recorded=self.MODULE)
        return result
