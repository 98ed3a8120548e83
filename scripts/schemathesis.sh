#!/usr/bin/env bash
# The API description tested against the running app: schemathesis (in its own virtual
# environment) generates requests from /api/openapi.json and checks every answer against it.
#
# Uses the debug binary `cargo test` builds (builds nothing itself), starts it on a loopback
# port with a fresh database and the demo data, creates an admin with a write token, a viewer
# with a read token and an ingest token, then runs schemathesis with all checks once per token
# (every operation with each: the 401/403 answers are part of the contract too) and prints each
# run's summary. Any failure fails the script.
#
# Settings (environment):
#   EXAMPLES=10          maximum generated cases per operation and phase for the write token
#   OTHER_EXAMPLES=4     the same for the read and ingest tokens (mostly 403s)
#   SEED=                schemathesis seed (default: random; printed, so a failure can be replayed)
#   VENV=/var/tmp/hindsight-schemathesis   where the virtual environment lives (reused)
#   HINDSIGHT_BIN=       binary to test (default: $CARGO_TARGET_DIR/debug/hindsight)
#   PORT=                loopback port (default: a free one)
set -euo pipefail
SCRIPT=schemathesis.sh
cd "$(dirname "$0")/.."
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-10}
OTHER_EXAMPLES=${OTHER_EXAMPLES:-4}
SEED=${SEED:-$RANDOM$RANDOM}
VENV=${VENV:-/var/tmp/hindsight-schemathesis}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/hindsight-target}
HINDSIGHT_BIN=${HINDSIGHT_BIN:-$CARGO_TARGET_DIR/debug/hindsight}
source scripts/common.sh
BIN=$HINDSIGHT_BIN
CONFIG=$PWD/scripts/schemathesis.toml

[[ -x $BIN ]] || { echo "$SCRIPT: $BIN is missing (run cargo test or cargo build first)" >&2; exit 2; }
require_tools python3 curl

if [[ ! -x $VENV/bin/schemathesis ]] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

pick_port
make_workdir schemathesis
export HINDSIGHT_DATABASE_URL="sqlite://$WORK/hindsight.db"
export HINDSIGHT_BIND=127.0.0.1:$PORT
export HINDSIGHT_BASE_URL=$BASE
export HINDSIGHT_LOG_FORMAT=json
export RUST_LOG=warn

echo "== fresh database with the demo data"
"$BIN" demo >/dev/null
echo "schemathesis password" | "$BIN" user create --email st-admin@example.com --name "Schema Admin" --role admin --password-stdin >/dev/null
echo "schemathesis password" | "$BIN" user create --email st-viewer@example.com --name "Schema Viewer" --role viewer --password-stdin >/dev/null
WRITE=$("$BIN" token create --user st-admin@example.com --name schemathesis-write --scope write)
READ=$("$BIN" token create --user st-viewer@example.com --name schemathesis-read --scope read)
INGEST=$("$BIN" token create --user st-admin@example.com --name schemathesis-ingest --scope ingest)

"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$BASE/healthz" >/dev/null

failed=0
run() {
  local label=$1 token=$2 examples=$3
  echo
  echo "== schemathesis $SCHEMATHESIS_VERSION, $label token, up to $examples cases per operation and phase, seed $SEED"
  # Run from the work folder: schemathesis keeps a cache in ./.schemathesis.
  if ! (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$BASE/api/openapi.json" \
      --url "$BASE" \
      --checks all \
      --max-examples "$examples" \
      --seed "$SEED" \
      --workers 1 \
      --no-color \
      --request-timeout 10 \
      --suppress-health-check too_slow,filter_too_much \
      --generation-database none \
      --report junit --report-dir "$WORK/report-$label" \
      -H "Authorization: Bearer $token"); then
    failed=1
  fi
}
start=$SECONDS
run write "$WRITE" "$EXAMPLES"
run read "$READ" "$OTHER_EXAMPLES"
run ingest "$INGEST" "$OTHER_EXAMPLES"

echo
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "== the server stopped during the run; its last log lines:"
  tail -20 "$WORK/server.log"
  failed=1
fi
if grep -q '"level":"ERROR"' "$WORK/server.log"; then
  echo "== server errors during the run:"
  grep '"level":"ERROR"' "$WORK/server.log" | head -20
  failed=1
fi
echo "== schemathesis: $((SECONDS - start)) s for three runs (seed $SEED)"
if ((failed)); then
  echo "$SCRIPT: the API does not match its description (see above)" >&2
  exit 1
fi
