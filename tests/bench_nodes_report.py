"""The many-node benchmark's table (tests/bench.sh --nodes), from target/bench-nodes/*.json."""

import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(caption, columns):
    """A caption, then a Markdown table's head."""
    print()
    print(caption)
    print()
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))


table(
    "Nodes with no member of the loaded chats: CPU each spends while messages are sent\n"
    "elsewhere, against what it spends with no traffic for as long (median over those nodes;\n"
    "/proc counts CPU in 10 ms ticks).",
    ["build, Redis", "messages", "CPU during, ms / 1,000 msgs", "CPU quiet as long, ms / 1,000 msgs", "extra µs per message"],
)
extra = {}
for name in ("before-single", "after-single", "after-cluster"):
    run = load(name)
    if not run:
        continue
    idle = run["idle_nodes"]
    busy = statistics.median(idle["cpu_s_per_1000_messages"])
    quiet = statistics.median(idle["quiet_cpu_s_per_1000_messages"])
    extra[name] = max(busy - quiet, 0.0)
    print(f"| {name} | {idle['messages_sent']} | {busy * 1000:.2f} | {quiet * 1000:.2f} | {extra[name] * 1000:.1f} |")
if "before-single" in extra and "after-single" in extra:
    print()
    print(f"extra CPU per message on a node with no member, one Redis: {extra['before-single'] * 1000:.1f} µs before, {extra['after-single'] * 1000:.1f} µs now")

table(
    "Rooms of ten: sustained deliveries/s and p99 at the last step that kept up, one node\n"
    "against the same rooms spread over three.",
    ["Redis", "nodes", "sustained deliveries/s", "p99 ms at that step", "spread / one"],
)
for redis in ("single", "cluster"):
    one = load(f"spread-{redis}-1")
    for nodes in (1, 3):
        run = load(f"spread-{redis}-{nodes}")
        if not run:
            continue
        sustained = run.get("sustained_deliveries_per_s", 0.0)
        kept = [s for s in run["steps"] if s["deliveries_per_s"] == sustained]
        p99 = kept[-1]["p99_ms"] if kept else float("nan")
        ratio = sustained / one["sustained_deliveries_per_s"] if one and one.get("sustained_deliveries_per_s") else float("nan")
        print(f"| {redis} | {nodes} | {sustained:.0f} | {p99:.1f} | {ratio:.2f} |")

table(
    "Idle connections in rooms of ten over three nodes (each room's members on different\n"
    "nodes), held past a ping interval, then one message into each room: every delivery, and\n"
    "each node's memory and open files while held (growth over the node's own start).",
    ["Redis", "connections", "held", "messages", "deliveries / expected", "p50 ms", "p99 ms", "max ms", "kB per connection", "open files per node"],
)
for redis in ("single", "cluster"):
    run = load(f"fanout-{redis}")
    if not run:
        continue
    nodes = run["nodes"]
    grown = sum(n["rss_held_kb"] - n["rss_before_kb"] for n in nodes)
    per = grown * 1024 / run["connections"] / 1000 if run["connections"] else float("nan")
    files = ", ".join(f"{n['open_files']:,}" for n in nodes)
    print(
        f"| {redis} | {run['connections']:,} | {run['held']:,} | {run['sent']:,} over {run['over_s']:.0f} s | "
        f"{run['delivered']:,} / {run['expected_deliveries']:,} | {run['p50_ms']:.1f} | {run['p99_ms']:.1f} | "
        f"{run['max_ms']:.1f} | {per:.1f} | {files} |"
    )
