#!/bin/sh
# Obtain or renew one certificate from the internal CA over ACME with lego, install it for the service
# that uses it and reload that service (airgap.llm.step_cert).
#
# Usage: step-cert NAME issue   obtain a new certificate now (airgap.llm.step_cert runs this)
#        step-cert NAME renew   obtain one if the certificate is missing, names other domains, does not
#                               lead to the internal root, has expired, or has less than RENEW_PERCENT
#                               of its lifetime left (the systemd timer runs this); else do nothing
#
# NAME's settings are in /etc/airgap-llm/step_cert/NAME.conf (written by the role): DOMAINS, CERT, KEY,
# OWNER, GROUP, MODE, RELOAD, SERVER, ROOT, STATE, EMAIL, KEY_TYPE, CHALLENGE, PORT, WEBROOT,
# RENEW_PERCENT, TIMEOUT. Every outcome is one line in the journal: what was issued (serial, names,
# validity, issuer) or why nothing was.
set -eu
name=${1:?usage: step-cert NAME issue|renew}
action=${2:-renew}
case $name in *[!a-z0-9-]*|"") echo "step-cert: bad certificate name $name" >&2; exit 2 ;; esac
conf=/etc/airgap-llm/step_cert/$name.conf
[ -f "$conf" ] || { echo "step-cert: $conf is missing; run airgap.llm.step_cert" >&2; exit 2; }
# shellcheck disable=SC1090
. "$conf"

# One line per outcome, in the journal under the identifier airgap-step-cert-NAME: the renewal unit's
# output goes there by itself; a run from airgap.llm.step_cert (not under systemd) sends it with logger.
say() {
  echo "step-cert $name: $*"
  [ -n "${INVOCATION_ID:-}" ] || logger -t "airgap-step-cert-$name" -- "step-cert $name: $*" 2>/dev/null || true
}
seconds() { date -u -d "$(openssl x509 -noout "-$1" -in "$CERT" | cut -d= -f2-)" +%s; }
serial() { openssl x509 -noout -serial -in "$1" 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f'; }
names_of() { openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort; }
want_names=$(printf '%s\n' $DOMAINS | sort)

exec 8>"$STATE/.lock"
flock 8

why=""
if [ "$action" = issue ]; then
  why="issue requested"
elif [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
  why="no certificate at $CERT yet"
elif [ "$(names_of "$CERT")" != "$want_names" ]; then
  why="its names ($(names_of "$CERT" | tr '\n' ' ')) are not $DOMAINS"
elif ! openssl verify -CAfile "$ROOT" -untrusted "$CERT" "$CERT" >/dev/null 2>&1; then
  why="it does not lead to the internal root or has expired"
else
  start=$(seconds startdate)
  end=$(seconds enddate)
  now=$(date -u +%s)
  left=$(( (end - now) * 100 / (end - start) ))
  if [ "$left" -ge "$RENEW_PERCENT" ]; then
    say "not due: serial $(serial "$CERT"), ${left}% of its lifetime left, renews below ${RENEW_PERCENT}% (expires $(date -u -d "@$end" +%Y-%m-%dT%H:%M:%SZ))"
    exit 0
  fi
  why="${left}% of its lifetime left (renews below ${RENEW_PERCENT}%)"
fi
old=$( [ -s "$CERT" ] && serial "$CERT" || echo none)

set -- --server "$SERVER" --path "$STATE/lego" --accept-tos --email "$EMAIL" --key-type "$KEY_TYPE" \
  --cert.timeout "$TIMEOUT"
for domain in $DOMAINS; do set -- "$@" --domains "$domain"; done
case $CHALLENGE in
  http-01) if [ -n "$WEBROOT" ]; then set -- "$@" --http --http.webroot "$WEBROOT"; else set -- "$@" --http --http.port ":$PORT"; fi ;;
  tls-alpn-01) set -- "$@" --tls --tls.port ":$PORT" ;;
  *) echo "step-cert: challenge $CHALLENGE is not supported" >&2; exit 2 ;;
esac
mkdir -p "$STATE/lego"
if ! out=$(LEGO_CA_CERTIFICATES=$ROOT lego "$@" run 2>&1); then
  echo "$out" | tail -n 15 >&2
  say "FAILED to obtain a certificate for $DOMAINS from $SERVER ($why); the old one (serial $old) stays" >&2
  exit 1
fi
first=$(echo "$DOMAINS" | cut -d' ' -f1)
new_crt=$STATE/lego/certificates/$first.crt
new_key=$STATE/lego/certificates/$first.key
# Both files are written under temporary names in their own directories, handed to the service's user
# and group (chown only then: the renewal unit keeps CAP_CHOWN only for such keys) and renamed into place.
place() {
  install -m "$MODE" "$new_key" "$KEY.step-cert-new" &&
    install -m 0644 "$new_crt" "$CERT.step-cert-new" &&
    if [ "$OWNER:$GROUP" != root:root ]; then
      chown "$OWNER:$GROUP" "$KEY.step-cert-new" && chgrp "$GROUP" "$CERT.step-cert-new"
    fi &&
    sync "$KEY.step-cert-new" "$CERT.step-cert-new" &&
    mv -f "$KEY.step-cert-new" "$KEY" &&
    mv -f "$CERT.step-cert-new" "$CERT" &&
    sync "$(dirname "$KEY")" "$(dirname "$CERT")"
}
if ! place; then
  rm -f "$KEY.step-cert-new" "$CERT.step-cert-new"
  say "FAILED to put the new certificate for $DOMAINS in place ($CERT, $KEY); the old one (serial $old) stays" >&2
  exit 1
fi
reloaded=""
for unit in $RELOAD; do
  if systemctl is-active --quiet "$unit"; then
    if ! systemctl reload "$unit"; then
      say "FAILED to reload $unit after the new certificate (serial $(serial "$CERT")) was put in place" >&2
      exit 1
    fi
    reloaded="$reloaded $unit"
  fi
done
verb=renewed
[ "$action" = issue ] && verb=issued
say "$verb serial $old -> $(serial "$CERT") for $(names_of "$CERT" | tr '\n' ' ')(until $(date -u -d "@$(seconds enddate)" +%Y-%m-%dT%H:%M:%SZ), issuer $(openssl x509 -noout -issuer -nameopt RFC2253 -in "$CERT" | cut -d= -f2-)); reason: $why; reloaded:${reloaded:- nothing}"
