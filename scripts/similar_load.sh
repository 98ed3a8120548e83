#!/usr/bin/env bash
# Similar-incident suggestions at scale: server time per keystroke request.
#
# Builds the release binary if it is missing, generates N incidents with `hindsight demo`,
# starts the server on a loopback port and types titles one character at a time (from the
# third character on), asking `GET /api/v1/incidents/similar?title=…&service=…&limit=5` after
# every keystroke, as the declare form's script would without its debounce (the worst case).
# Requests go one after the other on one keep-alive connection; the time of each is taken
# around the request on loopback. `/healthz` is timed the same way, same run, as the baseline.
# Then wrk gives throughput for one suggestion request against /healthz.
#
# Settings (environment):
#   N=100000            incidents to generate
#   DB=                 copy this database instead of generating one (must hold demo data)
#   PASSES=3            times every title is typed
#   DURATION=10s        wrk duration per path
#   CONNECTIONS=8       wrk connections
#   THREADS=2           wrk threads
#   PORT=               loopback port (default: a free one)
#   HINDSIGHT_BIN=      binary to test (default: $CARGO_TARGET_DIR/release/hindsight)
set -euo pipefail

N=${N:-100000}
PASSES=${PASSES:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
cd "$(dirname "$0")/.."
SCRIPT=similar_load.sh
# shellcheck source=scripts/common.sh
source scripts/common.sh
require_tools wrk curl python3
ensure_binary
pick_port
make_workdir similar

export HINDSIGHT_DATABASE_URL=sqlite://$WORK/hindsight.db
export HINDSIGHT_BIND=127.0.0.1:$PORT
export HINDSIGHT_BASE_URL=$BASE
export HINDSIGHT_LOG_FORMAT=json
export RUST_LOG=${RUST_LOG:-warn}

if [[ -n ${DB:-} ]]; then
  echo "== copying $DB"
  sqlite3 "$DB" ".backup '$WORK/hindsight.db'" 2>/dev/null || cp "$DB" "$WORK/hindsight.db"
else
  echo "== generating $N incidents"
  started=$(date +%s%N)
  "$BIN" demo --incidents "$N" --entries-per-incident 1 --items-per-incident 1
  echo "   took $(( ($(date +%s%N) - started) / 1000000 )) ms ($(du -h "$WORK/hindsight.db" | cut -f1) database)"
fi
printf '%s\n' load-test-password | "$BIN" user create --email load@example.com --name "Load Test" --role viewer --password-stdin >/dev/null
TOKEN=$("$BIN" token create --user load@example.com --name similar-load --scope read)

echo "== starting the server on $BASE"
"$BIN" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
  curl -fs "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:"; cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
INCIDENTS=$(sqlite3 "$WORK/hindsight.db" 'SELECT count(*) FROM incidents' 2>/dev/null || echo "$N")
echo "   $INCIDENTS incidents in the database"

echo "== typing titles, one request per keystroke ($PASSES passes), and /healthz as many times"
python3 - "$PORT" "$TOKEN" "$PASSES" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse
port, token, passes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
titles = [
    ("Checkout returns 502 after a deploy", "checkout"),
    ("Card payments declined for EU customers", "payments"),
    ("Search results stale after reindex", "search"),
    ("Login slow, CPU saturated on auth nodes", ""),
    ("Kafka broker disk full on orders", ""),
    ("Database connection pool exhausted", "checkout"),
    ("Certificate expired on the API gateway", ""),
    ("Webhook deliveries failing with timeouts", ""),
]
conn = http.client.HTTPConnection("127.0.0.1", port)
auth = {"Authorization": f"Bearer {token}"}
def timed(path, headers):
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t) * 1000
    if r.status != 200:
        sys.exit(f"GET {path} answered {r.status}: {body[:200]!r}")
    return ms, body
paths = []
for _ in range(passes):
    for title, service in titles:
        for n in range(3, len(title) + 1):
            q = {"title": title[:n], "limit": "5"}
            if service:
                q["service"] = service
            paths.append("/api/v1/incidents/similar?" + urllib.parse.urlencode(q))
for p in paths[:20]:  # warm the page cache
    timed(p, auth)
similar, found = [], 0
for p in paths:
    ms, body = timed(p, auth)
    similar.append(ms)
    found += len(json.loads(body)["items"])
healthz = [timed("/healthz", {})[0] for _ in paths]
def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]
print(f"   {len(similar)} keystroke requests, {found / len(similar):.1f} suggestions each on average")
print(f"   {'path':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for name, xs in (("/api/v1/incidents/similar", similar), ("/healthz", healthz)):
    print(f"   {name:<34} {pct(xs, .5):8.2f} {pct(xs, .99):8.2f} {max(xs):8.2f}")
print(f"   similar vs /healthz: p50 {pct(similar, .5) / pct(healthz, .5):.1f}×, p99 {pct(similar, .99) / pct(healthz, .99):.1f}×")
PY

to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }
declare -A RPS P99
SIMILAR="/api/v1/incidents/similar?title=database+connection+pool+exhau&service=checkout&limit=5"
for path in /healthz "$SIMILAR"; do
  echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $path"
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE$path")
  RPS[$path]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  P99[$path]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
  echo "   ${RPS[$path]} requests/s, p99 ${P99[$path]} ms${non2xx:+, $non2xx non-2xx}"
done
ratio=$(awk -v a="${RPS[$SIMILAR]}" -v b="${RPS[/healthz]}" 'BEGIN { printf "%.1f%%", (b > 0) ? 100 * a / b : 0 }')
echo
echo "N=$INCIDENTS incidents, $(nproc) cores: similar at $ratio of /healthz requests/s (wrk -c$CONNECTIONS)"
