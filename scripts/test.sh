#!/usr/bin/env bash
# Runs every bsc-bot test. Installs and starts what the tests need when it is missing:
#   - PostgreSQL (Debian package `postgresql`), a throwaway cluster on 127.0.0.1:${BSC_BOT_TEST_PGPORT:-54329}
# An already exported DATABASE_URL is used as is (the tests create and drop their own databases in it).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test cli_strategy`).
set -euo pipefail
cd "$(dirname "$0")/.."

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "test.sh: using the PostgreSQL in DATABASE_URL"
    return
  fi
  local bin port data
  bin=$(pg_bin_dir)
  if [ -z "$bin" ]; then
    echo "test.sh: installing PostgreSQL (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin_dir)
  fi
  [ -n "$bin" ] || { echo "test.sh: PostgreSQL binaries not found after install" >&2; exit 1; }
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  port=${BSC_BOT_TEST_PGPORT:-54329}
  data=${BSC_BOT_TEST_PGDATA:-/tmp/bsc-bot-test-pg}
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "test.sh: starting a throwaway PostgreSQL on 127.0.0.1:$port ($data)"
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_postgres "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
    as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      start >/dev/null
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

ensure_postgres
cargo test --locked "$@"
