# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docs run as written: every command block of README.md and docs/*.md, in order, on this machine.

Every fenced block must say what it is: ``sh`` (commands), ``yaml`` (tasks) or ``text`` (a diagram,
a layout, sample output; never run). A ``sh`` or ``yaml`` block runs here unless the line right
above it is ``<!-- not run by the doc test: <why> -->`` (a block that needs Molecule, podman or a
served repository); no block is left out silently.

The blocks run as an operator types them, in one sandbox standing for the low side, the media and
the high side at once, with fixtures for what the operator brings (a bundle spec with a model, a
wheelhouse and .deb files; what they type at prompts: vault passwords and digests on stdin, as a
person would type them). Three things are set up around the commands, nothing in them is changed
but this:

* absolute paths under the prefixes in ``SANDBOXED`` are moved into the sandbox (a block using any
  other absolute path fails: it would write outside);
* ``ansible-playbook`` is a wrapper that puts the sandbox's paths for the playbooks' own defaults
  (``/srv/airgap-llm/repo``, ``/var/log/airgap-llm/audit.jsonl``) first, so the command's own
  ``-e`` still win;
* where the runbook says each signer does the same with their own name, the block runs again with
  ``signer1`` replaced by ``signer2`` and ``signer3``; after the differential bundle is built, its
  signature and ingest run again with the next version's name.

Each block runs with ``bash -euo pipefail``: a copy-paste trap (a wrong variable, a file name
keygen does not write, a unit that does not fit) fails this test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from typing import Dict, List, Optional

import pytest
import yaml
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer import spec as _spec
from ansible_collections.airgap.llm.tests import ollama_store
from ansible_collections.airgap.llm.tests.module_runner import COLLECTIONS, ansible_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [
    "docs/runbook-transfer.md",
    "docs/artifact-repository.md",
    "docs/ollama-integrity.md",
    "docs/upstream-facts.md",
    "README.md",
]
LANGUAGES = ("sh", "yaml", "text")
MARK = re.compile(r"^<!-- not run by the doc test: (\S.*\S) -->$")
FENCE = re.compile(r"^```(.*)$")
SANDBOXED = (
    "/etc/airgap-llm/",
    "/srv/",
    "/media/",
    "/var/log/airgap-llm/",
    "/var/lib/ollama/",
    "/var/lib/airgap-llm/",
)
ABSOLUTE = re.compile(r"(?<![\w.:/$-])/[\w.-][^\s'\"]*")
VAULT_PASSWORD = "doc-test-vault-password"  # noqa: S105 - throwaway
BLOCK_TIMEOUT = 120


class Block:
    def __init__(self, doc: str, line: int, language: str, text: str, mark: Optional[str]) -> None:
        self.doc = doc
        self.line = line
        self.language = language
        self.text = text
        self.mark = mark

    def __repr__(self) -> str:
        return f"{self.doc}:{self.line}"


def read_blocks(doc: str) -> List[Block]:
    """The fenced blocks of ``doc``; a block without a known language fails the test."""
    with open(os.path.join(REPO_ROOT, doc), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    blocks: List[Block] = []
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        language = opening.group(1).strip()
        assert language in LANGUAGES, (
            f"{doc}:{number + 1}: the block has language {language!r}; give it one of {', '.join(LANGUAGES)}"
        )
        end = next((i for i in range(number + 1, len(lines)) if lines[i].startswith("```")), None)
        assert end is not None, f"{doc}:{number + 1}: the block is never closed"
        mark = MARK.match(lines[number - 1]) if number else None
        assert not (number and lines[number - 1].startswith("<!-- not run") and mark is None), (
            f"{doc}:{number}: write the mark as '<!-- not run by the doc test: <why> -->'"
        )
        text = "\n".join(lines[number + 1 : end]) + "\n"
        blocks.append(Block(doc, number + 1, language, text, mark.group(1) if mark else None))
        number = end + 1
    return blocks


def test_every_doc_is_read_and_every_block_says_what_it_is():
    found = {"README.md"} | {
        f"docs/{n}" for n in os.listdir(os.path.join(REPO_ROOT, "docs")) if n.endswith(".md")
    }
    assert found == set(DOCS), "a new doc page: add it to DOCS so its commands are run"
    blocks = [b for doc in DOCS for b in read_blocks(doc)]
    assert all(b.mark is None or b.language != "text" for b in blocks), "a text block is never run: no mark"
    marked = [b for b in blocks if b.mark]
    # A mark says why the block cannot run here, and what it says is what the block needs.
    assert [b.doc for b in marked] == ["docs/artifact-repository.md", "README.md", "README.md"], marked
    for block in marked:
        needs_ci = block.text.startswith("make ") and "Molecule" in block.mark and "podman" in block.mark
        needs_https = "base_url='https://" in block.text and "over HTTPS" in block.mark
        assert needs_ci or needs_https, (
            f"{block}: the mark {block.mark!r} does not match what the block needs"
        )


def test_the_example_bundle_spec_is_a_valid_spec():
    with open(os.path.join(REPO_ROOT, "docs", "examples", "bundle-spec.yml"), encoding="utf-8") as handle:
        spec = _spec.BundleSpec(yaml.safe_load(handle), _spec.parse_time("2026-01-01T00:00:00Z", "now"))
    assert spec.version == 42
    assert {a.kind for a in spec.artifacts} >= {"ollama", "model", "wheelhouse", "deb", "gpu_driver"}


# ---------------------------------------------------------------------------------------------- the run


class Sandbox:
    """One directory standing for the low side, the media and the high side; runs blocks in it."""

    def __init__(self, root) -> None:
        self.root = str(root)
        self.work = os.path.join(self.root, "work")
        self.ran: List[str] = []
        os.makedirs(self.work)
        os.symlink(os.path.join(REPO_ROOT, "playbooks"), os.path.join(self.work, "playbooks"))
        for prefix in SANDBOXED:
            os.makedirs(self.path(prefix), exist_ok=True)
        os.makedirs(self.path("/media/usb"))
        os.makedirs(self.path("/media/keys"))
        self._wrapper()
        self._fixtures()

    def path(self, absolute: str) -> str:
        return self.root + absolute

    def _wrapper(self) -> None:
        defaults = os.path.join(self.root, "playbook-defaults.yml")
        with open(defaults, "w", encoding="utf-8") as handle:
            yaml.safe_dump(
                {
                    "ingest_repository": self.path("/srv/airgap-llm/repo"),
                    "ingest_audit_log": self.path("/var/log/airgap-llm/audit.jsonl"),
                    "repo_list_repository": self.path("/srv/airgap-llm/repo"),
                },
                handle,
            )
        bindir = os.path.join(self.root, "bin")
        os.makedirs(bindir)
        real = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        wrapper = os.path.join(bindir, "ansible-playbook")
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\nexec {real} -e @{defaults} "$@"\n')
        os.chmod(wrapper, 0o700)
        self.env = ansible_env()
        self.env.pop("SUDO_USER", None)
        self.env.update(
            PATH=f"{bindir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
            PYTHONPATH=COLLECTIONS,
            USER="doc-operator",
            ANSIBLE_STDOUT_CALLBACK="default",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
            ANSIBLE_RETRY_FILES_ENABLED="false",
        )

    def _fixtures(self) -> None:
        """What the operator brings: a spec with a model, a wheelhouse, a .deb set and a file."""
        bundles = self.path("/srv/bundles")
        ollama_store.add_model(os.path.join(bundles, "models"), "llama3.2:3b", model_size=40_000)
        for rel, size in (
            ("wheelhouse/open-webui/open_webui-0.6.5-py3-none-any.whl", 9000),
            ("wheelhouse/open-webui/fastapi-0.115.0-py3-none-any.whl", 3000),
            ("debs/nginx/nginx_1.22.1-9_amd64.deb", 5000),
            ("debs/nginx/nginx-common_1.22.1-9_all.deb", 2000),
            ("site-config.txt", 300),
        ):
            os.makedirs(os.path.dirname(os.path.join(bundles, rel)), exist_ok=True)
            with open(os.path.join(bundles, rel), "wb") as handle:
                handle.write(os.urandom(size))
        spec = {
            "channel": "stable",
            "version": 42,
            "expires_days": 14,
            "ollama_store": "models",
            "artifacts": [
                {"name": "llama3.2", "version": "3b", "kind": "model", "license": "Llama-3.2-Community"},
                {
                    "name": "open-webui",
                    "version": "0.6.5",
                    "kind": "wheelhouse",
                    "path": "wheelhouse/open-webui",
                },
                {
                    "name": "nginx",
                    "version": "1.22.1-9",
                    "kind": "deb",
                    "path": "debs/nginx",
                    "suites": ["bookworm"],
                },
                {"name": "site-config", "version": "1", "kind": "file", "path": "site-config.txt"},
            ],
        }
        with open(os.path.join(bundles, "spec.yml"), "w", encoding="utf-8") as handle:
            handle.write(yaml.safe_dump(spec, sort_keys=False))

    def sandboxed(self, block: Block, text: str) -> str:
        outside = [p for p in ABSOLUTE.findall(text) if not p.startswith(SANDBOXED)]
        assert not outside, (
            f"{block}: {outside} would be used outside the sandbox; use {SANDBOXED} or mark it"
        )
        pattern = "|".join(re.escape(p) for p in SANDBOXED)
        return re.sub(rf"(?<![\w.:/$-])({pattern})", lambda m: self.path(m.group(1)), text)

    def digest(self, text: str) -> str:
        """What the operator types when asked for a digest: the bundle's digest, as the low side read it."""
        name = re.search(r"airgap-llm-stable-[0-9]{6}\.tar", text)
        assert name, "a block asks for a digest but names no bundle"
        with open(self.path("/srv/bundles/out/") + name.group(0) + ".sha256", encoding="ascii") as handle:
            return handle.read().split()[0]

    def typed(self, text: str, signer: str) -> str:
        """stdin: what a person types at the prompts of the block, in order."""
        typed = ""
        if "read -r" in text:
            typed += self.digest(text) + "\n"
        if "encrypt_string" in text:
            typed += f"{VAULT_PASSWORD}\n{VAULT_PASSWORD}\n{signer}-key-passphrase"
        elif "--ask-vault-pass" in text:
            typed += VAULT_PASSWORD + "\n"
        return typed

    def run(
        self, block: Block, text: Optional[str] = None, signer: str = "signer1"
    ) -> subprocess.CompletedProcess:
        text = self.sandboxed(block, text or block.text)
        if block.language == "yaml":
            play = [{"name": f"Example of {block}", "hosts": "localhost", "gather_facts": False}]
            play[0]["tasks"] = yaml.safe_load(text)
            path = os.path.join(self.work, f"example-{len(self.ran)}.yml")
            with open(path, "w", encoding="utf-8") as handle:
                yaml.safe_dump(play, handle, sort_keys=False)
            command = ["ansible-playbook", "-i", "localhost,", "-c", "local", path]
            text = " ".join(command)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", text],
            cwd=self.work,
            env=self.env,
            input=self.typed(text, signer),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            start_new_session=True,  # no terminal: prompts read what is typed on stdin
            check=False,
        )
        output = done.stdout + done.stderr
        assert "Traceback" not in output, output
        assert done.returncode == 0, (
            f"{block} failed as written (rc {done.returncode}):\n{text}\n{output[-4000:]}"
        )
        self.ran.append(f"{block} {signer}")
        return done


def _others(text: str) -> List[str]:
    """The same block for signers 2 and 3, where the runbook says each signer does the same."""
    if "signer1" not in text or "bundle.yml" in text or "/media/keys/signer2" in text:
        return []
    return [text.replace("signer1", f"signer{n}") for n in (2, 3)]


@pytest.fixture(scope="module")
def docs_run(tmp_path_factory):
    """Run every runnable block of every doc, in order; keep the outputs for the checks below."""
    sandbox = Sandbox(tmp_path_factory.mktemp("docs"))
    outputs: Dict[str, str] = {}
    for doc in DOCS:
        blocks = read_blocks(doc)
        for block in blocks:
            if block.language == "text" or block.mark:
                continue
            outputs[str(block)] = sandbox.run(block).stdout
            for n, text in enumerate(_others(block.text), start=2):
                sandbox.run(block, text, signer=f"signer{n}")
            if "bundle_inventory=" in block.text:
                # The differential bundle goes the way of the first: signer 2 signs, the high side ingests.
                sign = next(b for b in blocks if "bundle_to_sign=" in b.text)
                ingest = next(b for b in blocks if "ingest_src=" in b.text and "read -r" in b.text)
                copy = next(b for b in blocks if "/media/usb/" in b.text and b.text.startswith("cp "))
                for step in (sign, copy, ingest):
                    text = step.text.replace("000042", "000043")
                    outputs[f"{step} v43"] = sandbox.run(step, text).stdout
    return {"sandbox": sandbox, "outputs": outputs}


def test_every_command_block_runs_as_written(docs_run):
    sandbox = docs_run["sandbox"]
    runnable = [b for doc in DOCS for b in read_blocks(doc) if b.language != "text" and not b.mark]
    assert {r.split()[0] for r in sandbox.ran} == {str(b) for b in runnable}


def test_what_the_runbook_promises_is_what_happened(docs_run):
    sandbox, outputs = docs_run["sandbox"], docs_run["outputs"]
    repo = sandbox.path("/srv/airgap-llm/repo")
    # k of n: two signers, each with their own key and vault file; ingest counted both.
    with open(sandbox.path("/var/log/airgap-llm/audit.jsonl"), encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle]
    accepted = [e for e in events if e["action"] == "ingest" and e["outcome"] == "accepted"]
    assert len(accepted) == 2 and all(len(e["key_ids"]) == 2 for e in accepted)
    assert [e["action"] for e in events][:1] == ["trust"]
    assert events[-1]["action"] == "rollback" and events[-1]["operator"] == "doc-operator"
    assert _audit.verify(sandbox.path("/var/log/airgap-llm/audit.jsonl"))["broken_at"] is None
    # The second bundle carries none of the unchanged local files, and ingest says they were there.
    with tarfile.open(sandbox.path("/srv/bundles/out/airgap-llm-stable-000043.tar")) as tar:
        members = tar.getnames()
        manifest = json.load(tar.extractfile("bundle.json"))
    omitted = {f["path"].split("/")[1] for f in manifest["files"] if f["omitted"]}
    assert omitted >= {"wheelhouse", "deb", "file"}
    assert not [m for m in members if m.startswith(("artifacts/", "models/"))], members
    ingest_v43 = next(v for k, v in outputs.items() if k.endswith(" v43") and "accepted" in v)
    assert "added 1, already there 4, replaced 0" in ingest_v43
    # The listing, for people and as JSON.
    listing = next(v for k, v in outputs.items() if "repo_list.yml" in v or "Repository " in v)
    assert f"Repository {repo} serves states/000001 (channel stable version 42): 5 artifacts" in listing
    with open(sandbox.path("/srv/airgap-llm/listing.json"), encoding="utf-8") as handle:
        rows = {r["name"]: r for r in json.load(handle)["artifacts"]}
    assert rows["llama3.2"]["digest"].startswith("sha256:") and rows["nginx"]["suites"] == ["bookworm"]
    # The rollback pointed current back; the model installed from the repository's directory verifies.
    assert os.readlink(os.path.join(repo, "current")) == "states/000001"
    checked = subprocess.run(
        [
            "ansible",
            "localhost",
            "-m",
            "airgap.llm.ollama_verify",
            "-a",
            f"path={sandbox.path('/var/lib/ollama/models')}",
        ],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0 and "llama3.2:3b" in checked.stdout, checked.stdout
