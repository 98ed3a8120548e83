#!/usr/bin/env bash
# Load test of event ingest: POST /api/v1/metrics/events with a pre-generated batch.
#
# Builds the release binary if it is missing, starts the server on a loopback port with an
# empty temporary database, creates an admin user with an ingest token and a read token,
# generates one batch of BATCH events (varied latencies, some failures), then runs wrk
# against /healthz and the ingest endpoint (one after the other, same settings). Prints
# requests/s, p99 latency, events/s accepted and throughput relative to /healthz, and
# finally checks through GET /api/v1/metrics/services/$SERVICE that the window counted
# the events.
#
# Settings (environment):
#   BATCH=1000          events per request (the server's cap is HINDSIGHT_METRICS_MAX_BATCH,
#                       10000 by default; it is passed through if set)
#   DURATION=15s        wrk duration per path
#   CONNECTIONS=32      wrk connections
#   THREADS=2           wrk threads
#   SERVICE=checkout    service the events are pushed for
#   PORT=               loopback port (default: a free one)
#   HINDSIGHT_BIN=      binary to test (default: $CARGO_TARGET_DIR/release/hindsight)
# Target checked: ≥ 1,000,000 events/s accepted.
set -euo pipefail

BATCH=${BATCH:-1000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
SERVICE=${SERVICE:-checkout}
TARGET_EVENTS_PER_S=1000000
cd "$(dirname "$0")/.."
SCRIPT=ingest_load.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh
LUA=$PWD/scripts/ingest_batch.lua
require_tools wrk curl jq awk
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || { echo "ingest_load.sh: BATCH must be a whole number ≥ 1" >&2; exit 2; }
ensure_binary
pick_port
make_workdir ingest

# A private copy, so a rebuild in the shared target directory cannot swap the binary mid-run.
cp "$BIN" "$WORK/hindsight"
BIN=$WORK/hindsight

export HINDSIGHT_DATABASE_URL=sqlite://$WORK/hindsight.db
export HINDSIGHT_BIND=127.0.0.1:$PORT
export HINDSIGHT_BASE_URL=$BASE
export HINDSIGHT_LOG_FORMAT=json
export RUST_LOG=${RUST_LOG:-warn}

EMAIL=ingest-load@example.com
printf '%s\n' "ingest-load-password" | "$BIN" user create --email "$EMAIL" --name "Ingest Load" --role admin --password-stdin >/dev/null
INGEST_TOKEN=$("$BIN" token create --user "$EMAIL" --name load --scope ingest | tail -n1)
READ_TOKEN=$("$BIN" token create --user "$EMAIL" --name load-read --scope read | tail -n1)
[[ -n $INGEST_TOKEN && -n $READ_TOKEN ]] || { echo "could not create the tokens" >&2; exit 1; }

# One batch, the same on every request: latencies mostly 2–60 ms with a slow tail up to
# ~2.5 s, about 3% failures; fixed seed, so every run sends the same bytes.
echo "== generating a batch of $BATCH events for $SERVICE"
awk -v n="$BATCH" -v service="$SERVICE" 'BEGIN {
  srand(42)
  printf "{\"service\":\"%s\",\"events\":[", service
  for (i = 0; i < n; i++) {
    r = rand()
    if (r < 0.90)      ms = 2 + rand() * 58          # the bulk
    else if (r < 0.99) ms = 60 + rand() * 440        # slow
    else               ms = 500 + rand() * 2000      # tail
    ok = (rand() < 0.03) ? "false" : "true"
    printf "%s{\"latency_ms\":%.1f,\"ok\":%s}", (i ? "," : ""), ms, ok
  }
  printf "]}"
}' >"$WORK/batch.json"
echo "   $(wc -c <"$WORK/batch.json") bytes, $(grep -o '"ok":false' "$WORK/batch.json" | wc -l) with ok=false"

echo "== starting the server on $BASE"
"$BIN" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs --max-time 1 "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:"; cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
curl -fs --max-time 2 "$BASE/healthz" >/dev/null || { echo "server not healthy after 10 s" >&2; exit 1; }

# One request by hand first: a refused batch (too big, bad token…) should stop the run with
# the server's reason, not produce a table of fast errors.
code=$(curl -s --max-time 10 -o "$WORK/first.json" -w '%{http_code}' \
  -H "Authorization: Bearer $INGEST_TOKEN" -H 'Content-Type: application/json' \
  --data-binary "@$WORK/batch.json" "$BASE/api/v1/metrics/events")
accepted=$(jq -r '.accepted // empty' "$WORK/first.json" 2>/dev/null || true)
if [[ $code != 202 || $accepted != "$BATCH" ]]; then
  echo "POST /api/v1/metrics/events answered $code (accepted: ${accepted:-none}), expected 202 with $BATCH:" >&2
  head -c 600 "$WORK/first.json" >&2; echo >&2
  exit 1
fi

# wrk prints latency as 812.00us / 3.21ms / 1.02s; in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }
# wrk's own -d plus slack: no step can hang the run.
secs=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600; print int(n) + 1 }')

INGEST=/api/v1/metrics/events
declare -A RPS P99 ERRORS EVENTS
PATHS=(/healthz "$INGEST")
for path in "${PATHS[@]}"; do
  if [[ $path == "$INGEST" ]]; then
    echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s scripts/ingest_batch.lua POST $path ($BATCH events each)"
    out=$(INGEST_BODY_FILE=$WORK/batch.json INGEST_TOKEN=$INGEST_TOKEN timeout $(( secs + 30 )) \
      wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$BASE$path")
  else
    echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $path"
    out=$(timeout $(( secs + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$BASE$path")
  fi
  echo "$out" | sed 's/^/   /'
  RPS[$path]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  P99[$path]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  socket=$(awk '/Socket errors:/ { for (i = 3; i <= NF; i++) n += $i + 0 } END { print n + 0 }' <<<"$out")
  if [[ $path == "$INGEST" ]]; then
    # Only 202s count as accepted: events/s = requests/s × share answered 202 × BATCH
    # (exactly requests/s × BATCH when every answer was a 202).
    INGEST_OUT=$out
    read -r seen ok non202 < <(awk '/^ingest-status:/ { for (i = 2; i <= 4; i++) { split($i, kv, "="); printf "%s ", kv[2] } print "" }' <<<"$out")
    ERRORS[$path]=$(( ${non202:-0} + socket ))
    EVENTS[$path]=$(awk -v r="${RPS[$path]}" -v s="${seen:-0}" -v a="${ok:-0}" -v b="$BATCH" \
      'BEGIN { printf "%.0f", (s > 0) ? r * (a / s) * b : 0 }')
  else
    ERRORS[$path]=$(( $(awk '/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' <<<"$out") + socket ))
    EVENTS[$path]=-
  fi
done
peak_rss=$(awk '/^VmHWM:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo "?")

# The window must have seen the events: its count over the last N events and over the
# time window.
code=$(curl -s --max-time 10 -o "$WORK/window.json" -w '%{http_code}' \
  -H "Authorization: Bearer $READ_TOKEN" "$BASE/api/v1/metrics/services/$SERVICE")
window_n=$(jq -r '.count // 0' "$WORK/window.json" 2>/dev/null || echo 0)
window_t=$(jq -r '.last_seconds.count // 0' "$WORK/window.json" 2>/dev/null || echo 0)
window_err=$(jq -r '.last_seconds.error_rate // 0' "$WORK/window.json" 2>/dev/null || echo 0)
window_p99=$(jq -r '.latency_ms.p99 // "-"' "$WORK/window.json" 2>/dev/null || echo -)
window_secs=$(jq -r '.window.seconds // "?"' "$WORK/window.json" 2>/dev/null || echo "?")
if [[ $code == 200 && $window_n -gt 0 && $window_t -gt 0 ]]; then window_ok=ok; else window_ok=FAILED; fi

echo
echo "BATCH=$BATCH events/request, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores (wrk shares them with the server)"
printf '%-24s %12s %10s %16s %11s %8s\n' path requests/s "p99 ms" "events/s acc." "vs healthz" errors
for path in "${PATHS[@]}"; do
  ratio=$(awk -v a="${RPS[$path]}" -v b="${RPS[/healthz]}" 'BEGIN { printf "%.1f%%", (b > 0) ? 100 * a / b : 0 }')
  printf '%-24s %12s %10s %16s %11s %8s\n' "$path" "${RPS[$path]}" "${P99[$path]}" "${EVENTS[$path]}" "$ratio" "${ERRORS[$path]}"
done
echo "ingest answers seen by wrk: ${seen:-0} (${ok:-0} × 202, ${non202:-0} other; $(awk '/^ingest-status:/ { sub(/^statuses=/, "by status ", $5); print $5 }' <<<"$INGEST_OUT"))"
awk '/^ingest-first-non202:/ { sub(/^ingest-first-non202: /, ""); print "first non-202 answer: " $0 }' <<<"$INGEST_OUT"
echo "server peak RSS: $peak_rss"
echo "GET /api/v1/metrics/services/$SERVICE: HTTP $code, count=$window_n (last-N window), last ${window_secs}s count=$window_t, error rate $window_err, p99 ${window_p99} ms: $window_ok"
echo "   (the server counted $window_t events; wrk saw $(( ${ok:-0} * BATCH )) accepted, plus $BATCH from the first request by hand and any answered after wrk stopped counting)"
verdict=$(awk -v e="${EVENTS[$INGEST]}" -v t="$TARGET_EVENTS_PER_S" 'BEGIN { print ((e >= t) ? "met" : "MISSED") }')
echo "target (≥ 1,000,000 events/s accepted at $CONNECTIONS connections, BATCH=$BATCH): $verdict (${EVENTS[$INGEST]} events/s)"
[[ $window_ok == ok ]] || exit 1
