# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The repository's trust policy: which signing keys it pins and how many must sign a bundle.

The policy is recorded once, by an explicit and audited step (``airgap.llm.repo_trust``, or the
first ingest into a repository that has none, with the keys and threshold given explicitly), in
``trust.json`` at the repository root::

    {"format": "airgap.llm.trust-policy", "threshold": 2,
     "keys": {"<key id>": "<PEM public key>", ...},
     "recorded_at": "...", "recorded_by": "...", "reason": "..."}

Every ingest then checks signatures against it. An ingest may ask for more (a higher threshold,
a subset of the pinned keys); one that asks for less (a lower threshold, or a key the policy
does not pin) is refused unless it carries an override reason, which is audited with the
operator's name. There is no default threshold anywhere.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.airgap.llm.plugins.module_utils import _json
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError, describe
from ansible_collections.airgap.llm.plugins.module_utils._io import FileError, atomic_write
from ansible_collections.airgap.llm.plugins.module_utils._transfer import audit as _audit
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import Repository
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (
    KEY_ID_RE,
    SignError,
    key_id,
    load_public_key,
)

__all__ = ["MAX_KEYS", "TRUST_FORMAT", "Trust", "TrustError", "load_policy", "record_policy", "save_policy"]

TRUST_FORMAT = "airgap.llm.trust-policy"
MAX_KEYS = 64
MAX_POLICY = 1 << 20


class TrustError(AirgapError):
    """A trust policy or the trust asked for is not usable; ``str()`` says what to do."""


class Trust:
    """Pinned Ed25519 public keys (by key id) and the number of them that must sign."""

    def __init__(self, keys: Dict[str, Any], pems: Dict[str, str], threshold: int) -> None:
        self.keys = keys
        self.pems = pems
        self.threshold = threshold

    @classmethod
    def from_pems(cls, pems: Sequence[str], threshold: Any, origin: str) -> Trust:
        """Load and check keys given as PEM text; ``origin`` names them in errors (``trusted_keys``)."""
        if not pems:
            raise TrustError(f"{origin} is empty: pin the public keys of the bundle signers")
        if len(pems) > MAX_KEYS:
            raise TrustError(f"{origin} holds {len(pems)} keys, more than {MAX_KEYS}")
        keys: Dict[str, Any] = {}
        texts: Dict[str, str] = {}
        for index, pem in enumerate(pems):
            try:
                key = load_public_key(pem, f"{origin}[{index}]")
            except SignError as exc:
                raise TrustError(str(exc)) from None
            kid = key_id(key)
            if kid in keys:
                raise TrustError(f"{origin}[{index}] is key {kid} again; each key counts once")
            keys[kid] = key
            texts[kid] = pem.strip() + "\n"
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise TrustError(
                "threshold must be a positive integer (how many distinct keys must sign), got "
                f"{describe(threshold)}"
            )
        if threshold > len(keys):
            raise TrustError(
                f"threshold {threshold} is more than the {len(keys)} distinct keys pinned: no bundle could "
                "pass"
            )
        return cls(keys, texts, threshold)

    @property
    def key_ids(self) -> List[str]:
        return sorted(self.keys)

    def describe(self) -> str:
        return f"{self.threshold} of the keys {', '.join(self.key_ids)}"

    def weaker_than(self, policy: Trust) -> List[str]:
        """How this trust asks for less than ``policy`` (empty: it asks for as much or more)."""
        weaker = []
        if self.threshold < policy.threshold:
            weaker.append(
                f"threshold {self.threshold} is lower than the {policy.threshold} the policy requires"
            )
        others = [kid for kid in self.key_ids if kid not in policy.keys]
        if others:
            weaker.append(f"key {', '.join(others)} is not pinned by the policy")
        return weaker

    def same_as(self, policy: Optional[Trust]) -> bool:
        return policy is not None and self.threshold == policy.threshold and self.key_ids == policy.key_ids

    def document(self, *, recorded_at: str, recorded_by: str, reason: Optional[str]) -> Dict[str, Any]:
        return {
            "format": TRUST_FORMAT,
            "threshold": self.threshold,
            "keys": dict(sorted(self.pems.items())),
            "recorded_at": recorded_at,
            "recorded_by": recorded_by,
            "reason": reason,
        }


def load_policy(path: str) -> Optional[Trust]:
    """The policy recorded at ``path``, checked; None when there is none."""
    advice = (
        "restore trust.json from a backup, or record the policy again with airgap.llm.repo_trust "
        "(with a reason: it is audited)"
    )
    try:
        doc = _json.load_file(path, path, limit=MAX_POLICY, max_depth=3)
    except FileNotFoundError:
        return None
    except (OSError, FileError) as exc:
        raise TrustError(f"cannot read the trust policy {path}: {exc}; {advice}") from None
    except _json.JSONError as exc:
        raise TrustError(f"{exc}; {advice}") from None
    try:
        _json.expect(doc, "an object", path)
        if doc.get("format") != TRUST_FORMAT:
            raise _json.JSONError(
                f"{path}: format must be {TRUST_FORMAT!r}, got {describe(doc.get('format'))}"
            )
        keys = _json.expect(doc.get("keys"), "an object", f"{path}: keys")
        threshold = _json.expect(doc.get("threshold"), "an integer", f"{path}: threshold")
        for kid, pem in keys.items():
            if not KEY_ID_RE.match(kid):
                raise _json.JSONError(f"{path}: keys has {describe(kid)}, not a key id")
            _json.expect(pem, "a string", f"{path}: keys.{kid}")
    except _json.JSONError as exc:
        raise TrustError(f"{exc}; {advice}") from None
    trust = Trust.from_pems(list(keys.values()), threshold, f"{path} keys")
    if trust.key_ids != sorted(keys):
        raise TrustError(f"{path}: a key id does not match its public key; {advice}")
    return trust


def save_policy(
    path: str, trust: Trust, *, recorded_at: str, recorded_by: str, reason: Optional[str]
) -> None:
    atomic_write(
        path,
        _json.dumps(trust.document(recorded_at=recorded_at, recorded_by=recorded_by, reason=reason)),
        mode=0o644,
    )


def record_policy(
    repository: str,
    pems: Sequence[str],
    threshold: Any,
    *,
    audit_log: str,
    operator: str,
    reason: Optional[str] = None,
    lock_timeout: float = 60.0,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Record ``pems`` and ``threshold`` as the repository's trust policy (the explicit set-up step).

    Establishing a policy needs no reason; changing one does. The audit event is written (and
    made durable) before ``trust.json`` changes; when ``trust.json`` then cannot be written, a
    ``failed`` event says so. Returns the module result.
    """
    trust = Trust.from_pems(pems, threshold, "trusted_keys")
    repo = Repository(repository)
    result: Dict[str, Any] = {
        "changed": False,
        "repository": repo.root,
        "policy": repo.trust_path,
        "key_ids": trust.key_ids,
        "threshold": trust.threshold,
    }
    if not check_mode:
        repo.init()
    lock = repo.lock(lock_timeout) if repo.exists() else contextlib.nullcontext()
    with lock:
        current = load_policy(repo.trust_path)
        result["previous"] = (
            None if current is None else {"key_ids": current.key_ids, "threshold": current.threshold}
        )
        if trust.same_as(current):
            result["msg"] = f"the repository's trust policy is already {trust.describe()}"
            return result
        if current is not None and not (reason or "").strip():
            raise TrustError(
                f"repository {repo.root} already has a trust policy ({current.describe()}); changing it to "
                f"{trust.describe()} needs reason (for example a change ticket): it is audited"
            )
        outcome = "established" if current is None else "changed"
        detail = f"trust policy {outcome}: {trust.describe()}"
        if current is not None:
            detail += f" (was {current.describe()})"
        if reason:
            detail += f"; reason: {reason}"
        result.update(changed=True, msg=detail)
        if check_mode:
            return result
        entry = _audit.append(audit_log, action="trust", outcome=outcome, operator=operator, detail=detail)
        try:
            save_policy(
                repo.trust_path, trust, recorded_at=entry["time"], recorded_by=operator, reason=reason
            )
        except OSError as exc:
            with contextlib.suppress(OSError, AirgapError):
                _audit.append(
                    audit_log,
                    action="trust",
                    outcome="failed",
                    operator=operator,
                    detail=f"the trust policy change of entry {entry['hash']} did not take effect: {exc}",
                )
            raise TrustError(
                f"cannot write {repo.trust_path} ({exc}); the previous policy stays in force"
            ) from None
        result["audit_hash"] = entry["hash"]
        return result
