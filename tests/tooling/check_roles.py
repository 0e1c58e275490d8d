# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Guards on the roles that ansible-lint does not check (run by ``make lint``).

1. ``meta/argument_specs.yml`` mirrors ``defaults/main.yml`` one to one: the ``main`` entry point
   lists exactly the variables the defaults set, each with the same default; every other entry
   point lists only variables of the defaults, with the same defaults.
2. ``tasks/main.yml`` lists phases only: each task includes one of ``preflight.yml``,
   ``install.yml``, ``configure.yml``, ``service.yml``, in that order, tagged ``<role>_<phase>``
   on the include and on its tasks (``apply``); the preflight is tagged with every phase tag of the
   role, so that any one phase run alone still has its checks and facts.

Prints one line per problem and exits 1 when there is any.

    python tests/tooling/check_roles.py [ROLES_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

PHASES = ("preflight", "install", "configure", "service")
INCLUDE = "ansible.builtin.include_tasks"


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def check_argument_specs(role: Path) -> List[str]:
    defaults_file = role / "defaults" / "main.yml"
    specs_file = role / "meta" / "argument_specs.yml"
    defaults: Dict[str, Any] = (_load(defaults_file) or {}) if defaults_file.is_file() else {}
    if not specs_file.is_file():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    entry_points = (_load(specs_file) or {}).get("argument_specs") or {}
    problems = []
    if "main" not in entry_points:
        problems.append(f"{role.name}: meta/argument_specs.yml has no main entry point")
    for entry, spec in entry_points.items():
        options = (spec or {}).get("options") or {}
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            problems.append(
                f"{role.name}: {entry} documents {', '.join(unknown)}, which defaults/main.yml lacks"
            )
        if entry == "main":
            missing = sorted(set(defaults) - set(options))
            if missing:
                problems.append(
                    f"{role.name}: main does not document {', '.join(missing)} of defaults/main.yml"
                )
        for name in sorted(set(options) & set(defaults)):
            if options[name].get("default") != defaults[name]:
                problems.append(
                    f"{role.name}: {entry} gives {name} the default {options[name].get('default')!r}, "
                    f"defaults/main.yml {defaults[name]!r}"
                )
    return problems


def _tags(value: Any) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_phases(role: Path) -> List[str]:
    main = role / "tasks" / "main.yml"
    if not main.is_file():
        return [f"{role.name}: tasks/main.yml is missing"]
    tasks = _load(main) or []
    problems = []
    phases = []
    for task in tasks:
        args = task.get(INCLUDE)
        name = task.get("name", "?")
        if not isinstance(args, dict) or set(task) - {"name", INCLUDE, "tags"}:
            problems.append(
                f"{role.name}: tasks/main.yml task {name!r} is not a phase include "
                f"({INCLUDE} with file and apply)"
            )
            continue
        phase = str(args.get("file", "")).removesuffix(".yml")
        if phase not in PHASES:
            problems.append(
                f"{role.name}: tasks/main.yml includes {args.get('file')!r}, "
                f"not one of the phases {', '.join(PHASES)}"
            )
            continue
        phases.append(phase)
        tags = _tags(task.get("tags"))
        applied = _tags((args.get("apply") or {}).get("tags"))
        if f"{role.name}_{phase}" not in tags:
            problems.append(f"{role.name}: the {phase} include is not tagged {role.name}_{phase}")
        if sorted(tags) != sorted(applied):
            problems.append(
                f"{role.name}: the {phase} include applies tags {applied} to its tasks, not its own {tags}"
            )
    if phases != sorted(phases, key=PHASES.index) or len(set(phases)) != len(phases):
        problems.append(
            f"{role.name}: tasks/main.yml lists the phases {phases}, not once each in the order {PHASES}"
        )
    if phases and phases[0] == "preflight":
        first = _tags(tasks[0].get("tags"))
        lacking = [f"{role.name}_{p}" for p in phases if f"{role.name}_{p}" not in first]
        if lacking:
            problems.append(f"{role.name}: the preflight include lacks the tags {', '.join(lacking)}")
    return problems


def main(argv: List[str]) -> int:
    roles_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "roles"
    problems: List[str] = []
    roles = sorted(p for p in roles_dir.iterdir() if (p / "tasks").is_dir())
    for role in roles:
        problems += check_argument_specs(role)
        problems += check_phases(role)
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"roles: {len(roles)} checked (argument specs mirror defaults, phases tagged)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
