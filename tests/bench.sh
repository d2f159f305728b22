#!/usr/bin/env bash
# Benchmarks Palaver's message fan-out against Node's socket.io server doing the same work on the
# same machine in the same run, and prints the figures and their ratios. Bounded: each side runs
# for SECONDS (default 5) at RATE messages/s (default 500) and stops by itself.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

install_tools
say "building (release)"
cargo build --release --locked --bin palaver
start_database
BENCH=$ROOT/tests/js/bench/bench.mjs

say "Palaver"
RUST_LOG=warn start_palaver "$ROOT/target/release/palaver" "bench_palaver_$$"
PALAVER=$(BENCH_URL="http://127.0.0.1:$APP_PORT" BENCH_SERVER_PID=$APP_PID node "$BENCH")
echo "$PALAVER"
kill "$APP_PID"

say "Node socket.io baseline"
NODE_PORT=$(free_port)
PORT=$NODE_PORT MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="bench_node_$$" \
  node "$ROOT/tests/js/bench/baseline-server.mjs" >"$LOGS/baseline.log" 2>&1 &
NODE_PID=$!
PIDS+=($NODE_PID)
wait_for_port "$NODE_PORT" baseline "$NODE_PID"
NODE=$(BENCH_URL="http://127.0.0.1:$NODE_PORT" BENCH_SERVER_PID=$NODE_PID node "$BENCH")
echo "$NODE"

say "Palaver / Node (below 1 is better for latency, CPU and memory; above 1 for throughput)"
python3 - "$PALAVER" "$NODE" <<'PY'
import json, sys
p, n = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for key in ["deliveries_per_s", "p50_ms", "p99_ms", "max_ms", "server_cpu_s", "idle_kb_per_socket"]:
    ratio = p[key] / n[key] if n[key] else float("nan")
    print(f"{key:20} palaver {p[key]:>10.2f}   node {n[key]:>10.2f}   ratio {ratio:6.2f}")
print(f"{'delivered':20} palaver {p['delivered']}/{p['expected_deliveries']}   node {n['delivered']}/{n['expected_deliveries']}")
PY
