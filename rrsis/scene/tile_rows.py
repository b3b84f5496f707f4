"""The tiled pass of :mod:`rrsis.scene.infer`, run one row of tiles at a time.

A tile whose window (widened by the pixels the resampling back to the scene reads around it) holds
no valid scene pixel (nodata, an internal mask or alpha, NaN; outside the scene) is not run: its
output would be masked to background everywhere it reaches, so the model is skipped there and
the probabilities on the valid pixels are the same bits as with it run. Skipped tiles count as done
in the progress bar at once and in :attr:`TileRows.skipped`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TileRows", "blend_window", "scene_box", "tile_progress", "tile_starts"]


def tile_starts(n: int, tile: int, stride: int) -> list[int]:
    """Tile offsets covering ``[0, n)``: every ``stride``, the last flush with the end."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, max(stride, 1)))
    return starts + [n - tile]


def blend_window(tile: int) -> np.ndarray:
    """``[tile, tile]`` weights: ``sin²`` in each axis (peak in the middle), floored at 1e-3."""
    u = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    u = np.maximum(u, 1e-3)
    return np.outer(u, u).astype(np.float32)


def scene_box(window: tuple[int, int, int, int], height: int, width: int) -> tuple[float, float, float, float]:
    """A window ``(row0, col0, row1, col1)`` of scene pixels (it may reach past the scene's edge,
    as the last tiles of a scene smaller than a tile do) as its box ``(left, top, right,
    bottom)`` in scene fractions, the ``position`` a scene-position encoding reads."""
    r0, c0, r1, c1 = window
    return (c0 / width, r0 / height, c1 / width, r1 / height)


def tile_progress(desc: str) -> Callable[[int], Any]:
    """``total -> bar``: a tqdm bar over ``total`` tiles named ``desc``; tiles skipped leave its total."""
    from tqdm.auto import tqdm

    # Kept (its line ended) where stderr is no terminal (a log file): what is printed next starts a line.
    return lambda total: tqdm(total=total, desc=desc, unit="tile", leave=not sys.stderr.isatty(), dynamic_ncols=True)


class TileRows:
    """The tiled pass, run one row of tiles at a time; holds only the rows still needed.

    Args:
        scene: the :class:`~rrsis.scene.read.Scene`.
        net: ``(images, boxes) -> d [B, t, t]`` (the model with the expression encoded).
        opt: resolved :class:`~rrsis.scene.infer.SceneOptions`.
        needed: ``(y0, x0) -> bool``: whether a tile is wanted (global-local's gate).
        progress: a bar with ``update(n)``, or ``None``.
    """

    def __init__(self, scene: Any, net: Callable, opt: Any, needed: Callable[[int, int], bool], progress) -> None:
        self.scene, self.net, self.opt, self.needed, self.progress = scene, net, opt, needed, progress
        s, t = opt.pixel_ratio, opt.tile
        self.h, self.w = math.ceil(scene.height / s), math.ceil(scene.width / s)
        stride = max(1, round(t * (1 - opt.overlap)))
        self.ys, self.xs = tile_starts(self.h, t, stride), tile_starts(self.w, t, stride)
        self.window = blend_window(t)
        self.next_row = 0
        self.offset = 0
        width = max(self.w, t)
        self.acc = np.zeros((0, width), np.float32)
        self.wsum = np.zeros((0, width), np.float32)
        self.skipped = 0  # tiles not run: no valid pixel within their reach
        # Scene pixels around a tile's window whose output reads its work pixels: the bilinear
        # resampling back (a work pixel reaches half a work pixel and a scene pixel further), one
        # more for rounding.
        self.margin = math.ceil(0.5 * s + 0.5) + 1

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    def _span(self, start: int) -> tuple[int, int]:
        """The scene pixels ``[a, b)`` (unclipped) a tile at work offset ``start`` reads."""
        s = self.opt.pixel_ratio
        return round(start * s), round((start + self.opt.tile) * s)

    def _with_data(self, y0: int) -> Callable[[int], bool]:
        """``x0 -> bool``: whether the tile ``(y0, x0)``'s reach holds a valid scene pixel."""
        sc = self.scene
        if not getattr(sc, "may_have_nodata", True):
            return lambda x0: True
        a, b = self._span(y0)
        m = self.margin
        a, b = max(a - m, 0), min(b + m, sc.height)
        if b <= a:
            return lambda x0: False
        cols = sc.read_valid((a, 0, b, sc.width)).any(axis=0)
        count = np.concatenate([[0], np.cumsum(cols)])

        def has(x0: int) -> bool:
            c0, c1 = self._span(x0)
            c0, c1 = min(max(c0 - m, 0), sc.width), min(max(c1 + m, 0), sc.width)
            return bool(count[c1] > count[c0])

        return has

    def _run_row(self, y0: int) -> None:
        t = self.opt.tile
        need = y0 + t - self.offset - self.acc.shape[0]
        if need > 0:
            pad = np.zeros((need, self.acc.shape[1]), np.float32)
            self.acc, self.wsum = np.concatenate([self.acc, pad]), np.concatenate([self.wsum, pad])
        todo = [x0 for x0 in self.xs if self.needed(y0, x0)]
        if todo:
            has = self._with_data(y0)
            run = [x0 for x0 in todo if has(x0)]
            self.skipped += len(todo) - len(run)
            todo = run
        self._not_run(len(self.xs) - len(todo))
        for b in range(0, len(todo), self.opt.batch_size):
            chunk = todo[b:b + self.opt.batch_size]
            imgs, boxes = [], []
            rows = self._span(y0)
            for x0 in chunk:
                cols = self._span(x0)
                win = (rows[0], cols[0], rows[1], cols[1])
                imgs.append(self.scene.read(win, (t, t))[0])
                boxes.append(scene_box(win, self.scene.height, self.scene.width))
            d = self.net(imgs, boxes)
            r = y0 - self.offset
            for x0, dk in zip(chunk, d):
                self.acc[r:r + t, x0:x0 + t] += dk * self.window
                self.wsum[r:r + t, x0:x0 + t] += self.window
            if self.progress is not None:
                self.progress.update(len(chunk))

    def _not_run(self, n: int) -> None:
        """Tiles not run leave the bar's total (its rate and ETA are the run tiles'), or count as
        done at once on a bar without a settable ``total``."""
        bar = self.progress
        if bar is None or not n:
            return
        if isinstance(getattr(bar, "total", None), int):
            bar.total -= n
            getattr(bar, "refresh", lambda: None)()
        else:
            bar.update(n)

    def ensure(self, k: int) -> None:
        """Run tile rows until work rows ``< k`` are final."""
        while self.next_row < len(self.ys) and self.ys[self.next_row] < k:
            self._run_row(self.ys[self.next_row])
            self.next_row += 1

    def release(self, j: int) -> None:
        """Forget work rows ``< j``."""
        drop = min(max(j - self.offset, 0), self.acc.shape[0])
        if drop:
            self.acc, self.wsum = self.acc[drop:], self.wsum[drop:]
            self.offset += drop

    def held(self, empty: float) -> np.ndarray:
        """``d`` of the held rows (``empty`` where no tile ran), cropped to the work width."""
        out = np.full(self.acc.shape, empty, np.float32)
        np.divide(self.acc, self.wsum, out=out, where=self.wsum > 0)
        return out[:, :self.w]
