# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures of the transfer tests: three signers, small real bundles, tar surgery, snapshots."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import pytest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import build as _build
from ansible_collections.airgap.llm.plugins.module_utils._transfer import fetch as _fetch
from ansible_collections.airgap.llm.plugins.module_utils._transfer import ingest as _ingest
from ansible_collections.airgap.llm.plugins.module_utils._transfer import sign as _sign
from ansible_collections.airgap.llm.tests.ollama_store import snapshot

PASS = "unit-test-passphrase"  # noqa: S105 - throwaway keys


@pytest.fixture(scope="session")
def signers(tmp_path_factory) -> List[Dict[str, Any]]:
    """Three Ed25519 signers: private key, PEM public key, key id."""
    root = tmp_path_factory.mktemp("signers")
    found = []
    for n in range(3):
        private, public = root / f"signer{n}.key", root / f"signer{n}.pub"
        info = _sign.keygen(str(private), str(public), PASS)
        found.append(
            {
                "path": str(private),
                "pem": info["public_key"],
                "id": info["key_id"],
                "key": _sign.load_private_key(str(private), PASS),
            }
        )
    return found


class Bundles:
    """Builds small real bundles (two artifacts) with the collection's own builder."""

    def __init__(self, root, signers: List[Dict[str, Any]]) -> None:
        self.root = root
        self.signers = signers

    def build(
        self,
        version: int,
        *,
        signed_by: Sequence[int] = (0, 1),
        chunk_size: Optional[int] = None,
        name: str = "",
    ) -> Dict[str, str]:
        base = self.root / f"src-{version}{name}"
        base.mkdir(exist_ok=True)
        (base / "app.bin").write_bytes(hashlib.sha256(f"app {version}".encode()).digest() * 200)
        (base / "tool_2_all.deb").write_bytes(b"tool, the same in every version\n" * 50)
        spec = {
            "channel": "stable",
            "version": version,
            "expires_days": 3650,
            "artifacts": [
                {"name": "app", "version": f"{version}.0", "path": "app.bin", "license": "MIT"},
                {
                    "name": "tool",
                    "version": "2",
                    "kind": "deb",
                    "path": "tool_2_all.deb",
                    "suites": ["bookworm"],
                },
            ],
        }
        options = _build.BuildOptions(
            dest=str(self.root / f"out-{version}{name}"),
            base_dir=str(base),
            cache_dir=str(self.root / "cache"),
            signing_keys=[{"path": self.signers[n]["path"], "passphrase": PASS} for n in signed_by],
            fetch_options=_fetch.FetchOptions(),
            chunk_size=chunk_size,
        )
        built = _build.build(spec, options)
        return {"tar": built["bundle"], "sha256": built["sha256"]}


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, signers) -> Bundles:
    return Bundles(tmp_path_factory.mktemp("bundles"), signers)


@pytest.fixture
def site(tmp_path, signers):
    """Where one test's repository and audit log live, and how to ingest into them."""

    class Site:
        repo = tmp_path / "repo"
        audit = tmp_path / "audit" / "audit.jsonl"

        @staticmethod
        def options(src, sha256, **extra) -> _ingest.IngestOptions:
            values: Dict[str, Any] = {
                "src": str(src),
                "sha256": sha256,
                "repository": str(tmp_path / "repo"),
                "audit_log": str(tmp_path / "audit" / "audit.jsonl"),
                "operator": "unit",
            }
            values.update(extra)
            return _ingest.IngestOptions(**values)

        def ingest(self, bundle: Dict[str, str], **extra) -> Dict[str, Any]:
            return _ingest.ingest(self.options(bundle["tar"], bundle["sha256"], **extra))

        def establish(self, bundle: Dict[str, str], threshold: int = 2, keys: Sequence[int] = (0, 1, 2)):
            """The first ingest, recording the trust policy (``threshold`` of ``keys``)."""
            return self.ingest(bundle, trusted_keys=[signers[n]["pem"] for n in keys], threshold=threshold)

        def events(self) -> List[Dict[str, Any]]:
            if not self.audit.exists():
                return []
            return [json.loads(line) for line in self.audit.read_text().splitlines()]

        def current(self) -> Optional[str]:
            link = self.repo / "current"
            return os.readlink(link) if os.path.lexists(link) else None

        def snapshot(self):
            return snapshot(str(self.repo))

    return Site()
