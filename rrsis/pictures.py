"""Pictures rrsis writes: mask overlays with outlines, captioned comparison grids, training curves.

One module for every PNG of the package (the scene quick-look, the app's examples, the demo's
grid, a run's ``training.png``), written through the one atomic write (:mod:`rrsis._atomic`).
Overlays and grids need only PIL; the training plot uses matplotlib.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._atomic import atomic_path

__all__ = ["comparison_grid", "have_matplotlib", "outline", "overlay", "plot_history", "save_png"]

# Cyan and magenta: colours aerial scenes (and the synthetic palette) rarely contain.
PRED_COLOUR = (0, 230, 255)
GT_COLOUR = (255, 0, 200)


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The pixels of ``mask`` within ``width`` pixels of its border (4-neighbourhood erosion).

    Args:
        mask: bool ``[H, W]``.
        width: outline thickness in pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    inner = mask.copy()
    for _ in range(max(1, int(width))):
        p = np.pad(inner, 1, constant_values=False)
        inner = inner & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~inner


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    colour: Sequence[int] = PRED_COLOUR,
    alpha: float = 0.45,
    outline_width: int | None = None,
) -> np.ndarray:
    """``image`` with ``mask`` filled semi-transparently and outlined in ``colour``.

    Args:
        image: uint8 ``[H, W, 3]``.
        mask: bool ``[H, W]`` (same size).
        colour: RGB of fill and outline.
        alpha: fill opacity.
        outline_width: outline thickness (default: about 0.4 % of the shorter side, >= 1).

    Returns:
        uint8 ``[H, W, 3]``.
    """
    image = np.asarray(image)
    mask = np.asarray(mask, dtype=bool)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    out = image.astype(np.float32).copy()
    col = np.asarray(colour, dtype=np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * col
    w = outline_width or max(1, round(min(mask.shape) * 0.004))
    out[outline(mask, w)] = col
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def comparison_grid(
    rows: Sequence[tuple[np.ndarray, np.ndarray, Sequence[np.ndarray], str]],
    column_titles: Sequence[str],
    tile: int = 160,
    caption_lines: int = 2,
) -> Image.Image:
    """A grid with one row per sample: the image, the ground truth, then predictions, and the
    expression as a caption above the row.

    Args:
        rows: ``(image uint8 [H, W, 3], gt bool [H, W], [pred bool [H, W], ...], caption)``.
        column_titles: titles of the columns (image, ground truth, each prediction).
        tile: side of each tile in pixels.
        caption_lines: caption height in lines of text.
    """
    if not rows:
        raise ValueError("no rows to draw")
    n_cols = 2 + len(rows[0][2])
    if len(column_titles) != n_cols:
        raise ValueError(f"{len(column_titles)} column titles for {n_cols} columns")
    font_size = max(10, tile // 12)
    font = _font(font_size)
    line_h = font_size + 4
    head_h = line_h + 4
    cap_h = caption_lines * line_h + 4
    pad = 4
    width = n_cols * (tile + pad) + pad
    height = head_h + len(rows) * (cap_h + tile + pad)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(column_titles):
        draw.text((pad + c * (tile + pad), 2), title, fill=(0, 0, 0), font=font)
    chars = max(20, int(width / (font_size * 0.55)))
    for r, (image, gt, preds, caption) in enumerate(rows):
        y = head_h + r * (cap_h + tile + pad)
        text = "\n".join(textwrap.wrap(caption, chars)[:caption_lines])
        draw.text((pad, y + 2), text, fill=(0, 0, 0), font=font)
        tiles = [image, overlay(image, gt, GT_COLOUR)] + [overlay(image, p, PRED_COLOUR) for p in preds]
        for c, t in enumerate(tiles):
            im = Image.fromarray(t).resize((tile, tile), Image.NEAREST)
            canvas.paste(im, (pad + c * (tile + pad), y + cap_h))
    return canvas


def save_png(image: Image.Image | np.ndarray, path: str | os.PathLike, text: dict[str, str] | None = None) -> Path:
    """Write a PNG atomically, so a crash never leaves half an image; ``text``: its text chunks."""
    from PIL.PngImagePlugin import PngInfo

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)  # UTF-8
    with atomic_path(path, keep_suffix=True) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return Path(path)


def have_matplotlib() -> bool:
    """Whether matplotlib (a base dependency; missing only from a broken install) imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(
    records: Iterable[dict[str, Any]],
    out_path: str | os.PathLike,
    title: str = "",
    metrics: tuple[str, ...] = ("oIoU", "mIoU"),
) -> Path | None:
    """Plot the training loss and the validation metrics of a JSONL log to a PNG.

    Several runs can share one figure: records with a ``run`` field are drawn as separate
    lines (the demo plots GL-MSIN and its shuffled-text control together).

    Args:
        records: log records (``type`` ``"train"`` with ``loss``; ``"val"`` with metrics).
        out_path: the PNG to write.
        title: figure title.
        metrics: validation metrics to draw.

    Returns:
        The path, or ``None`` when matplotlib is missing (a warning says how to get it).
    """
    if not have_matplotlib():
        warnings.warn("matplotlib is not installed: no training plot (it is a dependency of rrsis: pip install matplotlib)",
                      stacklevel=2)
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt

    runs: dict[str, dict[str, list]] = {}
    for r in records:
        run = runs.setdefault(str(r.get("run", "")), {"train": [], "val": []})
        if r.get("type") in run:
            run[r["type"]].append(r)
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ("-", "--", ":", "-.")
    # One colour per run, one line style per metric, so two runs read apart at a glance.
    for i, (name, run) in enumerate(runs.items()):
        colour = f"C{i % 10}"
        label = f"{name} " if name else ""
        tr = [r for r in run["train"] if r.get("loss") is not None]
        if tr:
            ax_loss.plot([r["step"] for r in tr], [r["loss"] for r in tr], color=colour,
                         label=f"{label}loss")
        for j, m in enumerate(metrics):
            va = [r for r in run["val"] if r.get(m) is not None]
            if va:
                ax_val.plot([r["step"] for r in va], [r[m] for r in va], marker="o", color=colour,
                            linestyle=styles[j % len(styles)], label=f"{label}{m}")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_yscale("log")
    ax_val.set_xlabel("optimizer step")
    ax_val.set_ylabel("validation")
    ax_val.set_ylim(0, 1)
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(out_path, keep_suffix=True) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return Path(out_path)
