#!/usr/bin/env bash
# The benchmark: Palaver, Node's socket.io@4 server doing the same work on the same database
# (store the message, broadcast it to the room, ack), and two ceilings: a bare tokio WebSocket
# broadcast server (no Socket.IO, no database), and the same server storing each message in the
# same database before it broadcasts it, batched as Palaver does (what the database alone
# allows), measured in one run by the Rust load generator
# (tests/loadgen). For each server and each case (N connections in rooms of K, one sender per
# room) the rate is stepped up from 50 messages/s until p99 passes 50 ms or deliveries fall
# behind. Then memory per idle connection and the connections one node holds. Servers run on
# core 0 and the load generator on core 1 (taskset), when there are two. Prints a table with
# the Palaver/Node and Palaver/ceiling ratios (against each ceiling), and writes the same as
# JSON to target/bench.json. Bounded: every step stops by itself. The servers' memory per connection
# is read after the busiest step and once the connections are quiet again, and the database's
# CPU per 1,000 messages beside each server's own.
#
#   tests/bench.sh            the full run (N = 1,000 and 10,000; up to 50,000 held)
#   tests/bench.sh --quick    a small run, about five minutes after the release build
#   tests/bench.sh --nodes [--quick]   the many-node cases instead (see tests/bench_nodes.sh)
#   tests/bench.sh --heap [N]          where idle connections' memory goes (tests/bench_heap.sh)
set -euo pipefail
if [ "${1:-}" = --nodes ]; then
  shift
  exec "$(dirname "$0")/bench_nodes.sh" "$@"
fi
if [ "${1:-}" = --heap ]; then
  shift
  exec "$(dirname "$0")/bench_heap.sh" "$@"
fi
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

QUICK=false
if [ "${1:-}" = --quick ]; then QUICK=true; fi
if $QUICK; then
  # The idle run's connections stand for those held: no separate run.
  CASES="200:10 200:2"; SECONDS_PER_STEP=2; STEPS=2; IDLE_N=1000; HOLD_N=0; HOLD_SECONDS=0
else
  CASES="1000:10 10000:10 1000:2"; SECONDS_PER_STEP=5; STEPS=20; IDLE_N=10000; HOLD_N=50000
  HOLD_SECONDS=30
fi
# Every case starts at a rate any server holds on two cores, so that each gets a figure on
# every machine, and grows by half each step.
START_RATE=50
# A Palaver connection may send 30 events a second: every server is offered the same.
SENDER_RATE=28
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SERVER_CPU=() LOAD_CPU=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

install_tools
say "building (release)"
cargo build --release --locked -p palaver -p loadgen --bins
LOADGEN=$ROOT/target/release/loadgen
OUT=$ROOT/target/bench
mkdir -p "$OUT"

cpu_seconds() { # user + system CPU seconds of a process
  awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.2f", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

# start_server KIND NAME: starts a fresh server of KIND (palaver, node, ceiling, stored) on core 0 and
# sets SERVER_PID and SERVER_URL. Each server gets a database of its own, started afresh:
# SecantusDB slows down with every write it has served (dropping databases does not help),
# so one shared by the whole run would make later cases look slower than earlier ones.
start_server() {
  local port
  DB_PID=
  if [ "$1" != ceiling ]; then
    start_database "bench-database"
    DB_PID=${PIDS[-1]}
  fi
  port=$(free_port)
  case $1 in
    palaver)
      # Every connection and every account of the load comes from 127.0.0.1.
      env HOST=127.0.0.1 PORT="$port" MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="bench_$2_$$" \
        JWT_SECRET="bench-$$" DATA_DIR="$(mktemp -d)" RUST_LOG=warn MAX_CONNECTIONS_PER_ADDRESS=100000 \
        SIGN_UPS_PER_MINUTE=1000000 \
        "${SERVER_CPU[@]}" "$ROOT/target/release/palaver" >"$LOGS/bench-palaver.log" 2>&1 & ;;
    node)
      PORT=$port MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="bench_$2_$$" \
        "${SERVER_CPU[@]}" node "$ROOT/tests/js/bench/baseline-server.mjs" >"$LOGS/bench-node.log" 2>&1 & ;;
    ceiling)
      "${SERVER_CPU[@]}" "$LOADGEN" ceiling --port "$port" >"$LOGS/bench-ceiling.log" 2>&1 & ;;
    stored)
      "${SERVER_CPU[@]}" "$LOADGEN" ceiling --port "$port" --store "$TEST_MONGODB_URI" \
        --database "bench_$2_$$" >"$LOGS/bench-stored.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  wait_for_port "$port" "bench-$1" "$SERVER_PID"
  SERVER_URL="http://127.0.0.1:$port"
}

stop_server() {
  local pid
  for pid in "$SERVER_PID" $DB_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# One case on one server: the stepped run, with the server's CPU seconds.
for kind in palaver node ceiling stored; do
  for case in $CASES; do
    n=${case%:*} k=${case#*:}
    say "$kind: $n connections in rooms of $k"
    start_server "$kind" "${kind}_${n}_${k}"
    protocol=socketio
    if [ "$kind" = ceiling ] || [ "$kind" = stored ]; then protocol=ws; fi
    cpu_before=$(cpu_seconds "$SERVER_PID")
    db_before=0
    if [ -n "$DB_PID" ]; then db_before=$(cpu_seconds "$DB_PID"); fi
    "${LOAD_CPU[@]}" "$LOADGEN" run --protocol "$protocol" --url "$SERVER_URL" --connections "$n" \
      --room-size "$k" --rate "$START_RATE" --seconds "$SECONDS_PER_STEP" --steps "$STEPS" \
      --max-sender-rate "$SENDER_RATE" --server-pid "$SERVER_PID" >"$OUT/$kind-$n-$k.json"
    cpu_after=$(cpu_seconds "$SERVER_PID")
    db_after=0
    if [ -n "$DB_PID" ]; then db_after=$(cpu_seconds "$DB_PID"); fi
    echo "{\"cpu_s\": $(python3 -c "print($cpu_after - $cpu_before)"), \"db_cpu_s\": $(python3 -c "print($db_after - $db_before)")}" \
      >"$OUT/$kind-$n-$k.cpu.json"
    stop_server
  done
done

# Memory per idle connection, on a fresh process: each connection a user of their own in a
# direct chat with another (set up first), over Socket.IO and, for Palaver, over a plain
# WebSocket; the load generator reads the server's RSS before the set-up, after it, and at
# the end of the hold. Then the connections one node holds (all one user's, to open them fast).
idle_case() { # KIND PROTOCOL
  say "$1: memory of $IDLE_N idle connections ($2)"
  start_server "$1" "${1}_idle_$2"
  "${LOAD_CPU[@]}" "$LOADGEN" idle --protocol "$2" --url "$SERVER_URL" --connections "$IDLE_N" \
    --seconds 30 --server-pid "$SERVER_PID" >"$OUT/$1-idle-$2.json"
  stop_server
}
idle_case palaver socketio
idle_case palaver ws
idle_case node socketio
for kind in palaver node; do
  if [ "$HOLD_N" -eq 0 ]; then
    cp "$OUT/$kind-idle-socketio.json" "$OUT/$kind-hold.json"
    continue
  fi
  say "$kind: holding $HOLD_N idle connections for $HOLD_SECONDS s"
  start_server "$kind" "${kind}_hold"
  "${LOAD_CPU[@]}" "$LOADGEN" idle --shared-user --url "$SERVER_URL" --connections "$HOLD_N" \
    --seconds "$HOLD_SECONDS" --sources 64 >"$OUT/$kind-hold.json" || echo '{}' >"$OUT/$kind-hold.json"
  stop_server
done

say "results (Palaver/Node: above 1 is better for throughput and connections, below 1 for the rest)"
python3 "$ROOT/tests/bench_report.py" "$OUT" "$CASES" | tee "$OUT/table.txt"
echo "JSON: target/bench.json"
