# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWX's own rules, ported from AWX 24.6.1 (the release whose awx.awx collection the pinned ansible
package bundles), for validating our objects and running jobs the way AWX does. Each function names
the AWX source it follows; behaviour is kept, Django is not.

- credential types: ``awx/main/fields.py`` (CredentialTypeInputField, CredentialTypeInjectorField)
  and ``awx/api/serializers.py`` (CredentialTypeSerializer.validate: kind, ask_at_runtime);
- surveys: ``awx/api/views/__init__.py`` (JobTemplateSurveySpec._validate_spec_data) and
  ``awx/main/models/mixins.py`` (SurveyJobTemplateMixin: answers, defaults, extra vars precedence);
- schedules: ``awx/api/serializers.py`` (SchedulePreviewSerializer.validate_rrule);
- a job's files: ``awx/main/utils/safe_yaml.py`` (safe_dump), ``awx/main/models/credential``
  (build_safe_env, CredentialType.inject_credential), ``awx/main/constants.py`` (ENV_BLOCKLIST).
"""

from __future__ import annotations

import copy
import os
import re
import stat
import tempfile
from typing import Any, Dict, List, Optional

import jsonschema
import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, sandbox
from jinja2.exceptions import SecurityError

CONTAINER_ROOT = "/runner"
HIDDEN_PASSWORD = "**********"  # noqa: S105 - AWX's mask, not a password
JOB_VARIABLE_PREFIXES = ("awx", "tower")
SURVEY_TYPE_MAPPING = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": (float, int),
}
ENV_BLOCKLIST = frozenset(
    (
        "VIRTUAL_ENV",
        "PATH",
        "PYTHONPATH",
        "JOB_ID",
        "INVENTORY_ID",
        "INVENTORY_SOURCE_ID",
        "INVENTORY_UPDATE_ID",
        "AD_HOC_COMMAND_ID",
        "REST_API_URL",
        "REST_API_TOKEN",
        "MAX_EVENT_RES",
        "CALLBACK_QUEUE",
        "CALLBACK_CONNECTION",
        "CACHE",
        "JOB_CALLBACK_DEBUG",
        "INVENTORY_HOSTVARS",
        "AWX_HOST",
        "PROJECT_REVISION",
        "SUPERVISOR_CONFIG_PATH",
    )
)

_INPUTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "required": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["string", "boolean"]},
                    "format": {"enum": ["ssh_private_key", "url"]},
                    "choices": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string"},
                        "uniqueItems": True,
                    },
                    "id": {"type": "string", "pattern": "^[a-zA-Z_]+[a-zA-Z0-9_]*$"},
                    "label": {"type": "string"},
                    "help_text": {"type": "string"},
                    "multiline": {"type": "boolean"},
                    "secret": {"type": "boolean"},
                    "ask_at_runtime": {"type": "boolean"},
                    "default": {},
                },
                "additionalProperties": False,
                "required": ["id", "label"],
            },
        },
    },
}
_INJECTORS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {
            "type": "object",
            "patternProperties": {r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$": {"type": "string"}},
            "additionalProperties": False,
        },
        "env": {
            "type": "object",
            "patternProperties": {
                "^[a-zA-Z_]+[a-zA-Z0-9_]*$": {"type": "string", "pattern": "^[\x00-\x7f]*$"}
            },
            "additionalProperties": False,
        },
        "extra_vars": {
            "type": "object",
            "patternProperties": {
                r"^[a-zA-Z_\{\}]+[a-zA-Z0-9_\{\}]*$": {
                    "anyOf": [{"type": "string"}, {"type": "array"}, {"$ref": "#/properties/extra_vars"}]
                }
            },
            "additionalProperties": False,
        },
    },
}


def _schema_errors(schema: Dict[str, Any], value: Any, what: str) -> List[str]:
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{what}: {error.message} (at {'/'.join(map(str, error.path)) or 'top'})"
        for error in validator.iter_errors(value)
    ]


def env_var_errors(name: str) -> List[str]:
    """CredentialTypeInjectorField.validate_env_var_allowed."""
    if name.startswith("ANSIBLE_"):
        return [
            f"Environment variable {name} may affect Ansible configuration "
            "so its use is not allowed in credentials."
        ]
    if name in ENV_BLOCKLIST:
        return [f"Environment variable {name} is not allowed to be used in credentials."]
    return []


def credential_type_errors(credential_type: Dict[str, Any]) -> List[str]:
    """Everything AWX checks when a custom credential type is created through its API."""
    errors: List[str] = []
    kind = credential_type.get("kind")
    if kind not in ("cloud", "net"):
        errors.append(f"kind: Must be 'cloud' or 'net', not {kind}")
    inputs = copy.deepcopy(credential_type.get("inputs") or {})
    injectors = credential_type.get("injectors") or {}
    if isinstance(inputs, dict) and "dependencies" in inputs:
        errors.append("inputs: 'dependencies' is not supported for custom credentials.")
    input_errors = _schema_errors(_INPUTS_SCHEMA, inputs, "inputs")
    errors += input_errors
    fields = inputs.get("fields", []) if isinstance(inputs, dict) and not input_errors else []
    ids = set()
    for field in fields:
        id_ = field["id"]
        if id_ == "tower":
            errors.append('inputs: "tower" is a reserved field name')
        if id_ in ids:
            errors.append(f"inputs: field IDs must be unique ({id_})")
        ids.add(id_)
        field.setdefault("type", "string")
        if "default" in field and not isinstance(
            field["default"], {"string": str, "boolean": bool}[field["type"]]
        ):
            errors.append(f"inputs: {field['default']} is not a {field['type']}")
        for key in ("choices", "multiline", "format", "secret"):
            if key in field and field["type"] != "string":
                errors.append(f"inputs: {key} not allowed for {field['type']} type ({id_})")
        if field.get("ask_at_runtime", False):
            errors.append("inputs: 'ask_at_runtime' is not supported for custom credentials.")
    for required in inputs.get("required", []) if isinstance(inputs, dict) and not input_errors else []:
        if required not in ids:
            errors.append(f"inputs: required field {required} is not one of the fields")
    injector_errors = _schema_errors(_INJECTORS_SCHEMA, injectors, "injectors")
    errors += injector_errors
    if input_errors or injector_errors:
        return errors
    errors += _injector_template_errors(injectors, ids)
    return errors


def _injector_template_errors(injectors: Dict[str, Any], ids: set) -> List[str]:
    """CredentialTypeInjectorField.validate: every template renders against the declared fields."""
    errors: List[str] = []
    namespace: Dict[str, Any] = {field: "EXAMPLE" for field in ids}

    class ExplodingNamespace:
        def __str__(self) -> str:
            raise UndefinedError("Must define unnamed file injector in order to reference `tower.filename`.")

    class TowerNamespace:
        def __init__(self) -> None:
            self.filename: Any = ExplodingNamespace()

        def __str__(self) -> str:
            raise UndefinedError("Cannot directly reference reserved `tower` namespace container.")

    namespace["tower"] = TowerNamespace()
    names = [name for name in injectors.get("file", {}) if name.startswith("template")]
    if "template" in names:
        namespace["tower"].filename = "EXAMPLE_FILENAME"
        if len(names) > 1:
            errors.append("injectors: Must use multi-file syntax when injecting multiple files")
    else:
        for name in names:
            setattr(namespace["tower"].filename, name.split(".")[1], "EXAMPLE_FILENAME")

    def check(kind: str, key: Any, template: str) -> None:
        try:
            sandbox.ImmutableSandboxedEnvironment(undefined=StrictUndefined).from_string(template).render(
                namespace
            )
        except UndefinedError as exc:
            errors.append(f"injectors: {key} uses an undefined field ({exc})")
        except SecurityError as exc:
            errors.append(f"injectors: Encountered unsafe code execution: {exc}")
        except TemplateSyntaxError as exc:
            errors.append(f"injectors: Syntax error rendering template for {key} inside of {kind} ({exc})")

    def check_extra_vars(key: Optional[str], node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                check("extra_vars", "a key" if key is None else key, k)
                check_extra_vars(k if key is None else f"{key}.{k}", v)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                check_extra_vars(f"{key}[{i}]", item)
        else:
            check("extra_vars", key, node)

    for kind, injector in injectors.items():
        if kind == "env":
            for key in injector:
                errors += [f"injectors: {e}" for e in env_var_errors(key)]
        if kind == "extra_vars":
            check_extra_vars(None, injector)
        else:
            for key, template in injector.items():
                check(kind, key, template)
    return errors


def survey_spec_errors(spec: Any) -> List[str]:
    """JobTemplateSurveySpec._validate_spec_data (what AWX's API refuses), first error per question."""
    for field, expect, label in (
        ("name", str, "string"),
        ("description", str, "string"),
        ("spec", list, "list of items"),
    ):
        if not isinstance(spec, dict) or field not in spec:
            return [f"Field '{field}' is missing from survey spec."]
        if not isinstance(spec[field], expect):
            return [f"Expected {label} for field '{field}', received {type(spec[field]).__name__} type."]
    if len(spec["spec"]) < 1:
        return ["'spec' doesn't contain any items."]
    errors: List[str] = []
    seen = set()
    for idx, item in enumerate(spec["spec"]):
        if not isinstance(item, dict):
            errors.append(f"Survey question {idx} is not a json object.")
            continue
        missing = [f for f in ("type", "question_name", "variable", "required") if f not in item]
        if missing:
            errors.append(f"'{missing[0]}' missing from survey question {idx}")
            continue
        wrong = [f for f in ("type", "question_name", "variable") if not isinstance(item[f], str)]
        if wrong or not isinstance(item["required"], bool):
            name = wrong[0] if wrong else "required"
            errors.append(
                f"'{name}' in survey question {idx} expected to be {'string' if wrong else 'boolean'}."
            )
            continue
        if item["variable"] in seen:
            errors.append(f"'variable' '{item['variable']}' duplicated in survey question {idx}.")
            continue
        seen.add(item["variable"])
        qtype = item["type"]
        if qtype not in SURVEY_TYPE_MAPPING:
            errors.append(
                f"'{qtype}' in survey question {idx} is not one of "
                f"'{', '.join(SURVEY_TYPE_MAPPING)}' allowed question types."
            )
            continue
        if (
            "default" in item
            and item["default"] != ""
            and not isinstance(item["default"], SURVEY_TYPE_MAPPING[qtype])
        ):
            errors.append(
                f"Default value {item['default']} in survey question {idx} expected to be "
                f"{qtype if qtype in ('integer', 'float') else 'string'}."
            )
            continue
        bad_limit = [
            k for k in ("min", "max") if k in item and item[k] is not None and not isinstance(item[k], int)
        ]
        if bad_limit:
            errors.append(f"The {bad_limit[0]} limit in survey question {idx} expected to be integer.")
            continue
        if qtype in ("multiselect", "multiplechoice"):
            if "choices" not in item:
                errors.append(f"Survey question {idx} of type {qtype} must specify choices.")
                continue
            choices = item["choices"]
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip() != ""]
            if "default" in item:
                default = item["default"]
                defaults = (
                    [d for d in default.splitlines() if d.strip() != ""]
                    if isinstance(default, str)
                    else default
                )
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append("Multiple Choice (Single Select) can only have one default value.")
                    continue
                if any(d not in choices for d in defaults):
                    errors.append("Default choice must be answered from the choices listed.")
                    continue
        if (
            qtype == "password"
            and isinstance(item.get("default"), str)
            and item["default"].startswith("$encrypted$")
        ):
            errors.append(
                "$encrypted$ is a reserved keyword for password question defaults, "
                f"survey question {idx} is type {qtype}."
            )
    return errors


def survey_answer_errors(
    element: Dict[str, Any], data: Dict[str, Any], validate_required: bool = True
) -> List[str]:
    """SurveyJobTemplateMixin._survey_element_validation."""
    var = element["variable"]
    errors: List[str] = []
    if var not in data:
        if element["required"] and validate_required:
            errors.append(f"'{var}' value missing")
        return errors
    value = data[var]
    qtype = element["type"]
    limits = {k: element[k] for k in ("min", "max") if element.get(k) not in ("", None)}
    if qtype in ("textarea", "text", "password"):
        if not isinstance(value, str):
            return [f"Value {value} for '{var}' expected to be a string."]
        if "min" in limits and len(value) < int(limits["min"]):
            errors.append(
                f"'{var}' value {value} is too small "
                f"(length is {len(value)} must be at least {limits['min']})."
            )
        if "max" in limits and len(value) > int(limits["max"]):
            errors.append(f"'{var}' value {value} is too large (must be no more than {limits['max']}).")
    elif qtype == "integer":
        if not isinstance(value, int) or isinstance(value, bool):  # AWX: type(value) != int
            return [f"Value {value} for '{var}' expected to be an integer."]
        if "min" in limits and value < int(limits["min"]):
            errors.append(f"'{var}' value {value} is too small (must be at least {limits['min']}).")
        if "max" in limits and value > int(limits["max"]):
            errors.append(f"'{var}' value {value} is too large (must be no more than {limits['max']}).")
    elif qtype == "float":
        if not isinstance(value, (float, int)) or isinstance(value, bool):
            return [f"Value {value} for '{var}' expected to be a numeric type."]
    elif qtype in ("multiselect", "multiplechoice"):
        choices = element["choices"]
        if isinstance(choices, str):
            choices = [c for c in choices.splitlines() if c.strip() != ""]
        if qtype == "multiselect":
            if not isinstance(value, list):
                return [f"'{var}' value is expected to be a list."]
            errors += [
                f"Value {v} for '{var}' expected to be one of {choices}." for v in value if v not in choices
            ]
        elif value not in choices:
            errors.append(f"Value {value} for '{var}' expected to be one of {choices}.")
    return errors


def launch_extra_vars(
    template: Dict[str, Any], runtime: Dict[str, Any], validate: bool = True
) -> Dict[str, Any]:
    """The job's extra vars: template extra vars, then survey defaults, then the launch's answers.

    Answers are checked as AWX checks them on launch (_accept_or_ignore_variables): a survey
    question refuses a bad answer, and a variable no question asks for is refused unless the
    template prompts for variables. Raises ValueError with AWX's messages. A workflow's extra vars
    reach its nodes' jobs unchecked (validate=False), as WorkflowJobNode.get_job_kwargs passes them.
    """
    extra_vars = dict(template.get("extra_vars") or {})
    spec = template.get("survey_spec") or {}
    survey = template.get("survey_enabled") and spec
    runtime = dict(runtime)
    errors: List[str] = []
    accepted: Dict[str, Any] = {}
    if survey:
        for element in spec.get("spec", []):
            key = element["variable"]
            element_errors = survey_answer_errors(element, runtime)
            if element_errors:
                errors += element_errors
            elif key in runtime:
                accepted[key] = runtime.pop(key)
    if template.get("ask_variables_on_launch"):
        accepted.update(runtime)
        runtime = {}
    leftover = {k: v for k, v in runtime.items() if (template.get("extra_vars") or {}).get(k, object()) != v}
    if leftover:
        errors.append(
            f"Variables {', '.join(leftover)} are not allowed on launch. Check the Prompt on Launch setting "
            "on the Job Template to include Extra Variables."
        )
    if not validate:
        accepted.update(runtime)
    elif errors:
        raise ValueError("; ".join(errors))
    defaults = {}
    if survey:
        for element in spec.get("spec", []):
            default = element.get("default")
            if default is not None and not survey_answer_errors(element, {element["variable"]: default}):
                defaults[element["variable"]] = default
    extra_vars.update(defaults)
    extra_vars.update(accepted)
    return extra_vars


def rrule_errors(rrule: str) -> List[str]:
    """SchedulePreviewSerializer.validate_rrule, with dateutil's parser for AWX's rrulestr."""
    from dateutil import rrule as dateutil_rrule

    errors = []
    dtstarts = re.findall(r".*?(DTSTART(;[^:]+)?\:[0-9]+T[0-9]+Z?)", rrule)
    if not dtstarts:
        errors.append("Valid DTSTART required in rrule. Value should start with: DTSTART:YYYYMMDDTHHMMSSZ")
    if re.findall(r".*?(DTSTART:[0-9]+T[0-9]+) ", rrule):
        errors.append("DTSTART cannot be a naive datetime.  Specify ;TZINFO= or YYYYMMDDTHHMMSSZZ.")
    if len(dtstarts) > 1:
        errors.append("Multiple DTSTART is not supported.")
    if "rrule:" not in rrule.lower():
        errors.append("One or more rule required in rrule.")
    for word in ("exdate", "rdate"):
        if f"{word}:" in rrule.lower():
            errors.append(f"{word.upper()} not allowed in rrule.")
    for rule in re.findall(r".*?(RULE\:[^\s]*)", rrule):
        if "interval" not in rule.lower():
            errors.append(f"INTERVAL required in rrule: {rule}")
        elif "secondly" in rule.lower():
            errors.append(f"SECONDLY is not supported: {rule}")
        if re.match(r".*?BYDAY[\:\=][0-9]+[a-zA-Z]{2}", rule):
            errors.append(f"BYDAY with numeric prefix not supported: {rule}")
        if "COUNT" in rule and "UNTIL" in rule:
            errors.append(f"RRULE may not contain both COUNT and UNTIL: {rule}")
        count = re.match(r".*?(COUNT\=[0-9]+)", rule)
        if count and int(count.group(1).split("=")[1]) > 999:
            errors.append(f"COUNT > 999 is unsupported: {rule}")
    try:
        dateutil_rrule.rrulestr(rrule.replace(" ", "\n"), forceset=True)
    except (ValueError, TypeError) as exc:
        errors.append(f"rrule parsing failed validation: {exc}")
    return errors


class _UnsafeDumper(yaml.SafeDumper):
    def represent_data(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def safe_dump(variables: Dict[str, Any], safe_dict: Optional[Dict[str, Any]] = None) -> str:
    """awx.main.utils.safe_yaml.safe_dump: every string !unsafe unless it is the template's own value."""
    safe_dict = safe_dict or {}
    out = []
    for key, value in variables.items():
        dumper = yaml.SafeDumper if key in safe_dict and safe_dict.get(key) == value else _UnsafeDumper
        out.append(yaml.dump_all([{key: value}], None, Dumper=dumper, default_flow_style=False))
    return "".join(out)


def build_safe_env(env: Dict[str, str]) -> Dict[str, str]:
    """awx.main.models.credential.build_safe_env: what AWX stores of a job's environment."""
    hidden = re.compile(r"API|TOKEN|KEY|SECRET|PASS", re.I)
    urlpass = re.compile(r"^.*?://[^:]+:(.*?)@.*?$")
    safe = dict(env)
    for key, value in safe.items():
        if key == "AWS_ACCESS_KEY_ID":
            continue
        if key.startswith("ANSIBLE_") and not key.startswith(("ANSIBLE_NET", "ANSIBLE_GALAXY_SERVER")):
            continue
        if hidden.search(key):
            safe[key] = HIDDEN_PASSWORD
        elif isinstance(value, str) and urlpass.match(value):
            safe[key] = urlpass.sub(HIDDEN_PASSWORD, value)
    return safe


def to_container_path(path: str, private_data_dir: str) -> str:
    resolved, base = os.path.realpath(path), os.path.realpath(private_data_dir)
    if resolved != base and not resolved.startswith(base + os.sep):
        raise RuntimeError(f"Cannot convert path {resolved} unless it is a subdir of {base}")
    return resolved.replace(base, CONTAINER_ROOT, 1)


def inject_credential(  # noqa: PLR0917 - AWX's signature
    credential_type: Dict[str, Any],
    inputs: Dict[str, Any],
    env: Dict[str, str],
    safe_env: Dict[str, str],
    args: List[str],
    private_data_dir: str,
) -> None:
    """CredentialType.inject_credential for a custom type: files, env and extra vars, sandboxed."""
    secret_fields = {f["id"] for f in credential_type["inputs"].get("fields", []) if f.get("secret")}

    class TowerNamespace:
        pass

    tower = TowerNamespace()
    namespace: Dict[str, Any] = {"tower": tower}
    safe_namespace: Dict[str, Any] = {"tower": tower}
    for name, value in inputs.items():
        if isinstance(value, bool):
            safe_namespace[name] = namespace[name] = value
            continue
        if name in secret_fields:
            safe_namespace[name] = HIDDEN_PASSWORD
        elif len(value):
            safe_namespace[name] = value
        if len(value):
            namespace[name] = value
    for field in credential_type["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = safe_namespace[field["id"]] = False
    injectors = credential_type.get("injectors") or {}
    env_sandbox = sandbox.ImmutableSandboxedEnvironment()
    for label, template in injectors.get("file", {}).items():
        data = env_sandbox.from_string(template).render(**namespace)
        handle, path = tempfile.mkstemp(dir=os.path.join(private_data_dir, "env"))
        with os.fdopen(handle, "w") as out:
            out.write(data)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        container_path = to_container_path(path, private_data_dir)
        if "." not in label:
            tower.filename = container_path  # type: ignore[attr-defined]
        else:
            if not hasattr(tower, "filename"):
                tower.filename = TowerNamespace()  # type: ignore[attr-defined]
            setattr(tower.filename, label.split(".")[1], container_path)  # type: ignore[attr-defined]
    for name, template in injectors.get("env", {}).items():
        if env_var_errors(name):
            continue  # AWX logs and ignores a prohibited variable
        env[name] = env_sandbox.from_string(template).render(**namespace)
        safe_env[name] = env_sandbox.from_string(template).render(**safe_namespace)

    def build(node: Any) -> Any:
        if isinstance(node, dict):
            return {build(k): build(v) for k, v in node.items()}
        if isinstance(node, list):
            return [build(x) for x in node]
        return env_sandbox.from_string(node).render(**namespace)

    extra_vars = build(injectors.get("extra_vars", {}))
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=os.path.join(private_data_dir, "env"))
        with os.fdopen(handle, "w") as out:
            out.write(safe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
        args.extend(["-e", "@" + to_container_path(path, private_data_dir)])
