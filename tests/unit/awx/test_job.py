"""The parts of tests/awx/job.py that decide a job before ansible-runner starts: prompts, the command
line, the awx_* variables, what AWX shows of the extra vars (the run itself: the awx scenario)."""

from __future__ import annotations

import pytest
from ansible_collections.airgap.llm.tests.awx import job as awx_job

TEMPLATE = {
    "playbook": "playbooks/verify.yml",
    "become_enabled": True,
    "ask_limit_on_launch": True,
    "extra_vars": {"airgap_operator": "{{ awx_user_name }}"},
    "survey_enabled": True,
    "survey_spec": {
        "name": "s",
        "description": "d",
        "spec": [{"type": "password", "question_name": "p", "variable": "secret", "required": True}],
    },
}


def _site(tmp_path):
    return awx_job.Site(
        templates={"verify": dict(TEMPLATE)},
        credential_types={},
        credentials={},
        inventory={},
        inventory_id=3,
        inventory_name="site",
        project_dir=str(tmp_path),
        ee_image="localhost/ee",
        ee_pull="never",
        base_path=str(tmp_path),
        worker_base_path=str(tmp_path),
        container_run_options=[],
    )


def test_prompts_the_template_does_not_ask_for_are_refused(tmp_path):
    with pytest.raises(awx_job.LaunchError, match="does not prompt for job_type, diff_mode"):
        awx_job.launch(
            _site(tmp_path), "verify", job_type="check", diff_mode=True, extra_vars={"secret": "x"}
        )
    with pytest.raises(awx_job.LaunchError, match="'secret' value missing"):
        awx_job.launch(_site(tmp_path), "verify", limit="node1")


def test_command_line_as_runjob_builds_it():
    job = {
        "job_type": "check",
        "become_enabled": True,
        "diff_mode": True,
        "forks": 3,
        "limit": "a:!b",
        "verbosity": 2,
    }
    machine = {"inputs": {"username": "airgap-admin", "become_method": "sudo"}}
    assert awx_job._build_args(job, machine) == [
        "--check", "-u", "airgap-admin", "--become", "--diff", "--become-method", "sudo",
        "--forks=3", "-l", "a:!b", "-vv",
    ]  # fmt: skip
    plain = {
        "job_type": "run",
        "become_enabled": False,
        "diff_mode": False,
        "forks": 0,
        "limit": "",
        "verbosity": 0,
    }
    assert awx_job._build_args(plain, None) == ["-u", "root"]


def test_awx_variables_under_both_prefixes(tmp_path):
    job = {"id": 1801, "launch_type": "manual"}
    meta = awx_job.awx_meta_vars(_site(tmp_path), "verify", job, user={"id": 7, "username": "alice"})
    assert meta["awx_job_id"] == meta["tower_job_id"] == 1801
    assert meta["awx_user_name"] == "alice" and meta["awx_inventory_name"] == "site"
    assert "awx_schedule_name" not in meta
    scheduled = awx_job.awx_meta_vars(_site(tmp_path), "verify", job, schedule={"id": 2, "name": "nightly"})
    assert scheduled["awx_schedule_name"] == "nightly" and "awx_user_name" not in scheduled


def test_password_answers_are_shown_encrypted():
    assert awx_job._displayed_extra_vars(TEMPLATE, {"secret": "s3", "x": 1}) == {
        "secret": "$encrypted$",
        "x": 1,
    }
