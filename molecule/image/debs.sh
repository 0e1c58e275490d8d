#!/usr/bin/env bash
# Download the .deb files that test scenarios install on air-gapped nodes (the low side of the
# harness): a throw-away container of the node image, on podman's default network, resolves the
# dependency closure of the packages LIST names against the image and downloads it into DEST.
# Nodes under test never touch a package mirror; scenarios copy these files in or bundle them.
# Skipped when DEST.recipe (beside DEST, so that DEST holds packages only) already matches the
# image and the list.
#
# Usage: debs.sh DEST IMAGE LIST   (LIST: one package per line, # comments; molecule/image/packages/)
#
# The node images use Debian's main component only. A list that needs more names them on a line
# "components: contrib non-free ..."; they are added to the throw-away container's sources, never to
# the images.
#
# A line "package suite..." names the Debian suites the package is for (it is left out of the others);
# a set that has no package for the image's suite leaves DEST empty.
set -euo pipefail

dest=${1:?usage: debs.sh DEST IMAGE LIST}
image=${2:?usage: debs.sh DEST IMAGE LIST}
list=${3:?usage: debs.sh DEST IMAGE LIST}
suite=$(podman image inspect --format '{{ index .Labels "org.airgap.suite" }}' "$image")
mapfile -t packages < <(sed -e 's/#.*//' -e '/^components:/d' -e '/^[[:space:]]*$/d' "$list" \
  | awk -v suite="$suite" 'NF == 1 { print $1; next } { for (i = 2; i <= NF; i++) if ($i == suite) print $1 }')
[ -n "$(sed -e 's/#.*//' -e '/^components:/d' -e '/^[[:space:]]*$/d' "$list")" ] || { echo "debs.sh: $list names no packages" >&2; exit 1; }
components=$(sed -n -e 's/#.*//' -e 's/^components:[[:space:]]*//p' "$list" | xargs)
case $components in *[!a-z0-9\ -]*) echo "debs.sh: $list names bad components '$components'" >&2; exit 1 ;; esac

want="$(podman image inspect --format '{{ .Id }}' "$image") ${packages[*]}${components:+ components: $components}"
if [ -f "$dest.recipe" ] && [ -d "$dest" ] && [ "$(cat "$dest.recipe")" = "$want" ]; then
  echo "test packages in $dest are up to date"
  exit 0
fi

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
if [ ${#packages[@]} -eq 0 ]; then
  rm -rf "$dest" "$dest.recipe"
  mv "$dest.tmp" "$dest"
  echo "$want" >"$dest.recipe"
  echo "no packages of $list for $suite"
  exit 0
fi
podman run --rm --network=podman -v "$dest.tmp:/var/cache/apt/archives" "$image" sh -ec "
  if [ -n '$components' ]; then
    sed -i -E 's/^(deb [^ ]+ [^ ]+ main)\$/\\1 $components/' /etc/apt/sources.list
    grep -q ' main $components\$' /etc/apt/sources.list || { echo 'cannot add $components to sources.list' >&2; exit 1; }
  fi
  apt-get update -qq
  apt-get install -y -qq --download-only --no-install-recommends ${packages[*]} >/dev/null
  rm -rf /var/cache/apt/archives/partial /var/cache/apt/archives/lock"
rm -rf "$dest" "$dest.recipe"
mv "$dest.tmp" "$dest"
echo "$want" >"$dest.recipe"
echo "downloaded $(ls "$dest" | wc -l) packages into $dest"
