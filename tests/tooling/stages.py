# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the stages of ``make test`` side by side and end with a table of their times.

    python3 tests/tooling/stages.py [--jobs N] [--logs DIR] STAGE...

A STAGE is a make target (``lint``, ``unit``, ...) or ``molecule:<scenario>``. Up to N stages run
at once, longest first (by the times of the last run, kept in DIR/times.json); each one's output
goes to DIR/<stage>.log and only a failing stage's tail is printed. For a Molecule scenario the
table also shows each step (create, converge, idempotence, check, verify, destroy), timed from
the moments Molecule announces them. Exits non-zero when any stage failed.

Scenarios may run side by side because their node names and networks are disjoint; the check
below refuses two scenarios that share either.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Molecule announces each step as "[scenario > step] Executing" (plain) or "scenario ➜ step: Executing".
STEP_RE = re.compile(
    r"\[(?P<scenario>[\w-]+) > (?P<step>[\w-]+)\] Executing|(?P<s2>[\w-]+) \u279c (?P<t2>[\w-]+): Executing"
)
TAIL_LINES = 80
# Rough first guesses (seconds) until a run has been timed on this machine.
GUESS = {"sanity": 120, "unit": 120, "integration": 90, "lint": 30}


class Stage:
    def __init__(self, name: str, logs: str) -> None:
        self.name = name
        self.log = os.path.join(logs, name.replace(":", "-") + ".log")
        self.seconds = 0.0
        self.rc: Optional[int] = None
        self.steps: List[Tuple[str, float]] = []

    @property
    def argv(self) -> List[str]:
        if self.name.startswith("molecule:"):
            return ["make", "--no-print-directory", "molecule", f"SCENARIOS={self.name.split(':', 1)[1]}"]
        return ["make", "--no-print-directory", self.name]

    def run(self, lock: threading.Lock) -> Stage:
        start = time.monotonic()
        step_name, step_start = "", start
        with open(self.log, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                found = STEP_RE.search(line)
                if found and (found.group("step") or found.group("t2")) != step_name:
                    now = time.monotonic()
                    if step_name:
                        self.steps.append((step_name, now - step_start))
                    step_name, step_start = found.group("step") or found.group("t2"), now
            self.rc = proc.wait()
        self.seconds = time.monotonic() - start
        if step_name:
            self.steps.append((step_name, start + self.seconds - step_start))
        with lock:
            verdict = "passed" if self.rc == 0 else f"FAILED (exit {self.rc})"
            print(
                f"== {self.name} {verdict} in {self.seconds:.0f}s (log: {os.path.relpath(self.log, ROOT)})",
                flush=True,
            )
            if self.rc != 0:
                with open(self.log, encoding="utf-8", errors="replace") as handle:
                    tail = handle.readlines()[-TAIL_LINES:]
                print("".join(f"   | {line}" for line in tail), end="", flush=True)
        return self


def scenario_names(scenario: str) -> Tuple[set, set]:
    """Node names and network names a scenario's molecule.yml declares."""
    path = os.path.join(ROOT, "molecule", scenario, "molecule.yml")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    nodes = set(re.findall(r"^\s*-\s*name:\s*(\S+)", text, re.M))
    networks = {net for found in re.findall(r"^\s*network:\s*(\S+)", text, re.M) for net in found.split(",")}
    return nodes, networks


def check_disjoint(scenarios: List[str]) -> Optional[str]:
    seen: Dict[str, str] = {}
    for scenario in scenarios:
        nodes, networks = scenario_names(scenario)
        for name in sorted(nodes | {f"network {n}" for n in networks}):
            if name in seen:
                return f"scenarios {seen[name]} and {scenario} both use {name}: they cannot run side by side"
            seen[name] = scenario
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3, help="stages at once (default 3)")
    parser.add_argument("--logs", default=os.path.join(ROOT, ".build", "logs"), help="log directory")
    parser.add_argument("stages", nargs="+")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    problem = check_disjoint([s.split(":", 1)[1] for s in args.stages if s.startswith("molecule:")])
    if problem:
        print(f"stages.py: {problem}", file=sys.stderr)
        return 2
    os.makedirs(args.logs, exist_ok=True)
    times_path = os.path.join(args.logs, "times.json")
    try:
        with open(times_path, encoding="utf-8") as handle:
            last = {k: float(v) for k, v in json.load(handle).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        last = {}
    stages = [Stage(name, args.logs) for name in args.stages]
    ordered = sorted(stages, key=lambda s: -last.get(s.name, GUESS.get(s.name, 300)))
    lock = threading.Lock()
    start = time.monotonic()
    print(
        f"== running {len(stages)} stages, {args.jobs} at a time: {', '.join(s.name for s in ordered)}",
        flush=True,
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(stage.run, lock) for stage in ordered]:
            future.result()
    wall = time.monotonic() - start
    last.update({s.name: round(s.seconds, 1) for s in stages})
    with open(times_path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(last, handle, indent=1, sort_keys=True)
    os.replace(times_path + ".tmp", times_path)

    print("\nstage times (seconds; stages overlap, so they add up to more than the wall time)")
    for stage in stages:
        print(f"  {stage.name:<28} {stage.seconds:7.0f}  {'ok' if stage.rc == 0 else 'FAILED'}")
        for step, seconds in stage.steps:
            print(f"    {step:<26} {seconds:7.0f}")
    print(f"  {'wall time':<28} {wall:7.0f}")
    failed = [s.name for s in stages if s.rc != 0]
    if failed:
        print(f"failed: {', '.join(failed)} (logs in {os.path.relpath(args.logs, ROOT)})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
