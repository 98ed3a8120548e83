#!/usr/bin/env bash
# Fault drills against the release binary on loopback (needs root: tmpfs mounts).
#
#   1. disk full: the database on a 6 MB tmpfs, writes until it is full, then the tmpfs is
#      grown to 30 MB (mount -o remount,size=…) while the server keeps running;
#   2. locked: an external sqlite3 holds BEGIN IMMEDIATE for 8 s (busy timeout 2 s);
#   3. read-only: the database's filesystem is remounted read-only, the server started on it
#      (it must refuse with a message naming the path), then made writable again;
#   4. SIGTERM under write load: 4 writers, SIGTERM after 2 s, restart.
#
# For each: writes acknowledged, refused (by status), acknowledged writes lost (must be 0),
# time to recover after the fault ends, and PRAGMA integrity_check.
#
# Status 000 = no answer (the server was stopped: nothing acknowledged, nothing to lose).
#
# Usage: scripts/faults.sh   (HINDSIGHT_BIN=path to use another binary)
set -euo pipefail
SCRIPT=faults.sh
cd "$(dirname "$0")/.."
source scripts/common.sh
require_tools curl sqlite3 mount umount
[[ $(id -u) == 0 ]] || { echo "$SCRIPT: needs root (tmpfs mounts)" >&2; exit 2; }
ensure_binary
pick_port
WORK=$(mktemp -d /tmp/hindsight-faults.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
SERVER_PID=
LOCK_PID=
finish() {
  [[ -n $SERVER_PID ]] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  [[ -n $LOCK_PID ]] && { kill "$LOCK_PID" 2>/dev/null || true; }
  umount "$MNT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap finish EXIT

export HINDSIGHT_BIND=127.0.0.1:$PORT HINDSIGHT_BASE_URL=$BASE HINDSIGHT_LOG_FORMAT=json
export HINDSIGHT_DB_BUSY_TIMEOUT_MS=2000 HINDSIGHT_DRAIN_SECONDS=10 HINDSIGHT_DISK_WARN_MB=4
DB=$MNT/hindsight.db
export HINDSIGHT_DATABASE_URL=sqlite://$DB

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }

fresh_mount() { # SIZE
  umount "$MNT" 2>/dev/null || true
  mount -t tmpfs -o "size=$1" tmpfs "$MNT"
  "$BIN" migrate >/dev/null
  echo "a long enough password" | "$BIN" user create --email drill@example.com --name Drill \
    --role admin --password-stdin >/dev/null
  TOKEN=$("$BIN" token create --user drill@example.com --name drill --scope write)
  : >"$WORK/acked"; : >"$WORK/statuses"
}

start() {
  "$BIN" serve >>"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 200); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server did not start:"; tail -5 "$WORK/server.log"; return 1
}

stop() { # sends SIGTERM and waits
  [[ -n $SERVER_PID ]] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# write [TAG]: one incident; appends the status to statuses and the id of a 201 to acked.
write() {
  local out code
  out=$(curl -s -m 30 -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d "{\"title\":\"Drill ${1:-w} $RANDOM\",\"severity\":\"sev3\",\"service\":\"checkout\",\"category\":\"deploy\",\"summary\":\"$(printf 'x%.0s' $(seq 600))\"}" \
    "$BASE/api/v1/incidents" 2>/dev/null || true)
  code=${out##*$'\n'}
  [[ -n $code ]] || code=000
  echo "$code" >>"$WORK/statuses"
  if [[ $code == 201 ]]; then
    grep -o '"id":"[^"]*"' <<<"$out" | head -1 | cut -d'"' -f4 >>"$WORK/acked"
  fi
  LAST=$code
}

# recover_time T0: writes until one is acknowledged; prints the time since T0.
recover_time() {
  local t0=$1
  for _ in $(seq 600); do write recover; [[ $LAST == 201 ]] && { since "$t0"; return; }; sleep 0.1; done
  echo "not recovered"
}

report() { # NAME RECOVERY
  local acked lost refused integrity
  acked=$(wc -l <"$WORK/acked")
  refused=$({ grep -v '^201$' "$WORK/statuses" || true; } | sort | uniq -c | awk '{printf "%s×%s ", $1, $2}')
  stop
  lost=0
  while read -r id; do
    [[ $(sqlite3 "$DB" "SELECT COUNT(*) FROM incidents WHERE id = '$id'") == 1 ]] || lost=$((lost + 1))
  done <"$WORK/acked"
  integrity=$(sqlite3 "$DB" "PRAGMA integrity_check" | tr '\n' ' ')
  printf '%-22s acknowledged %-5s refused %-28s lost %-3s recovered in %-10s integrity_check %s\n' \
    "$1" "$acked" "${refused:-none}" "$lost" "$2" "$integrity"
}

service() {
  curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"checkout","team":"Storefront"}' "$BASE/api/v1/services" || true
}

echo "== drill 1: disk full (6 MB tmpfs, grown to 30 MB while running)"
fresh_mount 6m; start; service
refusals=0
for _ in $(seq 5000); do
  write full
  if [[ $LAST == 201 ]]; then refusals=0; else refusals=$((refusals + 1)); fi
  (( refusals >= 20 )) && break
done
echo "   readyz while full: $(curl -s "$BASE/readyz")"
echo "   metrics: $(curl -s "$BASE/metrics" | grep -E '^hindsight_db_write_failures_total\{cause="disk_full"\}|^hindsight_db_disk_free_bytes' | tr '\n' ' ')"
mount -o remount,size=30m "$MNT"
t0=$(now); rec=$(recover_time "$t0")
for _ in $(seq 20); do write after; done
echo "   readyz after: $(curl -s "$BASE/readyz")"
report "disk full" "$rec"

echo "== drill 2: external sqlite3 holds BEGIN IMMEDIATE for 8 s (busy timeout 2 s)"
fresh_mount 64m; start; service
for _ in $(seq 20); do write before; done
(printf 'BEGIN IMMEDIATE;\nINSERT INTO write_probe (id, at) VALUES (1, "lock") ON CONFLICT (id) DO UPDATE SET at = excluded.at;\n'; sleep 8; printf 'ROLLBACK;\n') | sqlite3 "$DB" &
LOCK_PID=$!
sleep 0.5
code=$(curl -s -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"title":"x","severity":"sev3","service":"checkout","category":"deploy"}' "$BASE/api/v1/incidents")
echo "$code" >>"$WORK/statuses"
[[ $code == 201 ]] && grep -o '"id":"[^"]*"' "$WORK/body" | head -1 | cut -d'"' -f4 >>"$WORK/acked"
grep -iE '^(HTTP|retry-after)' "$WORK/headers" | tr -d '\r' | sed 's/^/   /'
echo "   $(cut -c1-220 "$WORK/body")"
echo "   readyz while locked: $(curl -s "$BASE/readyz")"
for _ in $(seq 2); do write locked; done
wait "$LOCK_PID" || true; LOCK_PID=
t0=$(now); rec=$(recover_time "$t0")
for _ in $(seq 20); do write after; done
report "locked (sqlite3)" "$rec"

echo "== drill 3: the database's filesystem read-only at startup"
fresh_mount 64m; start; service
for _ in $(seq 20); do write before; done
stop
mount -o remount,ro "$MNT"
set +e
msg=$("$BIN" serve 2>&1 >/dev/null | tail -1); rc=$?
set -e
echo "   start on read-only: exit ${rc}, says: $msg"
mount -o remount,rw "$MNT"
t0=$(now); start; rec=$(recover_time "$t0")
for _ in $(seq 20); do write after; done
report "read-only directory" "$rec"

echo "== drill 4: SIGTERM under write load (4 writers), then restart"
fresh_mount 64m; start; service
stop_writers=$WORK/stop-writers
rm -f "$stop_writers"
writer() { while [[ ! -e $stop_writers ]]; do write load; done; }
for i in 1 2 3 4; do writer & done
sleep 2
term_at=$(now)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null; rc=$?
SERVER_PID=
echo "   server exited with $rc after $(since "$term_at"); WAL: $(stat -c %s "$DB-wal" 2>/dev/null || echo absent) bytes"
touch "$stop_writers"; wait
grep -E '"WAL checkpointed"|shutting down' "$WORK/server.log" | tail -2 | cut -c1-160 | sed 's/^/   log: /'
t0=$(now); start; rec=$(recover_time "$t0")
report "SIGTERM under load" "$rec (restart)"
