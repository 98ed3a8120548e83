#!/usr/bin/env bash
# Load test of the pages people open most, on a large generated database.
#
# Builds the release binary if it is missing, generates N incidents with `hindsight demo`,
# starts the server on a loopback port, signs in with curl, then runs wrk against /healthz,
# the action-item board (default view and overdue filter; 3 items per generated incident),
# the incident list, one incident page, the weekly review and a search (one after the other,
# same settings) and prints requests/s, p99 latency and throughput relative to /healthz.
# Before wrk it times cold requests (curl, loopback) of the weekly review (distinct weeks, so
# the report cache never answers) and of searches (never cached).
#
# Settings (environment):
#   N=100000            incidents to generate
#   ENTRIES=10          timeline entries per generated incident
#   ITEMS=3             action items per generated incident
#   DB=                 copy this database instead of generating one (must hold the demo data)
#   WEEK=               weekly review to load (default: the last complete week)
#   SEARCH=connection+pool  search words for the search path
#   DURATION=15s        wrk duration per path
#   CONNECTIONS=32      wrk connections
#   THREADS=2           wrk threads
#   INCIDENT=INC-50000  incident page to load (default: the middle one, INC-N/2)
#   PORT=               loopback port (default: a free one)
#   HINDSIGHT_BIN=      binary to test (default: $CARGO_TARGET_DIR/release/hindsight)
# Targets checked (from the issue): list ≥ 25% of /healthz requests/s, list p99 < 25 ms.
set -euo pipefail

N=${N:-100000}
ENTRIES=${ENTRIES:-10}
ITEMS=${ITEMS:-3}
SEARCH=${SEARCH:-connection+pool}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
INCIDENT=${INCIDENT:-INC-$(( N / 2 > 0 ? N / 2 : 1 ))}
cd "$(dirname "$0")/.."
SCRIPT=load.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh
require_tools wrk curl
ensure_binary
pick_port
make_workdir load

export HINDSIGHT_DATABASE_URL=sqlite://$WORK/hindsight.db
export HINDSIGHT_BIND=127.0.0.1:$PORT
export HINDSIGHT_BASE_URL=$BASE
export HINDSIGHT_LOG_FORMAT=json
export RUST_LOG=${RUST_LOG:-warn}

if [[ -n ${DB:-} ]]; then
  echo "== copying $DB"
  sqlite3 "$DB" ".backup '$WORK/hindsight.db'" 2>/dev/null || cp "$DB" "$WORK/hindsight.db"
else
  echo "== generating $N incidents ($ENTRIES timeline entries and $ITEMS action items each)"
  started=$(date +%s%N)
  "$BIN" demo --incidents "$N" --entries-per-incident "$ENTRIES" --items-per-incident "$ITEMS"
  echo "   took $(( ($(date +%s%N) - started) / 1000000 )) ms ($(du -h "$WORK/hindsight.db" | cut -f1) database)"
fi

EMAIL=load@example.com
PASSWORD=load-test-password
printf '%s\n' "$PASSWORD" | "$BIN" user create --email "$EMAIL" --name "Load Test" --role viewer --password-stdin >/dev/null

echo "== starting the server on $BASE"
"$BIN" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:"; cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
curl -fs "$BASE/healthz" >/dev/null || { echo "server not healthy after 10 s" >&2; exit 1; }

echo "== signing in"
status=$(curl -s -o /dev/null -w '%{http_code}' -c "$WORK/cookies" -H "Origin: $BASE" \
  --data-urlencode "email=$EMAIL" --data-urlencode "password=$PASSWORD" "$BASE/login")
SESSION=$(awk '$6 == "hindsight_session" { print $7 }' "$WORK/cookies")
if [[ $status != 303 || -z $SESSION ]]; then
  echo "login failed: HTTP $status" >&2; exit 1
fi
COOKIE="Cookie: hindsight_session=$SESSION"
WEEK=${WEEK:-$(python3 -c 'import datetime as d; t=d.date.today()-d.timedelta(days=7); y,w,_=t.isocalendar(); print(f"{y}-W{w:02d}")')}
WEEKLY="/reports/weekly?week=$WEEK"
SEARCH_PATH="/search?q=$SEARCH"
for path in /incidents "/incidents/$INCIDENT" /action-items "/action-items?due=overdue" "$WEEKLY" "$SEARCH_PATH"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "$COOKIE" "$BASE$path")
  [[ $code == 200 ]] || { echo "GET $path answered $code, expected 200" >&2; exit 1; }
done

# Server time of cold requests: each week is built once (then cached until the next write),
# searches are never cached. curl on loopback adds well under a millisecond.
cold() { curl -s -o /dev/null -w '%{time_total}' -H "$COOKIE" "$BASE$1" | awk '{ printf "%.1f", $1 * 1000 }'; }
echo "== cold weekly reviews (ms), 8 different weeks"
weekly_ms=()
for back in 2 3 4 5 6 7 8 9; do
  w=$(python3 -c "import datetime as d; t=d.date.today()-d.timedelta(weeks=$back); y,k,_=t.isocalendar(); print(f'{y}-W{k:02d}')")
  weekly_ms+=("$(cold "/reports/weekly?week=$w")")
done
echo "   ${weekly_ms[*]}"
echo "== searches (ms)"
search_ms=()
for q in connection+pool database timeout deploy+rollback "disk+full" certificate "%22pool" "NEAR(%3Cscript%3E"; do
  search_ms+=("$(cold "/search?q=$q")")
done
echo "   ${search_ms[*]}"
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
WEEKLY_COLD=$(median "${weekly_ms[@]}")
SEARCH_COLD=$(median "${search_ms[@]}")

# wrk prints latency as 812.00us / 3.21ms / 1.02s; in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }

declare -A RPS P99 ERRORS
PATHS=(/healthz /incidents "/incidents/$INCIDENT" /action-items "/action-items?due=overdue" "$WEEKLY" "$SEARCH_PATH")
for path in "${PATHS[@]}"; do
  echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $path"
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$COOKIE" "$BASE$path")
  echo "$out" | sed 's/^/   /'
  RPS[$path]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  P99[$path]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  ERRORS[$path]=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { for (i = 3; i <= NF; i++) n += $i + 0 } END { print n + 0 }' <<<"$out")
done

echo
echo "N=$N incidents (with $((N * ENTRIES)) timeline entries and $((N * ITEMS)) action items), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores"
printf '%-36s %12s %10s %10s %8s\n' path requests/s "p99 ms" "vs healthz" errors
for path in "${PATHS[@]}"; do
  ratio=$(awk -v a="${RPS[$path]}" -v b="${RPS[/healthz]}" 'BEGIN { printf "%.1f%%", (b > 0) ? 100 * a / b : 0 }')
  printf '%-36s %12s %10s %10s %8s\n' "$path" "${RPS[$path]}" "${P99[$path]}" "$ratio" "${ERRORS[$path]}"
done
verdict=$(awk -v l="${RPS[/incidents]}" -v h="${RPS[/healthz]}" -v p="${P99[/incidents]}" \
  'BEGIN { print ((l >= 0.25 * h && p < 25) ? "met" : "MISSED") }')
echo "target (list ≥ 25% of /healthz, list p99 < 25 ms at $CONNECTIONS connections): $verdict"
echo "cold weekly review: median ${WEEKLY_COLD} ms (target ≤ 50 ms): $(awk -v v="$WEEKLY_COLD" 'BEGIN { print (v <= 50) ? "met" : "MISSED" }')"
echo "search: median ${SEARCH_COLD} ms (target ≤ 30 ms): $(awk -v v="$SEARCH_COLD" 'BEGIN { print (v <= 30) ? "met" : "MISSED" }')"
