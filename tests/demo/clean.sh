#!/usr/bin/env bash
# make demo-clean: remove what tests/demo/run.sh created (demo-* containers, demo-net, the work dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${AIRGAP_DEMO_DIR:-$root/.build/demo}
for node in demo-repo demo-node1 demo-node2; do
  if podman container exists "$node"; then
    podman rm -f "$node" >/dev/null
    echo "removed container $node"
  fi
done
if podman network exists demo-net; then
  podman network rm demo-net >/dev/null
  echo "removed network demo-net"
fi
rm -rf "$work"
echo "removed $work"
