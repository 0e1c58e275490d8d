#!/bin/sh
# Unpack a verified release archive as ROOT/VERSION, next to the versions already there.
# The tree is built in a temporary directory under ROOT and renamed into place, so ROOT/VERSION is
# either complete or absent. Every entry of the archive must match MEMBERS (an extended regular
# expression, applied without a leading ./); each REQUIRED path must be an executable file in the
# tree, or a directory when it ends in /. tar recognises the compression (zstd, gzip, xz) itself.
#
# Usage: unpack.sh ARCHIVE ROOT VERSION SHA256 MEMBERS [REQUIRED...]
set -eu
archive=$1 root=$2 version=$3 sha256=$4 members=$5
shift 5
target=$root/$version

unexpected=$(tar -tf "$archive" | sed 's|^\./||' | grep -Ev "$members" || true)
if [ -n "$unexpected" ]; then
  echo "unpack: $archive holds entries outside what this release may hold ($members):" >&2
  echo "$unexpected" | head -n 5 >&2
  echo "It is not the expected release; check the pinned sha256 and the bundle." >&2
  exit 1
fi

stage=$(mktemp -d "$root/.$version.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar -xf "$archive" -C "$stage" --no-same-owner --delay-directory-restore
for path in "$@"; do
  case $path in
    */) [ -d "$stage/$path" ] || { echo "unpack: $archive has no directory $path" >&2; exit 1; } ;;
    *) [ -f "$stage/$path" ] && [ -x "$stage/$path" ] || { echo "unpack: $archive has no executable $path" >&2; exit 1; } ;;
  esac
done
chmod 0755 "$stage"
# The digest of every file, for verification later (sha256sum --check), and the archive it came from.
(cd "$stage" && find . -path ./.airgap-llm-files.sha256 -prune -o -type f -print0 | sed -z 's|^\./||' | sort -z \
  | xargs -0 -r sha256sum) >"$stage/.airgap-llm-files.sha256"
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
