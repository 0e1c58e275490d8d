#!/usr/bin/env bash
# Build the real step-ca from Debian's own source packages (the low side of the harness), in the
# layout of upstream's release archive, for the step_ca scenario to bundle and pin like any artifact.
#
# No step-ca binary exists in Debian, PyPI or npm, and nothing here may download upstream's release.
# Debian ships the server as Go source: golang-github-smallstep-certificates-dev (sid: the same
# version as upstream's newest tag) and its Go dependencies. A throw-away container of the Debian 13
# node image, on podman's default network, installs those from sid (only golang-* packages come from
# sid; everything else stays trixie) and builds main.go beside this script, which runs the package's
# commands.AppCommand, with Debian's Go, GO111MODULE=off, no module proxy, CGO_ENABLED=0.
#
# Written into DEST:
#   step-ca_linux_<version>_amd64.tar.gz   step-ca, README.md, LICENSE at the archive root (upstream's layout)
#   checksums.txt                          "<sha256>  <archive>", as upstream's release asset
#   release.json                           version, sha256, package versions and their digest, build time
#   packages.txt                           every package of the build closure with its version
#
# Cached: rebuilt only when this recipe (this script, main.go, the builder image) or the versions of
# the packages change. The versions are looked up in the archive at most every
# AIRGAP_STEP_CA_CHECK_HOURS (default 12) hours; AIRGAP_STEP_CA_CHECK_HOURS=0 looks every time. When
# the archive cannot be reached, an existing build is used and said so.
#
# Usage: step-ca.sh DEST IMAGE     e.g. step-ca.sh ~/.cache/airgap-llm/step-ca localhost/airgap-llm-node:debian13
set -euo pipefail

dest=${1:?usage: step-ca.sh DEST IMAGE}
image=${2:?usage: step-ca.sh DEST IMAGE}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
check_hours=${AIRGAP_STEP_CA_CHECK_HOURS:-12}
packages="golang-go golang-github-smallstep-certificates-dev"

image_recipe=$(podman image inspect --format '{{ index .Labels "org.airgap.recipe" }}' "$image")
recipe=$( { cat "$0" "$here/step-ca/main.go"; echo "$mirror $image_recipe $packages"; } | sha256sum | cut -d' ' -f1)

mkdir -p "$dest"
exec 9>"$dest.lock"
flock 9

field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dest/release.json" "$1"; }

have=""
if [ -f "$dest/release.json" ] && [ "$(field recipe)" = "$recipe" ] && [ -f "$dest/$(field archive)" ]; then
  have=$(field packages_sha256)
  age=$(( $(date +%s) - $(stat -c %Y "$dest/checked" 2>/dev/null || echo 0) ))
  if [ "$check_hours" -gt 0 ] && [ "$age" -lt $(( check_hours * 3600 )) ]; then
    echo "step-ca $(field version) is up to date (cache: recipe ${recipe:0:12}, packages ${have:0:12} checked $(( age / 60 )) min ago)"
    exit 0
  fi
fi

work=$(mktemp -d /var/tmp/airgap-step-ca.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"
cp "$here/step-ca/main.go" "$work/main.go"
start=$(date +%s)

# One container: resolve the closure's versions; if they match the cached build ($have), stop there,
# else install and build. The sid archive may be past its Valid-Until date on a stored mirror; the
# signatures are still checked.
set +e
podman run --rm --network=podman -e HAVE="$have" -e PACKAGES="$packages" -e MIRROR="$mirror" \
  -v "$work:/work" --entrypoint /bin/sh "$image" -ec '
  echo "deb $MIRROR sid main" >/etc/apt/sources.list.d/sid.list
  printf "Package: *\nPin: release n=sid\nPin-Priority: 100\n\nPackage: golang-*\nPin: release n=sid\nPin-Priority: 990\n" \
    >/etc/apt/preferences.d/sid
  apt-get -o Acquire::Check-Valid-Until=false update -qq >/work/apt-update.log 2>&1 || { cat /work/apt-update.log; exit 3; }
  apt-get install -s --no-install-recommends $PACKAGES | sed -n "s/^Inst \([^ ]*\) \(\[[^]]*\] \)\{0,1\}(\([^ ]*\) .*/\1 \3/p" \
    | sort >/work/out/packages.txt
  [ -s /work/out/packages.txt ] || { echo "no packages resolved for $PACKAGES"; exit 3; }
  sum=$(sha256sum </work/out/packages.txt | cut -d" " -f1)
  if [ "$sum" = "$HAVE" ]; then echo unchanged >/work/out/verdict; exit 0; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/work/apt-install.log 2>&1 \
    || { tail -n 30 /work/apt-install.log; exit 1; }
  version=$(dpkg-query -W -f="\${Version}" golang-github-smallstep-certificates-dev | sed "s/-[^-]*$//")
  changelog=/usr/share/doc/golang-github-smallstep-certificates-dev/changelog.Debian.gz
  date=$(zcat "$changelog" | sed -n "s/^ -- .*>  //p" | head -n 1)
  epoch=$(date -u -d "$date" +%s)
  mkdir -p /root/gopath/src/airgap.llm/step-ca /work/out/tree
  cp /work/main.go /root/gopath/src/airgap.llm/step-ca/main.go
  cd /root/gopath/src/airgap.llm/step-ca
  GOPATH=/root/gopath:/usr/share/gocode GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE=/root/gocache \
    go build -trimpath -ldflags "-w -X main.version=$version -X main.buildTime=$(date -u -d @$epoch +%Y-%m-%dT%H:%M:%SZ)" \
    -o /work/out/tree/step-ca .
  cp /usr/share/common-licenses/Apache-2.0 /work/out/tree/LICENSE
  go version | cut -d" " -f3 >/work/out/go-version
  echo "$version" >/work/out/version
  echo "$epoch" >/work/out/epoch
  echo built >/work/out/verdict
'
rc=$?
set -e
if [ $rc -ne 0 ]; then
  if [ $rc -eq 3 ] && [ -n "$have" ]; then
    echo "step-ca.sh: the Debian archive could not be reached; using the cached step-ca $(field version) (packages ${have:0:12})" >&2
    exit 0
  fi
  echo "step-ca.sh: building step-ca from Debian's source packages failed (exit $rc); see the output above" >&2
  exit 1
fi

if [ "$(cat "$work/out/verdict")" = unchanged ]; then
  touch "$dest/checked"
  echo "step-ca $(field version) is up to date (cache: recipe ${recipe:0:12}, packages ${have:0:12} unchanged; looked up in $(( $(date +%s) - start ))s)"
  exit 0
fi

version=$(cat "$work/out/version")
epoch=$(cat "$work/out/epoch")
archive=step-ca_linux_${version}_amd64.tar.gz
certificates=$(sed -n 's/^golang-github-smallstep-certificates-dev //p' "$work/out/packages.txt")
go_version=$(cat "$work/out/go-version")
count=$(wc -l <"$work/out/packages.txt")
packages_sha256=$(sha256sum <"$work/out/packages.txt" | cut -d' ' -f1)
cat >"$work/out/tree/README.md" <<EOF
# step-ca ${version}

The Smallstep CA server, built from Debian's source packages for the airgap.llm tests:
golang-github-smallstep-certificates-dev ${certificates} and its Go dependencies (${count} packages from
Debian sid, listed with their versions in packages.txt beside the archive; sha256 of that list
${packages_sha256}), ${go_version}, GO111MODULE=off, CGO_ENABLED=0, with a small main that runs the
package's commands.AppCommand. Databases: bbolt (Debian's nosql library has no badger).
EOF
chmod 0755 "$work/out/tree/step-ca"
chmod 0644 "$work/out/tree/LICENSE" "$work/out/tree/README.md"
# A reproducible archive: fixed order, owner and time, no gzip timestamp.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$work/out/tree" -c step-ca README.md LICENSE \
  | gzip -n -9 >"$work/out/$archive"
sha256=$(sha256sum "$work/out/$archive" | cut -d' ' -f1)
seconds=$(( $(date +%s) - start ))
printf '%s  %s\n' "$sha256" "$archive" >"$work/out/checksums.txt"
python3 - "$work/out/release.json" <<EOF
import json, sys
json.dump({"name": "step-ca", "version": "$version", "archive": "$archive", "sha256": "$sha256",
           "size": $(stat -c %s "$work/out/$archive"), "debian_package": "golang-github-smallstep-certificates-dev",
           "debian_version": "$certificates", "go": "$go_version", "packages": $count,
           "packages_sha256": "$packages_sha256", "recipe": "$recipe", "build_seconds": $seconds,
           "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}, open(sys.argv[1], "w"), indent=1, sort_keys=True)
EOF
rm -f "$dest"/step-ca_linux_*_amd64.tar.gz
mv "$work/out/$archive" "$work/out/checksums.txt" "$work/out/packages.txt" "$dest/"
mv "$work/out/release.json" "$dest/release.json"
touch "$dest/checked"
echo "step-ca ${version} built from Debian sid (golang-github-smallstep-certificates-dev ${certificates}, ${go_version}," \
  "${count} packages) in ${seconds}s: ${archive} sha256 ${sha256}"
