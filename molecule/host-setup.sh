#!/usr/bin/env bash
# Prepare a Debian 12 machine to build and run the test harness. Idempotent; needs root (re-runs
# itself through sudo when it can). What it does:
#  - installs the Debian packages the harness needs (podman and its network stack, debootstrap,
#    python3-venv, ...) when any is missing;
#  - on hosts with hybrid cgroups (systemd not PID 1, cgroup2 owning a controller) mounts every
#    controller that cgroup2 owns as cgroup v1, which crun needs before it starts a container;
#  - raises the kernel's per-user limits that many systemd containers share: inotify instances
#    (every container's systemd runs as the host's root; at the default 128, boots end "degraded"
#    once a few scenarios run side by side) and keys (every SSH login to a node opens a session
#    keyring for airgap-admin, the same uid in every container; the default is 200).
set -euo pipefail

packages=(
  podman netavark aardvark-dns crun conmon iptables catatonit fuse-overlayfs slirp4netns uidmap
  debootstrap systemd python3-venv python3-dev gcc git make zstd openssl coreutils
)

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_MIRROR "$0" "$@"
  fi
  echo "host-setup: needs root (or sudo) to install packages and run privileged test nodes" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "host-setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

unified=/sys/fs/cgroup/unified
if [ -r "$unified/cgroup.controllers" ]; then
  for c in $(cat "$unified/cgroup.controllers"); do
    if ! mountpoint -q "/sys/fs/cgroup/$c"; then
      mkdir -p "/sys/fs/cgroup/$c"
      mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
      echo "host-setup: mounted cgroup v1 controller $c (hybrid cgroups)"
    fi
  done
fi

raise_sysctl() {
  local key=$1 want=$2 have
  have=$(sysctl -n "$key")
  if [ "$have" -lt "$want" ]; then
    sysctl -q -w "$key=$want"
    echo "host-setup: $key raised from $have to $want (many systemd containers side by side)"
  fi
}
raise_sysctl fs.inotify.max_user_instances 8192
raise_sysctl fs.inotify.max_user_watches 1048576
raise_sysctl kernel.keys.maxkeys 20000
raise_sysctl kernel.keys.maxbytes 2000000
