"""The many-node benchmark's table (tests/bench.sh --nodes), from target/bench-nodes/*.json."""

import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


print("Nodes with no member of the loaded chats: CPU each spends while messages are sent")
print("elsewhere, against what it spends with no traffic for as long (median over those nodes;")
print("/proc counts CPU in 10 ms ticks).")
print()
print("| build, Redis | messages | CPU during, ms / 1,000 msgs | CPU quiet as long, ms / 1,000 msgs | extra µs per message |")
print("|---|---|---|---|---|")
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
