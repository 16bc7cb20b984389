#!/usr/bin/env bash
# Benchmark: how many product writes per second PostgreSQL itself takes with their outbox
# events, the ceiling under every instance of a cluster (docs/scaling.md). pgbench runs the
# transaction a create commits (one product, with the seller's count trigger; one outbox row,
# its id drawn by the trigger under the seller's lock), no HTTP, no server, no relay, on the
# schema the server's migrations make.
#
# Usage: scripts/bench/writes.sh    (builds nothing: cargo build --release first)
# Environment (defaults in brackets):
#   BIN [target/release/product-api] (runs its migrations)  BENCH_DB [bench_writes]
#   DURATION [15] seconds  CLIENTS [64]  SELLERS [1000]  DB_SSLMODE [disable]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

BENCH_DB=${BENCH_DB:-bench_writes}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-64}
SELLERS=${SELLERS:-1000}
DB_URL="postgres://postgres@127.0.0.1:5432/$BENCH_DB?sslmode=$DB_SSLMODE"

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
command -v pgbench >/dev/null || apt_install postgresql-contrib
ensure_postgres

recreate_database "$BENCH_DB"
DATABASE_URL=$DB_URL "$BIN" migrate >/dev/null

script=$(mktemp /tmp/bench-writes.XXXXXX.sql)
trap 'rm -f "$script"' EXIT
cat >"$script" <<SQL
\set s random(1, $SELLERS)
BEGIN;
WITH p AS (
  INSERT INTO products (seller_id, name, description, price_cents, quantity, category,
                        version, created_at, updated_at)
  VALUES ('seller-' || :s, 'Bench product', 'A product written by pgbench', 1999, 50,
          'Bench', 1, now(), now())
  RETURNING id, seller_id)
INSERT INTO outbox (seller_id, event_type, product_id, payload, created_at)
SELECT seller_id, 'ProductCreated', id,
       '{"eventType":"ProductCreated","data":{"productId":' || id || '}}', now()
FROM p;
END;
SQL

log "pgbench: $CLIENTS clients, ${DURATION}s, $SELLERS sellers, on $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version')"
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$script" "$BENCH_DB" |
  grep -E "number of transactions actually processed|latency average|tps"
