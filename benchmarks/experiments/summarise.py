"""Table of learn.py results (one JSON line per run): mean and per-seed mIoU per variant."""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    rows = defaultdict(dict)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                rows[(r["name"], r["steps"])][r["seed"]] = r
    print("| variant | steps | mIoU s0 / s1 | mean | oIoU mean | colour | relation | position |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for (name, steps), by_seed in rows.items():
        runs = [by_seed[s] for s in sorted(by_seed)]

        def mean(f, runs=runs):
            return sum(f(r) for r in runs) / len(runs)

        seeds = " / ".join(f"{r['mIoU']:.1f}" for r in runs)
        print(f"| {name} | {steps} | {seeds} | {mean(lambda r: r['mIoU']):.1f} | {mean(lambda r: r['oIoU']):.1f} | "
              f"{mean(lambda r: r['kinds'].get('colour', 0)):.1f} | {mean(lambda r: r['kinds'].get('relation', 0)):.1f} | "
              f"{mean(lambda r: r['kinds'].get('position', 0)):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/learn/logs/res.jsonl")
