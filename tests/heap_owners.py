#!/usr/bin/env python3
"""Bytes per connection by owner, from a heap profile taken while connections were held.

    heap_owners.py STACKS CONNECTIONS [BASELINE_STACKS]

STACKS is heaptrack's folded stacks of the bytes live at the peak (`heaptrack_print
--flamegraph-cost-type peak -F STACKS`), root first. BASELINE_STACKS, when given, is the same
of a run with the same set-up and no connections: its bytes are taken off, owner by owner, so
that what is left is what the connections cost.

An allocation's owner is the crate nearest the allocation (reading the stack from its leaf)
that decides to make it: standard-library and general-purpose crates (alloc, hashbrown, bytes,
serde, ...) are passed over, as they allocate for whoever calls them. A tokio task's memory is
its future, so a task is put down to tokio with the crate that spawned it.
"""
import collections
import re
import sys

# Crates, by the module path heaptrack shows, and the owner each is counted under.
OWNERS = [
    ("palaver", "Palaver"),
    ("rooms", "rooms"),
    ("socketioxide", "socketioxide"),
    ("engineioxide", "engineioxide"),
    ("tungstenite", "tungstenite"),
    ("tokio_tungstenite", "tungstenite"),
    ("axum", "axum"),
    ("hyper_util", "hyper"),
    ("hyper", "hyper"),
    ("h2", "hyper"),
    ("mongodb", "database driver"),
    ("bson", "database driver"),
    ("redis", "Redis client"),
    ("governor", "governor"),
    ("tracing_subscriber", "logging"),
    ("metrics", "metrics"),
    ("tokio", "tokio"),
]
OWNER_OF = dict(OWNERS)
CRATE = re.compile(r"(?:<|\b)([a-z_][a-z0-9_]*)::")


def crate_of(frame):
    """The first crate a frame names that has an owner (a generic impl names the type's)."""
    for name in CRATE.findall(frame):
        if name in OWNER_OF:
            return name
    return None


def owner_of(stack):
    frames = stack.split(";")
    for i in range(len(frames) - 1, -1, -1):
        crate = crate_of(frames[i])
        if crate is None:
            continue
        if crate == "tokio" and "task" in frames[i]:
            spawner = next(
                (OWNER_OF[c] for c in map(crate_of, reversed(frames[:i])) if c and c != "tokio"),
                "?",
            )
            return f"tokio (tasks spawned by {spawner})"
        return OWNER_OF[crate]
    return "other (libc, std)"


def by_owner(path):
    totals = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            stack, _, cost = line.rstrip("\n").rpartition(" ")
            if not cost.isdigit():
                continue
            totals[owner_of(stack)] += int(cost)
    return totals


def main():
    stacks, connections = sys.argv[1], int(sys.argv[2])
    totals = by_owner(stacks)
    if len(sys.argv) > 3:
        totals.subtract(by_owner(sys.argv[3]))
    print("| owner | bytes per connection |")
    print("|---|---|")
    for owner, total in sorted(totals.items(), key=lambda kv: -kv[1]):
        if abs(total) / connections >= 10:
            print(f"| {owner} | {total / connections:,.0f} |")
    print(f"| **all** | **{sum(totals.values()) / connections:,.0f}** |")


if __name__ == "__main__":
    main()
