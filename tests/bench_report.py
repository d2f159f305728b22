"""The benchmark's table: reads what tests/bench.sh wrote in OUT and prints, for each case and
server, the highest sustained deliveries/s, p50/p99/max at the first (moderate) rate, and CPU
seconds per 1,000 deliveries, then memory per idle connection and connections held, with the
Palaver/Node and Palaver/ceiling ratios. Writes the same as JSON to target/bench.json.
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


def figures(kind, n, k):
    run, cpu = load(f"{kind}-{n}-{k}.json"), load(f"{kind}-{n}-{k}.cpu.json")
    steps = run.get("steps") or [{}]
    first = steps[0]
    delivered = sum(s.get("delivered", 0) for s in steps)
    # No delivery at all within the step: there is no latency to show.
    heard = first.get("delivered", 0) > 0
    return {
        "sustained_deliveries_per_s": run.get("sustained_deliveries_per_s"),
        "moderate_rate_messages_per_s": first.get("offered_messages_per_s"),
        "p50_ms": first.get("p50_ms") if heard else None,
        "p99_ms": first.get("p99_ms") if heard else None,
        "max_ms": first.get("max_ms") if heard else None,
        "cpu_s_per_1000_deliveries": (cpu.get("cpu_s", 0) / (delivered / 1000)) if delivered else None,
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
keys = ["sustained_deliveries_per_s", "p50_ms", "p99_ms", "max_ms", "cpu_s_per_1000_deliveries"]
for case in cases:
    n, k = case.split(":")
    by = {kind: figures(kind, n, k) for kind in ["palaver", "node", "ceiling"]}
    report["cases"][f"N={n} K={k}"] = by
    for key in keys:
        p, no, c = by["palaver"][key], by["node"][key], by["ceiling"][key]
        rows.append((f"N={n} K={k}", key, p, no, c, ratio(p, no), ratio(p, c)))

for kind in ["palaver", "node"]:
    idle, rss, hold = load(f"{kind}-idle.json"), load(f"{kind}-idle.rss.json"), load(f"{kind}-hold.json")
    connected = idle.get("held") or idle.get("connected") or 0
    per = ((rss.get("rss_peak_kb", 0) - rss.get("rss_before_kb", 0)) / connected) if connected else None
    report["idle"][kind] = {
        "kb_per_idle_connection": per,
        "idle_connections": connected,
        "held": hold.get("held"),
        "asked_to_hold": hold.get("asked"),
    }
for key in ["kb_per_idle_connection", "held"]:
    p, no = report["idle"]["palaver"][key], report["idle"]["node"][key]
    rows.append(("idle", key, p, no, None, ratio(p, no), None))

print(f"{'case':14} {'figure':28} {'palaver':>10} {'node':>10} {'ceiling':>10} {'P/node':>7} {'P/ceil':>7}")
for case, key, p, no, c, rn, rc in rows:
    print(f"{case:14} {key:28} {cell(p):>10} {cell(no):>10} {cell(c):>10} {cell(rn):>7} {cell(rc):>7}")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "target", "bench.json"), "w") as f:
    json.dump(report, f, indent=2)
