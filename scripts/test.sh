#!/usr/bin/env bash
# Runs every bsc-bot test. Installs and starts what the tests need when it is missing:
#   - PostgreSQL (Debian package `postgresql`), a throwaway cluster on 127.0.0.1:${BSC_BOT_TEST_PGPORT:-54329}
#   - a local EVM chain for the live-trading tests: anvil (npm @foundry-rs/anvil-linux-amd64), the
#     Uniswap V2 contract artifacts (npm @uniswap/v2-core, @uniswap/v2-periphery) and PancakeSwap V3's
#     (npm @pancakeswap/v3-core, @pancakeswap/v3-periphery), installed once into
#     ${BSC_BOT_TESTCHAIN_DIR:-$HOME/.cache/bsc-bot/testchain}; the tests find them through ANVIL_BIN and
#     UNISWAP_ARTIFACTS
#   - promtool (Debian package `prometheus`, no daemon started) to check and evaluate the shipped
#     alert rules in deploy/prometheus-alerts.yml
#   - iproute2 (the cluster test's network namespace)
#   - Chromium and ChromeDriver (Debian `chromium`, `chromium-driver`) for the console's browser tests
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

# Pinned: the tests deploy these exact contract builds.
# PancakeSwap V3 pins 1.0.2: the only version of v3-core, and the last periphery with bytecode.
TESTCHAIN_PACKAGES=(@foundry-rs/anvil-linux-amd64@1.7.1 @uniswap/v2-core@1.0.1 @uniswap/v2-periphery@1.1.0-beta.0
  @pancakeswap/v3-core@1.0.2 @pancakeswap/v3-periphery@1.0.2)

ensure_testchain() {
  local dir=${BSC_BOT_TESTCHAIN_DIR:-$HOME/.cache/bsc-bot/testchain}
  local modules=$dir/node_modules
  local anvil=$modules/@foundry-rs/anvil-linux-amd64/bin/anvil
  if [ ! -x "$anvil" ] || [ ! -f "$modules/@uniswap/v2-core/build/UniswapV2Factory.json" ] \
    || [ ! -f "$modules/@uniswap/v2-periphery/build/UniswapV2Router02.json" ] \
    || [ ! -f "$modules/@pancakeswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "test.sh: installing npm (apt-get install npm)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq npm >/dev/null
    fi
    echo "test.sh: installing anvil, the Uniswap V2 and PancakeSwap V3 artifacts into $dir (npm)"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "${TESTCHAIN_PACKAGES[@]}"
  fi
  [ -x "$anvil" ] || { echo "test.sh: anvil not found at $anvil after install" >&2; exit 1; }
  export ANVIL_BIN=$anvil
  export UNISWAP_ARTIFACTS=$modules/@uniswap
}

# `ensure_apt WHY COMMAND… -- PACKAGE…`: install the Debian packages when a command is missing.
ensure_apt() {
  local why="$1"; shift
  local commands=()
  while [ "$1" != "--" ]; do commands+=("$1"); shift; done
  shift
  local missing=0
  for c in "${commands[@]}"; do command -v "$c" >/dev/null 2>&1 || missing=1; done
  if [ "$missing" = 1 ]; then
    echo "test.sh: installing $why (apt-get install $*)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
  for c in "${commands[@]}"; do
    command -v "$c" >/dev/null 2>&1 || { echo "test.sh: $c not found after install" >&2; exit 1; }
  done
}

ensure_promtool() { ensure_apt promtool promtool -- prometheus; }
# The cluster test runs a daemon in a network namespace of its own (iproute2's `ip netns`).
ensure_iproute() { ensure_apt iproute2 ip -- iproute2; }
# The console tests drive a real headless Chromium over WebDriver (Debian `chromium` and
# `chromium-driver`: /usr/bin/chromium, /usr/bin/chromedriver).
ensure_chromium() { ensure_apt "Chromium and its WebDriver" chromium chromedriver -- chromium chromium-driver; }

ensure_postgres
ensure_testchain
ensure_promtool
ensure_iproute
ensure_chromium
cargo test --locked "$@"
