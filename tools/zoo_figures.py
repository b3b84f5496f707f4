"""Regenerate ``docs/zoo-figures.json``: parameters and GFLOPs at 480² of every registered model.

    python tools/zoo_figures.py            # every model (a few minutes on a CPU)
    python tools/zoo_figures.py lavt-tiny  # only the models named (others keep their figures)

Parameters are counted on the meta device (nothing allocated). GFLOPs are multiply-adds × 2
counted by ``torch.utils.flop_counter`` over one forward pass of a random-weight model on the CPU
(batch 1, 480×480, 20 tokens, ``RRSIS_KERNELS=torch`` so every attention runs as plain torch ops
the counter sees). The docs' model-zoo page reads the file; a model missing from it gets its
parameters counted when the page is built and no GFLOPs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "zoo-figures.json"
SIZE = 480
TOKENS = 20


def count_parameters(name: str) -> int:
    """Parameters of ``rrsis.create_model(name)``, built on the meta device."""
    import torch

    import rrsis

    with torch.device("meta"):
        model = rrsis.create_model(name)
    return sum(p.numel() for p in model.parameters())


def count_gflops(name: str, size: int = SIZE) -> float:
    """FLOPs (2 per multiply-add) of one forward pass at ``size``², in billions."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import rrsis

    model = rrsis.create_model(name).eval()
    ids = torch.ones(1, TOKENS, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size), ids, torch.ones_like(ids))
    return counter.get_total_flops() / 1e9


def main(argv: list[str]) -> int:
    os.environ["RRSIS_KERNELS"] = "torch"
    import torch

    import rrsis

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    names = argv or rrsis.list_models()
    known = set(rrsis.list_models())
    bad = [n for n in names if n not in known]
    if bad:
        print(f"unknown model(s) {bad}; known: {sorted(known)}", file=sys.stderr)
        return 2
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    for name in names:
        figures[name] = {"params": count_parameters(name), "gflops_480": round(count_gflops(name), 2),
                         "torch": torch.__version__.split("+")[0]}
        print(f"{name}: {figures[name]['params'] / 1e6:.2f} M parameters, "
              f"{figures[name]['gflops_480']:.1f} GFLOPs at {SIZE}²", flush=True)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(dict(sorted(figures.items())), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
