#!/usr/bin/env bash
# Where an idle connection's memory goes: Palaver (release build) under heaptrack (Debian's,
# installed when missing) holds N idle connections, each a user of their own in a direct chat
# with another, over Socket.IO and then over a plain WebSocket. Once every connection serves
# (the server counts it in its metrics) and ten seconds more have passed, the process is
# killed, so that what heaptrack finds not freed is what was live then; it is put down to its
# owner (tests/heap_owners.py) and divided by N. A run of the same set-up with no connections
# gives the memory that is not the connections', which is taken off. Bounded: each hold ends
# by itself.
#
#   tests/bench.sh --heap [N]    N = 10,000 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${1:-10000}

install_tools
if ! command -v heaptrack >/dev/null; then apt_install heaptrack; fi
# heaptrack follows the system's allocator only: Palaver is built without jemalloc (its default),
# in a target folder of its own so that the benchmark's build stays as it is.
say "building (release; Palaver with the system's allocator)"
cargo build --release --locked -p loadgen
PALAVER=$ROOT/target/system-allocator/release/palaver
CARGO_TARGET_DIR=$ROOT/target/system-allocator \
  cargo build --release --locked -p palaver --no-default-features --bin palaver
LOADGEN=$ROOT/target/release/loadgen
OUT=$ROOT/target/bench/heap
mkdir -p "$OUT"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# profile NAME PROTOCOL CONNECTIONS: the folded stacks of what was live, in $OUT/NAME.stacks.
profile() {
  local name=$1 protocol=$2 connections=$3 port palaver ready=$OUT/$1.ready
  say "heap profile: $name ($connections idle connections, $protocol)"
  start_database "heap-database-$name"
  port=$(free_port)
  rm -f "$ready" "$OUT/$name.zst"
  env HOST=127.0.0.1 PORT="$port" MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="heap_$name" \
    JWT_SECRET="heap-$$" DATA_DIR="$(mktemp -d)" RUST_LOG=warn MAX_CONNECTIONS_PER_ADDRESS=100000 \
    SIGN_UPS_PER_MINUTE=1000000 heaptrack -o "$OUT/$name" "$PALAVER" \
    >"$LOGS/heap-$name.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "heap-$name" "$!"
  palaver=$(pgrep -n -f "^$PALAVER$")
  # With no connections, the set-up alone: the users and chats are made, then nothing opens.
  "$LOADGEN" idle --protocol "$protocol" --url "http://127.0.0.1:$port" \
    --connections "$connections" --seconds 600 --ready "$ready" ${BASELINE:+--set-up-only} \
    >"$OUT/$name.json" &
  local loadgen=$!
  PIDS+=($loadgen)
  for _ in $(seq 1 3600); do [ -f "$ready" ] && break; sleep 1; done
  sleep 10
  kill -9 "$palaver"
  kill "$loadgen" 2>/dev/null || true
  wait "$loadgen" 2>/dev/null || true
  # heaptrack writes its file once the process is gone.
  for _ in $(seq 1 120); do pgrep -f "heaptrack.*$OUT/$name" >/dev/null || break; sleep 1; done
  heaptrack_print -f "$OUT/$name.zst" --flamegraph-cost-type leaked -F "$OUT/$name.stacks" \
    >"$OUT/$name.txt"
}

for protocol in socketio ws; do
  profile "$protocol" "$protocol" "$N"
  BASELINE=1 profile "$protocol-set-up" "$protocol" "$N"
  say "bytes per idle connection by owner ($protocol, $N connections, set-up taken off)"
  python3 tests/heap_owners.py "$OUT/$protocol.stacks" "$N" "$OUT/$protocol-set-up.stacks" \
    | tee "$OUT/$protocol.table.md"
done
