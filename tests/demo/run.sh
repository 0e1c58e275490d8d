#!/usr/bin/env bash
# make demo: the whole first production path on this machine, from bundle to verified Ollama nodes.
#
#   low side   fixtures (tiny real-format models, the Ollama stand-in releases, .deb files), a signing
#              key and a signed bundle, built on this machine
#   high side  demo-repo ingests the bundle (signature, digests) and serves it over HTTPS
#   production demo-node1 (Debian 12, cpu profile) and demo-node2 (Debian 13, nvidia profile, no GPU
#              needed), reached over SSH as an admin account with sudo, run
#              playbooks/site.yml from the repository only, on an internal network with no route out;
#              then playbooks/verify.yml checks everything and the summary below is printed
#
# Needs what `make setup debs` prepares (virtualenv, collection link, node image, AIRGAP_TEST_DEBS).
# AIRGAP_OLLAMA_RELEASE=DIR uses a real release instead of the stand-in: DIR holds
# ollama-linux-amd64.tar.zst, upstream's sha256sum.txt and a file VERSION (e.g. 0.33.0).
# `make demo-clean` (tests/demo/clean.sh) removes the containers, the network and the work directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=${AIRGAP_DEMO_DIR:-$root/.build/demo}
network=demo-net
nodes=(demo-repo demo-node1 demo-node2)
start=$(date +%s)

say() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

: "${AIRGAP_TEST_DEBS:?run through make demo (AIRGAP_TEST_DEBS names the .deb files the nodes need)}"
[ -f "$AIRGAP_TEST_DEBS/bookworm.recipe" ] || { echo "run 'make debs' first: $AIRGAP_TEST_DEBS is empty" >&2; exit 1; }
for image in localhost/airgap-llm-node:debian12 localhost/airgap-llm-node:debian13; do
  podman image exists "$image" || { echo "run 'make image' first: $image is missing" >&2; exit 1; }
done

mkdir -p "$work/site"
say "Low side: fixtures, stand-in releases and the bundle spec"
fixture_args=("$work/site/fixtures" --debs "$AIRGAP_TEST_DEBS")
if [ -n "${AIRGAP_OLLAMA_RELEASE:-}" ]; then
  fixture_args+=(--release "$AIRGAP_OLLAMA_RELEASE")
fi
python3 "$root/tests/doubles/site_fixtures.py" "${fixture_args[@]}" >/dev/null
version=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["releases"]
print(max((v for v in r if not r[v]["broken"]), key=lambda v: [int(x) for x in v.split("-")[0].split(".")]))' \
  "$work/site/fixtures/pins.json")
echo "Ollama release $version; models: $(python3 -c 'import json,sys; print(", ".join(m["name"] for m in json.load(open(sys.argv[1]))["models"]))' "$work/site/fixtures/pins.json")"

say "Containers: ${nodes[*]} on the internal network $network (no route out), reached over SSH"
# The same create step as every Molecule scenario: systemd nodes, the admin account's key
# authorized, host keys pinned, an SSH configuration ($work/ssh/config) Ansible uses with become.
ansible-playbook -i localhost, -e "ansible_python_interpreter=$(command -v python3)" "$root/molecule/shared/create.yml" -e "@$root/tests/demo/platforms.yml" \
  -e "molecule_ephemeral_directory=$work" -e "molecule_instance_config=$work/instance_config.yml" >"$work/create.log" ||
  { tail -n 40 "$work/create.log" >&2; exit 1; }
echo "ssh -F $work/ssh/config demo-node1    # as the admin account; sudo for root"

# The repository host and two Ollama nodes (cpu and nvidia profile), reached over SSH with become.
python3 "$root/tests/site_inventory.py" "$work" demo-repo demo-node1 demo-node2:nvidia --version "$version" \
  >"$work/inventory.yml"

export ANSIBLE_PIPELINING=true ANSIBLE_SSH_CONTROL_PATH_DIR="$work/ssh/cp" ANSIBLE_STDOUT_CALLBACK=${ANSIBLE_STDOUT_CALLBACK:-default} ANSIBLE_PYTHON_INTERPRETER=auto_silent
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_DISPLAY_OK_HOSTS=${ANSIBLE_DISPLAY_OK_HOSTS:-false}
say "Bundle (low side), ingest (demo-repo), site.yml (repository, clients, Ollama nodes)"
# The same low-side and ingest steps as the site Molecule scenario, then playbooks/site.yml.
ansible-playbook -i "$work/inventory.yml" "$root/molecule/site/converge.yml"

say "verify.yml: every digest, the units, the API, on every node"
rm -rf "$work/reports"
ansible-playbook -i "$work/inventory.yml" "$root/playbooks/verify.yml" -e "airgap_verify_report_dir=$work/reports"

say "Summary"
python3 - "$work/reports" <<'PY'
import glob, json, os, sys
rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.json")))]
for r in rows:
    o, m = r["ollama"], r["models"]
    checks = {c["check"]: c for c in o["checks"]}
    print(f"{r['node']}: {'HEALTHY, verified' if r['ok'] else 'FAILED'}")
    print(f"  ollama {o['version']}  unit exposure {o['exposure']} (max 2.0)  listening {', '.join(o['listening'])}")
    print(f"  api: {checks['api_version']['detail']}; {checks['cloud_disabled']['detail']}")
    for model in m["models"]:
        print(f"  model {model['name']:<16} {model['stored']}  (served {'= pinned' if model['served'] == model['pinned'] else model['served']})")
    for c in r["failed_checks"]:
        print(f"  FAILED {c['check']}: {c['detail']}")
print(f"\nreports: {sys.argv[1]}/*.json; audit log: ssh -F {os.path.dirname(sys.argv[1])}/ssh/config demo-repo cat /var/log/airgap-llm/audit.jsonl")
sys.exit(0 if rows and all(r["ok"] for r in rows) else 1)
PY
say "Done; 'make demo-clean' removes the demo"
