#!/bin/sh
# Unpack a verified Ollama release archive as ROOT/VERSION, next to the releases already there.
# The tree is built in a temporary directory under ROOT and renamed into place, so ROOT/VERSION is
# either complete or absent. Only bin/ and lib/ollama/ entries are accepted (the layout of
# upstream's ollama-linux-<arch>.tar.zst); bin/ollama must be an executable file.
#
# Usage: unpack-release.sh ARCHIVE ROOT VERSION SHA256
set -eu
archive=$1 root=$2 version=$3 sha256=$4
target=$root/$version

unexpected=$(tar --zstd -tf "$archive" | grep -Ev '^(\./)?$|^(\./)?bin/?$|^(\./)?bin/ollama$|^(\./)?lib/?$|^(\./)?lib/ollama(/.*)?$' || true)
if [ -n "$unexpected" ]; then
  echo "unpack-release: $archive holds entries outside bin/ollama and lib/ollama/:" >&2
  echo "$unexpected" | head -n 5 >&2
  echo "It is not an Ollama Linux release; check the pinned sha256 and the bundle." >&2
  exit 1
fi

stage=$(mktemp -d "$root/.$version.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar --zstd -xf "$archive" -C "$stage" --no-same-owner --delay-directory-restore
if [ ! -f "$stage/bin/ollama" ] || [ ! -x "$stage/bin/ollama" ] || [ ! -d "$stage/lib/ollama" ]; then
  echo "unpack-release: $archive has no executable bin/ollama or no lib/ollama/" >&2
  exit 1
fi
chmod 0755 "$stage"
# The digest of every file, for verify.yml (sha256sum --check), and the archive it came from.
(cd "$stage" && find bin lib -type f -print0 | sort -z | xargs -0 sha256sum) >"$stage/.airgap-llm-files.sha256"
: >"$stage/.airgap-llm-archive-$sha256"
chmod 0644 "$stage/.airgap-llm-files.sha256" "$stage/.airgap-llm-archive-$sha256"
sync -f "$stage"

if [ -e "$target" ]; then
  # Same version, other archive (a re-pinned release): keep the old tree until the new one is in.
  old=$(mktemp -d "$root/.$version.old.XXXXXX")
  mv -T "$target" "$old/tree"
  mv -T "$stage" "$target"
  rm -rf "$old"
else
  mv -T "$stage" "$target"
fi
trap - EXIT
sync -f "$root"
echo "unpacked $archive into $target"
