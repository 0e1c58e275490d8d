#!/usr/bin/env bash
# The low side of the harness for Open WebUI: the wheelhouses the committed locks pin, downloaded
# from PyPI with airgap.llm.wheelhouse (the production module, lock mode: every wheel checked against
# its recorded digest), and an image built from the 0.12.4 slim wheelhouse, saved as a docker-archive
# tarball. The upstream image (ghcr.io/open-webui/open-webui) cannot be pulled here; this one is
# Debian 12's python3 with a venv made from the same wheels, started by `open-webui serve` on
# $HOST:$PORT as upstream's start.sh does, and the roles rely on nothing else of either image.
#
# Everything is cached under DEST and rebuilt only when its recipe changes (lock, target, this
# script, the Debian suite):
#   DEST/wheelhouse/<version>-<set>/   wheels and requirements.lock
#   DEST/images/open-webui-<version>.tar (+ .recipe)
#   DEST/pins.json                     what the scenario pins: each lock's sha256, each image's
#                                      tarball sha256, size and image ID
#
# Usage: prepare.sh DEST            (OPEN_WEBUI_FULL=1 also downloads the full 0.12.4 set, 736 MB)
set -euo pipefail

dest=${1:?usage: prepare.sh DEST}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
python_version=3.11
image_version=0.12.4
image_set=slim
mkdir -p "$dest/wheelhouse" "$dest/images"

locks=("$here"/locks/*-slim.lock)
if [ "${OPEN_WEBUI_FULL:-0}" = 1 ]; then
  locks+=("$here"/locks/*-full.lock)
fi
for lock in "${locks[@]}"; do
  name=$(basename "$lock" .lock)
  start=$(date +%s)
  ansible localhost -o -m airgap.llm.wheelhouse \
    -a "{\"dest\": \"$dest/wheelhouse/$name\", \"lock\": \"$lock\", \"python_version\": \"$python_version\"}" \
    >"$dest/wheelhouse/.$name.log" 2>&1 || { tail -c 3000 "$dest/wheelhouse/.$name.log" >&2; exit 1; }
  if grep -q '"changed": true' "$dest/wheelhouse/.$name.log"; then
    echo "wheelhouse $name downloaded in $(( $(date +%s) - start ))s ($(du -sh "$dest/wheelhouse/$name" | cut -f1))"
  else
    echo "wheelhouse $name is up to date"
  fi
done

# The image: a Debian base with python3, then the venv from the wheelhouse, with no network.
wheels=$dest/wheelhouse/$image_version-$image_set
tarball=$dest/images/open-webui-$image_version.tar
recipe=$( { cat "$0"; cat "$wheels/requirements.lock"; echo "$mirror $suite"; } | sha256sum | cut -d' ' -f1)
if [ -f "$tarball" ] && [ "$(cat "$tarball.recipe" 2>/dev/null)" = "$recipe" ]; then
  echo "image $tarball is up to date (recipe ${recipe:0:12})"
else
  start=$(date +%s)
  work=$(mktemp -d /var/tmp/airgap-open-webui.XXXXXX)
  base=localhost/airgap-open-webui-base:$recipe
  built=airgap-open-webui-build-${recipe:0:12}
  cleanup() {
    podman rm -f "$built" >/dev/null 2>&1 || true
    podman rmi -f "$base" "localhost/open-webui:$image_version" >/dev/null 2>&1 || true
    rm -rf "$work"
  }
  trap cleanup EXIT
  debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$work/rootfs" -c . | podman import --quiet - "$base" >/dev/null
  cat >"$work/start-open-webui" <<'START'
#!/bin/sh
# Serve Open WebUI on $HOST:$PORT (as upstream's image does with start.sh).
exec /opt/open-webui/bin/open-webui serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8080}"
START
  podman run --name "$built" --network=none -v "$wheels:/wheels:ro" -v "$work/start-open-webui:/start:ro" "$base" \
    sh -ec 'python3 -m venv /opt/open-webui
            /opt/open-webui/bin/pip install --quiet --no-index --no-deps --require-hashes --find-links /wheels \
              -r /wheels/requirements.lock
            install -m 0755 /start /usr/local/bin/start-open-webui
            rm -rf /root/.cache' >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
  podman commit --quiet \
    --change 'CMD ["/usr/local/bin/start-open-webui"]' \
    --change 'ENV PORT=8080 HOST=0.0.0.0' \
    --change 'EXPOSE 8080' \
    --change 'WORKDIR /' \
    --change "LABEL org.opencontainers.image.version=$image_version" \
    --change "LABEL org.airgap.recipe=$recipe" \
    "$built" "localhost/open-webui:$image_version" >/dev/null
  rm -f "$tarball.tmp"
  podman save --quiet --format docker-archive -o "$tarball.tmp" "localhost/open-webui:$image_version"
  mv "$tarball.tmp" "$tarball"
  echo "$recipe" >"$tarball.recipe"
  echo "image $tarball built in $(( $(date +%s) - start ))s ($(du -sh "$tarball" | cut -f1))"
fi

# What the scenarios pin, read from the files themselves.
python3 - "$dest" <<'PY'
import hashlib, json, os, sys
sys.path.insert(0, os.environ["PYTHONPATH"].split(":")[0])
from ansible_collections.airgap.llm.plugins.module_utils._transfer.image import image_id

dest = sys.argv[1]
def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
pins = {"wheelhouses": {}, "images": {}}
for name in sorted(os.listdir(os.path.join(dest, "wheelhouse"))):
    path = os.path.join(dest, "wheelhouse", name)
    if name.startswith(".") or not os.path.isdir(path):
        continue
    files = os.listdir(path)
    pins["wheelhouses"][name] = {
        "path": path,
        "lock_sha256": sha256(os.path.join(path, "requirements.lock")),
        "wheels": len([f for f in files if f.endswith(".whl")]),
        "bytes": sum(os.path.getsize(os.path.join(path, f)) for f in files),
    }
for name in sorted(os.listdir(os.path.join(dest, "images"))):
    if not name.endswith(".tar"):
        continue
    path = os.path.join(dest, "images", name)
    version = name[len("open-webui-"):-len(".tar")]
    pins["images"][version] = {
        "path": path, "sha256": sha256(path), "bytes": os.path.getsize(path), **image_id(path),
    }
with open(os.path.join(dest, "pins.json.tmp"), "w", encoding="utf-8") as handle:
    json.dump(pins, handle, indent=1, sort_keys=True)
    handle.write("\n")
os.replace(os.path.join(dest, "pins.json.tmp"), os.path.join(dest, "pins.json"))
PY
