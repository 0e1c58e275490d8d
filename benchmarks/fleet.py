# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""site.yml on 1 node and on 8 nodes (half Debian 12, half Debian 13) in one run: how it scales.

    python benchmarks/fleet.py [--nodes 8] [--forks 10] [--keep]

On one internal podman network (no route out), started by the same create step as every Molecule
scenario and reached the same way (SSH as airgap-admin, become through sudo, pipelining):
fleet-repo, and 1 + N fresh nodes. The repository host is prepared first (fixtures with tiny
models, a signed bundle, ingest, playbooks/site.yml on it), untimed. Then, timed:

1. site.yml --limit fleet-node0            a fresh node alone
2. site.yml --limit fleet-node1..N         N fresh nodes at once (forks >= N)
3. site.yml --limit fleet-node1..N again   nothing to change

Printed: the wall time of each run, the ratio N nodes / 1 node (goal <= 1.5: the nodes are
configured in parallel, so adding nodes must cost far less than adding runs), the bytes the
repository served for each run (from its nginx access log), the controller's CPU time (the
ansible-playbook process and its children), the no-change re-run per node, and an extrapolation to
hundreds of nodes. The machine's load during the run is printed too: its 2 cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests")]

import site_inventory  # noqa: E402

COLLECTIONS = os.path.join(ROOT, ".build", "collections")
ACCESS_LOG = "/var/log/nginx/artifact_repo.access.log"
# "$request" $status $body_bytes_sent, as artifact_repo's log_format writes them.
SENT_RE = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+" (\d{3}) (\d+)')


def run(argv, env, log, timeout=1800):
    """Run ``argv``; return (seconds, controller CPU seconds). Output goes to ``log``; fails loudly."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        done = subprocess.run(
            argv, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        with open(log, encoding="utf-8") as handle:
            tail = handle.readlines()[-40:]
        sys.exit(f"fleet.py: {' '.join(argv[:3])}... failed (exit {done.returncode}):\n{''.join(tail)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def container_cpu(names):
    """CPU seconds the containers ``names`` have used so far (their cgroups, v1 or v2)."""
    total = 0.0
    for name in names:
        path = subprocess.run(
            ["podman", "inspect", "--format", "{{ .State.CgroupPath }}", name],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        v1 = f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage"
        if os.path.exists(v1):
            with open(v1, encoding="ascii") as handle:
                total += int(handle.read()) / 1e9
            continue
        with open(f"/sys/fs/cgroup{path}/cpu.stat", encoding="ascii") as handle:
            usage = dict(line.split() for line in handle)
        total += int(usage["usage_usec"]) / 1e6
    return total


def served_bytes(work, env):
    """Total body bytes in the repository's access log so far."""
    text = subprocess.run(
        ["ssh", "-F", f"{work}/ssh/config", "fleet-repo", f"sudo cat {ACCESS_LOG}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return sum(int(m.group(2)) for m in SENT_RE.finditer(text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=8, help="size of the fleet run (default 8)")
    parser.add_argument("--forks", type=int, default=10, help="Ansible forks (default 10)")
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.forks < 1:
        parser.error("--nodes must be at least 2 and --forks at least 1")
    debs = os.environ.get("AIRGAP_TEST_DEBS", "")
    if not os.path.isfile(os.path.join(debs, "bookworm.recipe")):
        sys.exit(
            "fleet.py: run through 'make bench' (AIRGAP_TEST_DEBS must name the packages make debs fills)"
        )

    work = os.path.join(ROOT, ".build", "fleet")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "site"))
    log = os.path.join(work, "fleet.log")
    first = "fleet-node0"
    fleet = [f"fleet-node{i}" for i in range(1, args.nodes + 1)]
    # Half the fleet on each release; the single node on Debian 12.
    releases = {first: "12", **{name: ("12" if i % 2 else "13") for i, name in enumerate(fleet, 1)}}
    platforms = {
        "molecule_yml": {
            "scenario": {"name": "fleet"},
            "platforms": [
                {"name": "fleet-repo", "image": "localhost/airgap-llm-node:debian13", "network": "fleet-net"},
                *(
                    {"name": n, "image": f"localhost/airgap-llm-node:debian{r}", "network": "fleet-net"}
                    for n, r in releases.items()
                ),
            ],
        },
        "molecule_ephemeral_directory": work,
        "molecule_instance_config": f"{work}/instance_config.yml",
        "ansible_python_interpreter": sys.executable,
    }
    with open(f"{work}/platforms.json", "w", encoding="utf-8") as handle:
        json.dump(platforms, handle)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_PIPELINING="true",
        ANSIBLE_FORKS=str(args.forks),
        ANSIBLE_SSH_CONTROL_PATH_DIR=f"{work}/ssh/cp",
        ANSIBLE_PYTHON_INTERPRETER="auto_silent",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_NOCOLOR="1",
    )
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    create = [
        playbook,
        "-i",
        "localhost,",
        f"{ROOT}/molecule/shared/create.yml",
        "-e",
        f"@{work}/platforms.json",
    ]
    destroy = [
        playbook,
        "-i",
        "localhost,",
        f"{ROOT}/molecule/shared/destroy.yml",
        "-e",
        f"@{work}/platforms.json",
    ]
    try:
        load = os.getloadavg()[0]
        seconds, _cpu = run(create, env, log)
        print(
            f"started fleet-repo and {1 + args.nodes} nodes in {seconds:.0f}s (load {load:.1f})", flush=True
        )
        subprocess.run(
            [
                sys.executable,
                f"{ROOT}/tests/doubles/site_fixtures.py",
                f"{work}/site/fixtures",
                "--debs",
                debs,
            ],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        with open(f"{work}/site/fixtures/pins.json", encoding="utf-8") as handle:
            pins = json.load(handle)
        version = max(
            (v for v, r in pins["releases"].items() if not r["broken"]),
            key=lambda v: [int(x) for x in v.split(".")],
        )
        with open(f"{work}/inventory.yml", "w", encoding="utf-8") as handle:
            json.dump(
                site_inventory.inventory(
                    work, "fleet-repo", dict.fromkeys(releases, "cpu"), version, "fleet"
                ),
                handle,
            )
        inventory = ["-i", f"{work}/inventory.yml"]
        seconds, _cpu = run(
            [playbook, *inventory, f"{ROOT}/molecule/site/converge.yml", "--limit", "localhost,fleet-repo"],
            env,
            log,
        )
        print(f"prepared the repository host (bundle, ingest, site.yml) in {seconds:.0f}s", flush=True)

        site = [playbook, *inventory, f"{ROOT}/playbooks/site.yml", "--limit"]
        rows = []
        for label, limit in (
            ("1 fresh node", first),
            (f"{args.nodes} fresh nodes", ",".join(fleet)),
            (f"{args.nodes} nodes, no change", ",".join(fleet)),
        ):
            sent = served_bytes(work, env)
            nodes_before = container_cpu(["fleet-repo", *limit.split(",")])
            load = os.getloadavg()[0]
            seconds, cpu = run([*site, limit], env, log)
            nodes_cpu = container_cpu(["fleet-repo", *limit.split(",")]) - nodes_before
            rows.append((label, seconds, cpu, served_bytes(work, env) - sent, load, nodes_cpu))
            print(f"  {label:<24} {seconds:7.1f}s", flush=True)
    finally:
        if not args.keep:
            run(destroy, env, log)

    one, one_bytes = rows[0][1], rows[0][3]
    many, many_cpu, many_bytes = rows[1][1], rows[1][2], rows[1][3]
    rerun, rerun_cpu = rows[2][1], rows[2][2]
    print(f"\nsite.yml over SSH with become, forks {args.forks}; nodes on Debian 12 and 13")
    print(f"  {'run':<24} {'wall s':>7} {'ctl CPU s':>9} {'nodes CPU s':>11} {'served MB':>9} {'load':>5}")
    for label, seconds, cpu, sent, load, nodes_cpu in rows:
        print(f"  {label:<24} {seconds:7.1f} {cpu:9.1f} {nodes_cpu:11.1f} {sent / 1e6:9.1f} {load:5.1f}")
    ratio = many / one
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print(f"\n  {args.nodes} nodes / 1 node: {ratio:.2f}x wall time (goal <= 1.5x): {verdict}")
    # Here the controller and every node share this machine's cores; in a site each node has its own.
    cores = os.cpu_count() or 1
    own = max(one, many_cpu / cores) / one
    print(
        f"  here the nodes used {rows[1][5]:.0f} CPU-s of the same {cores} cores as the controller; with "
        f"each node on its own machine the run is bounded by max(one node's {one:.0f}s, the controller's "
        f"{many_cpu:.0f} CPU-s / {cores} cores): about {own:.2f}x"
    )
    fleet_mb = many_bytes / args.nodes / 1e6
    print(f"  served per fresh node: {one_bytes / 1e6:.1f} MB alone, {fleet_mb:.1f} MB in the fleet")
    print(f"  no-change re-run: {rerun:.1f}s for {args.nodes} nodes, {rerun / args.nodes:.1f}s per node")
    # Ansible runs each task on up to `forks` hosts at once; the controller's CPU grows with hosts.
    per_node_cpu = many_cpu / args.nodes
    print(
        "  extrapolation: the controller spends about "
        f"{per_node_cpu:.1f} CPU-s per fresh node and {rerun_cpu / args.nodes:.1f} per unchanged node; "
        f"500 fresh nodes need at least {500 * per_node_cpu / cores / 60:.0f} min of its {cores} cores "
        f"(forks {args.forks}: about {500 / args.forks:.0f} batches of the {one:.0f}s a node takes alone "
        f"= {500 / args.forks * one / 60:.0f} min, whichever is larger), and the repository serves "
        f"{500 * many_bytes / args.nodes / 1e9:.1f} GB. More forks and cores shorten the first bound, "
        "--limit in waves bounds both."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
