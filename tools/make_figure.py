"""Draw ``docs/figure.png``: a generated scene, three expressions and the masks they name.

    python tools/make_figure.py

The scenes come from rrsis's own synthetic generator (``rrsis.data.synthetic``), so the figure
shows the task, not a trained model's output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "figure.png"


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rrsis.data.synthetic import generate_scene

    gen = generate_scene(3, seed=0, size=192, expressions_per_scene=3, min_objects=5, max_objects=7)
    exprs = [e for e in gen.expressions if e.targets][:3]
    fig, axes = plt.subplots(1, 1 + len(exprs), figsize=(3.0 * (1 + len(exprs)), 3.4))
    axes[0].imshow(gen.image)
    axes[0].set_title("scene", fontsize=10)
    for ax, expr in zip(axes[1:], exprs):
        mask = np.zeros(gen.image.shape[:2], bool)
        for t in expr.targets:
            mask |= gen.scene.objects[t].mask
        overlay = gen.image.astype(float) * 0.45
        overlay[mask] = 0.35 * overlay[mask] + 0.65 * np.array([40.0, 230.0, 255.0])
        ax.imshow(overlay.astype(np.uint8))
        ax.set_title(f"“{expr.text}”", fontsize=9, wrap=True)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(OUT, dpi=80, metadata={"Software": None})
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
