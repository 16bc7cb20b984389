#!/usr/bin/env bash
# Benchmark: the Node.js service product-api replaces, against product-api, side by side in
# one run on the same machine and the same stack.
#
# The Node.js service (github.com/AkilaDunukara/product-management-system, its backend/) is
# built from its repository at NODE_REF into NODE_DIR (npm ci, then its own `npm run build`);
# nothing of it is kept in this repository. Each service runs on the full stack: a fresh
# PostgreSQL database (the Node.js service's schema from its migrations/001_up_initial_schema.sql,
# which its docker-compose applies, run with psql; product-api's migrations at start), the
# Redis on 127.0.0.1:6379 for its rate limiter (both limits at 1,000,000, so no 429s: the
# limiter's cost is in, its rejections are not) and an empty tansu broker (restarted before
# each service and before each import) with the topics product.created, .updated, .deleted
# and .lowstock at 4 partitions (the Node.js service's docker-compose creates them; product-api
# creates them at start). Each service's database pool is 20 connections: the Node.js
# service's, fixed in its code, and product-api's default.
#
# Jobs, the Node.js service first, then product-api:
#   get     GET /api/products/{id}: 1,000 sellers with one product each, every request as
#           the owning seller
#   list    GET /api/products?limit=20 of those sellers
#   create  POST /api/products (each with its event: awaited by the Node.js service, written to
#           the outbox and relayed by product-api)
#           each wrk -t2 -cCONNECTIONS for DURATION after a WARMUP, a fresh server per case,
#           scripts/bench/load.lua (both services take its requests as they are)
#   import  the same generated ROWS-row CSV file (name, description, price, quantity,
#           category: the columns both importers take; the Node.js service has no sku) as
#           multipart field `file` to POST /api/products/import, into a fresh database; timed
#           from the upload's start until the import is done, polled every 100 ms:
#           product-api's status `completed` (GET /api/products/import/{id}); the Node.js
#           service has no status endpoint, so its own "Import <id> completed" log line,
#           after its last batch commits. Then the rows in each database are counted.
#   floor   `psql \copy` of the same file into a table shaped like product-api's products
#           (its columns and its six partial indexes, of which the sku one takes none of
#           these rows; price as numeric(12,2), which \copy reads from the file, where
#           product-api keeps integer cents); after the imports, `\copy` of product-api's
#           import events into an outbox-shaped table: the two together are the engine's own
#           time for the work product-api's import does, the ceiling of its rate
# Output: one markdown table, job | Node.js service | product-api | product-api / Node.js (×),
# with req/s and p99 per wrk case, rows/s of the imports against the floor, peak RSS and the
# non-2xx count; printed and written to OUT/results.md. Any non-2xx response, socket error or
# missing imported row fails the run (after the table is written).
#
# What differs from the Node.js service's repository: one word. Its kafkajs producer is built
# with `idempotent: false`, because kafkajs sends InitProducerId v1, which tansu 0.6 refuses
# (the service then fails to start). With its `maxInFlightRequests: 1` it still has one produce
# request in flight at a time, as the idempotent producer's per-broker lock would give. Set
# NODE_IDEMPOTENT=true with a broker that takes it (Apache Kafka, via KAFKA_BROKERS) to build
# it unmodified. It logs a line per request to stdout (a file here), as it always does.
#
# The imports do different work per row. The Node.js service buffers the whole upload in
# memory, inserts 1,000 rows per multi-row INSERT into a table with two secondary indexes,
# and publishes one ProductCreated event per batch (plus one LowStockWarning per low row)
# after each commit, without waiting for them; it has no sku, no per-row error report and no
# import status. product-api spools the upload to disk and writes, in each batch's
# transaction, the rows into five secondary indexes (its sixth is the sku's, and these rows
# have none), one ProductCreated outbox event per row (and the LowStockWarnings) and the
# import's progress; its relay publishes those events meanwhile. Neither's "done" waits for
# its events to reach the broker.
#
# Usage: scripts/bench/node.sh    (builds no product-api: cargo build --release first)
#   e.g. NODE_REPO=/path/to/a/clone DURATION=3s WARMUP=1s ROWS=5000 scripts/bench/node.sh
# Environment (defaults in brackets):
#   BIN [target/release/product-api]  copied into OUT first, so a rebuild cannot change it
#   NODE_REPO [https://github.com/AkilaDunukara/product-management-system.git]  any git URL or
#             local clone/mirror holding NODE_REF
#   NODE_REF [da8f3dfe6b7990d90521945dfb4cce3be0aa9642]  the commit built
#   NODE_DIR [OUT/node]  the Node.js build; reused when it holds a build of the same NODE_REF
#             and NODE_IDEMPOTENT
#   NODE_IDEMPOTENT [false]  true: build the service's producer unmodified (see above)
#   NODE_PORT [3931]  API_PORT [3932]
#   NODE_DB [bench_node_js]  API_DB [bench_node_api]  COPY_DB [bench_node_copy]  (each dropped
#             and recreated)
#   DURATION [15s]  WARMUP [3s]  CONNECTIONS [64]
#   ROWS [100000]  the Node.js service takes at most 10 MiB per upload (multer's limit in its
#             code): at most 154,429 of these rows
#   KAFKA_BROKERS [a tansu started by scripts/tansu for the run, state in OUT/tansu, restarted
#             empty for each service and each import]  given: used as it is, never restarted
#   OUT [a fresh /tmp/bench-node.*]  logs, wrk output, the CSV file, results.md
#   DB_SSLMODE [disable]  product-api's sslmode to PostgreSQL on loopback (the Node.js
#             service's pg client uses no TLS unless PGSSLMODE says so; it is not passed)
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379
# (started via scripts/services.sh if down), Node.js 18 or later with npm (packages from the
# npm registry), git, python3, bc; installs wrk from Debian's packages if missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

NODE_REPO=${NODE_REPO:-https://github.com/AkilaDunukara/product-management-system.git}
NODE_REF=${NODE_REF:-da8f3dfe6b7990d90521945dfb4cce3be0aa9642}
NODE_IDEMPOTENT=${NODE_IDEMPOTENT:-false}
NODE_PORT=${NODE_PORT:-3931}
API_PORT=${API_PORT:-3932}
NODE_DB=${NODE_DB:-bench_node_js}
API_DB=${API_DB:-bench_node_api}
COPY_DB=${COPY_DB:-bench_node_copy}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-64}
ROWS=${ROWS:-100000}
OUT=${OUT:-$(mktemp -d /tmp/bench-node.XXXXXX)}
NODE_DIR=${NODE_DIR:-$OUT/node}
LUA=$ROOT/scripts/bench/load.lua
SELLERS=1000
IMPORT_SELLER=seller-import
NODE_MAX_UPLOAD=$((10 * 1024 * 1024))
PG_URL=postgres://postgres@127.0.0.1:5432
TOPICS=(product.created product.updated product.deleted product.lowstock)

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release --bin product-api)"
case $NODE_IDEMPOTENT in true | false) ;; *) die "NODE_IDEMPOTENT must be true or false" ;; esac
for tool in git node npm python3 bc curl psql; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 18 ] || die "the Node.js service needs Node.js 18 or later (found $(node --version))"
command -v wrk >/dev/null || apt_install wrk
ensure_postgres
ensure_redis
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
case $NODE_DIR in /*) ;; *) NODE_DIR=$ROOT/$NODE_DIR ;; esac

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
hwm_mib() { awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
sql() { psql "$PG_URL/$1" -q -X -t -A -v ON_ERROR_STOP=1 -c "$2"; }

# ---- product-api: a private copy of the binary ------------------------------------------------
API_BIN=$OUT/product-api
cp "$BIN" "$API_BIN"
API_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

# ---- the Node.js service: fetch and build -----------------------------------------------------
NODE_BACKEND=$NODE_DIR/backend
STAMP="$NODE_REF idempotent=$NODE_IDEMPOTENT"
if [ -f "$NODE_BACKEND/dist/server.js" ] && [ "$(cat "$NODE_DIR/.bench-build" 2>/dev/null)" = "$STAMP" ]; then
  log "reusing the Node.js build in $NODE_DIR ($STAMP)"
else
  log "fetching $NODE_REPO at $NODE_REF into $NODE_DIR"
  if [ -d "$NODE_DIR" ] && [ -n "$(ls -A "$NODE_DIR")" ]; then
    # Only ever a directory this script made (its marker), never whatever NODE_DIR names.
    [ -f "$NODE_DIR/.bench-node-dir" ] || die "NODE_DIR $NODE_DIR is not empty and not made by this script"
    rm -rf "$NODE_DIR"
  fi
  mkdir -p "$NODE_DIR"
  touch "$NODE_DIR/.bench-node-dir"
  git clone --quiet --bare "$NODE_REPO" "$NODE_DIR/src.git" || die "cannot clone $NODE_REPO"
  git --git-dir="$NODE_DIR/src.git" archive "$NODE_REF" backend | tar -x -C "$NODE_DIR" ||
    die "$NODE_REPO has no backend/ at $NODE_REF"
  # Its committed .env (Docker hosts, a Redis password) would fill in whatever the
  # environment below leaves unset: the run sets everything itself.
  rm -f "$NODE_BACKEND/.env"
  if [ "$NODE_IDEMPOTENT" = false ]; then
    [ "$(grep -c 'idempotent: true' "$NODE_BACKEND/src/config/kafka.ts")" = 1 ] ||
      die "src/config/kafka.ts no longer has one 'idempotent: true' to turn off; see NODE_IDEMPOTENT"
    sed -i 's/idempotent: true/idempotent: false/' "$NODE_BACKEND/src/config/kafka.ts"
  fi
  log "building the Node.js service (npm ci, npm run build; log: $OUT/node-build.log)"
  (cd "$NODE_BACKEND" && npm ci --no-audit --no-fund && npm run build) >"$OUT/node-build.log" 2>&1 ||
    die "the Node.js build failed; see $OUT/node-build.log"
  echo "$STAMP" >"$NODE_DIR/.bench-build"
fi
NODE_SERVICE_VERSION=$(cd "$NODE_BACKEND" && node -p 'require("./package.json").version')

# ---- the broker ------------------------------------------------------------------------------
STOP_TANSU=
if [ -z "${KAFKA_BROKERS:-}" ]; then
  export TANSU_STATE_DIR=$OUT/tansu
  line=$(scripts/tansu start | tail -n 1)
  [[ $line == KAFKA_BROKERS=* ]] || die "scripts/tansu start printed no KAFKA_BROKERS line"
  KAFKA_BROKERS=${line#KAFKA_BROKERS=}
  STOP_TANSU=1
fi

cleanup() {
  stop_server
  if [ -n "$STOP_TANSU" ]; then scripts/tansu stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# fresh_broker: an empty broker (only when this run started it).
fresh_broker() {
  [ -n "$STOP_TANSU" ] || return 0
  local line
  line=$(scripts/tansu restart 2>>"$OUT/tansu-restarts.log" | tail -n 1)
  [ "$line" = "KAFKA_BROKERS=$KAFKA_BROKERS" ] || die "tansu restart printed '$line'"
}

# node_topics: the Node.js service's topics at 4 partitions, created with its own kafkajs.
node_topics() {
  (cd "$NODE_BACKEND" && KAFKAJS_NO_PARTITIONER_WARNING=1 BROKERS=$KAFKA_BROKERS timeout 60 node -e '
    const { Kafka, logLevel } = require("kafkajs");
    const kafka = new Kafka({ clientId: "bench-setup", brokers: process.env.BROKERS.split(","), logLevel: logLevel.WARN });
    (async () => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ waitForLeaders: true,
        topics: process.argv.slice(1).map((topic) => ({ topic, numPartitions: 4, replicationFactor: 1 })) });
      await admin.disconnect();
    })().catch((e) => { console.error(e); process.exit(1); });' "${TOPICS[@]}") >>"$OUT/node-topics.log" 2>&1 ||
    die "cannot create the Node.js service's topics; see $OUT/node-topics.log"
}

# fresh_stack node|api: a new database with the service's schema and an empty broker.
fresh_stack() {
  fresh_broker
  case $1 in
    node)
      recreate_database "$NODE_DB"
      psql "$PG_URL/$NODE_DB" -q -X -v ON_ERROR_STOP=1 -f "$NODE_BACKEND/migrations/001_up_initial_schema.sql" \
        >/dev/null || die "cannot create the Node.js service's schema"
      node_topics
      ;;
    api) recreate_database "$API_DB" ;;
  esac
}

# start_server node|api NAME: the service on the full stack, waiting until it is ready.
base_url() { [ "$1" = node ] && echo "http://127.0.0.1:$NODE_PORT" || echo "http://127.0.0.1:$API_PORT"; }
start_server() {
  local kind=$1 name=$2 base
  base=$(base_url "$kind")
  SERVER_LOG=$OUT/server-$name.log
  case $kind in
    node)
      (cd "$NODE_BACKEND" && exec env -i PATH="$PATH" HOME="$HOME" NODE_ENV=production PORT="$NODE_PORT" \
        POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=5432 POSTGRES_DB="$NODE_DB" POSTGRES_USER=postgres \
        POSTGRES_PASSWORD=postgres REDIS_HOST=127.0.0.1 REDIS_PORT=6379 REDIS_PASSWORD= \
        KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_CLIENT_ID=api-server KAFKAJS_NO_PARTITIONER_WARNING=1 \
        RATE_LIMIT_STANDARD=1000000 RATE_LIMIT_BULK=1000000 LOW_STOCK_THRESHOLD=10 \
        node dist/server.js) >"$SERVER_LOG" 2>&1 &
      ;;
    api)
      env -i PATH="$PATH" HOME="$HOME" PORT="$API_PORT" HOST=127.0.0.1 \
        DATABASE_URL="$PG_URL/$API_DB?sslmode=$DB_SSLMODE" DATABASE_MAX_CONNECTIONS=20 \
        RATE_LIMIT_ENABLED=true REDIS_URL=redis://127.0.0.1:6379 KAFKA_BROKERS="$KAFKA_BROKERS" \
        RATE_LIMIT_STANDARD=1000000 RATE_LIMIT_BULK=1000000 IMPORT_SPOOL_DIR="$OUT/spool" \
        LOG_FORMAT=json RUST_LOG=warn "$API_BIN" >"$SERVER_LOG" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$base/health/ready" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name: the server exited; see $SERVER_LOG"
    sleep 0.2
  done
  die "$name: the server is not ready after 60 s; see $SERVER_LOG"
}

# seed node|api: one product for each of SELLERS sellers, "seller-id product-id" in OUT/pairs-KIND.txt.
seed() {
  log "$1: seeding one product for each of $SELLERS sellers"
  python3 - "$(base_url "$1")" "$SELLERS" "$OUT/pairs-$1.txt" <<'PY' || die "$1: seeding failed"
import concurrent.futures, http.client, json, sys, threading, urllib.parse
base, sellers, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = urllib.parse.urlparse(base)
local = threading.local()
def create(i):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    seller = f"seller-l{i}"
    body = json.dumps({"name": "Load", "price": 9.99, "quantity": 500, "category": "Bench"})
    local.conn.request("POST", "/api/products", body,
                       {"X-Seller-Id": seller, "Content-Type": "application/json"})
    resp = local.conn.getresponse()
    data = resp.read()
    if resp.status != 201:
        raise SystemExit(f"POST /api/products as {seller}: {resp.status} {data[:200]!r}")
    return f"{seller} {json.loads(data)['id']}\n"
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    lines = list(pool.map(create, range(sellers)))
with open(path, "w") as f:
    f.writelines(lines)
PY
}

# run_case node|api MODE: wrk on a fresh server; fills RPS, P99, NON2XX, SOCK for KIND-MODE
# and raises HWM[KIND-wrk] to the server's peak RSS.
declare -A RPS P99 NON2XX SOCK HWM
run_case() {
  local kind=$1 mode=$2 name="$1-$2" line base file
  base=$(base_url "$kind")
  file=$OUT/wrk-$name.txt
  start_server "$kind" "$name"
  wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" -s "$LUA" "$base" -- "$mode" "$OUT/pairs-$kind.txt" >"$OUT/wrk-$name-warmup.txt" 2>&1 ||
    die "$name: the warm-up wrk failed; see $OUT/wrk-$name-warmup.txt"
  log "$name: wrk -t2 -c$CONNECTIONS -d$DURATION"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$base" -- "$mode" "$OUT/pairs-$kind.txt" >"$file" 2>&1 ||
    die "$name: wrk failed; see $file"
  HWM[$kind-wrk]=$(max "${HWM[$kind-wrk]:-0}" "$(hwm_mib "$SERVER_PID")")
  stop_server
  line=$(grep '^BENCH ' "$file") || die "$name: no BENCH line in $file"
  val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  RPS[$name]=$(val rps)
  P99[$name]=$(echo "$(val p99_us) / 1000" | bc -l)
  NON2XX[$name]=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$file")
  NON2XX[$name]=${NON2XX[$name]:-0}
  SOCK[$name]=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' "$file")
  log "$name: $(printf '%.0f' "${RPS[$name]}") req/s, p99 $(printf '%.2f' "${P99[$name]}") ms, non-2xx ${NON2XX[$name]}"
}

# ---- the CSV file and the \copy floor ---------------------------------------------------------
FILE=$OUT/products.csv
log "generating $ROWS rows in $FILE"
products_csv "$FILE" "$ROWS"
BYTES=$(stat -c %s "$FILE")
[ "$BYTES" -le "$NODE_MAX_UPLOAD" ] ||
  die "the file is $BYTES bytes; the Node.js service takes at most $NODE_MAX_UPLOAD per upload: lower ROWS"
LOW_STOCK_ROWS=$(awk -F, 'NR > 1 && $(NF - 1) < 10' "$FILE" | wc -l)

recreate_database "$COPY_DB"
sql "$COPY_DB" "CREATE TABLE products (id bigserial PRIMARY KEY,
  seller_id varchar(50) NOT NULL DEFAULT '$IMPORT_SELLER', sku varchar(64), name varchar(255) NOT NULL,
  description text, price numeric(12,2) NOT NULL, quantity bigint NOT NULL, category varchar(100) NOT NULL,
  low_stock_threshold integer, version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz)"
for idx in "UNIQUE INDEX ON products (seller_id, sku) WHERE deleted_at IS NULL AND sku IS NOT NULL" \
  "INDEX ON products (seller_id, created_at, id) WHERE deleted_at IS NULL" \
  "INDEX ON products (seller_id, updated_at, id) WHERE deleted_at IS NULL" \
  "INDEX ON products (seller_id, name, id) WHERE deleted_at IS NULL" \
  "INDEX ON products (seller_id, price, id) WHERE deleted_at IS NULL" \
  "INDEX ON products (seller_id, quantity, id) WHERE deleted_at IS NULL"; do
  sql "$COPY_DB" "CREATE $idx"
done
t0=$(now)
psql "$PG_URL/$COPY_DB" -q -X -v ON_ERROR_STOP=1 \
  -c "\\copy products (name, description, price, quantity, category) FROM '$FILE' WITH (FORMAT csv, HEADER true)"
COPY_SECS=$(elapsed "$t0" "$(now)")
COPIED=$(sql "$COPY_DB" "SELECT COUNT(*) FROM products")
[ "$COPIED" = "$ROWS" ] || die "\\copy loaded $COPIED rows, expected $ROWS"
log "floor: \\copy of $ROWS rows in ${COPY_SECS}s"

# ---- import: upload to done ------------------------------------------------------------------
declare -A IMPORT_SECS IMPORTED
run_import() {
  local kind=$1 base accepted id t0 state status deadline
  base=$(base_url "$kind")
  fresh_stack "$kind"
  start_server "$kind" "$kind-import"
  log "$kind: importing $ROWS rows"
  deadline=$(($(date +%s) + 3600))
  t0=$(now)
  accepted=$(curl -sf -X POST "$base/api/products/import" -H "X-Seller-Id: $IMPORT_SELLER" \
    -F "file=@$FILE;type=text/csv") || die "$kind: the upload was refused"
  id=$(json_string "$accepted" import_id) || die "$kind: no import id in: $accepted"
  while :; do
    if [ "$kind" = node ]; then
      # Its only completion signal: the log line after its last batch commits.
      status=$(grep -F "Import $id " "$SERVER_LOG" || true)
      case $status in
        *" completed:"*) break ;;
        *" failed:"*) die "node: import $id failed: $status" ;;
      esac
    else
      status=$(curl -sf "$base/api/products/import/$id" -H "X-Seller-Id: $IMPORT_SELLER") ||
        die "api: cannot read import $id"
      state=$(json_string "$status" status) || die "api: no status in: $status"
      [ "$state" = completed ] && break
      case $state in failed | cancelled) die "api: import $id $state: $status" ;; esac
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "$kind: the server exited during the import; see $SERVER_LOG"
    [ "$(date +%s)" -lt "$deadline" ] || die "$kind: import $id not done within an hour"
    sleep 0.1
  done
  IMPORT_SECS[$kind]=$(elapsed "$t0" "$(now)")
  HWM[$kind-import]=$(hwm_mib "$SERVER_PID")
  stop_server
  local db=$API_DB
  if [ "$kind" = node ]; then
    log "node: $status"
    db=$NODE_DB
  fi
  IMPORTED[$kind]=$(sql "$db" "SELECT COUNT(*) FROM products WHERE seller_id = '$IMPORT_SELLER' AND deleted_at IS NULL")
  log "$kind: import in ${IMPORT_SECS[$kind]}s, ${IMPORTED[$kind]} rows in its database"
}

# ---- the runs --------------------------------------------------------------------------------
for kind in node api; do
  fresh_stack "$kind"
  start_server "$kind" "$kind-seed"
  seed "$kind"
  stop_server
  for mode in get list create; do run_case "$kind" "$mode"; done
  run_import "$kind"
done
# The floor's second half: product-api's import events, `\copy`'d into an outbox-shaped table.
EVENTS_SECS=$(copy_events "$PG_URL/$API_DB" "$IMPORT_SELLER" "$OUT")
log "floor: \\copy of the import's events in ${EVENTS_SECS}s"

# ---- the table -------------------------------------------------------------------------------
group() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
int() { group "$(printf '%.0f' "$1")"; }
ratio() { printf '%.2f×' "$(echo "$1 / $2" | bc -l)"; }
pct() { printf '%.0f%%' "$(echo "100 * $1 / $2" | bc -l)"; }
rate() { echo "$ROWS / $1" | bc -l; }
CASES=("get:\`GET /api/products/{id}\`" "list:\`GET /api/products?limit=20\`" "create:\`POST /api/products\`")
FLOOR_RATE=$(rate "$COPY_SECS")
WORK_SECS=$(echo "$COPY_SECS + $EVENTS_SECS" | bc -l)
NON2XX_NODE=0 NON2XX_API=0
for c in "${CASES[@]}"; do
  NON2XX_NODE=$((NON2XX_NODE + ${NON2XX[node-${c%%:*}]}))
  NON2XX_API=$((NON2XX_API + ${NON2XX[api-${c%%:*}]}))
done
# The Node.js service logs and swallows a failed publish; count them (its batch events of an
# import are still being published when it reports completion, so they may be cut short).
PUBLISH_FAILURES=$(cat "$OUT"/server-node-*.log | grep -c 'Failed to publish' || true)
RESULTS=$OUT/results.md
{
  echo "| Job | Node.js service | product-api | product-api / Node.js |"
  echo "| --- | ---: | ---: | ---: |"
  for c in "${CASES[@]}"; do
    m=${c%%:*} label=${c#*:}
    echo "| $label, req/s | $(int "${RPS[node-$m]}") | $(int "${RPS[api-$m]}") | $(ratio "${RPS[api-$m]}" "${RPS[node-$m]}") |"
    echo "| $label, p99 (ms) | $(printf '%.2f' "${P99[node-$m]}") | $(printf '%.2f' "${P99[api-$m]}") | $(ratio "${P99[api-$m]}" "${P99[node-$m]}") |"
  done
  echo "| CSV import of $(group "$ROWS") rows, upload to done, rows/s | $(int "$(rate "${IMPORT_SECS[node]}")") ($(printf '%.2f' "${IMPORT_SECS[node]}") s) | $(int "$(rate "${IMPORT_SECS[api]}")") ($(printf '%.2f' "${IMPORT_SECS[api]}") s) | $(ratio "${IMPORT_SECS[node]}" "${IMPORT_SECS[api]}") |"
  echo "| CSV import against \`\\copy\` of the products alone ($(int "$FLOOR_RATE") rows/s, $(printf '%.2f' "$COPY_SECS") s) | $(pct "$(rate "${IMPORT_SECS[node]}")" "$FLOOR_RATE") | $(pct "$(rate "${IMPORT_SECS[api]}")" "$FLOOR_RATE") | |"
  echo "| The floor of product-api's import: \`\\copy\` of the products and of its events ($(printf '%.2f' "$COPY_SECS") + $(printf '%.2f' "$EVENTS_SECS") s), rows/s | | $(int "$(rate "$WORK_SECS")") | $(ratio "$(rate "$WORK_SECS")" "$(rate "${IMPORT_SECS[node]}")") |"
  echo "| Server peak RSS, wrk cases (MiB) | ${HWM[node-wrk]} | ${HWM[api-wrk]} | $(ratio "${HWM[api-wrk]}" "${HWM[node-wrk]}") |"
  echo "| Server peak RSS, import (MiB) | ${HWM[node-import]} | ${HWM[api-import]} | $(ratio "${HWM[api-import]}" "${HWM[node-import]}") |"
  echo "| Non-2xx responses, wrk cases | $NON2XX_NODE | $NON2XX_API | |"
  echo
  echo "wrk -t2 -c$CONNECTIONS for $DURATION after $WARMUP, a fresh server per case; $SELLERS sellers, one product each."
  echo "Import: $(group "$ROWS") rows, $(group "$BYTES") bytes (name, description, price, quantity, category; $LOW_STOCK_ROWS below the low-stock threshold 10); rows in the database afterwards: Node.js service ${IMPORTED[node]}, product-api ${IMPORTED[api]}."
  echo "Socket errors: $(for c in "${CASES[@]}"; do m=${c%%:*}; printf '%s: Node.js %s, product-api %s; ' "$m" "${SOCK[node-$m]:-none}" "${SOCK[api-$m]:-none}"; done | sed 's/; $/./')"
  echo "Events the Node.js service failed to publish (it answers 2xx regardless): $PUBLISH_FAILURES."
  echo "Node.js service: ${NODE_REPO} at ${NODE_REF:0:7} (backend $NODE_SERVICE_VERSION), Node.js $(node --version), kafkajs producer idempotent: $NODE_IDEMPOTENT. product-api: commit $API_COMMIT, release build."
  echo "Machine: $(nproc) CPUs $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(psql --version | awk '{ print "PostgreSQL " $3 }'), $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/Redis \1/p'), broker $([ -n "$STOP_TANSU" ] && "$(command -v tansu || echo "$HOME/.cargo/bin/tansu")" --version 2>/dev/null | head -n 1 || echo "at $KAFKA_BROKERS")."
} >"$RESULTS"
cat "$RESULTS"
log "results: $RESULTS"

# ---- the run's validity ----------------------------------------------------------------------
if [ "$NON2XX_NODE" != 0 ] || [ "$NON2XX_API" != 0 ]; then
  die "non-2xx responses (Node.js $NON2XX_NODE, product-api $NON2XX_API); see $OUT/wrk-*.txt"
fi
for c in "${CASES[@]}"; do
  for kind in node api; do
    [ -z "${SOCK[$kind-${c%%:*}]}" ] || die "socket errors in $kind-${c%%:*}: ${SOCK[$kind-${c%%:*}]}"
  done
done
for kind in node api; do
  [ "${IMPORTED[$kind]}" = "$ROWS" ] || die "$kind imported ${IMPORTED[$kind]} rows, expected $ROWS"
done
[ "$PUBLISH_FAILURES" = 0 ] || die "the Node.js service failed $PUBLISH_FAILURES publishes; see $OUT/server-node-*.log"
