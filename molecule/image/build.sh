#!/usr/bin/env bash
# Build the test node image: Debian 12 with systemd as PID 1, python3 and base tools, from
# Debian's own packages (debootstrap), imported into podman. Rebuilt only when this recipe changes:
# the image carries the recipe digest as a label and the build is skipped when it matches.
#
# Usage: build.sh [IMAGE]   (default localhost/airgap-llm-node:bookworm)
set -euo pipefail

image=${1:-localhost/airgap-llm-node:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,procps,ca-certificates,curl,iputils-ping,netcat-openbsd,less,sudo

here=$(cd "$(dirname "$0")" && pwd)
recipe=$( { cat "$0"; echo "$mirror $suite $packages"; } | sha256sum | cut -d' ' -f1)

current=$(podman image inspect --format '{{ index .Labels "org.airgap.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  echo "image $image is up to date (recipe ${recipe:0:12})"
  exit 0
fi

work=$(mktemp -d /var/tmp/airgap-node.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "building $image from $suite ($mirror), recipe ${recipe:0:12}"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "build.sh: debootstrap failed; full log above" >&2
  exit 1
}

# A container must get a fresh machine-id at boot; no apt lists or caches in the image.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
# Units that make no sense in a container and only slow boot or log errors.
for unit in systemd-remount-fs.service getty@tty1.service console-getty.service \
            systemd-firstboot.service sys-kernel-config.mount; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done

tar --numeric-owner -C "$rootfs" -c . | podman import --quiet \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL org.airgap.recipe=$recipe" \
  - "$image" >/dev/null
echo "imported $image"
