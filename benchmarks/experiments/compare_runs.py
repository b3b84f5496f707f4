"""Where two trained models disagree: per-expression IoU of both on one validation split.

    python benchmarks/experiments/compare_runs.py DATA_ROOT RUN_A RUN_B [--size 96]

DATA_ROOT is a generated set's ``rrsisd`` folder, RUN_A / RUN_B saved models (``.../final``).
Prints each model's mIoU, the correlation of the per-expression IoUs, how many expressions
are hits (IoU ≥ 0.5) for one model and misses for the other, and the same per expression kind:
the kinds the budget leaves half-learnt are the ones two runs disagree on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ablation import expression_kind, load_split, score


def per_expression_iou(run: str, samples: list[dict]) -> np.ndarray:
    import rrsis

    return np.asarray(score(rrsis.from_pretrained(run).eval(), samples).ious, dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--size", type=int, default=96)
    a = p.parse_args(argv)
    import torch

    from rrsis.data.synthetic import vocabulary
    from rrsis.text import Tokenizer

    torch.set_num_threads(1)
    val = load_split(a.data, "val", a.size, Tokenizer.from_words(vocabulary()))
    ia, ib = per_expression_iou(a.run_a, val), per_expression_iou(a.run_b, val)
    ha, hb = ia >= 0.5, ib >= 0.5
    print(f"mIoU A {100 * ia.mean():.1f}  B {100 * ib.mean():.1f}  on {len(val)} expressions")
    print(f"correlation of per-expression IoU {np.corrcoef(ia, ib)[0, 1]:.2f}")
    print(f"hits A {ha.sum()}  B {hb.sum()}  both {(ha & hb).sum()}  A only {(ha & ~hb).sum()}  "
          f"B only {(~ha & hb).sum()}")
    kinds = np.array([expression_kind(s["text"], bool(s["mask"].any())) for s in val])
    print("| kind | n | mIoU A | mIoU B | hit for one, miss for the other |")
    print("|---|---:|---:|---:|---:|")
    for k in sorted(set(kinds)):
        sel = kinds == k
        print(f"| {k} | {sel.sum()} | {100 * ia[sel].mean():.1f} | {100 * ib[sel].mean():.1f} | "
              f"{(ha[sel] != hb[sel]).sum()} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
