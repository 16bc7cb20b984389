# Shared by scripts/test and the benchmarks: make the local services the tests use reachable.
# Sourced, not run. Each function is idempotent and fails loudly when it cannot succeed.

say() { printf 'services: %s\n' "$*" >&2; }

apt_install() {
  say "installing $* from Debian's packages"
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 secs=$2
  shift 2
  for _ in $(seq "$secs"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  say "$what did not come up within ${secs}s"
  return 1
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    # Trust local TCP connections for the postgres user, as on the project's machines.
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)
    sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
  fi
  say "starting PostgreSQL"
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 30 pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 30 sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

# HAProxy, for the cluster tests (tests/cluster/): each runs its own in the foreground on a
# free port with deploy/haproxy.cfg, so only the binary is needed. Debian's package also
# starts a system service on port 80 where systemd runs; the tests do not use it.
ensure_haproxy() {
  if command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]; then return 0; fi
  apt_install haproxy
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || {
    say "haproxy is not installed"
    return 1
  }
}

# Databases the tests created (pa_test_*), and their SQLite twins.
drop_test_databases() {
  local url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  psql "$url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'pa\_test\_%'" 2>/dev/null |
    while read -r db; do
      [ -n "$db" ] && psql "$url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
  rm -rf "${TMPDIR:-/tmp}/product-api-tests"
}
