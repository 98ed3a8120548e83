#!/usr/bin/env bash
# The sign-in limiter under a burst: N wrong passwords for one account sent at once to a fresh
# server, counting the answers (422 = the password was checked, 429 = refused before checking)
# and the server's peak memory (VmHWM from /proc). Several binaries run one after the other in
# the same run, so an older build gives the baseline.
#
# Usage: scripts/login-burst.sh [-n N] [BINARY...]   (default: N=300, the release binary)
# `hey` sends the N requests on N connections at once (apt-get install hey).
# Settings of the servers: HINDSIGHT_LOGIN_MAX_FAILURES=10, everything else default (at most
# HINDSIGHT_LOGIN_MAX_CONCURRENT=4 password checks at once). Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=login-burst
source scripts/common.sh
require_tools curl hey

n=300
if [[ ${1:-} == -n ]]; then n=$2; shift 2; fi
if (($# == 0)); then ensure_binary; set -- "$BIN"; fi

cleanup() {
  [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [[ -n ${WORK:-} ]] && rm -rf "$WORK"
  return 0
}
make_workdir burst

hwm_mib() { awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

printf '%-44s %8s %6s %6s %6s %10s %10s %13s\n' binary requests 422 429 other "slowest s" "RSS start" "RSS peak MiB"
for bin in "$@"; do
  [[ -x $bin ]] || { echo "$SCRIPT: no binary at $bin" >&2; exit 2; }
  PORT=; pick_port
  db=$WORK/$RANDOM.db
  export HINDSIGHT_DATABASE_URL=sqlite://$db HINDSIGHT_BIND=127.0.0.1:$PORT \
    HINDSIGHT_BASE_URL=$BASE HINDSIGHT_LOG_FORMAT=json RUST_LOG=warn \
    HINDSIGHT_LOGIN_MAX_FAILURES=10
  "$bin" user create --email burst@example.com --name Burst --role admin --password-stdin \
    <<<"burst-check-password" >/dev/null
  "$bin" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.05; done
  start_mib=$(hwm_mib "$SERVER_PID")
  hey -n "$n" -c "$n" -t 300 -m POST -T application/x-www-form-urlencoded \
    -H "Origin: $BASE" -H 'Sec-Fetch-Site: same-origin' \
    -d 'email=burst%40example.com&password=not-the-password' "$BASE/login" >"$WORK/hey"
  peak_mib=$(hwm_mib "$SERVER_PID")
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  count() { awk -v code="[$1]" '$1 == code {print $2; found=1} END {if (!found) print 0}' "$WORK/hey"; }
  checked=$(count 422); limited=$(count 429)
  other=$(( n - checked - limited ))
  slowest=$(awk '$1 == "Slowest:" {print $2}' "$WORK/hey")
  printf '%-44s %8d %6d %6d %6d %10s %10s %13s\n' "$bin" "$n" "$checked" "$limited" "$other" \
    "$slowest" "$start_mib" "$peak_mib"
done
