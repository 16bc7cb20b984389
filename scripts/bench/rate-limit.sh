#!/usr/bin/env bash
# Benchmark: the cost of the per-seller rate limiter on GET /api/products/{id}.
#
# Four cases, each run ROUNDS times interleaved (1 seller off, on, 1,000 sellers off, on,
# then again): the limiter off (RATE_LIMIT_ENABLED=false) and on with Redis, with one seller
# and with 1,000 sellers (one product each, requests cycle through them). Every run starts the
# server fresh, warms up, then runs wrk. For the "on" runs the Redis commands per request
# come from INFO commandstats deltas over the measured wrk run. Each run also records the CPU
# time per request of the server, Redis, PostgreSQL and wrk (they share the machine's cores)
# and whether a compiler was running (another build skews every figure; runs wait for one
# to finish, within QUIET_BUDGET, and are flagged otherwise). Best of ROUNDS = highest req/s.
#
# The limit is set far above the load (RATE_LIMIT_STANDARD=1000000, the maximum), so no
# request is rejected: this measures the limiter's cost, not rejections.
#
# Usage: scripts/bench/rate-limit.sh            (from anywhere; builds nothing)
# Environment (defaults in brackets):
#   BIN          server binary [target/release/product-api]; copied first so a rebuild
#                during the run cannot change it
#   BENCH_PORT   [3901]    BENCH_DB [bench_products] (dropped and recreated)
#   REDIS_URL    [redis://127.0.0.1:6379]
#   THREADS [2]  CONNECTIONS [64]  DURATION [15s]  WARMUP [3s]  ROUNDS [2]
#   OUT          directory for logs and wrk output [a fresh /tmp/bench-rate-limit.*]
#   QUIET_BUDGET seconds in all that runs may wait for compilers (rustc, cc1, ld, cargo)
#                to finish before starting [300]; runs that still overlap one are flagged
#   BENCH_COMMIT the commit BIN was built from, if not HEAD [git rev-parse --short HEAD]
#   DB_SSLMODE   the server's sslmode to PostgreSQL on loopback [disable]
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis; starts them via
# scripts/services.sh if they are down. Installs wrk from Debian's packages if missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

BENCH_PORT=${BENCH_PORT:-3901}
BENCH_DB=${BENCH_DB:-bench_products}
DB_URL=postgres://postgres@127.0.0.1:5432/$BENCH_DB?sslmode=$DB_SSLMODE
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-2}
QUIET_BUDGET=${QUIET_BUDGET:-300}
SELLERS=1000
OUT=${OUT:-$(mktemp -d /tmp/bench-rate-limit.XXXXXX)}
LUA=$ROOT/scripts/bench/load.lua
BASE=http://127.0.0.1:$BENCH_PORT


[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
command -v redis-cli >/dev/null || apt_install redis-tools
command -v psql >/dev/null || apt_install postgresql-client
ensure_postgres
ensure_redis

# The commit is taken now: HEAD may move while the benchmark runs.
COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if [ -z "${BENCH_COMMIT:-}" ] &&
  [ "$(stat -c %Y "$BIN")" -lt "$(git log -1 --format=%ct HEAD 2>/dev/null || echo 0)" ]; then
  log "warning: $BIN is older than HEAD's commit; set BENCH_COMMIT to the commit it was built from"
  COMMIT="$COMMIT (binary older than this commit!)"
fi
DIRTY=
if [ -z "${BENCH_COMMIT:-}" ] && git status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
  DIRTY=", working tree modified"
fi

mkdir -p "$OUT"
cp "$BIN" "$OUT/product-api"
SERVER=$OUT/product-api
log "output in $OUT"

trap stop_server EXIT

# start_server off|on NAME: a fresh server, limiter off or on (Redis); waits until it serves.
start_server() {
  local mode=$1 name=$2 limiter=()
  case $mode in
    off) limiter=(RATE_LIMIT_ENABLED=false) ;;
    on) limiter=(RATE_LIMIT_ENABLED=true "REDIS_URL=$REDIS_URL") ;;
    *) die "start_server: mode $mode" ;;
  esac
  env -u REDIS_URL PORT="$BENCH_PORT" HOST=127.0.0.1 DATABASE_URL="$DB_URL" \
    DATABASE_MAX_CONNECTIONS=32 RATE_LIMIT_STANDARD=1000000 LOG_FORMAT=json RUST_LOG=warn \
    "${limiter[@]}" "$SERVER" >"$OUT/server-$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    if curl -sf -o /dev/null "$BASE/api/openapi.json"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/server-$name.log"
    sleep 0.2
  done
  die "server did not come up in 30 s; see $OUT/server-$name.log"
}

# Redis: "command calls" per line, and one INFO stats field.
redis_cmdstats() {
  redis-cli -u "$REDIS_URL" INFO commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' | sort
}
redis_stat() { redis-cli -u "$REDIS_URL" INFO stats | tr -d '\r' | sed -n "s/^$1://p"; }
TICKS=$(getconf CLK_TCK)

# Compiler processes running now (another build on this machine skews every figure).
busy() { pgrep -c -x 'rustc|cc1|cc1plus|ld|cargo' 2>/dev/null || true; }
# Waits, within what is left of QUIET_BUDGET, until no compiler runs.
wait_quiet() {
  while [ "$(busy)" != 0 ] && [ "$QUIET_BUDGET" -gt 0 ]; do
    sleep 5
    QUIET_BUDGET=$((QUIET_BUDGET - 5))
  done
}

# ---- database and seed data --------------------------------------------------------------
recreate_database "$BENCH_DB"

log "seeding one product for each of seller-b0 … seller-b$((SELLERS - 1))"
start_server off seed # applies the migrations
PAIRS_ALL=$OUT/pairs-$SELLERS.txt
: >"$PAIRS_ALL"
for i in $(seq 0 $((SELLERS - 1))); do
  body=$(curl -sf -X POST "$BASE/api/products" -H "X-Seller-Id: seller-b$i" \
    -H 'Content-Type: application/json' \
    -d '{"name":"Bench","price":9.99,"quantity":5,"category":"Bench"}') ||
    die "POST /api/products for seller-b$i failed"
  id=$(printf '%s' "$body" | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
  [ -n "$id" ] || die "no id in POST response: $body"
  printf 'seller-b%s %s\n' "$i" "$id" >>"$PAIRS_ALL"
done
stop_server
PAIRS_ONE=$OUT/pairs-1.txt
head -n 1 "$PAIRS_ALL" >"$PAIRS_ONE"

# ---- runs --------------------------------------------------------------------------------
RESULTS=$OUT/results.tsv # sellers mode round rps p50_us p99_us requests non2xx sockerr evalsha/req other/req newconns busy cpu
: >"$RESULTS"

run_case() { # run_case off|on SELLERS ROUND
  local mode=$1 sellers=$2 round=$3 pairs name
  pairs=$OUT/pairs-$sellers.txt
  name=$mode-$sellers-r$round
  wait_quiet
  start_server "$mode" "$name"

  # The configuration is what we think: 200 for a sample pair, limit headers iff "on".
  local seller id headers
  read -r seller id <"$pairs"
  headers=$(curl -s -D - -o /dev/null -H "X-Seller-Id: $seller" "$BASE/api/products/$id")
  head -n 1 <<<"$headers" | grep -q ' 200' || die "$name: GET not 200: $headers"
  if grep -qi '^x-ratelimit-limit:' <<<"$headers"; then
    [ "$mode" = on ] || die "$name: limiter headers present with the limiter off"
  else
    [ "$mode" = off ] || die "$name: no limiter headers with the limiter on (Redis down?)"
  fi

  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$BASE" -- get "$pairs" \
    >"$OUT/wrk-$name-warmup.txt" 2>&1

  # CPU used during the run by the server, Redis, PostgreSQL (all its processes; the pool's
  # backends already exist after the warm-up) and wrk, per request: where the 2 cores go.
  local redis_pid pg_pids cpu_before
  redis_pid=$(redis-cli -u "$REDIS_URL" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
  pg_pids=$(pgrep -x postgres | tr '\n' ' ')
  # shellcheck disable=SC2086
  cpu_before="$(cpu_ticks "$SERVER_PID") $(cpu_ticks "$redis_pid") $(cpu_ticks $pg_pids)"

  local before_stats before_conns busy_before busy_after
  before_stats=$(redis_cmdstats)
  before_conns=$(redis_stat total_connections_received)
  busy_before=$(busy)
  log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
  local TIMEFORMAT='%U %S' # bash's `time`: wrk's own user and system CPU seconds
  { time wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$BASE" -- get "$pairs" \
    >"$OUT/wrk-$name.txt" 2>&1; } 2>"$OUT/wrk-$name.cpu"
  busy_after=$(busy)
  local cpu_after
  # shellcheck disable=SC2086
  cpu_after="$(cpu_ticks "$SERVER_PID") $(cpu_ticks "$redis_pid") $(cpu_ticks $pg_pids)"
  local after_stats after_conns
  after_conns=$(redis_stat total_connections_received)
  after_stats=$(redis_cmdstats)
  stop_server

  local bench
  bench=$(grep '^BENCH ' "$OUT/wrk-$name.txt") || die "$name: no BENCH line; see $OUT/wrk-$name.txt"
  field() { printf '%s\n' "$bench" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  local requests non2xx sockerr
  requests=$(field requests)
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$OUT/wrk-$name.txt")
  non2xx=${non2xx:-0}
  sockerr=$(($(field err_connect) + $(field err_read) + $(field err_write) + $(field err_timeout)))

  # Commandstats delta. Commands run by the script (TIME, ZREMRANGEBYSCORE, ZCARD, ZADD, ZRANGE,
  # PEXPIRE) are counted by Redis too but travel inside the EVALSHA round trip; "other" is any
  # other command sent in the run (our own INFO excluded): extra round trips, or other clients.
  local deltas evalsha other
  deltas=$(join -a 2 -e 0 -o 0,1.2,2.2 <(printf '%s\n' "$before_stats") \
    <(printf '%s\n' "$after_stats") | awk '{ d = $3 - $2; if (d > 0) print $1, d }')
  printf '%s\n' "$deltas" >"$OUT/redis-$name.txt"
  evalsha=$(printf '%s\n' "$deltas" | awk '$1 == "evalsha" { print $2 }')
  other=$(printf '%s\n' "$deltas" | awk '$1 !~ /^(evalsha|time|zremrangebyscore|zcard|zadd|zrange|pexpire|info)$/ { s += $2 } END { print s + 0 }')
  # New Redis connections in the run, less the one redis-cli made to read after_conns (the
  # INFO calls are made before before_conns or after after_conns): 0 means the server reused
  # its connection, no connect or pool round trips per request. Computed in the printf below.
  local cpu_us
  cpu_us=$(awk -v b="$cpu_before" -v a="$cpu_after" -v r="$requests" -v hz="$TICKS" \
    -v w="$(cat "$OUT/wrk-$name.cpu")" 'BEGIN {
    split(b, x, " "); split(a, y, " "); split(w, c, " ")
    for (k = 1; k <= 3; k++) printf "%.0f/", (y[k] - x[k]) * 1e6 / hz / r
    printf "%.0f", (c[1] + c[2]) * 1e6 / r
  }')
  local per_req other_req
  per_req=$(awk -v e="${evalsha:-0}" -v r="$requests" 'BEGIN { printf "%.3f", e / r }')
  other_req=$(awk -v e="$other" -v r="$requests" 'BEGIN { printf "%.4f", e / r }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sellers" "$mode" "$round" \
    "$(field rps)" "$(field p50_us)" "$(field p99_us)" "$requests" "$non2xx" "$sockerr" \
    "$per_req" "$other_req" "$((after_conns - before_conns - 1))" "$busy_before/$busy_after" "$cpu_us" \
    >>"$RESULTS"
}

STARTED=$(date -u +%FT%TZ)
for round in $(seq "$ROUNDS"); do
  for sellers in 1 "$SELLERS"; do
    run_case off "$sellers" "$round"
    run_case on "$sellers" "$round"
  done
done

# ---- report ------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

echo
echo "- Machine: $(nproc) cores ($cpu), $mem RAM; wrk, the server, PostgreSQL and Redis share them"
echo "- Commit: $COMMIT$DIRTY (at start); binary: $BIN (sha256 $(sha256sum "$SERVER" | cut -c1-12))"
echo "- Started: $STARTED; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency after a $WARMUP warm-up, fresh server per run"
echo
echo "All runs (chronological within each round; 'busy' = compiler processes at start/end of the run):"
echo
echo "| Sellers | Limiter | Run | Requests/s | p50 (ms) | p99 (ms) | Requests | Non-2xx | Socket errors | EVALSHA/req | Other Redis cmds/req | New Redis conns | CPU µs/req server/Redis/PG/wrk | busy |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
while IFS=$'\t' read -r s m r rps p50 p99 req n2 se ev ot nc busy cpu; do
  if [ "$m" = off ]; then ev=—; ot=—; nc=—; fi
  printf '| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$s" "$m" "$r" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$req" "$n2" "$se" "$ev" "$ot" "$nc" "$cpu" "$busy"
done <"$RESULTS"

echo
echo "Best of $ROUNDS runs per case (the run with the highest requests/s, its own p50/p99):"
echo
echo "| Sellers | Off: req/s | Off: p50 / p99 (ms) | On (Redis): req/s | On: p50 / p99 (ms) | On/off throughput | EVALSHA/req |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for sellers in 1 "$SELLERS"; do
  best() { awk -F'\t' -v s="$sellers" -v m="$1" '$1 == s && $2 == m && $4 > b { b = $4; l = $0 } END { print l }' "$RESULTS"; }
  IFS=$'\t' read -r _ _ _ orps op50 op99 _ <<<"$(best off)"
  IFS=$'\t' read -r _ _ _ nrps np50 np99 _ _ _ nev _ <<<"$(best on)"
  printf '| %s | %.0f | %s / %s | %.0f | %s / %s | %s | %s |\n' "$sellers" "$orps" \
    "$(ms "$op50")" "$(ms "$op99")" "$nrps" "$(ms "$np50")" "$(ms "$np99")" \
    "$(awk -v a="$nrps" -v b="$orps" 'BEGIN { printf "%.1f%%", 100 * a / b }')" "$nev"
done
echo
log "raw wrk output, server logs and Redis deltas in $OUT"
