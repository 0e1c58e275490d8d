#!/bin/sh
# Installed by airgap.llm.gpu_driver; run as root by airgap-nvidia-devices.service before the GPU
# services start. Loads the NVIDIA kernel module and nvidia-uvm and creates the device nodes CUDA
# opens: /dev/nvidiactl, /dev/nvidia<minor> for every GPU the driver found, /dev/nvidia-uvm and
# /dev/nvidia-uvm-tools. libcuda would otherwise run the setuid nvidia-modprobe on first use, which a
# service with NoNewPrivileges=yes cannot. Works with both driver generations: the control device
# is registered as nvidia-frontend up to 535 and as nvidiactl from 545 on (major 195 either way).
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin

fail() { echo "nvidia-devices: $*" >&2; exit 1; }

modprobe nvidia || fail "cannot load the nvidia module (is the driver built for kernel $(uname -r)? see 'dkms status')"
modprobe nvidia-uvm || fail "cannot load the nvidia-uvm module"

found=0
for info in /proc/driver/nvidia/gpus/*/information; do
  [ -r "$info" ] || continue
  minor=$(sed -n 's/^Device Minor:[[:space:]]*//p' "$info")
  case $minor in ''|*[!0-9]*) fail "no device minor number in $info" ;; esac
  nvidia-modprobe -c "$minor" || fail "nvidia-modprobe cannot create /dev/nvidia$minor"
  found=$((found + 1))
done
[ "$found" -gt 0 ] || fail "the driver found no GPU (/proc/driver/nvidia/gpus is empty)"
nvidia-modprobe -u -c 0 || fail "nvidia-modprobe cannot create /dev/nvidia-uvm"

if [ ! -c /dev/nvidiactl ]; then
  major=$(awk '$2 == "nvidiactl" || $2 == "nvidia-frontend" { print $1; exit }' /proc/devices)
  [ -n "$major" ] || fail "/proc/devices has neither nvidiactl nor nvidia-frontend"
  mknod -m 0666 /dev/nvidiactl c "$major" 255
fi
for node in /dev/nvidiactl /dev/nvidia-uvm; do
  [ -c "$node" ] || fail "$node is not a character device"
done
echo "nvidia-devices: $found GPU(s); $(ls /dev/nvidia* | tr '\n' ' ')"
