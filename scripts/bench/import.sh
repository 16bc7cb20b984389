#!/usr/bin/env bash
# Benchmark: CSV import and export of ROWS products through the API, against psql \copy of
# the same file and the same rows, in one run.
#
# 1. Generates ROWS rows (name, description, price, quantity, category, sku; ~90 bytes each).
# 2. Baselines: `psql \copy` of the file into a bare table, and into a table with the products
#    table's indexes (the equivalent of what the import maintains); after the import, `\copy`
#    of its events, with their ids as the import writes them, into an outbox-shaped table
#    (columns, indexes, id trigger). The floor is the two `\copy` into indexed tables
#    together: what the engine alone needs for the same rows.
# 3. Import: the release server on PostgreSQL (no Redis, no Kafka: events stay in the outbox,
#    which the import writes in the same transactions) takes the file as multipart upload; the
#    time runs from the upload's start to status `completed` (polled every 100 ms). The
#    server's RSS before, and its peak (VmHWM) after, give the growth.
# 4. Export: GET /api/products/export of the million rows to a file, against `psql \copy
#    (SELECT the same columns in the same order) TO STDOUT`.
#
# Usage: scripts/bench/import.sh    (builds nothing: cargo build --release first)
# Environment (defaults in brackets):
#   BIN [target/release/product-api]  ROWS [1000000]  BENCH_PORT [3912]
#   BENCH_DB [bench_import] (dropped and recreated)  OUT [a fresh /tmp/bench-import.*]
#   The server inherits the environment: e.g. IMPORT_BATCH_SIZE=1000 to compare batch sizes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

ROWS=${ROWS:-1000000}
BENCH_PORT=${BENCH_PORT:-3912}
BENCH_DB=${BENCH_DB:-bench_import}
DB_URL=postgres://postgres@127.0.0.1:5432/$BENCH_DB?sslmode=$DB_SSLMODE
OUT=${OUT:-$(mktemp -d /tmp/bench-import.XXXXXX)}
BASE=http://127.0.0.1:$BENCH_PORT
SELLER=seller-bench
FILE=$OUT/products.csv

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
rss_kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
sql() { psql "$DB_URL" -q -X -t -A -v ON_ERROR_STOP=1 -c "$1"; }

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
command -v bc >/dev/null || die "bc is needed"
ensure_postgres
mkdir -p "$OUT"

log "generating $ROWS rows in $FILE"
products_csv "$FILE" "$ROWS" sku
BYTES=$(stat -c %s "$FILE")
log "file: $BYTES bytes"

recreate_database "$BENCH_DB"

# ---- baselines: \copy -----------------------------------------------------------------------
sql "CREATE TABLE copy_bare (name text, description text, price numeric(12,2), quantity int, category text, sku text)"
t0=$(now)
psql "$DB_URL" -q -X -v ON_ERROR_STOP=1 -c "\\copy copy_bare FROM '$FILE' WITH (FORMAT csv, HEADER true)"
COPY_BARE=$(elapsed "$t0" "$(now)")
log "\\copy into a bare table: ${COPY_BARE}s"

sql "CREATE TABLE copy_indexed (id bigserial PRIMARY KEY, seller_id varchar(50) NOT NULL DEFAULT '$SELLER',
  name varchar(255) NOT NULL, description text, price numeric(12,2) NOT NULL, quantity bigint NOT NULL,
  category varchar(100) NOT NULL, sku varchar(64), created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz)"
for idx in "UNIQUE INDEX ON copy_indexed (seller_id, sku) WHERE deleted_at IS NULL AND sku IS NOT NULL" \
  "INDEX ON copy_indexed (seller_id, created_at, id) WHERE deleted_at IS NULL" \
  "INDEX ON copy_indexed (seller_id, updated_at, id) WHERE deleted_at IS NULL" \
  "INDEX ON copy_indexed (seller_id, name, id) WHERE deleted_at IS NULL" \
  "INDEX ON copy_indexed (seller_id, price, id) WHERE deleted_at IS NULL" \
  "INDEX ON copy_indexed (seller_id, quantity, id) WHERE deleted_at IS NULL"; do
  sql "CREATE $idx"
done
t0=$(now)
psql "$DB_URL" -q -X -v ON_ERROR_STOP=1 \
  -c "\\copy copy_indexed (name, description, price, quantity, category, sku) FROM '$FILE' WITH (FORMAT csv, HEADER true)"
COPY_INDEXED=$(elapsed "$t0" "$(now)")
log "\\copy into a table with the products indexes: ${COPY_INDEXED}s"

# ---- import through the API -----------------------------------------------------------------
log "starting $BIN on :$BENCH_PORT"
PORT=$BENCH_PORT HOST=127.0.0.1 DATABASE_URL=$DB_URL RATE_LIMIT_ENABLED=false LOG_FORMAT=json \
  IMPORT_SPOOL_DIR=$OUT/spool IMPORT_MAX_BYTES=$((BYTES + 1)) IMPORT_MAX_ROWS=$ROWS RUST_LOG=warn \
  "$BIN" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "$BASE/health/ready" >/dev/null && break
  sleep 0.1
done
curl -sf "$BASE/health/ready" >/dev/null || die "server not ready; see $OUT/server.log"
RSS_BEFORE=$(rss_kib "$SERVER" VmRSS)
CPU_BEFORE=$(cpu_ticks "$SERVER")

t0=$(now)
ACCEPTED=$(curl -sf -X POST "$BASE/api/products/import" -H "X-Seller-Id: $SELLER" -F "file=@$FILE;type=text/csv")
t_accepted=$(now)
ID=$(json_string "$ACCEPTED" import_id) || die "no import id in: $ACCEPTED"
while :; do
  STATUS=$(curl -sf "$BASE/api/products/import/$ID" -H "X-Seller-Id: $SELLER")
  state=$(json_string "$STATUS" status) || die "no status in: $STATUS"
  [ "$state" = completed ] && break
  [ "$state" = failed ] || [ "$state" = cancelled ] && die "import $state: $STATUS"
  sleep 0.1
done
t1=$(now)
IMPORT_SECS=$(elapsed "$t0" "$t1")
ACCEPT_SECS=$(elapsed "$t0" "$t_accepted")
RSS_PEAK_IMPORT=$(rss_kib "$SERVER" VmHWM)
CPU_IMPORT=$(($(cpu_ticks "$SERVER") - CPU_BEFORE))
PRODUCTS=$(sql "SELECT COUNT(*) FROM products WHERE seller_id = '$SELLER'")
EVENTS=$(sql "SELECT COUNT(*) FROM outbox WHERE seller_id = '$SELLER' AND event_type LIKE 'Product%'")
LOW=$(sql "SELECT COUNT(*) FROM outbox WHERE seller_id = '$SELLER' AND event_type = 'LowStockWarning'")
[ "$PRODUCTS" = "$ROWS" ] || die "imported $PRODUCTS products, expected $ROWS"
log "import: ${IMPORT_SECS}s (upload and check ${ACCEPT_SECS}s), $EVENTS ProductCreated + $LOW LowStockWarning events"

# ---- the floor's second half: \copy of as many outbox rows ---------------------------------
# The import's own events, copied out and back into a table shaped like the outbox (same
# columns, indexes and id-drawing trigger), time the engine's part of writing them.
COPY_OUTBOX=$(copy_events "$DB_URL" "$SELLER" "$OUT")
FLOOR=$(echo "$COPY_INDEXED + $COPY_OUTBOX" | bc -l)
log "\\copy of the $EVENTS + $LOW events into an outbox-shaped table: ${COPY_OUTBOX}s"

# ---- export ---------------------------------------------------------------------------------
t0=$(now)
curl -sf "$BASE/api/products/export" -H "X-Seller-Id: $SELLER" -o "$OUT/export.csv"
EXPORT_SECS=$(elapsed "$t0" "$(now)")
RSS_PEAK_EXPORT=$(rss_kib "$SERVER" VmHWM)
EXPORTED=$(($(wc -l <"$OUT/export.csv") - 1))
[ "$EXPORTED" -ge "$ROWS" ] || die "exported $EXPORTED lines, expected $ROWS"
t0=$(now)
psql "$DB_URL" -q -X -v ON_ERROR_STOP=1 -c "\\copy (SELECT id, sku, name, description, price_cents / 100.0, quantity, category, low_stock_threshold, created_at, updated_at FROM products WHERE seller_id = '$SELLER' AND deleted_at IS NULL ORDER BY created_at, id) TO STDOUT WITH (FORMAT csv, HEADER true)" >"$OUT/copy-export.csv"
COPY_EXPORT=$(elapsed "$t0" "$(now)")
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
trap - EXIT

secs() { printf '%.2f' "$1"; }
rate() { echo "$ROWS / $1" | bc -l | xargs printf '%.0f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
mib() { echo "$1 / 1024" | bc -l | xargs printf '%.1f'; }
HZ=$(getconf CLK_TCK)
{
  echo "| Step | Time | Rows/s | vs. baseline |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| \`\\copy\` into a bare table | $(secs "$COPY_BARE")s | $(rate "$COPY_BARE") | |"
  echo "| \`\\copy\` into a table with the products indexes | $(secs "$COPY_INDEXED")s | $(rate "$COPY_INDEXED") | |"
  echo "| \`\\copy\` of the import's events into an outbox-shaped table | $(secs "$COPY_OUTBOX")s | | |"
  echo "| floor: the two \`\\copy\` together | $(secs "$FLOOR")s | $(rate "$FLOOR") | 1.00 |"
  echo "| API import, upload to \`completed\` (upload and header check: $(secs "$ACCEPT_SECS")s) | $(secs "$IMPORT_SECS")s | $(rate "$IMPORT_SECS") | $(ratio "$IMPORT_SECS" "$FLOOR")× the floor |"
  echo "| \`\\copy (SELECT …) TO STDOUT\` (baseline) | $(secs "$COPY_EXPORT")s | $(rate "$COPY_EXPORT") | 1.00 |"
  echo "| API export | $(secs "$EXPORT_SECS")s | $(rate "$EXPORT_SECS") | $(ratio "$EXPORT_SECS" "$COPY_EXPORT")× the time |"
  echo
  echo "Rows: $ROWS ($BYTES bytes); events written: $EVENTS ($LOW LowStockWarning)."
  echo "Server RSS: $(mib "$RSS_BEFORE") MiB before, peak $(mib "$RSS_PEAK_IMPORT") MiB during the import (growth $(mib $((RSS_PEAK_IMPORT - RSS_BEFORE))) MiB), peak $(mib "$RSS_PEAK_EXPORT") MiB after the export."
  echo "Server CPU during the import: $(echo "$CPU_IMPORT / $HZ" | bc -l | xargs printf '%.1f') s ($(echo "$CPU_IMPORT / $HZ * 1000000 / $ROWS" | bc -l | xargs printf '%.1f') µs per row)."
} | tee "$OUT/report.md"
log "report: $OUT/report.md"
