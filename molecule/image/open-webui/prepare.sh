#!/usr/bin/env bash
# The low side of the harness for Open WebUI: the wheelhouses the committed locks pin, downloaded
# from PyPI with airgap.llm.wheelhouse (the production module, lock mode: every wheel checked against
# its recorded digest). Cached under DEST and downloaded again only when a lock changes:
#   DEST/wheelhouse/<version>-<set>/   wheels and requirements.lock
#   DEST/pins.json                     what the scenario pins: each lock's sha256, wheel count, bytes
#
# Usage: prepare.sh DEST            (OPEN_WEBUI_FULL=1 also downloads the full 0.12.4 set, 736 MB)
set -euo pipefail

dest=${1:?usage: prepare.sh DEST}
here=$(cd "$(dirname "$0")" && pwd)
python_version=3.11
mkdir -p "$dest/wheelhouse"

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

# What the scenarios pin, read from the files themselves.
python3 - "$dest" <<'PY'
import hashlib, json, os, sys

dest = sys.argv[1]
def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
pins = {"wheelhouses": {}}
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
with open(os.path.join(dest, "pins.json.tmp"), "w", encoding="utf-8") as handle:
    json.dump(pins, handle, indent=1, sort_keys=True)
    handle.write("\n")
os.replace(os.path.join(dest, "pins.json.tmp"), os.path.join(dest, "pins.json"))
PY
