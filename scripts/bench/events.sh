#!/usr/bin/env bash
# Benchmark: write-to-SSE notification latency and outbox relay throughput, in one run.
#
# 1. SSE latency. 1,000 idle event streams (seller-idle0 … seller-idle999) and one stream of
#    seller-bench stay open; then one product of seller-bench is created and adjusted by -1/+1
#    alternately (WARMUP unmeasured, then WRITES measured), one write at a time. For each write:
#    the HTTP round trip (the baseline), and the time from receiving its HTTP response to
#    receiving its SSE frame (matched by event type, productId, quantity and a rising id).
#    The server's VmRSS is read with the 1,001 streams open.
# 2. Relay throughput. With the tansu broker stopped, RELAY_EVENTS outbox rows (a real
#    ProductUpdated payload from step 1, RELAY_SELLERS seller ids, so all 4 partitions) are
#    inserted with one INSERT … SELECT generate_series; once the relay has failed at least once,
#    the broker is started again (same port) and the time until product_api_outbox_backlog is 0
#    is measured, as is the spread of the rows' published_at. Baseline: the same records (same
#    keys, values and CloudEvents headers) published by a plain producer, librdkafka through
#    the confluent-kafka package (aiokafka too, for comparison), to the same broker.
#
# Usage: scripts/bench/events.sh            (from anywhere; builds nothing)
# Environment (defaults in brackets):
#   BIN            server binary [target/release/product-api]; copied first
#   BENCH_COMMIT   the commit BIN was built from, if not HEAD [git rev-parse --short HEAD]
#   BENCH_PORT     [3911]   BENCH_DB [bench_events] (dropped, recreated, dropped at the end)
#   REDIS_URL      [redis://127.0.0.1:6379]
#   IDLE [1000]  WRITES [2000]  WARMUP [100]  RELAY_EVENTS [50000]  RELAY_SELLERS [100]
#   OUT            logs, JSON results and report.md [a fresh /tmp/bench-events.*]
#   BENCH_VENV     an existing virtualenv with the client's packages [make one in $OUT/venv]
#   QUIET_BUDGET   seconds to wait for other benchmarks (wrk) and compilers to be gone for
#                  30 s in a row before measuring [900]; a phase that starts busy is flagged
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis, python3 with venv and
# pip (PyPI: aiohttp, uvloop, confluent-kafka, aiokafka) and tansu (scripts/tansu).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=../services.sh
. scripts/services.sh
# shellcheck source=common.sh
. scripts/bench/common.sh

BENCH_PORT=${BENCH_PORT:-3911}
BENCH_DB=${BENCH_DB:-bench_events}
DB_URL=postgres://postgres@127.0.0.1:5432/$BENCH_DB
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
IDLE=${IDLE:-1000}
WRITES=${WRITES:-2000}
WARMUP=${WARMUP:-100}
RELAY_EVENTS=${RELAY_EVENTS:-50000}
RELAY_SELLERS=${RELAY_SELLERS:-100}
QUIET_BUDGET=${QUIET_BUDGET:-900}
OUT=${OUT:-$(mktemp -d /tmp/bench-events.XXXXXX)}
BASE=http://127.0.0.1:$BENCH_PORT
CLIENT=$ROOT/scripts/bench/events_client.py
RUN_ID=$(date +%s)
export TANSU_STATE_DIR=$OUT/tansu

now() { date +%s.%N; }

[ -x "$BIN" ] || die "no server binary at $BIN (build it: cargo build --release)"
command -v curl >/dev/null || apt_install curl
command -v redis-cli >/dev/null || apt_install redis-tools
command -v psql >/dev/null || apt_install postgresql-client
ensure_postgres
ensure_redis

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

mkdir -p "$OUT" "$TANSU_STATE_DIR"
cp "$BIN" "$OUT/product-api"
SERVER=$OUT/product-api
log "output in $OUT"

# ---- cleanup -----------------------------------------------------------------------------
cleanup() {
  stop_server
  scripts/tansu stop >/dev/null 2>&1 || true
  psql "$PG_ADMIN_URL" -q -c "DROP DATABASE IF EXISTS \"$BENCH_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# ---- quiet machine -----------------------------------------------------------------------
# Other load (a wrk benchmark, a compiler) on the 2 cores skews every figure.
busy() {
  local n
  n=$(pgrep -c -x 'wrk|rustc|cc1|cc1plus|ld|cargo' 2>/dev/null || true)
  echo "${n:-0}"
}
# Waits until nothing busy() counts has run for 30 s in a row (polled every 10 s), within
# what is left of QUIET_BUDGET.
wait_quiet() {
  local quiet=0
  while [ "$quiet" -lt 30 ]; do
    if [ "$(busy)" = 0 ]; then
      quiet=$((quiet + 10))
    else
      quiet=0
    fi
    [ "$quiet" -ge 30 ] && break
    if [ "$QUIET_BUDGET" -le 0 ]; then
      [ "$(busy)" = 0 ] || log "warning: the machine is still busy ($(busy) processes); measuring anyway"
      return 0
    fi
    sleep 10
    QUIET_BUDGET=$((QUIET_BUDGET - 10))
  done
}
TICKS=$(getconf CLK_TCK)

# ---- client environment ------------------------------------------------------------------
if [ -n "${BENCH_VENV:-}" ]; then
  VENV=$BENCH_VENV
else
  VENV=$OUT/venv
  log "making a virtualenv in $VENV (aiohttp, uvloop, confluent-kafka, aiokafka from PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check aiohttp uvloop confluent-kafka aiokafka \
    >"$OUT/pip.log" 2>&1 || die "pip install failed; see $OUT/pip.log"
fi
PY=$VENV/bin/python
"$PY" -c 'import aiohttp' || die "aiohttp missing in $VENV"
PKGS=$("$PY" -m pip list --disable-pip-version-check 2>/dev/null |
  awk '$1 ~ /^(aiohttp|uvloop|confluent-kafka|confluent_kafka|aiokafka)$/ { printf "%s%s %s", s, $1, $2; s = ", " }')

# ---- broker, database, server ------------------------------------------------------------
log "starting tansu (state in $TANSU_STATE_DIR)"
BROKERS=$(scripts/tansu start 2>"$OUT/tansu-start.log" | tail -n 1 | sed -n 's/^KAFKA_BROKERS=//p')
[ -n "$BROKERS" ] || die "tansu did not start; see $OUT/tansu-start.log"
TANSU_VERSION=$(tansu --version 2>/dev/null || "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" --version 2>/dev/null || echo "tansu (version unknown)")
PREFIX=bench-$RUN_ID.

recreate_database "$BENCH_DB"

log "starting the server on $BASE (Kafka $BROKERS, topics $PREFIX*)"
env PORT="$BENCH_PORT" HOST=127.0.0.1 DATABASE_URL="$DB_URL" DATABASE_MAX_CONNECTIONS=32 \
  REDIS_URL="$REDIS_URL" EVENTS_CHANNEL="bench-events-$RUN_ID" KAFKA_BROKERS="$BROKERS" \
  KAFKA_TOPIC_PREFIX="$PREFIX" RATE_LIMIT_ENABLED=false SSE_MAX_STREAMS_PER_SELLER=2000 \
  LOG_FORMAT=json RUST_LOG=warn "$SERVER" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 150); do
  if curl -sf -o /dev/null "$BASE/health/ready"; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT/server.log"
  sleep 0.2
done
curl -sf -o /dev/null "$BASE/health/ready" || die "server not ready in 30 s; see $OUT/server.log"

metric() { # metric NAME: its value in /metrics (0 when absent)
  curl -sf "$BASE/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { printf "%d", v + 0 }'
}
REDIS_PID=$(redis-cli -u "$REDIS_URL" INFO server | tr -d '\r' | sed -n 's/^process_id://p')
TANSU_PID=$(cat "$TANSU_STATE_DIR/tansu.pid")
pg_pids() { pgrep -x postgres | tr '\n' ' '; }
# CPU seconds per phase: server / PostgreSQL (all processes) / Redis / tansu / client.
cpu_snapshot() {
  # shellcheck disable=SC2046
  echo "$(cpu_ticks "$SERVER_PID") $(cpu_ticks $(pg_pids)) $(cpu_ticks "$REDIS_PID") $(cpu_ticks "$TANSU_PID")"
}
cpu_delta() { # cpu_delta BEFORE AFTER: "server/pg/redis/tansu" in seconds
  awk -v b="$1" -v a="$2" -v hz="$TICKS" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    for (k = 1; k <= 4; k++) printf "%s%.1f", (k > 1 ? "/" : ""), (y[k] - x[k]) / hz
  }'
}

# ---- 1. write-to-SSE latency -------------------------------------------------------------
log "waiting for a quiet machine (no wrk or compiler for 30 s; budget ${QUIET_BUDGET}s)"
wait_quiet
BUSY1_BEFORE=$(busy)
log "SSE: $IDLE idle streams + 1, then $WARMUP + $WRITES sequential writes"
STARTED=$(date -u +%FT%TZ)
cpu1_before=$(cpu_snapshot)
t1_before=$(now)
"$PY" "$CLIENT" sse --base "$BASE" --server-pid "$SERVER_PID" --idle "$IDLE" \
  --writes "$WRITES" --warmup "$WARMUP" >"$OUT/sse.json" 2>"$OUT/sse.log" ||
  die "SSE client failed; see $OUT/sse.log"
t1_after=$(now)
cpu1_after=$(cpu_snapshot)
BUSY1_AFTER=$(busy)
CPU1=$(cpu_delta "$cpu1_before" "$cpu1_after")
# j FILE KEY.PATH: a value from a JSON result ("" when absent).
j() { "$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    for k in sys.argv[2].split("."): d = d.get(k) if isinstance(d, dict) else None
except Exception: d = None
if isinstance(d, float): d = int(d) if d.is_integer() else round(d, 3)
print("" if d is None else d)' "$@"; }

# ---- 2. relay throughput -----------------------------------------------------------------
log "relay: waiting for the outbox of step 1 to drain"
for _ in $(seq 300); do
  [ "$(metric product_api_outbox_backlog)" = 0 ] && break
  sleep 0.1
done
[ "$(metric product_api_outbox_backlog)" = 0 ] || die "the outbox did not drain after step 1"
TEMPLATE=$(psql "$DB_URL" -Atq -c \
  "SELECT payload FROM outbox WHERE event_type = 'ProductUpdated' ORDER BY id DESC LIMIT 1")
[ -n "$TEMPLATE" ] || die "no ProductUpdated row to copy the payload from"
MAX_ID=$(psql "$DB_URL" -Atq -c "SELECT coalesce(max(id), 0) FROM outbox")

log "relay: stopping the broker, then inserting $RELAY_EVENTS outbox rows"
scripts/tansu stop >>"$OUT/tansu-start.log" 2>&1
t_stopped=$(now)
failures_before=$(metric product_api_events_publish_failures_total)
psql "$DB_URL" -q -v ON_ERROR_STOP=1 -v tpl="$TEMPLATE" -v n="$RELAY_EVENTS" \
  -v sellers="$RELAY_SELLERS" >/dev/null <<'SQL'
INSERT INTO outbox (seller_id, event_type, product_id, payload, created_at, published_at)
SELECT 'seller-relay' || (g % :sellers), 'ProductUpdated', 1000000 + g,
       replace(:'tpl', 'seller-bench', 'seller-relay' || (g % :sellers)), now(), NULL
FROM generate_series(1, :n) AS g;
ANALYZE outbox;
SQL
published_before=$(metric product_api_events_published_total)
backlog_start=$(metric product_api_outbox_backlog)
[ "$backlog_start" = "$RELAY_EVENTS" ] || log "warning: backlog is $backlog_start, not $RELAY_EVENTS"
# The relay must have noticed the rows and failed (broker down) before the broker returns.
for _ in $(seq 150); do
  [ "$(metric product_api_events_publish_failures_total)" -gt "$failures_before" ] && break
  sleep 0.2
done
wait_quiet
RELAY_FAILED=$(($(metric product_api_events_publish_failures_total) - failures_before))
BUSY2_BEFORE=$(busy)
cpu2_before=$(cpu_snapshot)
log "relay: starting the broker again"
t_start=$(now)
scripts/tansu start >>"$OUT/tansu-start.log" 2>&1 || die "tansu did not restart"
t_up=$(now)
TANSU_PID=$(cat "$TANSU_STATE_DIR/tansu.pid")
cpu2_before="${cpu2_before% *} $(cpu_ticks "$TANSU_PID")"
target=$((published_before + RELAY_EVENTS))
t_first=
t_done=
deadline=$(($(date +%s) + 300))
while [ "$(date +%s)" -lt "$deadline" ]; do
  p=$(metric product_api_events_published_total)
  ts=$(now)
  if [ -z "$t_first" ] && [ "$p" -gt "$published_before" ]; then t_first=$ts; fi
  if [ "$p" -ge "$target" ] && [ "$(metric product_api_outbox_backlog)" = 0 ]; then
    t_done=$ts
    break
  fi
  sleep 0.1
done
cpu2_after=$(cpu_snapshot)
BUSY2_AFTER=$(busy)
CPU2=$(cpu_delta "$cpu2_before" "$cpu2_after")
[ -n "$t_done" ] || die "the relay did not publish $RELAY_EVENTS events within 300 s"
published_after=$(metric product_api_events_published_total)
# When each batch was marked published: the spread of the marks is the relay's own pace.
read -r BATCHES FIRST_BATCH SPREAD <<<"$(psql "$DB_URL" -Atq -F ' ' -c "
  WITH r AS (SELECT published_at FROM outbox WHERE id > $MAX_ID)
  SELECT count(DISTINCT published_at),
         (SELECT count(*) FROM r WHERE published_at = (SELECT min(published_at) FROM r)),
         extract(epoch FROM max(published_at) - min(published_at))
  FROM r")"
UNPUBLISHED=$(psql "$DB_URL" -Atq -c "SELECT count(*) FROM outbox WHERE id > $MAX_ID AND published_at IS NULL")
RECORD_BYTES=$(psql "$DB_URL" -Atq -c "SELECT round(avg(octet_length(payload))) FROM outbox WHERE id > $MAX_ID")

# ---- 2b. baseline: a plain producer, same records, same broker ---------------------------
psql "$DB_URL" -Atq -F $'\t' -c "
  SELECT id, seller_id, event_type, product_id,
         to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payload
  FROM outbox WHERE id > $MAX_ID ORDER BY id" >"$OUT/records.tsv"
wait_quiet
BUSY3=$(busy)
for client in confluent aiokafka; do
  log "baseline: $client producer, $RELAY_EVENTS records"
  if ! "$PY" "$CLIENT" produce --brokers "$BROKERS" --client "$client" \
    --topic "${PREFIX}baseline-$client.product.updated" --records "$OUT/records.tsv" \
    >"$OUT/produce-$client.json" 2>"$OUT/produce-$client.log"; then
    log "the $client producer failed; see $OUT/produce-$client.log"
    echo '{}' >"$OUT/produce-$client.json"
  fi
done

# ---- report ------------------------------------------------------------------------------
S=$OUT/sse.json
f2() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else printf "%.2f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.1f×", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "—"; else printf "%.1f MiB", k / 1024 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) print "—"; else printf "%.0f", n / s }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

sse_p50=$(j "$S" sse_ms.p50)
http_p50=$(j "$S" http_ms.p50)
sse_p99=$(j "$S" sse_ms.p99)
http_p99=$(j "$S" http_ms.p99)
relay_total_s=$(secs "$t_up" "$t_done")
relay_active_s=$(secs "${t_first:-$t_up}" "$t_done")
relay_rate_total=$(rate "$RELAY_EVENTS" "$relay_total_s")
relay_rate_marks=$(rate "$((RELAY_EVENTS - FIRST_BATCH))" "$SPREAD")
base_rate=$(j "$OUT/produce-confluent.json" events_per_s)
aio_rate=$(j "$OUT/produce-aiokafka.json" events_per_s)

{
  echo "- Command: \`scripts/bench/events.sh\` (IDLE=$IDLE WRITES=$WRITES WARMUP=$WARMUP RELAY_EVENTS=$RELAY_EVENTS RELAY_SELLERS=$RELAY_SELLERS)"
  echo "- Machine: $(nproc) cores ($cpu), $mem RAM; $(uname -sr); the server, PostgreSQL, Redis, tansu and the client share the cores"
  echo "- Commit: $COMMIT$DIRTY; binary sha256 $(sha256sum "$SERVER" | cut -c1-12); started $STARTED"
  echo "- Broker: $TANSU_VERSION, memory storage, loopback; client: Python $("$PY" -c 'import sys; print(sys.version.split()[0])') ($(j "$S" loop)), $PKGS"
  echo "- Busy processes (wrk/compilers) at start/end: SSE $BUSY1_BEFORE/$BUSY1_AFTER, relay $BUSY2_BEFORE/$BUSY2_AFTER, producer baseline $BUSY3"
  echo
  echo "### 1. Write → SSE frame, $(j "$S" idle_streams) idle streams + 1 open"
  echo
  echo "| Measure ($(j "$S" sse_ms.n) writes) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| HTTP response → SSE frame (notification latency) | $(f2 "$sse_p50") | $(f2 "$(j "$S" sse_ms.p90)") | $(f2 "$sse_p99") | $(f2 "$(j "$S" sse_ms.max)") |"
  echo "| Baseline: HTTP round trip of the write itself | $(f2 "$http_p50") | $(f2 "$(j "$S" http_ms.p90)") | $(f2 "$http_p99") | $(f2 "$(j "$S" http_ms.max)") |"
  echo "| Ratio notification / round trip | $(ratio "$sse_p50" "$http_p50") | $(ratio "$(j "$S" sse_ms.p90)" "$(j "$S" http_ms.p90)") | $(ratio "$sse_p99" "$http_p99") | $(ratio "$(j "$S" sse_ms.max)" "$(j "$S" http_ms.max)") |"
  echo
  echo "- Server RSS (VmRSS): $(mib "$(j "$S" rss_kib_before)") before the streams, $(mib "$(j "$S" rss_kib_open)") with $(j "$S" sse_gauge_open) streams open (product_api_sse_connections), $(mib "$(j "$S" rss_kib_after_writes)") after the writes"
  echo "- $(j "$S" idle_streams) idle streams opened in $(j "$S" idle_open_seconds) s ($(j "$S" idle_open_failed) failed); writes ran at $(j "$S" writes_per_second)/s one at a time, each waiting for its frame"
  echo "- Anomalies: non-2xx $(j "$S" non2xx), frames missing $(j "$S" frames_missing), frames before the HTTP response $(j "$S" frames_before_response) (counted as 0 ms; raw minimum $(f2 "$(j "$S" sse_raw_min_ms)") ms), idle streams closed $(j "$S" idle_closed_during_run), stray events on idle streams $(j "$S" idle_stray_events), other: $("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["anomalies"]; print(len(a), a[:3])' "$S")"
  echo "- CPU seconds during step 1 ($(secs "$t1_before" "$t1_after") s wall, incl. opening streams), server/PostgreSQL/Redis/tansu: $CPU1; client $(j "$S" client_cpu_s)"
  echo
  echo "### 2. Relay: $RELAY_EVENTS queued events after the broker returns"
  echo
  echo "| Measure | Events | Seconds | Events/s |"
  echo "|---|---:|---:|---:|"
  echo "| Relay, broker start → backlog 0 (metrics polled every 0.1 s) | $RELAY_EVENTS | $relay_total_s | $relay_rate_total |"
  echo "| Relay, first published increment → backlog 0 | $RELAY_EVENTS | $relay_active_s | $(rate "$RELAY_EVENTS" "$relay_active_s") |"
  echo "| Relay, first → last batch marked (published_at; $BATCHES batches, first batch of $FIRST_BATCH excluded) | $((RELAY_EVENTS - FIRST_BATCH)) | $(f2 "$SPREAD") | $relay_rate_marks |"
  echo "| Baseline: plain producer, $(j "$OUT/produce-confluent.json" client), same records | $(j "$OUT/produce-confluent.json" delivered) | $(f2 "$(j "$OUT/produce-confluent.json" elapsed_s)") | $(awk -v v="$base_rate" 'BEGIN { if (v == "") print "failed"; else printf "%.0f", v }') |"
  echo "| For comparison: aiokafka (pure Python) producer, same records | $(j "$OUT/produce-aiokafka.json" delivered) | $(f2 "$(j "$OUT/produce-aiokafka.json" elapsed_s)") | $(awk -v v="$aio_rate" 'BEGIN { if (v == "") print "failed"; else printf "%.0f", v }') |"
  echo
  pc() { awk -v a="$1" -v b="$base_rate" 'BEGIN { if (b == "" || a == "—") print "—"; else printf "%.1f%%", 100 * a / b }'; }
  echo "- Relay / plain producer: $(pc "$relay_rate_total") (broker start → backlog 0), $(pc "$(rate "$RELAY_EVENTS" "$relay_active_s")") (first increment → backlog 0), $(pc "$relay_rate_marks") (batch marks)"
  echo "- Relay settings: OUTBOX_BATCH_SIZE default (500), OUTBOX_SWEEP_MS default (1000); the broker was down $(secs "$t_stopped" "$t_start") s, first publish $(secs "$t_up" "${t_first:-$t_up}") s after it accepted connections again"
  echo "- Record: ~$RECORD_BYTES-byte JSON value (a real ProductUpdated payload), seller key, 7 CloudEvents headers; $RELAY_SELLERS sellers over 4 partitions; producer avg record $(j "$OUT/produce-confluent.json" avg_record_bytes) bytes incl. key and headers"
  echo "- Relay attempts that failed while the broker was down (at least 1 expected): $RELAY_FAILED; published_total $published_before → $published_after; rows left unpublished: $UNPUBLISHED; broker restart took $(secs "$t_start" "$t_up") s"
  echo "- CPU seconds from broker start to backlog 0, server/PostgreSQL/Redis/tansu: $CPU2"
  echo "- Producer errors: confluent $(j "$OUT/produce-confluent.json" errors), aiokafka $(j "$OUT/produce-aiokafka.json" errors)"
} | tee "$OUT/report.md"
log "report in $OUT/report.md; raw results in $OUT"
