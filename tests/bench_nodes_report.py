"""The many-node benchmark's table (tests/bench.sh --nodes), from target/bench-nodes/*.json."""

import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


print("Nodes with no member of the loaded chats: CPU seconds each spends per 1,000 messages")
print("sent elsewhere (median over the idle nodes), against the same node with no traffic.")
print()
print("| build, Redis | messages | busy, s / 1,000 msgs | quiet, s / 1,000 msgs | busy / quiet |")
print("|---|---|---|---|---|")
rows = {}
for name in ("before-single", "after-single", "after-cluster"):
    run = load(name)
    if not run:
        continue
    idle = run["idle_nodes"]
    busy = statistics.median(idle["cpu_s_per_1000_messages"])
    quiet = statistics.median(idle["quiet_cpu_s_per_1000_messages"])
    rows[name] = busy
    ratio = busy / quiet if quiet else float("inf")
    print(f"| {name} | {idle['messages_sent']} | {busy:.4f} | {quiet:.4f} | {ratio:.2f} |")
if "before-single" in rows and "after-single" in rows and rows["after-single"]:
    print()
    print(f"before / after, one Redis: {rows['before-single'] / rows['after-single']:.1f}x less CPU per message on a node with no member")

print()
print("Rooms of ten: sustained deliveries/s and p99 at the last step that kept up, one node")
print("against the same rooms spread over three.")
print()
print("| Redis | nodes | sustained deliveries/s | p99 ms at that step | spread / one |")
print("|---|---|---|---|---|")
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
