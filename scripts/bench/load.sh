#!/usr/bin/env bash
# Benchmark: load on the real stack (PostgreSQL, Redis rate limiter, Kafka relay) with wrk,
# and the baselines measured in the same run.
#
# Cases, each wrk -t2 -c64 for DURATION after a WARMUP, a fresh server per case:
#   get     GET /api/products/{id}, 1,000 sellers with one product each
#   list    GET /api/products?limit=20 of those sellers, run after create and mix so that
#           every page is a full one with a total (as on the grown table)
#   create  POST /api/products (each with its outbox event, relayed to the broker)
#   mix     70% get, 20% create, 10% quantity adjustment
# `get` also runs with the sellers holding HS256 bearer tokens (AUTH_MODE=jwt; JWT=0 skips it).
# Baselines: `get` with the limiter off (RATE_LIMIT_ENABLED=false, no Redis), and pgbench
# running the server's own SELECT of one product by id and seller (64 clients, same ids).
# The seeded table is analysed once. Then (GROWN=1, the default) it grows to 1,000,000 products
# across the same sellers by one INSERT … SELECT, with no ANALYZE after (these machines run
# autovacuum off: the statistics stay those of the 1,000-row table), and get, list and create
# run again: a plan that needs fresh statistics shows here as after a bulk load in production.
# The limit is 1,000,000/s, so nothing is rejected: the limiter's cost is in, not its 429s.
#
# Usage: scripts/bench/load.sh    (builds nothing: cargo build --release first)
# Environment (defaults in brackets):
#   BIN [target/release/product-api]  BENCH_PORT [3913]  BENCH_DB [bench_load]
#   DURATION [15s]  WARMUP [3s]  CONNECTIONS [64]  REDIS_URL [redis://127.0.0.1:6379]
#   KAFKA_BROKERS [a tansu started by scripts/tansu for the run]  OUT [a fresh /tmp/bench-load.*]
#   DB_SSLMODE [disable]  the server's and pgbench's sslmode to PostgreSQL on loopback
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

BENCH_PORT=${BENCH_PORT:-3913}
BENCH_DB=${BENCH_DB:-bench_load}
DB_URL=postgres://postgres@127.0.0.1:5432/$BENCH_DB?sslmode=$DB_SSLMODE
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-64}
OUT=${OUT:-$(mktemp -d /tmp/bench-load.XXXXXX)}
LUA=$ROOT/scripts/bench/load.lua
BASE=http://127.0.0.1:$BENCH_PORT
SELLERS=1000

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
command -v wrk >/dev/null || apt_install wrk
command -v pgbench >/dev/null || apt_install postgresql-contrib
ensure_postgres
ensure_redis
mkdir -p "$OUT"
if [ -z "${KAFKA_BROKERS:-}" ]; then
  export TANSU_STATE_DIR=$OUT/tansu
  eval "export $(scripts/tansu start | tail -n 1)"
  STOP_TANSU=1
fi

cleanup() {
  stop_server
  [ -z "${STOP_TANSU:-}" ] || scripts/tansu stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# start_server on|off NAME: on = Redis limiter and Kafka relay; off = neither.
start_server() {
  local extra=()
  case $1 in
    on) extra=(RATE_LIMIT_ENABLED=true "REDIS_URL=$REDIS_URL" "KAFKA_BROKERS=$KAFKA_BROKERS") ;;
    off) extra=(RATE_LIMIT_ENABLED=false) ;;
  esac
  env -u REDIS_URL -u KAFKA_BROKERS PORT="$BENCH_PORT" HOST=127.0.0.1 DATABASE_URL="$DB_URL" \
    DATABASE_MAX_CONNECTIONS=32 RATE_LIMIT_STANDARD=1000000 LOG_FORMAT=json RUST_LOG=warn \
    "${extra[@]}" ${AUTH_ENV[@]+"${AUTH_ENV[@]}"} "$BIN" >"$OUT/server-$2.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 150); do
    curl -sf -o /dev/null "$BASE/health/ready" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/server-$2.log"
    sleep 0.2
  done
  die "server not ready; see $OUT/server-$2.log"
}

recreate_database "$BENCH_DB"
log "seeding one product for each of $SELLERS sellers"
start_server off seed
PAIRS=$OUT/pairs.txt
seed_sellers "$BASE" "$SELLERS" "$PAIRS"
stop_server
# Statistics of the small table, as autovacuum would have left them before a bulk load.
psql "$DB_URL" -q -v ON_ERROR_STOP=1 -c "ANALYZE products"

RESULTS=$OUT/results.md
{
  echo "| Case | Stack | Table | req/s | p50 (ms) | p99 (ms) | non-2xx | socket errors | server RSS (MiB) |"
  echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$RESULTS"

TABLE="seeded with $SELLERS products"
AUTH_ENV=()
STACK_NOTE=
run_case() { # run_case MODE on|off
  local mode=$1 stack=$2 name="$1-$2-${GROWN_PHASE:-fresh}${STACK_NOTE:+-jwt}" line rss
  start_server "$stack" "$name"
  wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$BASE" -- "$mode" "$PAIRS" >/dev/null 2>&1
  log "$name: wrk -t2 -c$CONNECTIONS -d$DURATION"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$BASE" -- "$mode" "$PAIRS" \
    >"$OUT/wrk-$name.txt" 2>&1
  rss=$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")
  stop_server
  line=$(grep '^BENCH ' "$OUT/wrk-$name.txt") || die "$name: no BENCH line"
  local non2xx sock
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$OUT/wrk-$name.txt")
  sock=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' "$OUT/wrk-$name.txt")
  val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  printf '| %s | %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n' "$mode" \
    "$([ "$stack" = on ] && echo "PostgreSQL + Redis limiter + Kafka relay${STACK_NOTE:-}" || echo "limiter off, no Redis/Kafka")" \
    "$TABLE" \
    "$(printf '%.0f' "$(val rps)")" "$(echo "$(val p50_us) / 1000" | bc -l)" \
    "$(echo "$(val p99_us) / 1000" | bc -l)" "${non2xx:-0}" "${sock:-none}" "$rss" >>"$RESULTS"
}

run_case get off
run_case get on
if [ "${JWT:-1}" = 1 ]; then
  # The same sellers holding HS256 bearer tokens (AUTH_MODE=jwt): the cost of verifying one
  # per request.
  JWT_PAIRS=$OUT/pairs-jwt.txt
  AUTH_JWT_SECRET=load-bench-secret-0123456789abcdef-0123 python3 - "$PAIRS" "$JWT_PAIRS" <<'PY'
import base64, hashlib, hmac, json, os, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
secret, now = os.environ["AUTH_JWT_SECRET"].encode(), int(time.time())
with open(sys.argv[1]) as pairs, open(sys.argv[2], "w") as out:
    for line in pairs:
        seller, pid = line.split()
        claims = {"iss": "load", "aud": "product-api", "seller_id": seller, "iat": now,
                  "exp": now + 3600, "scope": "products:read products:write"}
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
        sig = b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())
        out.write(f"{seller} {pid} {head}.{sig}\n")
PY
  SAVED_PAIRS=$PAIRS
  PAIRS=$JWT_PAIRS
  AUTH_ENV=(AUTH_MODE=jwt AUTH_JWT_SECRET=load-bench-secret-0123456789abcdef-0123 AUTH_ISSUER=load AUTH_AUDIENCE=product-api)
  STACK_NOTE=", bearer tokens (HS256)"
  run_case get on
  PAIRS=$SAVED_PAIRS
  AUTH_ENV=()
  STACK_NOTE=
fi
run_case create on
run_case mix on
# After the writes, so each seller has more than a page (about 65 products): the same full
# pages of 20 with a total as on the grown table, not one-item last pages.
run_case list on

# pgbench: the server's own query for GET /api/products/{id}, by id and seller.
MIN_ID=$(cut -d' ' -f2 "$PAIRS" | sort -n | head -n 1)
MAX_ID=$(cut -d' ' -f2 "$PAIRS" | sort -n | tail -n 1)
cat >"$OUT/select.sql" <<SQL
\\set id random($MIN_ID, $MAX_ID)
SELECT id, seller_id, sku, name, description, price_cents, quantity, category, low_stock_threshold, version, created_at, updated_at, deleted_at FROM products WHERE seller_id = 'seller-l' || (:id - $MIN_ID) AND deleted_at IS NULL AND id = :id;
SQL
log "pgbench: -c$CONNECTIONS -j2 -T${DURATION%s} -M prepared"
pgbench -n -c"$CONNECTIONS" -j2 -T"${DURATION%s}" -M prepared -f "$OUT/select.sql" "$DB_URL" \
  >"$OUT/pgbench.txt" 2>&1
TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgbench.txt" | head -n 1)
LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$OUT/pgbench.txt")
printf '| pgbench: the GET query alone | PostgreSQL | %s | %.0f | avg %s | | | | |\n' "$TABLE" "$TPS" "$LAT" >>"$RESULTS"

if [ "${GROWN:-1}" = 1 ]; then
  GROW_TO=1000000
  have=$(psql "$DB_URL" -Atqc "SELECT COUNT(*) FROM products")
  log "growing products from $have to $GROW_TO rows across the $SELLERS sellers, without ANALYZE"
  psql "$DB_URL" -q -v ON_ERROR_STOP=1 -c "INSERT INTO products (seller_id, sku, name, description,
      price_cents, quantity, category, low_stock_threshold, version, created_at, updated_at)
    SELECT 'seller-l' || (g % $SELLERS), 'G-' || g, 'Grown ' || g, 'Bulk loaded', 100 + g % 99900,
      g % 500, (ARRAY['Electronics', 'Home', 'Sports', 'Books', 'Toys', 'Garden'])[1 + g % 6], NULL, 1,
      now() - g * interval '1 second', now() - g * interval '1 second'
    FROM generate_series(1, $GROW_TO - $have) AS g"
  psql "$DB_URL" -Atqc "SELECT 'statistics: last analyze ' || COALESCE(last_analyze::text, 'never')
      || ', last autoanalyze ' || COALESCE(last_autoanalyze::text, 'never') || ', reltuples '
      || (SELECT reltuples FROM pg_class WHERE relname = 'products')
    FROM pg_stat_user_tables WHERE relname = 'products'" | tee "$OUT/statistics.txt" >&2
  GROWN_PHASE=grown
  TABLE="grown to $GROW_TO products, statistics of $SELLERS"
  run_case get on
  run_case list on
  run_case create on
fi
cat "$RESULTS"
log "results: $RESULTS"
