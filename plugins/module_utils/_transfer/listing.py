# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the repository serves, as rows a person reads and a tool parses.

One row per artifact version the ``current`` state serves: name, version, kind, size (all its
files), digest (the file's, or a model's manifest digest; a multi-file artifact lists each file),
the bundle that brought it (channel, version, digest) and when it was ingested, by whom.
``airgap.llm.repo_list`` returns the rows of the whole repository; ``bundle_ingest`` returns the
rows of one bundle, sorted into what it added, what was already there and what it replaced, in the
same shape. :func:`format_rows` turns rows into aligned lines for the play output.

Names and values come from the repository's index, which ingest wrote from a verified bundle; they
are still shown through :func:`shown` (escaped and bounded) when they are not plain.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._errors import quote
from ansible_collections.airgap.llm.plugins.module_utils._transfer.repo import (
    RepoError,
    Repository,
    index_files,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import NAME_RE

__all__ = [
    "artifact_row",
    "format_rows",
    "human_size",
    "ingest_summary",
    "list_repository",
    "same_content",
    "shown",
]

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")
_FRACTION = re.compile(r"\.[0-9]+Z$")


def shown(key: Any) -> str:
    """A name from an index for a message or a line: as it is when plain, else quoted and escaped."""
    return key if isinstance(key, str) and NAME_RE.match(key) else quote(key, 60)


def human_size(size: int) -> str:
    """``size`` bytes for a person: ``97.9 MiB`` (binary units, as ``ls -h`` shows them)."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


def artifact_row(name: str, version: str, entry: Any, where: str) -> Dict[str, Any]:
    """One artifact version of an index (``entry`` as ingest writes it) as a row; checks its fields."""
    files = index_files(entry, where)
    row: Dict[str, Any] = {
        "name": name,
        "version": version,
        "kind": entry.get("kind"),
        "size": sum(f["size"] for f in files),
        "digest": None,
        "files": files,
        "channel": entry.get("channel"),
        "bundle_version": entry.get("bundle_version"),
        "bundle_sha256": entry.get("bundle_sha256"),
        "ingested_at": None,
        "ingested_by": None,
    }
    if entry.get("kind") == "model":
        row["model"] = entry.get("model")
        row["digest"] = entry.get("manifest_digest")
    elif len(files) == 1:
        row["digest"] = "sha256:" + files[0]["sha256"]
    if entry.get("suites"):
        row["suites"] = entry["suites"]
    return row


def _rows(index: Dict[str, Any], where: str, names: Sequence[str] = ()) -> List[Dict[str, Any]]:
    rows = []
    for name in sorted(index.get("artifacts", {})):
        versions = index["artifacts"][name]
        for version in sorted(versions):
            if names and name not in names and f"{name}:{version}" not in names:
                continue
            at = f"{where}: artifacts.{name}.{version}"
            rows.append(artifact_row(name, version, versions[version], at))
    return rows


def _when(repo: Repository, rows: List[Dict[str, Any]]) -> None:
    """Fill in when (and by whom) the bundle of each row was ingested, from its ``ingest.json``."""
    seen: Dict[Tuple[Any, Any, Any], Optional[Dict[str, Any]]] = {}
    for row in rows:
        key = (row["channel"], row["bundle_version"], row["bundle_sha256"])
        if key not in seen:
            seen[key] = repo.ingest_record(*key)
        record = seen[key]
        if record is not None:
            row["ingested_at"] = record["ingested_at"]
            row["ingested_by"] = record["operator"]


def _unknown_names(index: Dict[str, Any], names: Sequence[str]) -> List[str]:
    """What is wrong with each of ``names`` (name or name:version) the index does not serve."""
    artifacts = index.get("artifacts", {})
    unknown = []
    for wanted in names:
        name, _sep, version = wanted.partition(":")
        if name not in artifacts:
            unknown.append(f"{shown(name)} is not served")
        elif version and version not in artifacts[name]:
            served = ", ".join(shown(v) for v in sorted(artifacts[name])[:20])
            unknown.append(f"{shown(name)} {shown(version)} is not served (versions served: {served})")
    return unknown


def list_repository(root: str, names: Sequence[str] = ()) -> Dict[str, Any]:
    """Everything the repository at ``root`` serves now (``names``: only these, as name or name:version)."""
    repo = Repository(root)
    if not repo.exists():
        raise RepoError(
            f"{repo.root} is not an artifact repository (no blobs/sha256/): check the path, or ingest a "
            "first bundle with playbooks/ingest.yml"
        )
    current = repo.current_target()
    index = repo.index()
    where = f"{repo.root}/{current}/index.json"
    unknown = _unknown_names(index, names)
    if unknown:
        held = ", ".join(shown(n) for n in sorted(index.get("artifacts", {}))[:50]) or "nothing yet"
        raise RepoError(
            f"{'; '.join(unknown)} by repository {repo.root} (it serves: {held}); check the names, or "
            "ingest a bundle that carries them"
        )
    rows = _rows(index, where, names)
    _when(repo, rows)
    state = repo.state()
    channels = {
        channel: {"version": info.get("version"), "bundle_sha256": info.get("sha256")}
        for channel, info in sorted(state.get("channels", {}).items())
    }
    served = ", ".join(f"channel {c} version {i['version']}" for c, i in channels.items()) or "nothing"
    head = f"Repository {repo.root} serves {current or 'no state yet'} ({served}): {len(rows)} artifacts"
    return {
        "repository": repo.root,
        "current": current,
        "state": state.get("seq", 0),
        "channels": channels,
        "artifacts": rows,
        "lines": [head, *format_rows(rows)],
    }


def same_content(old: Any, new: Dict[str, Any]) -> bool:
    """Whether index entry ``old`` serves what ``new`` would: same kind, suites, file paths and digests."""
    if not isinstance(old, dict):
        return False
    try:
        old_files = index_files(old, "the served entry")
    except RepoError:
        return False
    return (
        old.get("kind") == new.get("kind")
        and old.get("suites") == new.get("suites")
        and [(f["path"], f["sha256"]) for f in old_files] == [(f["path"], f["sha256"]) for f in new["files"]]
    )


def ingest_summary(
    repo: Repository,
    previous: Dict[str, Any],
    entries: Dict[Tuple[str, str], Dict[str, Any]],
    *,
    when: Optional[str],
    who: str,
) -> Dict[str, List[Dict[str, Any]]]:
    """Sort one bundle's index entries into ``added``, ``already_there`` and ``replaced``.

    ``previous`` is the index served before the ingest; ``entries`` maps (name, version) to the
    entry the bundle writes. An entry whose files (paths and digests) are those already served is
    already there; one whose name and version were served with other files replaces them.
    """
    out: Dict[str, List[Dict[str, Any]]] = {"added": [], "already_there": [], "replaced": []}
    served = previous.get("artifacts", {})
    for (name, version), entry in sorted(entries.items()):
        old = served.get(name, {}).get(version)
        if old is None:
            bucket, shown_entry = "added", entry
        elif same_content(old, entry):
            bucket, shown_entry = "already_there", old
        else:
            bucket, shown_entry = "replaced", entry
        row = artifact_row(name, version, shown_entry, f"artifact {name} {version}")
        if bucket != "already_there":
            row["ingested_at"], row["ingested_by"] = when, who
        out[bucket].append(row)
    _when(repo, out["already_there"])
    return out


def _cell(value: Any) -> str:
    text = "?" if value is None else str(value)
    return text if text.isprintable() and text.isascii() and len(text) <= 120 else quote(text)


def format_rows(rows: Sequence[Dict[str, Any]], statuses: Optional[Sequence[str]] = None) -> List[str]:
    """Aligned lines, one per row, under a header; ``statuses`` (one per row) adds a first column."""
    table = [["NAME", "VERSION", "KIND", "SIZE", "BUNDLE", "INGESTED", "DIGEST"]]
    for row in rows:
        table.append(
            [
                shown(row["name"]),
                shown(row["version"]),
                _cell(row["kind"]),
                human_size(row["size"]),
                f"{_cell(row['channel'])} {_cell(row['bundle_version'])}",
                _FRACTION.sub("Z", _cell(row["ingested_at"])),
                _cell(row["digest"] or f"{len(row['files'])} files"),
            ]
        )
    if statuses is not None:
        table = [["STATUS", *table[0]]] + [[status, *line] for status, line in zip(statuses, table[1:])]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
