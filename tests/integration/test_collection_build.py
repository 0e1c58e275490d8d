"""The built collection tarball carries the collection and nothing of the development set-up."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_TOP = {
    ".venv",
    ".venv-sanity",
    ".build",
    ".cache",
    ".git",
    ".ci",
    ".config",
    "molecule",
    "benchmarks",
}
FORBIDDEN_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache", "output"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    galaxy = shutil.which("ansible-galaxy")
    assert galaxy, "ansible-galaxy is not on PATH (run through make unit)"
    proc = subprocess.run(
        [galaxy, "collection", "build", "--output-path", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (tarball,) = out.glob("airgap-llm-*.tar.gz")
    return tarball


def test_tarball_has_the_collection_and_no_dev_tree(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names
    assert "meta/runtime.yml" in names
    assert "galaxy.yml" not in names  # galaxy.yml becomes MANIFEST.json
    tops = {n.split("/", 1)[0] for n in names}
    assert not tops & FORBIDDEN_TOP, sorted(tops & FORBIDDEN_TOP)
    parts = {p for n in names for p in n.split("/")}
    assert not parts & FORBIDDEN_ANYWHERE, sorted(parts & FORBIDDEN_ANYWHERE)
    assert not [n for n in names if n.endswith((".pyc", ".tar.gz", ".qcow2", ".img"))]


def test_tarball_stays_small(built):
    # A test image, a virtualenv or a benchmark store would each add tens of megabytes.
    assert built.stat().st_size < 5 * 1024 * 1024, built.stat().st_size


def test_runtime_requires_only_ansible_core():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("airgap", "llm")
    assert galaxy.get("dependencies") in ({}, None), "no other collection may be required at runtime"
    assert runtime["requires_ansible"].startswith(">=")


def test_tarball_declares_its_python_dependencies_for_ee_builders(built):
    # ansible-builder's introspection of an EE that includes this collection reads requirements.txt;
    # the EE's own build definition (v3, make ee) stays out, or introspection would misread it.
    with tarfile.open(built) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read().decode()
    assert "meta/execution-environment.yml" not in names
    lines = [line.split("#")[0].strip() for line in requirements.splitlines()]
    assert [line for line in lines if line] == ["cryptography"]
