# Shared by the benchmark scripts; sourced, not run.

# The server binary measured (scripts build nothing) and the PostgreSQL every script uses.
BIN=${BIN:-target/release/product-api}
PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
# The request benchmarks reach PostgreSQL on loopback, as a co-located deployment would: without
# TLS unless DB_SSLMODE says otherwise (libpq's default, prefer, encrypts every query here).
DB_SSLMODE=${DB_SSLMODE:-disable}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# json_string JSON KEY: the first string value of KEY in JSON, in the shell itself: a poll
# that starts a process per field (python's start-up costs ~15 ms of CPU) takes CPU from the
# server it waits for, several seconds of a 2-core machine's over a long import.
json_string() {
  local pattern="\"$2\": *\"([^\"]*)\""
  [[ $1 =~ $pattern ]] && echo "${BASH_REMATCH[1]}"
}

# CPU time (user + system, clock ticks) of the given processes; vanished ones count 0.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# recreate_database NAME: drops and creates the benchmark's own database.
recreate_database() {
  log "recreating database $1"
  psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\"" \
    >/dev/null 2>&1 || die "cannot recreate database $1"
}

# stop_server: stops the server started as $SERVER_PID, if any, and waits for it.
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

# products_csv FILE ROWS [sku]: the benchmarks' CSV of ROWS products (name, description, price,
# quantity, category, and with `sku` a sku column), the same rows for the same ROWS every time.
products_csv() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import random, sys
path, n, sku = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "sku"
rng = random.Random(7)
categories = ["Electronics", "Home & Kitchen", "Sports", "Books", "Toys", "Garden"]
with open(path, "w", newline="") as f:
    f.write("name,description,price,quantity,category" + (",sku" if sku else "") + "\n")
    for i in range(n):
        price = rng.randint(100, 99999) / 100
        f.write(f'Product {i},"Sturdy item {i}, made to last",{price:.2f},'
                f'{rng.randint(0, 500)},{categories[i % 6]}' + (f",SKU-{i:07d}" if sku else "") + "\n")
PY
}

# copy_events DB_URL SELLER DIR: the floor's second half. Copies SELLER's product events out of
# the outbox of the database at DB_URL to DIR/outbox.csv, then times `\copy` of them into an
# outbox-shaped table there (columns, indexes, and the id trigger, which like the outbox's
# fires only for rows without an id: the events go with their ids, drawn beforehand, as the
# import writes them); prints the seconds.
copy_events() {
  local url=$1 seller=$2 dir=$3 t0 t1
  psql "$url" -q -X -v ON_ERROR_STOP=1 -c "\\copy (SELECT id, seller_id, event_type, product_id, payload, created_at FROM outbox WHERE seller_id = '$seller' ORDER BY id) TO '$dir/outbox.csv' WITH (FORMAT csv)" >&2
  psql "$url" -q -X -v ON_ERROR_STOP=1 -c "DROP TABLE IF EXISTS copy_outbox" \
    -c "CREATE TABLE copy_outbox (LIKE outbox INCLUDING ALL)" \
    -c "CREATE TRIGGER copy_outbox_ids BEFORE INSERT ON copy_outbox FOR EACH ROW WHEN (NEW.id IS NULL) EXECUTE FUNCTION outbox_id_in_seller_commit_order()" >&2
  t0=$(date +%s.%N)
  psql "$url" -q -X -v ON_ERROR_STOP=1 \
    -c "\\copy copy_outbox (id, seller_id, event_type, product_id, payload, created_at) FROM '$dir/outbox.csv' WITH (FORMAT csv)" >&2
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# seed_sellers BASE COUNT FILE: creates one product for each of COUNT sellers (seller-l0 …)
# through the server at BASE and writes "seller product-id" lines to FILE, for load.lua.
seed_sellers() {
  local base=$1 count=$2 file=$3 i body id
  : >"$file"
  for i in $(seq 0 $((count - 1))); do
    body=$(curl -sf -X POST "$base/api/products" -H "X-Seller-Id: seller-l$i" \
      -H 'Content-Type: application/json' \
      -d '{"name":"Load","price":9.99,"quantity":500,"category":"Bench"}') || die "seed failed"
    id=$(printf '%s' "$body" | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
    printf 'seller-l%s %s\n' "$i" "$id" >>"$file"
  done
}
