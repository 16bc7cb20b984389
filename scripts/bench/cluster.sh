#!/usr/bin/env bash
# Benchmark: the same load straight at one instance, through HAProxy to that one instance, and
# through HAProxy to three instances on this machine, in one run: what the balancer costs, and
# what sharing the Redis limiter and event bus (and PostgreSQL and the broker) across instances
# costs. Three instances on two cores cannot be faster than one; they must not be much slower.
#
# Configurations, every instance with the Redis limiter and event bus (REDIS_URL) and the Kafka
# relay (KAFKA_BROKERS), all on one PostgreSQL database, Redis and broker:
#   direct-1  wrk straight at one instance (the baseline: no balancer)
#   lb-1      wrk at HAProxy with that one instance as its only server (deploy/haproxy.cfg
#             rendered into OUT with the app2 and app3 server lines removed)
#   lb-3      wrk at HAProxy with three instances (deploy/haproxy.cfg as committed)
# Cases, each wrk -t2 -c64 for DURATION after a WARMUP, fresh instances (and balancer) per run,
# requests from load.lua cycling through 1,000 sellers with one product each (seeded as load.sh
# seeds them):
#   get     GET /api/products/{id}
#   create  POST /api/products (each with its outbox event, relayed to the broker)
# Order: for each round, get then create, each through direct-1, lb-1, lb-3. Created products
# stay, so each create run starts on a table larger by the previous ones' rows.
# The limit is 1,000,000/s, so nothing is rejected: the limiter's cost is in, not its 429s.
# DATABASE_MAX_CONNECTIONS is POOL split over the instances (32 for one, 11 each for three),
# so PostgreSQL serves the same number of connections in every configuration.
# Instances run with SHUTDOWN_DELAY_SECS=0 (none is stopped under load; stops stay quick) and
# a DATA_DIR each under OUT.
# Before each warm-up the run waits (at most OUTBOX_WAIT seconds) for the relay to empty the
# outbox, so no run publishes an earlier run's events. Each run records the CPU time per
# request of the instances, HAProxy, Redis, PostgreSQL (the backends on the benchmark's
# database) and wrk, the requests each instance served (from its /metrics), the outbox backlog
# when wrk stops, and compiler processes running at its start and end (they skew every figure).
# Ratios are of the mean requests/s over ROUNDS; the summary is printed and saved in OUT.
#
# Usage: scripts/bench/cluster.sh    (builds nothing: cargo build --release first)
#   e.g. a short check: DURATION=2s WARMUP=1s scripts/bench/cluster.sh
# Environment (defaults in brackets):
#   BIN [target/release/product-api] (copied into OUT first: a rebuild cannot change it mid-run)
#   BENCH_PORT [3921] the instances listen on BENCH_PORT, +1, +2   LB_PORT [3920] HAProxy
#   BENCH_DB [bench_cluster]  HAPROXY_CFG [deploy/haproxy.cfg]  POOL [32]  ROUNDS [1]
#   DURATION [15s]  WARMUP [3s]  CONNECTIONS [64]  OUTBOX_WAIT [120]  REDIS_URL [redis://127.0.0.1:6379]
#   KAFKA_BROKERS [a tansu started by scripts/tansu for the run]  OUT [a fresh /tmp/bench-cluster.*]
#   BENCH_COMMIT [git rev-parse --short HEAD]  DB_SSLMODE [disable]
#   THREADS_3 [unset: Tokio's default, one worker thread per core] worker threads of each of
#             the three instances (TOKIO_WORKER_THREADS)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

BENCH_PORT=${BENCH_PORT:-3921}
LB_PORT=${LB_PORT:-3920}
BENCH_DB=${BENCH_DB:-bench_cluster}
DB_URL="postgres://postgres@127.0.0.1:5432/$BENCH_DB?sslmode=$DB_SSLMODE"
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
HAPROXY_CFG=${HAPROXY_CFG:-$ROOT/deploy/haproxy.cfg}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-64}
POOL=${POOL:-32}
ROUNDS=${ROUNDS:-1}
THREADS_3=${THREADS_3:-}
OUTBOX_WAIT=${OUTBOX_WAIT:-120}
OUT=${OUT:-$(mktemp -d /tmp/bench-cluster.XXXXXX)}
LUA=$ROOT/scripts/bench/load.lua
SELLERS=1000
CONFIGS=(direct-1 lb-1 lb-3)
CASES=(get create)

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
[ -f "$HAPROXY_CFG" ] || die "no HAProxy configuration at $HAPROXY_CFG (deploy/haproxy.cfg, the balancer's committed configuration)"
command -v wrk >/dev/null || apt_install wrk
command -v haproxy >/dev/null || apt_install haproxy
command -v curl >/dev/null || apt_install curl
command -v redis-cli >/dev/null || apt_install redis-tools
command -v psql >/dev/null || apt_install postgresql-client
ensure_postgres
ensure_redis
for port in "$LB_PORT" "$BENCH_PORT" $((BENCH_PORT + 1)) $((BENCH_PORT + 2)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is already in use (set BENCH_PORT / LB_PORT)"
  fi
done

# The commit is taken now: HEAD may move while the benchmark runs.
COMMIT=${BENCH_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=
if [ -z "${BENCH_COMMIT:-}" ] && git status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
  DIRTY=", working tree modified"
fi

mkdir -p "$OUT"
cp "$BIN" "$OUT/product-api"
SERVER=$OUT/product-api
log "output in $OUT"

# The balancer's configurations: the committed one for three instances, and a copy without the
# app2 and app3 servers for one (pointing all three at one instance would triple its health
# checks and make HAProxy balance over three "servers" that are one).
server_names() { awk '$1 == "server" { print $2 }' "$1"; }
[ "$(server_names "$HAPROXY_CFG" | tr '\n' ' ')" = "app1 app2 app3 " ] ||
  die "$HAPROXY_CFG: expected the servers app1, app2, app3; found: $(server_names "$HAPROXY_CFG" | tr '\n' ' ')"
CFG_3=$HAPROXY_CFG
CFG_1=$OUT/haproxy-1.cfg
sed -E '/^[[:space:]]*server[[:space:]]+app[23][[:space:]]/d' "$HAPROXY_CFG" >"$CFG_1"
[ "$(server_names "$CFG_1")" = app1 ] || die "could not render a one-server copy of $HAPROXY_CFG"
app_addr() { echo "127.0.0.1:$((BENCH_PORT + $1 - 1))"; }
LB_BIND=127.0.0.1:$LB_PORT APP1_ADDR=$(app_addr 1) \
  haproxy -c -q -f "$CFG_1" || die "haproxy -c rejects $CFG_1"
LB_BIND=127.0.0.1:$LB_PORT APP1_ADDR=$(app_addr 1) APP2_ADDR=$(app_addr 2) APP3_ADDR=$(app_addr 3) \
  haproxy -c -q -f "$CFG_3" || die "haproxy -c rejects $CFG_3"

if [ -z "${KAFKA_BROKERS:-}" ]; then
  export TANSU_STATE_DIR=$OUT/tansu
  eval "export $(scripts/tansu start | tail -n 1)"
  STOP_TANSU=1
fi

SERVER_PIDS=()
HAPROXY_PID=
# stop_all: the balancer, then every instance (together: each waits out its shutdown).
stop_all() {
  if [ -n "$HAPROXY_PID" ]; then
    kill "$HAPROXY_PID" 2>/dev/null || true
    wait "$HAPROXY_PID" 2>/dev/null || true
    HAPROXY_PID=
  fi
  local pid
  for pid in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
  SERVER_PIDS=()
}
cleanup() {
  stop_all
  [ -z "${STOP_TANSU:-}" ] || scripts/tansu stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_instances on|off COUNT NAME: COUNT instances on BENCH_PORT…; on = Redis limiter and
# event bus and Kafka relay, off = neither (for seeding). Returns once every one is ready.
start_instances() {
  local mode=$1 count=$2 name=$3 i extra pool=$(((POOL + $2 - 1) / $2))
  case $mode in
    on) extra=(RATE_LIMIT_ENABLED=true "REDIS_URL=$REDIS_URL" "KAFKA_BROKERS=$KAFKA_BROKERS") ;;
    off) extra=(RATE_LIMIT_ENABLED=false) ;;
  esac
  # Tokio runs one worker thread per core unless told otherwise; THREADS_3 sets it for each of
  # the three instances (1 on two cores: the instances stop competing for the cores).
  if [ "$count" -gt 1 ] && [ -n "$THREADS_3" ]; then
    extra+=("TOKIO_WORKER_THREADS=$THREADS_3")
  fi
  for i in $(seq "$count"); do
    env -u REDIS_URL -u KAFKA_BROKERS -u TOKIO_WORKER_THREADS PORT=$((BENCH_PORT + i - 1)) HOST=127.0.0.1 \
      DATABASE_URL="$DB_URL" DATABASE_MAX_CONNECTIONS="$pool" RATE_LIMIT_STANDARD=1000000 \
      DATA_DIR="$OUT/data-$i" SHUTDOWN_DELAY_SECS=0 LOG_FORMAT=json RUST_LOG=warn \
      "${extra[@]}" "$SERVER" >"$OUT/server-$name-$i.log" 2>&1 &
    SERVER_PIDS+=($!)
  done
  for i in $(seq "$count"); do
    local ok=
    for _ in $(seq 150); do
      curl -sf -o /dev/null "http://$(app_addr "$i")/health/ready" && ok=1 && break
      kill -0 "${SERVER_PIDS[i - 1]}" 2>/dev/null || die "instance $i exited; see $OUT/server-$name-$i.log"
      sleep 0.2
    done
    [ -n "$ok" ] || die "instance $i not ready; see $OUT/server-$name-$i.log"
  done
}

# start_balancer COUNT NAME: HAProxy in the foreground (-db) as a child, in front of the
# first COUNT instances; returns once each of them answered a readiness check through it.
start_balancer() {
  local count=$1 name=$2 cfg=$CFG_1 i seen=
  [ "$count" = 1 ] || cfg=$CFG_3
  env LB_BIND="127.0.0.1:$LB_PORT" APP1_ADDR="$(app_addr 1)" APP2_ADDR="$(app_addr 2)" \
    APP3_ADDR="$(app_addr 3)" haproxy -db -f "$cfg" >"$OUT/haproxy-$name.log" 2>&1 &
  HAPROXY_PID=$!
  for _ in $(seq 100); do
    kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy exited; see $OUT/haproxy-$name.log"
    # An instance HAProxy reached and found ready: a 200 naming it in X-Served-By.
    seen="$seen $({ curl -s -D - -o /dev/null "http://127.0.0.1:$LB_PORT/health/ready" || true; } |
      tr -d '\r' | awk 'NR == 1 { ok = $2 == 200 } ok && tolower($1) == "x-served-by:" { print $2 }')"
    local all=1
    for i in $(seq "$count"); do [[ " $seen " == *" app$i "* ]] || all=; done
    [ -z "$all" ] || return 0
    sleep 0.1
  done
  die "HAProxy did not reach all $count instances (saw:$seen); see $OUT/haproxy-$name.log"
}

# ---- database and seed data (as load.sh) ---------------------------------------------------
recreate_database "$BENCH_DB"
log "seeding one product for each of $SELLERS sellers"
start_instances off 1 seed
PAIRS=$OUT/pairs.txt
seed_sellers "http://$(app_addr 1)" "$SELLERS" "$PAIRS"
stop_all
psql "$DB_URL" -q -v ON_ERROR_STOP=1 -c "ANALYZE products"

# ---- measurements -------------------------------------------------------------------------
TICKS=$(getconf CLK_TCK)
busy() { pgrep -c -x 'rustc|cc1|cc1plus|ld|cargo' 2>/dev/null || true; }
backlog() { psql "$DB_URL" -Atqc "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"; }
# /api requests instance I has served (its Prometheus counter; health checks excluded).
served() {
  { curl -sf "http://$(app_addr "$1")/metrics" || true; } |
    awk '/^product_api_http_requests_total\{/ && /route="\/api\// { s += $NF } END { print s + 0 }'
}
served_all() { # served_all COUNT: the counts of instances 1..COUNT, space-separated
  local i out=
  for i in $(seq "$1"); do out="$out $(served "$i")"; done
  echo "${out# }"
}

RESULTS=$OUT/results.tsv # config case round rps p50_us p99_us requests non2xx sockerr cpu split backlog busy
: >"$RESULTS"

run() { # run CONFIG CASE ROUND
  local config=$1 mode=$2 round=$3 count=${1#*-} name="$2-$1-r$3" target
  start_instances on "$count" "$name"
  if [ "$config" = direct-1 ]; then
    target=http://$(app_addr 1)
  else
    start_balancer "$count" "$name"
    target=http://127.0.0.1:$LB_PORT
  fi

  # The configuration is what we think: 200 for a sample pair, with limiter headers.
  local seller id headers
  read -r seller id <"$PAIRS"
  headers=$(curl -s -D - -o /dev/null -H "X-Seller-Id: $seller" "$target/api/products/$id" || true)
  head -n 1 <<<"$headers" | grep -q ' 200' || die "$name: GET not 200: $headers"
  grep -qi '^x-ratelimit-limit:' <<<"$headers" || die "$name: no limiter headers (Redis down?)"

  local waited=0
  while [ "$(backlog)" != 0 ] && [ "$waited" -lt "$OUTBOX_WAIT" ]; do
    sleep 1
    waited=$((waited + 1))
  done
  [ "$(backlog)" = 0 ] || log "$name: warning: the outbox still holds $(backlog) events after ${OUTBOX_WAIT}s"

  wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$target" -- "$mode" "$PAIRS" \
    >"$OUT/wrk-$name-warmup.txt" 2>&1

  # CPU of the instances, HAProxy, Redis, PostgreSQL (the backends on this database; the
  # pools have filled during the warm-up) and wrk over the measured run.
  local redis_pid pg_pids cpu_before served_before busy_before
  redis_pid=$(redis-cli -u "$REDIS_URL" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
  pg_pids=$(psql "$DB_URL" -Atqc "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" | tr '\n' ' ')
  # shellcheck disable=SC2086
  cpu_before="$(cpu_ticks "${SERVER_PIDS[@]}") $(cpu_ticks ${HAPROXY_PID:-}) $(cpu_ticks "$redis_pid") $(cpu_ticks $pg_pids)"
  served_before=$(served_all "$count")
  busy_before=$(busy)
  log "$name: wrk -t2 -c$CONNECTIONS -d$DURATION --latency $target"
  local TIMEFORMAT='%U %S' # bash's `time`: wrk's own user and system CPU seconds
  { time wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$target" -- "$mode" "$PAIRS" \
    >"$OUT/wrk-$name.txt" 2>&1; } 2>"$OUT/wrk-$name.cpu"
  local cpu_after served_after busy_after left
  # shellcheck disable=SC2086
  cpu_after="$(cpu_ticks "${SERVER_PIDS[@]}") $(cpu_ticks ${HAPROXY_PID:-}) $(cpu_ticks "$redis_pid") $(cpu_ticks $pg_pids)"
  served_after=$(served_all "$count")
  busy_after=$(busy)
  left=$(backlog)
  stop_all

  local bench
  bench=$(grep '^BENCH ' "$OUT/wrk-$name.txt") || die "$name: no BENCH line; see $OUT/wrk-$name.txt"
  field() { printf '%s\n' "$bench" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  local requests non2xx sockerr cpu_us split
  requests=$(field requests)
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$OUT/wrk-$name.txt")
  sockerr=$(($(field err_connect) + $(field err_read) + $(field err_write) + $(field err_timeout)))
  cpu_us=$(awk -v b="$cpu_before" -v a="$cpu_after" -v r="$requests" -v hz="$TICKS" \
    -v w="$(cat "$OUT/wrk-$name.cpu")" 'BEGIN {
    split(b, x, " "); split(a, y, " "); split(w, c, " ")
    for (k = 1; k <= 4; k++) printf "%.0f/", (y[k] - x[k]) * 1e6 / hz / r
    printf "%.0f", (c[1] + c[2]) * 1e6 / r
  }')
  # Each instance's share of the measured run's requests, in %.
  split=$(awk -v b="$served_before" -v a="$served_after" 'BEGIN {
    n = split(b, x, " "); split(a, y, " ")
    for (k = 1; k <= n; k++) t += y[k] - x[k]
    for (k = 1; k <= n; k++) printf "%s%.0f", (k > 1 ? "/" : ""), (t ? (y[k] - x[k]) * 100 / t : 0)
  }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$mode" "$round" \
    "$(field rps)" "$(field p50_us)" "$(field p99_us)" "$requests" "${non2xx:-0}" "$sockerr" \
    "$cpu_us" "$split" "$left" "$busy_before/$busy_after" >>"$RESULTS"
}

STARTED=$(date -u +%FT%TZ)
for round in $(seq "$ROUNDS"); do
  for mode in "${CASES[@]}"; do
    for config in "${CONFIGS[@]}"; do run "$config" "$mode" "$round"; done
  done
done

# ---- report -------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
mean() { # mean CONFIG CASE COLUMN: mean over the rounds of a results column
  awk -F'\t' -v c="$1" -v m="$2" -v k="$3" '$1 == c && $2 == m { s += $k; n++ } END { printf "%.1f", n ? s / n : 0 }' "$RESULTS"
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", (b > 0 ? a * 100 / b : 0) }'; }
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
broker=$(if [ -n "${STOP_TANSU:-}" ]; then
  "$(command -v tansu || echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu")" --version 2>/dev/null | head -n 1 || echo tansu
else echo "a broker at $KAFKA_BROKERS"; fi)

SUMMARY=$OUT/summary.md
{
  echo "## Balancer and instances: direct-1, lb-1, lb-3"
  echo
  echo "- Machine: $(nproc) cores ($cpu), $mem RAM, $(uname -sr); wrk, HAProxy, the instances, PostgreSQL, Redis and the broker share them"
  echo "- Versions: $(haproxy -v | head -n 1); $(psql "$DB_URL" -Atqc 'SHOW server_version' | awk '{ print "PostgreSQL " $1 }'); $(redis-cli -u "$REDIS_URL" INFO server | tr -d '\r' | sed -n 's/^redis_version:/Redis /p'); $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'); broker: $broker"
  echo "- Commit: $COMMIT$DIRTY (at start); binary: $BIN (sha256 $(sha256sum "$SERVER" | cut -c1-12))"
  echo "- Balancer: $HAPROXY_CFG (sha256 $(sha256sum "$HAPROXY_CFG" | cut -c1-12)); lb-1 uses it without the app2/app3 server lines"
  echo "- Started: $STARTED; wrk -t2 -c$CONNECTIONS -d$DURATION --latency after a $WARMUP warm-up, fresh instances per run; ROUNDS=$ROUNDS"
  echo "- Every instance: Redis limiter (limit 1,000,000/s) and event bus, Kafka relay, DATABASE_MAX_CONNECTIONS $POOL split over the instances ($POOL for one, $(((POOL + 2) / 3)) each for three)"
  echo "- Worker threads of each of the three instances: ${THREADS_3:-Tokio default (one per core)}"
  echo
  echo "All runs, in the order they ran. CPU µs/req: instances (all) / HAProxy / Redis / PostgreSQL / wrk over the measured run;"
  echo "share: each instance's part of the /api requests; backlog: outbox events not yet relayed when wrk stopped;"
  echo "busy: compiler processes at the start / end of the run."
  echo
  echo "| Case | Configuration | Round | req/s | p50 (ms) | p99 (ms) | Requests | Non-2xx | Socket errors | CPU µs/req inst/HAProxy/Redis/PG/wrk | Share (%) | Backlog | busy |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for mode in "${CASES[@]}"; do
    while IFS=$'\t' read -r c m r rps p50 p99 req n2 se cpu_us split left bz; do
      [ "$m" = "$mode" ] || continue
      printf '| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$c" "$r" \
        "$rps" "$(ms "$p50")" "$(ms "$p99")" "$req" "$n2" "$se" "$cpu_us" "$split" "$left" "$bz"
    done <"$RESULTS"
  done
  echo
  echo "Ratios of mean requests/s (over $ROUNDS round(s)); p50 / p99 are means too:"
  echo
  echo "| Case | direct-1: req/s (p50 / p99 ms) | lb-1: req/s (p50 / p99 ms) | lb-3: req/s (p50 / p99 ms) | lb-1 / direct-1 (balancer) | lb-3 / lb-1 (3 instances, shared limiter/bus) | lb-3 / direct-1 |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for mode in "${CASES[@]}"; do
    d=$(mean direct-1 "$mode" 4)
    l1=$(mean lb-1 "$mode" 4)
    l3=$(mean lb-3 "$mode" 4)
    cell() { printf '%.0f (%s / %s)' "$(mean "$1" "$mode" 4)" "$(ms "$(mean "$1" "$mode" 5)")" "$(ms "$(mean "$1" "$mode" 6)")"; }
    echo "| $mode | $(cell direct-1) | $(cell lb-1) | $(cell lb-3) | **$(pct "$l1" "$d")** | **$(pct "$l3" "$l1")** | $(pct "$l3" "$d") |"
  done
} >"$SUMMARY"
echo
cat "$SUMMARY"
log "summary: $SUMMARY"
