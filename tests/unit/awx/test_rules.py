"""AWX's rules as ported in tests/awx/rules.py: each refuses what AWX refuses (the negative controls
for the validation of playbooks/vars/awx_objects.yml) and accepts our definitions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from ansible_collections.airgap.llm.tests.awx import rules

ROOT = Path(__file__).resolve().parents[3]


class _Unsafe(yaml.SafeLoader):
    pass


_Unsafe.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def objects():
    with open(ROOT / "playbooks" / "vars" / "awx_objects.yml", encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Unsafe)  # noqa: S506 - SafeLoader subclass


def test_our_credential_types_pass(objects):
    for credential_type in objects["airgap_awx_credential_types"]:
        assert rules.credential_type_errors(credential_type) == [], credential_type["name"]


def test_our_surveys_pass(objects):
    for template in objects["airgap_awx_job_templates"]:
        if isinstance(template.get("survey_spec"), dict):
            assert rules.survey_spec_errors(template["survey_spec"]) == [], template["name"]
    assert rules.survey_spec_errors(objects["__airgap_awx_ingest_survey"]) == []


def _ctype(**overrides):
    base = {
        "name": "t",
        "kind": "cloud",
        "inputs": {"fields": [{"id": "password", "label": "P", "secret": True}], "required": ["password"]},
        "injectors": {"extra_vars": {"x_password": "{{ password }}"}},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"kind": "ssh"}, "Must be 'cloud' or 'net'"),
        (
            {"injectors": {"env": {"ANSIBLE_BECOME_PASS": "{{ password }}"}}},
            "may affect Ansible configuration",
        ),
        ({"injectors": {"env": {"PATH": "{{ password }}"}}}, "is not allowed to be used in credentials"),
        ({"injectors": {"extra_vars": {"x": "{{ passwd }}"}}}, "uses an undefined field"),
        ({"injectors": {"extra_vars": {"x": "{{ tower.filename }}"}}}, "Must define unnamed file injector"),
        ({"injectors": {"extra_vars": {"x": "{{ password.__class__.__mro__ }}"}}}, "unsafe"),
        ({"injectors": {"extra_vars": {"x": "{{ password "}}}, "Syntax error"),
        ({"injectors": {"file": {"template": "a", "template.b": "b"}}}, "Must use multi-file syntax"),
        ({"injectors": {"nope": {}}}, "injectors:"),
        ({"inputs": {"fields": [{"id": "tower", "label": "T"}]}}, '"tower" is a reserved field name'),
        (
            {"inputs": {"fields": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}]}},
            "field IDs must be unique",
        ),
        (
            {"inputs": {"fields": [{"id": "a", "label": "A", "type": "boolean", "secret": True}]}},
            "secret not allowed",
        ),
        (
            {"inputs": {"fields": [{"id": "a", "label": "A", "ask_at_runtime": True}]}},
            "'ask_at_runtime' is not supported",
        ),
        ({"inputs": {"fields": [{"id": "1a", "label": "A"}]}}, "inputs:"),
    ],
)
def test_credential_type_refusals(overrides, expected):
    errors = rules.credential_type_errors(_ctype(**overrides))
    assert any(expected in e for e in errors), errors


def _survey(*questions):
    return {"name": "s", "description": "d", "spec": list(questions)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"name": "s", "spec": []}, "Field 'description' is missing"),
        (_survey(), "'spec' doesn't contain any items."),
        (_survey({"type": "text", "question_name": "q", "variable": "v"}), "'required' missing"),
        (
            _survey({"type": "bogus", "question_name": "q", "variable": "v", "required": True}),
            "allowed question types",
        ),
        (
            _survey(
                {"type": "text", "question_name": "q", "variable": "v", "required": True},
                {"type": "text", "question_name": "r", "variable": "v", "required": True},
            ),
            "duplicated",
        ),
        (
            _survey(
                {"type": "integer", "question_name": "q", "variable": "v", "required": True, "default": "1"}
            ),
            "expected to be integer",
        ),
        (
            _survey({"type": "multiplechoice", "question_name": "q", "variable": "v", "required": True}),
            "must specify choices",
        ),
        (
            _survey(
                {
                    "type": "multiplechoice",
                    "question_name": "q",
                    "variable": "v",
                    "required": True,
                    "choices": ["a"],
                    "default": "b",
                }
            ),
            "Default choice must be answered from the choices listed.",
        ),
        (
            _survey({"type": "text", "question_name": "q", "variable": "v", "required": True, "min": "1"}),
            "min limit",
        ),
    ],
)
def test_survey_refusals(spec, expected):
    errors = rules.survey_spec_errors(spec)
    assert any(expected in e for e in errors), errors


def test_launch_precedence_and_answers():
    template = {
        "extra_vars": {"a": "template", "b": "template"},
        "survey_enabled": True,
        "survey_spec": _survey(
            {
                "type": "text",
                "question_name": "q",
                "variable": "b",
                "required": False,
                "default": "survey default",
            },
            {"type": "text", "question_name": "r", "variable": "c", "required": True, "min": 2, "max": 3},
        ),
    }
    assert rules.launch_extra_vars(template, {"c": "ans"}) == {
        "a": "template",
        "b": "survey default",
        "c": "ans",
    }
    assert rules.launch_extra_vars(template, {"b": "answer", "c": "ans"})["b"] == "answer"
    with pytest.raises(ValueError, match="'c' value missing"):
        rules.launch_extra_vars(template, {})
    with pytest.raises(ValueError, match="too large"):
        rules.launch_extra_vars(template, {"c": "toolong"})
    with pytest.raises(ValueError, match="Variables z are not allowed on launch"):
        rules.launch_extra_vars(template, {"c": "ans", "z": 1})
    assert (
        rules.launch_extra_vars(dict(template, ask_variables_on_launch=True), {"c": "ans", "z": 1})["z"] == 1
    )


def test_rrule_rules(objects):
    assert rules.rrule_errors("DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=DAILY;INTERVAL=1") == []
    assert any(
        "INTERVAL required" in e
        for e in rules.rrule_errors("DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=DAILY")
    )
    assert any(
        "naive" in e for e in rules.rrule_errors("DTSTART:20260101T020000 RRULE:FREQ=DAILY;INTERVAL=1")
    )
    assert any(
        "parsing failed" in e
        for e in rules.rrule_errors("DTSTART;TZID=UTC:20260101T020000 RRULE:FREQ=DAYLY;INTERVAL=1")
    )


def test_safe_dump_marks_everything_but_the_templates_own_values():
    out = rules.safe_dump({"op": "{{ awx_user_name }}", "answer": "{{ x }}"}, {"op": "{{ awx_user_name }}"})
    assert "op: '{{ awx_user_name }}'" in out
    assert "!unsafe 'answer': !unsafe '{{ x }}'" in out


def test_inject_credential_renders_files_and_extra_vars_in_a_sandbox(tmp_path, objects):
    (tmp_path / "env").mkdir()
    signing = next(
        t for t in objects["airgap_awx_credential_types"] if t["name"] == "airgap.llm bundle signing key"
    )
    env, safe_env, args = {}, {}, []
    rules.inject_credential(
        signing, {"signing_key": "PEM", "passphrase": "s3cret"}, env, safe_env, args, str(tmp_path)
    )
    assert args[0] == "-e" and args[1].startswith("@/runner/env/")
    files = {p.name: p.read_text() for p in (tmp_path / "env").iterdir()}
    extra = next(text for text in files.values() if "bundle_signing_keys" in text)
    key_file = next(name for name, text in files.items() if text == "PEM")
    assert f"/runner/env/{key_file}" in extra and "!unsafe 's3cret'" in extra
    assert oct(os.stat(tmp_path / "env" / key_file).st_mode & 0o777) == "0o600"
    # The sandbox refuses what a hostile template would reach for.
    hostile = _ctype(injectors={"env": {"X": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}})
    with pytest.raises(Exception, match=r"unsafe|access"):
        rules.inject_credential(hostile, {"password": "p"}, {}, {}, [], str(tmp_path))


def test_build_safe_env_hides_secrets():
    safe = rules.build_safe_env(
        {"MY_TOKEN": "t", "URL": "https://u:p@host/x", "ANSIBLE_X": "1", "PLAIN": "v"}
    )
    assert safe == {"MY_TOKEN": "**********", "URL": "**********", "ANSIBLE_X": "1", "PLAIN": "v"}
