"""The benchmark's table: reads what tests/bench.sh wrote in OUT and prints, for each case and
server, the highest sustained deliveries/s, p50/p99/max at the first (moderate) rate, and CPU
seconds per 1,000 deliveries (and the database's per 1,000 messages), memory per connection after
the busiest step and when quiet again, then memory per idle connection (Socket.IO and plain
WebSocket, Node's Socket.IO beside both) and connections held, with the
Palaver/Node ratio and Palaver's against each ceiling: the bare one ("ceiling"), and the one
that stores each message in the same database first ("stored"). Writes the same as JSON to
target/bench.json.
Usage: bench_report.py OUT "N:K N:K ..." """
import json
import os
import sys

out, cases = sys.argv[1], sys.argv[2].split()


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else {}


def kb_per(rss, at, since, connections):
    """RSS growth per connection, in kB, from `since` to `at` (names the load generator gave)."""
    if not connections or at not in rss or since not in rss:
        return None
    return (rss[at] - rss[since]) / connections


def figures(kind, n, k):
    run, cpu = load(f"{kind}-{n}-{k}.json"), load(f"{kind}-{n}-{k}.cpu.json")
    steps = run.get("steps") or [{}]
    first = steps[0]
    delivered = sum(s.get("delivered", 0) for s in steps)
    sent = sum(s.get("sent", 0) for s in steps)
    rss, connections = run.get("rss_kb", {}), run.get("connections")
    # No delivery at all within the step: there is no latency to show.
    heard = first.get("delivered", 0) > 0
    return {
        "sustained_deliveries_per_s": run.get("sustained_deliveries_per_s"),
        "moderate_rate_messages_per_s": first.get("offered_messages_per_s"),
        "p50_ms": first.get("p50_ms") if heard else None,
        "p99_ms": first.get("p99_ms") if heard else None,
        "max_ms": first.get("max_ms") if heard else None,
        "cpu_s_per_1000_deliveries": (cpu.get("cpu_s", 0) / (delivered / 1000)) if delivered else None,
        # The bare ceiling has no database.
        "db_cpu_s_per_1000_messages": (cpu["db_cpu_s"] / (sent / 1000)) if sent and cpu.get("db_cpu_s") else None,
        "kb_per_connection_busiest": kb_per(rss, "busiest", "start", connections),
        "kb_per_connection_quiet": kb_per(rss, "quiet", "start", connections),
        "steps": steps,
    }


def ratio(a, b):
    return round(a / b, 2) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def cell(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


report = {"cases": {}, "idle": {}}
rows = []
keys = ["sustained_deliveries_per_s", "p50_ms", "p99_ms", "max_ms", "cpu_s_per_1000_deliveries",
        "db_cpu_s_per_1000_messages", "kb_per_connection_busiest", "kb_per_connection_quiet"]
for case in cases:
    n, k = case.split(":")
    by = {kind: figures(kind, n, k) for kind in ["palaver", "node", "ceiling", "stored"]}
    report["cases"][f"N={n} K={k}"] = by
    for key in keys:
        p, no, c, st = (by[kind][key] for kind in ["palaver", "node", "ceiling", "stored"])
        rows.append((f"N={n} K={k}", key, p, no, c, st, ratio(p, no), ratio(p, c), ratio(p, st)))

# Memory per idle connection: RSS growth from the fresh process to the end of the hold, each
# connection a user of their own; Node's Socket.IO figure beside each of Palaver's.
for kind, protocol in [("palaver", "socketio"), ("palaver", "ws"), ("node", "socketio")]:
    idle = load(f"{kind}-idle-{protocol}.json")
    held = idle.get("held") or 0
    report["idle"][f"{kind}_{protocol}"] = {
        "kb_per_idle_connection": kb_per(idle.get("rss_kb", {}), "held_end", "start", held),
        "kb_per_idle_connection_after_set_up": kb_per(idle.get("rss_kb", {}), "held_end", "set_up", held),
        "idle_connections": held,
        "set_up_seconds": idle.get("setup_seconds"),
    }
node_idle = report["idle"]["node_socketio"]["kb_per_idle_connection"]
for protocol, name in [("socketio", "kb_per_idle_socketio"), ("ws", "kb_per_idle_websocket")]:
    p = report["idle"][f"palaver_{protocol}"]["kb_per_idle_connection"]
    rows.append(("idle", name, p, node_idle, None, None, ratio(p, node_idle), None, None))
for kind in ["palaver", "node"]:
    hold = load(f"{kind}-hold.json")
    report["idle"][f"{kind}_held"] = {"held": hold.get("held"), "asked_to_hold": hold.get("asked")}
p, no = report["idle"]["palaver_held"]["held"], report["idle"]["node_held"]["held"]
rows.append(("idle", "held", p, no, None, None, ratio(p, no), None, None))

print(f"{'case':14} {'figure':28} {'palaver':>10} {'node':>10} {'ceiling':>10} {'stored':>10}"
      f" {'P/node':>7} {'P/ceil':>7} {'P/stored':>8}")
for case, key, *figures_and_ratios in rows:
    p, no, c, st, rn, rc, rs = (cell(v) for v in figures_and_ratios)
    print(f"{case:14} {key:28} {p:>10} {no:>10} {c:>10} {st:>10} {rn:>7} {rc:>7} {rs:>8}")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "target", "bench.json"), "w") as f:
    json.dump(report, f, indent=2)
