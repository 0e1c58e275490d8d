#!/usr/bin/env bash
# make demo-clean: remove what tests/demo/run.sh created: the demo-* containers and demo-net (by the
# same destroy step as every Molecule scenario, which also closes the persistent SSH connections),
# then the work directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${AIRGAP_DEMO_DIR:-$root/.build/demo}
ANSIBLE_PYTHON_INTERPRETER=auto_silent ANSIBLE_LOCALHOST_WARNING=false \
  ansible-playbook -i localhost, -e "ansible_python_interpreter=$(command -v python3)" "$root/molecule/shared/destroy.yml" -e "@$root/tests/demo/platforms.yml" \
  -e "molecule_ephemeral_directory=$work" -e "molecule_instance_config=$work/instance_config.yml" >/dev/null
echo "removed the demo containers and demo-net"
rm -rf "$work"
echo "removed $work"
