#!/usr/bin/env bash
# Build the airgap.llm execution environment (meta/execution-environment.yml) offline, from a local
# base image: ansible-builder 3 with podman, --pull=never and --network=none. What the build needs
# from outside is fetched beforehand on this host (the low side) and mounted read-only for the build:
#   wheels/      pip download of the EE's Python requirements, pinned by requirements-dev.txt, for the
#                base image's Python and glibc (cached in CACHE/ee/wheels/<key>)
#   debs/        molecule/image/ee-packages.txt resolved against the base image (molecule/image/debs.sh,
#                cached in CACHE/ee/debs/<base image id>)
#   collection/  this checkout built with ansible-galaxy collection build
# Rebuilt only when its recipe changes: this script, the definition, the wheelhouse and packages
# keys, the collection's file digests (FILES.json) and the base image ID. The image carries the
# recipe digest as a label and the build is skipped when it matches.
#
# Usage: ee.sh BASE_IMAGE IMAGE CACHE     e.g. ee.sh localhost/airgap-llm-node:debian12 localhost/airgap-llm-ee:latest ~/.cache/airgap-llm
set -euo pipefail

base=${1:?usage: ee.sh BASE_IMAGE IMAGE CACHE}
image=${2:?usage: ee.sh BASE_IMAGE IMAGE CACHE}
cache=${3:?usage: ee.sh BASE_IMAGE IMAGE CACHE}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
definition=$root/meta/execution-environment.yml
python=${PYTHON:-python3}
# ansible-builder's own tools inside the build (builder stage: bindep, pyyaml, packaging; final
# stage: dumb-init, pinned by ansible-builder 3.2 itself).
builder_tools=(bindep==2.14.0 pyyaml packaging dumb-init==1.2.5)

case "$base" in
  localhost/*) ;;
  *) echo "ee.sh: the base image must be a local image (localhost/...), never a registry; got '$base'" >&2
     exit 2 ;;
esac
if ! podman image exists "$base"; then
  echo "ee.sh: base image $base is not in local storage; build or load it first (make image builds the default)" >&2
  exit 2
fi
base_id=$(podman image inspect --format '{{ .Id }}' "$base")

# What the base image runs: Python version and glibc decide which wheels it can install.
read -r py glibc < <(podman run --rm --network=none --pull=never "$base" \
  python3 -c 'import os, sys; print("%d.%d" % sys.version_info[:2], os.confstr("CS_GNU_LIBC_VERSION").split()[1])')

work=$(mktemp -d /var/tmp/airgap-ee.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/input/collection" "$work/build"

# The requirements: the definition's ansible-core, ansible-runner and Python list, the collection's
# requirements.txt, ansible-builder's tools; versions pinned by requirements-dev.txt where it names them.
"$python" - "$definition" "$root/requirements.txt" "$root/requirements-dev.txt" "${builder_tools[@]}" \
  >"$work/requirements.txt" 3>"$work/constraints.txt" <<'PY'
import re
import sys

import yaml

definition, collection_reqs, dev_reqs, *tools = sys.argv[1:]
with open(definition, encoding="utf-8") as handle:
    deps = yaml.safe_load(handle)["dependencies"]
wanted = [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"], *deps.get("python", [])]
with open(collection_reqs, encoding="utf-8") as handle:
    wanted += [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]
wanted += tools
print("\n".join(wanted))
name = re.compile(r"^([A-Za-z0-9_.-]+)")
names = {name.match(w).group(1).lower() for w in wanted}
with open(dev_reqs, encoding="utf-8") as handle, open(3, "w", encoding="utf-8") as out:
    for line in handle:
        line = line.split("#")[0].strip()
        if "==" in line and name.match(line).group(1).lower() in names:
            out.write(line + "\n")
PY

wheel_key=$( { echo "$py $glibc"; cat "$work/requirements.txt" "$work/constraints.txt"; } | sha256sum | cut -c1-16)
wheels=$cache/ee/wheels/$wheel_key
if [ ! -f "$wheels/.complete" ]; then
  echo "downloading the EE wheelhouse for Python $py, glibc $glibc into $wheels"
  platforms=()
  for minor in $(seq 17 "${glibc#2.}"); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
  rm -rf "$wheels.tmp"
  mkdir -p "$wheels.tmp"
  pip download --quiet --disable-pip-version-check --dest "$wheels.tmp" --only-binary=:all: \
    --python-version "$py" --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 \
    -r "$work/requirements.txt" -c "$work/constraints.txt"
  (cd "$wheels.tmp" && sha256sum -- *.whl >SHA256SUMS)
  touch "$wheels.tmp/.complete"
  rm -rf "$wheels"
  mv "$wheels.tmp" "$wheels"
fi

debs=$cache/ee/debs/${base_id:0:12}
bash "$here/debs.sh" "$debs" "$base" "$here/ee-packages.txt"

# The collection as Galaxy would ship it; its FILES.json lists every file's digest.
ansible-galaxy collection build --force --output-path "$work/build" "$root" >/dev/null
mv "$work"/build/airgap-llm-*.tar.gz "$work/input/collection/airgap-llm.tar.gz"
collection_key=$(tar -xzOf "$work/input/collection/airgap-llm.tar.gz" FILES.json MANIFEST.json | sha256sum | cut -d' ' -f1)

recipe=$( { cat "$0" "$here/debs.sh" "$definition"; echo "$base_id $wheel_key $collection_key";
            cat "$debs.recipe" 2>/dev/null || echo "no packages"; } | sha256sum | cut -d' ' -f1)
current=$(podman image inspect --format '{{ index .Labels "org.airgap.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  echo "execution environment $image is up to date (recipe ${recipe:0:12})"
  exit 0
fi

old=$(podman image inspect --format '{{ .Id }}' "$image" 2>/dev/null || true)
echo "building execution environment $image from $base, recipe ${recipe:0:12}"
start=$(date +%s)
ansible-builder build --file "$definition" --context "$work/context" --tag "$image" \
  --container-runtime podman --build-arg "EE_BASE_IMAGE=$base" --verbosity 1 \
  --extra-build-cli-args "--pull=never --network=none --layers=false --volume $wheels:/airgap-ee/wheels:ro --volume $debs:/airgap-ee/debs:ro --volume $work/input/collection:/airgap-ee/collection:ro --label org.airgap.recipe=$recipe" \
  >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  echo "ee.sh: ansible-builder failed; the end of its log is above" >&2
  exit 1
}
new=$(podman image inspect --format '{{ .Id }}' "$image")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  podman rmi "$old" >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{ .Size }}' "$image")
echo "built $image in $(( $(date +%s) - start ))s, $(( size / 1000000 )) MB"
