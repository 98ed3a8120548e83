#!/usr/bin/env bash
# Load test of OTLP trace ingest: POST /v1/traces with a pre-encoded protobuf batch of
# BATCH server spans, in the same run as /healthz and the JSON events endpoint
# (POST /api/v1/metrics/events with BATCH events), same wrk settings, one after the other.
#
# Starts the release binary on a loopback port with an empty temporary database, creates an
# admin with ingest and read tokens, encodes the batch with the OpenTelemetry protobuf types
# (scripts/otlp_batch.py, from the SDK venv .ci/run creates), and prints for each path
# requests/s, p99 per request, items/s accepted, and ratios against /healthz and the JSON
# endpoint; then checks through GET /api/v1/metrics/services/$SERVICE that the window
# counted the spans.
#
# Settings (environment):
#   BATCH=1000          spans (and events) per request
#   DURATION=15s        wrk duration per path
#   CONNECTIONS=8       wrk connections
#   THREADS=2           wrk threads
#   SERVICE=checkout    OTLP service.name (the JSON batch goes to $SERVICE-json)
#   HINDSIGHT_OTEL_VENV=/var/tmp/hindsight-otel-venv   python with opentelemetry-proto
#   HINDSIGHT_BIN=      binary to test (default: $CARGO_TARGET_DIR/release/hindsight)
# Target (issue 14): ≥ 1,000,000 spans/s, p99 per batch < 20 ms at 8 connections.
set -euo pipefail

BATCH=${BATCH:-1000}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
SERVICE=${SERVICE:-checkout}
VENV=${HINDSIGHT_OTEL_VENV:-/var/tmp/hindsight-otel-venv}
cd "$(dirname "$0")/.."
SCRIPT=otlp_load.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh
LUA=$PWD/scripts/post_body.lua
require_tools wrk curl jq awk
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || { echo "otlp_load.sh: BATCH must be a whole number ≥ 1" >&2; exit 2; }
[[ -x $VENV/bin/python ]] || { echo "otlp_load.sh: no venv at $VENV; see .ci/run (opentelemetry-sdk)" >&2; exit 2; }
ensure_binary
pick_port
make_workdir otlp

cp "$BIN" "$WORK/hindsight"
BIN=$WORK/hindsight
export HINDSIGHT_DATABASE_URL=sqlite://$WORK/hindsight.db
export HINDSIGHT_BIND=127.0.0.1:$PORT
export HINDSIGHT_BASE_URL=$BASE
export HINDSIGHT_LOG_FORMAT=json
export RUST_LOG=${RUST_LOG:-warn}

EMAIL=otlp-load@example.com
printf '%s\n' "otlp-load-password" | "$BIN" user create --email "$EMAIL" --name "OTLP Load" --role admin --password-stdin >/dev/null
INGEST_TOKEN=$("$BIN" token create --user "$EMAIL" --name load --scope ingest | tail -n1)
READ_TOKEN=$("$BIN" token create --user "$EMAIL" --name load-read --scope read | tail -n1)

echo "== encoding $BATCH spans (protobuf) and $BATCH events (JSON)"
"$VENV/bin/python" scripts/otlp_batch.py "$BATCH" "$SERVICE" "$WORK/spans.pb"
awk -v n="$BATCH" -v service="$SERVICE-json" 'BEGIN { srand(42)
  printf "{\"service\":\"%s\",\"events\":[", service
  for (i = 0; i < n; i++) { r = rand()
    if (r < 0.90) ms = 2 + rand() * 58; else if (r < 0.99) ms = 60 + rand() * 440; else ms = 500 + rand() * 2000
    printf "%s{\"latency_ms\":%.1f,\"ok\":%s}", (i ? "," : ""), ms, (rand() < 0.03) ? "false" : "true" }
  printf "]}" }' >"$WORK/events.json"
echo "   spans: $(wc -c <"$WORK/spans.pb") bytes; events: $(wc -c <"$WORK/events.json") bytes"

echo "== starting the server on $BASE"
"$BIN" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs --max-time 1 "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:"; cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done

# One OTLP request by hand first: a refusal stops the run with the server's reason.
code=$(curl -s --max-time 10 -o "$WORK/first.bin" -w '%{http_code}' \
  -H "Authorization: Bearer $INGEST_TOKEN" -H 'Content-Type: application/x-protobuf' \
  --data-binary "@$WORK/spans.pb" "$BASE/v1/traces")
if [[ $code != 200 || -s $WORK/first.bin ]]; then
  echo "POST /v1/traces answered $code with $(wc -c <"$WORK/first.bin") bytes (expected 200, empty: full success)" >&2
  exit 1
fi

to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }
secs=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print int(n) + 1 }')

OTLP=/v1/traces
EVENTS=/api/v1/metrics/events
declare -A RPS P99 ITEMS ERRORS
PATHS=(/healthz "$EVENTS" "$OTLP")
for path in "${PATHS[@]}"; do
  case $path in
    "$OTLP") body=$WORK/spans.pb type=application/x-protobuf ok=200 ;;
    "$EVENTS") body=$WORK/events.json type=application/json ok=202 ;;
    *) body= ;;
  esac
  if [[ -n $body ]]; then
    echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s scripts/post_body.lua POST $path ($BATCH per request)"
    out=$(POST_BODY_FILE=$body POST_TOKEN=$INGEST_TOKEN POST_CONTENT_TYPE=$type POST_OK_STATUS=$ok \
      timeout $(( secs + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$BASE$path")
    read -r seen acc other < <(awk '/^post-status:/ { for (i = 2; i <= 4; i++) { split($i, kv, "="); printf "%s ", kv[2] } print "" }' <<<"$out")
    RPS[$path]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    ITEMS[$path]=$(awk -v r="${RPS[$path]}" -v s="${seen:-0}" -v a="${acc:-0}" -v b="$BATCH" 'BEGIN { printf "%.0f", (s > 0) ? r * (a / s) * b : 0 }')
    ERRORS[$path]=${other:-0}
  else
    echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $path"
    out=$(timeout $(( secs + 30 )) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$BASE$path")
    RPS[$path]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    ITEMS[$path]=-
    ERRORS[$path]=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' <<<"$out")
  fi
  echo "$out" | grep -E "Latency|99%|Requests/sec|post-|Socket" | sed 's/^/   /'
  P99[$path]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
done
peak_rss=$(awk '/^VmHWM:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo "?")

code=$(curl -s --max-time 10 -o "$WORK/window.json" -w '%{http_code}' \
  -H "Authorization: Bearer $READ_TOKEN" "$BASE/api/v1/metrics/services/$SERVICE")
window_t=$(jq -r '.last_seconds.count // 0' "$WORK/window.json" 2>/dev/null || echo 0)
window_err=$(jq -r '.last_seconds.error_rate // 0' "$WORK/window.json" 2>/dev/null || echo 0)

echo
echo "BATCH=$BATCH per request, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores (wrk shares them with the server)"
printf '%-24s %12s %10s %14s %11s %11s %7s\n' path requests/s "p99 ms" "items/s acc." "vs healthz" "vs events" errors
for path in "${PATHS[@]}"; do
  vs_h=$(awk -v a="${RPS[$path]}" -v b="${RPS[/healthz]}" 'BEGIN { printf "%.1f%%", (b > 0) ? 100 * a / b : 0 }')
  vs_e=$(awk -v a="${RPS[$path]}" -v b="${RPS[$EVENTS]}" 'BEGIN { printf "%.2f×", (b > 0) ? a / b : 0 }')
  printf '%-24s %12s %10s %14s %11s %11s %7s\n' "$path" "${RPS[$path]}" "${P99[$path]}" "${ITEMS[$path]}" "$vs_h" "$vs_e" "${ERRORS[$path]}"
done
echo "server peak RSS: $peak_rss"
echo "window of $SERVICE: HTTP $code, last-T count $window_t, error rate $window_err"
spans=${ITEMS[$OTLP]}
verdict=$(awk -v s="$spans" -v p="${P99[$OTLP]}" 'BEGIN { print ((s >= 1000000 && p < 20) ? "met" : "MISSED") }')
echo "target (≥ 1,000,000 spans/s and p99 < 20 ms per batch at $CONNECTIONS connections): $verdict ($spans spans/s, p99 ${P99[$OTLP]} ms)"
[[ $code == 200 && $window_t -gt 0 ]] || exit 1
