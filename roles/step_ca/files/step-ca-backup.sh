#!/bin/sh
# Copy the step-ca bbolt database into BACKUP_DIR as bbolt-<UTC time>.db and keep the KEEP newest copies.
#
# step-ca holds the database open (and flock'ed) while it runs, so the copy is taken without stopping it:
# the file is copied, and the copy counts only when the database did not change while it was read (the
# same size, modification and change times before and after). bbolt writes every transaction with
# pwrite and fsync, so an unchanged file is a consistent database. Otherwise it tries again, up to five
# times, and fails loudly (the journal of step-ca-backup.service says so).
#
# Usage: step-ca-backup DATABASE BACKUP_DIR KEEP
set -eu
db=$1 dir=$2 keep=$3
[ -f "$db" ] || { echo "step-ca-backup: no database at $db (has step-ca started once?)" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
tmp=$(mktemp "$dir/.bbolt-$stamp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
tries=0
while :; do
  before=$(stat -c '%s %y %z' "$db")
  cp "$db" "$tmp"
  sync "$tmp"
  after=$(stat -c '%s %y %z' "$db")
  [ "$before" = "$after" ] && break
  tries=$((tries + 1))
  if [ "$tries" -ge 5 ]; then
    echo "step-ca-backup: $db changed during each of 5 copies; no consistent copy was taken" >&2
    exit 1
  fi
  sleep 2
done
chmod 0600 "$tmp"
mv -f "$tmp" "$dir/bbolt-$stamp.db"
trap - EXIT
sync "$dir"
echo "step-ca-backup: $db copied to $dir/bbolt-$stamp.db ($(stat -c %s "$dir/bbolt-$stamp.db") bytes, sha256 $(sha256sum "$dir/bbolt-$stamp.db" | cut -d' ' -f1))"
# Keep the newest KEEP copies (the names sort by time).
find "$dir" -maxdepth 1 -type f -name 'bbolt-*Z.db' -printf '%f\n' | grep -E '^bbolt-[0-9]{8}T[0-9]{6}Z\.db$' | sort -r | tail -n +"$((keep + 1))" | while read -r old; do
  rm -f "$dir/$old"
  echo "step-ca-backup: removed the old copy $dir/$old"
done
