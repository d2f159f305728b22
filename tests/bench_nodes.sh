#!/usr/bin/env bash
# The many-node benchmark (`tests/bench.sh --nodes`, `--nodes --quick`): what a node pays for
# messages sent elsewhere, and rooms spread over nodes, on one Redis and on a Redis Cluster.
#
# 1. Nodes with no member: one node under load (pairs of the channels dialect, a fixed rate)
#    and IDLE_NODES other nodes on the same database and Redis, none holding a member of the
#    loaded chats. The CPU each of those spends per 1,000 messages sent elsewhere, against
#    what it spends with no traffic at all, for this build and for the build before routing by
#    interest (BEFORE, built from its commit into target/bench-before), in the same run.
# 2. Rooms of ten spread over three nodes (member m of each room on node m mod 3): sustained
#    deliveries/s and p99, stepped up as bench.sh does, against the same rooms on one node.
# 3. Many idle connections: rooms of ten (50,000 connections in 5,000 rooms) over three nodes,
#    each room's members on different nodes, opened by three load-generator processes so that
#    each process, like each node, stays under the 20,000 open-files limit. Held idle past a
#    ping interval, then one message into each room, over FANOUT_OVER seconds: deliveries and
#    their p99, and each node's memory and open files while held.
# Both on a single Redis and on a three-master Redis Cluster (this build only: the one before
# could not use a cluster). Servers run on core 0, the load generator on core 1. Bounded: every
# run stops by itself. Writes target/bench-nodes/*.json and prints a table.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

QUICK=false
if [ "${1:-}" = --quick ]; then QUICK=true; fi
# The last commit before routing by interest: every node heard every message.
BEFORE=${BENCH_BEFORE:-032e279}
if $QUICK; then
  IDLE_NODES=3 PAIRS_N=200 RATE=200 RUN_SECONDS=10 QUIET_SECONDS=5 SPREAD="300:10" STEPS=3
  FANOUT_ROOMS=300 FANOUT_HOLD=5 FANOUT_OVER=10
else
  IDLE_NODES=9 PAIRS_N=1000 RATE=1000 RUN_SECONDS=20 QUIET_SECONDS=10 SPREAD="1000:10" STEPS=8
  # Held past the nodes' Socket.IO ping interval (25 s). The messages go over 100 s, 50 a
  # second, each the first of its chat (so read from the database): at 250 a second this
  # machine fell behind by seconds (README, "Many nodes").
  FANOUT_ROOMS=5000 FANOUT_HOLD=30 FANOUT_OVER=100
fi
# BENCH_NODES_CASES picks some of the cases, e.g. "fanout".
CASES=" ${BENCH_NODES_CASES:-idle spread fanout} "
SENDER_RATE=28
SERVER_CPU=() LOAD_CPU=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi
OUT=$ROOT/target/bench-nodes
mkdir -p "$OUT"

install_tools
say "building (release)"
cargo build --release --locked -p palaver -p loadgen --bins
LOADGEN=$ROOT/target/release/loadgen
if [[ $CASES == *" idle "* ]] && [ ! -x "$ROOT/target/bench-before/release/palaver" ]; then
  say "building the build before routing by interest ($BEFORE)"
  rm -rf "$ROOT/target/bench-before-src"
  git worktree prune
  git worktree add --detach "$ROOT/target/bench-before-src" "$BEFORE" >/dev/null
  (cd "$ROOT/target/bench-before-src" &&
    cargo build --release --locked -p palaver --target-dir "$ROOT/target/bench-before")
  git worktree remove --force "$ROOT/target/bench-before-src"
fi

cpu_seconds() { # user + system CPU seconds of a process
  awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.3f", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

# A single Redis (REDIS_URL) or a three-master cluster with a replica each.
start_redis() {
  local port ports=() i
  if [ "$1" = single ]; then
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$LOGS/bench-redis.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "$port" bench-redis "$!"
    REDIS_URL="redis://127.0.0.1:$port"
    return
  fi
  local dir; dir=$(mktemp -d)
  for i in 1 2 3 4 5 6; do
    # The cluster bus listens 10,000 above the port: that one must be a port too.
    port=$(free_port)
    while [ "$port" -gt 55535 ]; do port=$(free_port); done
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --cluster-enabled yes \
      --cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
      --cluster-config-file "nodes-$port.conf" --dir "$dir" >"$LOGS/bench-redis-$i.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "$port" "bench-redis-$i" "$!"
    ports+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  until redis-cli -p "${ports[0]#*:}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
  REDIS_URL=$(printf 'redis://%s,' "${ports[@]:0:3}")
  REDIS_URL=${REDIS_URL%,}
}

# start_node BINARY NAME: a Palaver node on the shared database and Redis; sets NODE_PID and
# NODE_URL.
start_node() {
  local port; port=$(free_port)
  env HOST=127.0.0.1 PORT="$port" MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="$DATABASE" \
    REDIS_URL="$REDIS_URL" JWT_SECRET="bench-$$" DATA_DIR="$(mktemp -d)" RUST_LOG=warn \
    MAX_CONNECTIONS_PER_ADDRESS=100000 SIGN_UPS_PER_MINUTE=1000000 \
    "${SERVER_CPU[@]}" "$1" >"$LOGS/bench-$2.log" 2>&1 &
  NODE_PID=$!
  PIDS+=($NODE_PID)
  wait_for_port "$port" "bench-$2" "$NODE_PID"
  NODE_URL="http://127.0.0.1:$port"
}

stop_all() { # everything this case started
  local pid
  for pid in "${CASE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${CASE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# Case 1 with BINARY on REDIS (single or cluster), named NAME.
idle_nodes_case() {
  local binary=$1 redis=$2 name=$3 first=${#PIDS[@]} idle=() i quiet_before quiet_after
  say "$name: one loaded node and $IDLE_NODES with no member ($redis Redis)"
  start_database "bench-nodes-database"
  DATABASE="bench_nodes_${name}_$$"
  start_redis "$redis"
  start_node "$binary" "$name-loaded"
  local loaded=$NODE_URL
  for i in $(seq "$IDLE_NODES"); do
    start_node "$binary" "$name-idle-$i"
    idle+=("$NODE_PID")
  done
  sleep 2
  snapshot() { for pid in "${idle[@]}"; do cpu_seconds "$pid"; echo -n ' '; done; }
  quiet_before=$(snapshot)
  sleep "$QUIET_SECONDS"
  quiet_after=$(snapshot)
  local run_before run_after started ended
  run_before=$(snapshot)
  started=$(date +%s.%N)
  "${LOAD_CPU[@]}" "$LOADGEN" run --protocol socketio --url "$loaded" --connections "$PAIRS_N" \
    --room-size 2 --rate "$RATE" --seconds "$RUN_SECONDS" --steps 0 \
    --max-sender-rate "$SENDER_RATE" >"$OUT/$name.json"
  ended=$(date +%s.%N)
  run_after=$(snapshot)
  python3 - "$OUT/$name.json" "$QUIET_SECONDS" "$quiet_before" "$quiet_after" "$started" "$ended" \
    "$run_before" "$run_after" <<'EOF'
import json, sys
path, quiet, qb, qa, started, ended, rb, ra = sys.argv[1:]
run = json.load(open(path))
sent = sum(step["sent"] for step in run["steps"])
nums = lambda s: [float(x) for x in s.split()]
quiet_rate = [(a - b) / float(quiet) for a, b in zip(nums(qa), nums(qb))]
seconds = float(ended) - float(started)
busy = [(a - b) for a, b in zip(nums(ra), nums(rb))]
run["idle_nodes"] = {
    "messages_sent": sent,
    "seconds": seconds,
    "cpu_s_per_1000_messages": [b / sent * 1000 for b in busy],
    "quiet_cpu_s_per_second": quiet_rate,
    # What the node would have spent with no traffic over the same time, per 1,000 messages.
    "quiet_cpu_s_per_1000_messages": [q * seconds / sent * 1000 for q in quiet_rate],
}
json.dump(run, open(path, "w"))
EOF
  CASE_PIDS=("${PIDS[@]:$first}")
  stop_all
}

# Case 2 on REDIS: the same rooms on one node, then spread over three.
spread_case() {
  local redis=$1 n=${SPREAD%:*} k=${SPREAD#*:} urls=() i first=${#PIDS[@]}
  for nodes in 1 3; do
    say "rooms of $k, $n connections, over $nodes node(s) ($redis Redis)"
    first=${#PIDS[@]}
    start_database "bench-nodes-database"
    DATABASE="bench_spread_${redis}_${nodes}_$$"
    start_redis "$redis"
    urls=()
    for i in $(seq "$nodes"); do
      start_node "$ROOT/target/release/palaver" "spread-$i"
      urls+=("$NODE_URL")
    done
    local joined; joined=$(IFS=,; echo "${urls[*]}")
    "${LOAD_CPU[@]}" "$LOADGEN" run --protocol socketio --url "$joined" --connections "$n" \
      --room-size "$k" --rate $((n / k * SENDER_RATE / 20)) --seconds 5 --steps "$STEPS" \
      --max-sender-rate "$SENDER_RATE" >"$OUT/spread-$redis-$nodes.json"
    CASE_PIDS=("${PIDS[@]:$first}")
    stop_all
  done
}

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
open_files() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }

# Case 3 on REDIS.
fanout_case() {
  local redis=$1 urls=() nodes=() loaders=() i first=${#PIDS[@]} dir from to
  say "$((FANOUT_ROOMS * 10)) idle connections in rooms of ten over three nodes, then a message into each room ($redis Redis)"
  start_database "bench-nodes-database"
  DATABASE="bench_fanout_${redis}_$$"
  start_redis "$redis"
  for i in 1 2 3; do
    start_node "$ROOT/target/release/palaver" "fanout-$i"
    urls+=("$NODE_URL")
    nodes+=("$NODE_PID")
  done
  sleep 1
  local base=() joined
  for i in "${nodes[@]}"; do base+=("$(rss_kb "$i")"); done
  joined=$(IFS=,; echo "${urls[*]}")
  dir=$(mktemp -d)
  for i in 0 1 2; do
    from=$((i * FANOUT_ROOMS / 3)) to=$(((i + 1) * FANOUT_ROOMS / 3))
    "${LOAD_CPU[@]}" "$LOADGEN" fanout --url "$joined" --rooms $((to - from)) --first "$from" \
      --room-size 10 --ready "$dir/ready-$i" --go "$dir/go" --over "$FANOUT_OVER" \
      >"$OUT/fanout-$redis-$i.json" 2>"$LOGS/bench-loadgen-$i.log" &
    loaders+=($!)
    PIDS+=($!)
  done
  local waited=0
  until [ -e "$dir/ready-0" ] && [ -e "$dir/ready-1" ] && [ -e "$dir/ready-2" ]; do
    for i in "${loaders[@]}"; do
      if ! running "$i"; then
        echo "a load generator stopped before its connections were open:" >&2
        cat "$LOGS"/bench-loadgen-*.log >&2
        exit 1
      fi
    done
    waited=$((waited + 1))
    if [ "$waited" -gt 1800 ]; then echo "connections not open within 30 minutes" >&2; exit 1; fi
    sleep 1
  done
  sleep "$FANOUT_HOLD"
  local held=()
  for i in "${!nodes[@]}"; do
    held+=("${base[$i]}:$(rss_kb "${nodes[$i]}"):$(open_files "${nodes[$i]}")")
  done
  touch "$dir/go"
  for i in "${loaders[@]}"; do wait "$i"; done
  python3 - "$OUT" "$redis" "$FANOUT_OVER" "${held[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, redis, over, held = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4:]
parts = [json.loads((out / f"fanout-{redis}-{i}.json").read_text()) for i in range(3)]
latencies = sorted(l for p in parts for l in p.pop("latencies_us"))
at = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000 if latencies else float("nan")
total = lambda key: sum(p[key] for p in parts)
nodes = []
for h in held:
    base, rss, files = (int(x) for x in h.split(":"))
    nodes.append({"rss_before_kb": base, "rss_held_kb": rss, "open_files": files})
run = {
    "processes": parts,
    "rooms": total("rooms"), "connections": total("connected"), "failed": total("failed"),
    "held": total("held"), "sent": total("sent"), "expected_deliveries": total("expected_deliveries"),
    "delivered": total("delivered"), "over_s": over,
    "setup_seconds": max(p["setup_seconds"] for p in parts),
    "connect_seconds": max(p["connect_seconds"] for p in parts),
    "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": latencies[-1] / 1000 if latencies else float("nan"),
    "nodes": nodes,
}
(out / f"fanout-{redis}.json").write_text(json.dumps(run))
EOF
  CASE_PIDS=("${PIDS[@]:$first}")
  stop_all
}

if [[ $CASES == *" idle "* ]]; then
  idle_nodes_case "$ROOT/target/bench-before/release/palaver" single before-single
  idle_nodes_case "$ROOT/target/release/palaver" single after-single
  idle_nodes_case "$ROOT/target/release/palaver" cluster after-cluster
fi
if [[ $CASES == *" spread "* ]]; then
  spread_case single
  spread_case cluster
fi
if [[ $CASES == *" fanout "* ]]; then
  fanout_case single
  fanout_case cluster
fi

say "results"
python3 "$ROOT/tests/bench_nodes_report.py" "$OUT" | tee "$OUT/table.txt"
