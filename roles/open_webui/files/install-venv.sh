#!/bin/sh
# Install a wheelhouse as the venv ROOT/VERSION, from that directory only: pip resolves and
# downloads nothing (--no-index --no-deps) and checks every wheel against requirements.lock
# (--require-hashes), whose own SHA-256 must be LOCK_SHA256 (the role's pin). A venv cannot be moved
# once made, so it is made in place and counts as installed only when the marker
# .airgap-llm-lock-<LOCK_SHA256>, written last, is there; anything else in ROOT/VERSION is removed
# first. Every file's digest is kept in .airgap-llm-files.sha256 for verify.yml.
#
# Usage: install-venv.sh PYTHON ROOT VERSION WHEELHOUSE LOCK_SHA256
set -eu
python=$1 root=$2 version=$3 wheelhouse=$4 lock_sha256=$5
target=$root/$version
marker=$target/.airgap-llm-lock-$lock_sha256

actual=$(sha256sum "$wheelhouse/requirements.lock" | cut -d' ' -f1)
if [ "$actual" != "$lock_sha256" ]; then
  echo "install-venv: $wheelhouse/requirements.lock has sha256 $actual, pinned $lock_sha256" >&2
  exit 1
fi
[ -e "$marker" ] && exit 0
rm -rf "$target"
trap 'rm -rf "$target"' EXIT
"$python" -m venv "$target"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$target/bin/pip" install --quiet --no-index --no-deps \
  --require-hashes --no-cache-dir --find-links "$wheelhouse" -r "$wheelhouse/requirements.lock"
chmod -R go-w "$target"
(cd "$target" && find . -type f ! -name '.airgap-llm-*' -print0 | sed -z 's|^\./||' | sort -z \
  | xargs -0 -r sha256sum) >"$target/.airgap-llm-files.sha256"
chmod 0644 "$target/.airgap-llm-files.sha256"
sync -f "$target"
: >"$marker"
trap - EXIT
echo "installed $wheelhouse into $target"
