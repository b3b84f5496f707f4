"""Example scenes for the page, generated at start-up with :mod:`rrsis.data.synthetic`."""

from __future__ import annotations

from pathlib import Path

from ..data.synthetic import generate_scene
from ..pictures import save_png

__all__ = ["write_examples"]


def write_examples(folder: str | Path, n: int = 3, *, seed: int = 7, size: int = 256,
                   expressions: int = 2) -> list[tuple[str, str]]:
    """Write ``n`` generated scenes as PNGs into ``folder``; ``(path, expressions one per line)`` each."""
    out = []
    for i in range(n):
        scene = generate_scene(i, seed, size=size, split="test", expressions_per_scene=expressions)
        path = save_png(scene.image, Path(folder) / f"example-scene-{i + 1}.png")
        out.append((str(path), "\n".join(e.text for e in scene.expressions)))
    return out
