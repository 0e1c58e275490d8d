#!/usr/bin/env bash
# Build a test node image: Debian with systemd as PID 1, python3, sshd (keys only) and an
# unprivileged admin account with sudo, as a real server has, from Debian's own packages
# (debootstrap), imported into podman. One recipe for every release; the suite is a parameter.
# Rebuilt only when the recipe changes: the image carries the recipe digest as a label and the
# build is skipped when it matches.
#
# Usage: build.sh SUITE IMAGE     e.g. build.sh trixie localhost/airgap-llm-node:debian13
#
# What a node gets at boot (nothing secret is in the image):
#  - its own SSH host keys, made by airgap-ssh-hostkeys.service on first boot (an image has none,
#    or every node would share them);
#  - the admin account "airgap-admin": no password, sudo without a password, a login shell; its
#    authorized key is put in place by the scenario's create step.
set -euo pipefail

suite=${1:?usage: build.sh SUITE IMAGE}
image=${2:?usage: build.sh SUITE IMAGE}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
admin=airgap-admin
# libkmod2: systemd 257 (trixie) loads it at run time for systemd-modules-load.
packages=systemd,systemd-sysv,dbus,libkmod2,python3,python3-apt,iproute2,procps,ca-certificates,curl,iputils-ping,netcat-openbsd,less,sudo,openssh-server

recipe=$( { cat "$0"; echo "$mirror $suite $packages $admin"; } | sha256sum | cut -d' ' -f1)

current=$(podman image inspect --format '{{ index .Labels "org.airgap.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  echo "image $image ($suite) is up to date (recipe ${recipe:0:12})"
  exit 0
fi

work=$(mktemp -d /var/tmp/airgap-node.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "building $image from $suite ($mirror), recipe ${recipe:0:12}"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "build.sh: debootstrap of $suite failed; full log above" >&2
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

# SSH: host keys made per node at first boot; keys only, no root login.
rm -f "$rootfs"/etc/ssh/ssh_host_*
cat >"$rootfs/etc/systemd/system/airgap-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Create this node's SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
UNIT
mkdir -p "$rootfs/etc/systemd/system/ssh.service.wants" "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf ../airgap-ssh-hostkeys.service "$rootfs/etc/systemd/system/ssh.service.wants/airgap-ssh-hostkeys.service"
ln -sf /lib/systemd/system/ssh.service "$rootfs/etc/systemd/system/multi-user.target.wants/ssh.service"
cat >"$rootfs/etc/ssh/sshd_config.d/10-airgap-test-node.conf" <<'SSHD'
# Test node: key authentication only, no root login, as on a hardened server.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
UseDNS no
SSHD

# The admin account Ansible logs in as; it becomes root through sudo.
chroot "$rootfs" useradd --create-home --shell /bin/bash --user-group "$admin"
chroot "$rootfs" usermod --password '*' "$admin"
install -d -m 0700 -o "$(chroot "$rootfs" id -u "$admin")" -g "$(chroot "$rootfs" id -g "$admin")" \
  "$rootfs/home/$admin/.ssh"
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$admin" >"$rootfs/etc/sudoers.d/$admin"
chmod 0440 "$rootfs/etc/sudoers.d/$admin"

tar --numeric-owner -C "$rootfs" -c . | podman import --quiet \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL org.airgap.recipe=$recipe" \
  --change "LABEL org.airgap.suite=$suite" \
  - "$image" >/dev/null
echo "imported $image ($suite)"
