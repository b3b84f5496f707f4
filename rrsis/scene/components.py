"""Connected components of a scene's foreground, found strip by strip, with what a scene-level
ranker reads of each (:mod:`rrsis.scene.rank`).

A strip's foreground (``p > threshold``) is stored as runs (row, first column, end column) with
per-run sums (probability, each band, each band squared) and per-run maximum probability. Runs
of consecutive rows that touch (8-connectivity: their column ranges overlap or meet at a corner)
belong to one component; the union of all touching pairs is resolved once at the end. Memory
grows with the foreground's runs, not with the scene's pixels, and a component is painted back
strip by strip (:meth:`Components.paint`), so a whole scene never has to be held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["FEATURE_NAMES", "ComponentBuilder", "Components", "n_features"]

# Per-component features (scene-size independent); ``band_mean_k`` / ``band_std_k`` follow for
# each band, so a ranker is built for a band count (``n_features``).
FEATURE_NAMES = (
    "cx", "cy",                    # centroid in scene fractions
    "log_area",                    # log(area / tile²): size at the model's training scale
    "log_area_z",                  # log area minus the scene's mean log area, over its std
    "area_rank", "x_rank", "y_rank",  # ranks among the scene's components, in [0, 1]
    "log_h", "log_w", "extent",    # bounding box (in tiles, log) and area / box area
    "mean_p", "max_p", "p_rank",   # foreground probability of the tiled pass
    "log_n",                       # log of the scene's number of components
)


def n_features(bands: int) -> int:
    """Feature count of a component of a ``bands``-band scene."""
    return len(FEATURE_NAMES) + 2 * bands


class ComponentBuilder:
    """Collect the runs of ``p > threshold`` strip by strip (rows in order, full width).

    Args:
        width: scene width in pixels.
        bands: band count of the image strips given to :meth:`add`.
        threshold: foreground probability (a pixel counts when ``p > threshold``).
    """

    def __init__(self, width: int, bands: int, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.width, self.bands, self.threshold = int(width), int(bands), float(threshold)
        self._cols: dict[str, list[np.ndarray]] = {k: [] for k in ("row", "c0", "c1", "sp", "mp", "sb", "sq")}
        self._edges: list[np.ndarray] = []
        self._prev: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None  # row, c0, c1, ids
        self._n = 0
        self._next_row = 0

    def add(self, r0: int, p: np.ndarray, image: np.ndarray) -> None:
        """Add rows ``r0 …`` of the probability ``p [h, W]`` and the image ``[h, W, bands]``
        (the values a ranker was trained on: the scene reader's, in [0, 1] for 8-bit data)."""
        h, w = p.shape
        if w != self.width or r0 != self._next_row or image.shape != (h, w, self.bands):
            raise ValueError(f"strip rows {r0}… of shape {p.shape} / {image.shape}: expected rows "
                             f"{self._next_row}… of width {self.width} and {self.bands} bands")
        self._next_row = r0 + h
        fg = p > self.threshold
        pad = np.zeros((h, 1), bool)
        d = np.diff(np.concatenate([pad, fg, pad], axis=1).astype(np.int8), axis=1)
        rows, c0 = np.nonzero(d == 1)
        _, c1 = np.nonzero(d == -1)
        n = len(rows)
        ids = np.arange(self._n, self._n + n)
        self._n += n
        if n:
            # Each run is the flat range [start, end) of the strip padded by one column, so no run
            # ends where the next begins; reduceat over (start, end) pairs gives the runs' values.
            idx = np.stack([rows * (w + 1) + c0, rows * (w + 1) + c1], axis=1).ravel()

            def per_run(x: np.ndarray, ufunc=np.add) -> np.ndarray:  # x [h, W] -> [n]
                flat = np.zeros((h, w + 1), np.float64)
                flat[:, :w] = x
                return ufunc.reduceat(flat.ravel(), idx)[::2]

            bands = [image[..., k] for k in range(self.bands)]
            for k, v in (("row", rows + r0), ("c0", c0), ("c1", c1), ("sp", per_run(p)),
                         ("mp", per_run(p, np.maximum)),
                         ("sb", np.stack([per_run(b) for b in bands], axis=1) if bands else np.zeros((n, 0))),
                         ("sq", np.stack([per_run(np.square(b, dtype=np.float64)) for b in bands], axis=1)
                          if bands else np.zeros((n, 0)))):
                self._cols[k].append(np.asarray(v))
        # Touching runs of consecutive rows (the previous strip's last row included).
        by_row = np.searchsorted(rows, np.arange(h + 1)) if n else np.zeros(h + 1, int)
        prev = self._prev
        for y in range(h):
            a, b = by_row[y], by_row[y + 1]
            if prev is not None and prev[0] == r0 + y - 1 and b > a and len(prev[1]):
                _, pc0, pc1, pid = prev
                lo = np.searchsorted(pc1, c0[a:b], side="left")       # prev end >= start (8-conn.)
                hi = np.searchsorted(pc0, c1[a:b], side="right")      # prev start <= end
                cnt = np.maximum(hi - lo, 0)
                if cnt.any():
                    src = np.repeat(ids[a:b], cnt)
                    dst = pid[np.concatenate([np.arange(s, s + c) for s, c in zip(lo, cnt) if c])]
                    self._edges.append(np.stack([src, dst], axis=1))
            prev = (r0 + y, c0[a:b], c1[a:b], ids[a:b])
        self._prev = prev

    def finish(self, height: int) -> Components:
        """The components of all rows added (``height`` rows in all)."""
        if self._next_row != height:
            raise ValueError(f"rows 0…{self._next_row} added, the scene has {height}")
        cols = {k: (np.concatenate(v) if v else None) for k, v in self._cols.items()}
        n = self._n
        label = np.arange(n)
        if self._edges:
            e = np.concatenate(self._edges)
            while True:  # min-label propagation with pointer jumping
                m = np.minimum(label[e[:, 0]], label[e[:, 1]])
                new = label.copy()
                np.minimum.at(new, e[:, 0], m)
                np.minimum.at(new, e[:, 1], m)
                while True:
                    jumped = new[new]
                    if np.array_equal(jumped, new):
                        break
                    new = jumped
                if np.array_equal(new, label):
                    break
                label = new
        _, comp = np.unique(label, return_inverse=True)
        if n == 0:
            empty = np.zeros(0)
            return Components(height, self.width, self.bands, empty.astype(int), empty.astype(int),
                              empty.astype(int), empty.astype(int), np.zeros((0, 0)))
        return Components.from_runs(height, self.width, self.bands, cols, comp.astype(np.int64))


@dataclass
class Components:
    """Connected components of a scene's foreground as runs, with per-component statistics.

    Attributes:
        height, width, bands: the scene's.
        row, c0, c1: each run's row and column range ``[c0, c1)``.
        comp: each run's component index (``0 … n − 1``).
        stats: ``[n, 9 + 2·bands]``: area, Σrow, Σcol, row min, row max, col min, col max, Σp,
            then max p, then Σ band values, Σ band values² (see :meth:`features`).
        rgb: where red, green and blue lie among the bands (the scene's
            :attr:`~rrsis.scene.read.Scene.rgb`), ``None`` when it has no colour; by default the
            first three of three bands.
        rgb_range: ``[3, 2]`` the values of red, green and blue of the source's 0 and 1
            (:func:`rrsis.scene.colour.display_range`), their colours then taken over the brightest
            component's (:func:`~rrsis.scene.colour.component_colours`); ``None``: as they are.
    """

    height: int
    width: int
    bands: int
    row: np.ndarray
    c0: np.ndarray
    c1: np.ndarray
    comp: np.ndarray
    stats: np.ndarray
    rgb: tuple[int, int, int] | str | None = "three"
    rgb_range: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rgb == "three":
            self.rgb = (0, 1, 2) if self.bands == 3 else None

    @classmethod
    def from_runs(cls, height, width, bands, cols, comp) -> Components:
        n = int(comp.max()) + 1
        length = (cols["c1"] - cols["c0"]).astype(np.float64)
        row = cols["row"].astype(np.float64)
        col_sum = (cols["c0"] + cols["c1"] - 1) * length / 2  # Σ of the run's column indices

        def total(v):
            return np.bincount(comp, weights=v, minlength=n)

        def extreme(v, ufunc, init):
            out = np.full(n, init, np.float64)
            ufunc.at(out, comp, v)
            return out

        stats = [total(length), total(row * length), total(col_sum),
                 extreme(row, np.minimum, np.inf), extreme(row, np.maximum, -np.inf),
                 extreme(cols["c0"].astype(np.float64), np.minimum, np.inf),
                 extreme(cols["c1"].astype(np.float64) - 1, np.maximum, -np.inf),
                 total(cols["sp"]), extreme(cols["mp"].astype(np.float64), np.maximum, 0.0)]
        stats += [total(cols["sb"][:, k]) for k in range(bands)]
        stats += [total(cols["sq"][:, k]) for k in range(bands)]
        return cls(height, width, bands, cols["row"], cols["c0"], cols["c1"], comp, np.stack(stats, axis=1))

    def __len__(self) -> int:
        return len(self.stats)

    def without_specks(self, min_area: float) -> Components:
        """The components of at least ``min_area`` pixels, renumbered in their order (every one when
        none is that large): mode ``object``'s candidates (:func:`rrsis.scene.rank.candidate_area`)."""
        keep = np.flatnonzero(self.area >= min_area)
        if len(keep) in (0, len(self)):
            return self
        new = np.full(len(self), -1, np.int64)
        new[keep] = np.arange(len(keep))
        runs = new[self.comp] >= 0
        return replace(self, row=self.row[runs], c0=self.c0[runs], c1=self.c1[runs], comp=new[self.comp][runs],
                       stats=self.stats[keep])

    @property
    def area(self) -> np.ndarray:
        return self.stats[:, 0] if len(self) else np.zeros(0)

    @property
    def mean_probability(self) -> np.ndarray:
        """``[n]``: the tiled pass's mean probability over each component's pixels."""
        return self.stats[:, 7] / self.area if len(self) else np.zeros(0)

    @property
    def band_means(self) -> np.ndarray:
        """``[n, bands]``: each component's mean value of each band."""
        if not len(self):
            return np.zeros((0, self.bands))
        return self.stats[:, 9:9 + self.bands] / self.area[:, None]

    def features(self, tile: int) -> np.ndarray:
        """``[n, n_features(bands)]`` float32, in the order of :data:`FEATURE_NAMES` then band
        means and standard deviations; ``tile``: the model's training side in scene pixels."""
        n = len(self)
        if n == 0:
            return np.zeros((0, n_features(self.bands)), np.float32)
        s = self.stats
        area = s[:, 0]
        cy, cx = s[:, 1] / area + 0.5, s[:, 2] / area + 0.5
        log_area = np.log(area / tile**2)
        z = (log_area - log_area.mean()) / (log_area.std() + 0.5)

        def rank(v):
            return np.argsort(np.argsort(v, kind="stable"), kind="stable") / max(n - 1, 1)

        h, w = s[:, 4] - s[:, 3] + 1, s[:, 6] - s[:, 5] + 1
        mean_p = self.mean_probability
        b = self.bands
        bm = s[:, 9:9 + b] / area[:, None]
        bs = np.sqrt(np.maximum(s[:, 9 + b:9 + 2 * b] / area[:, None] - bm**2, 0.0))
        f = np.column_stack([cx / self.width, cy / self.height, log_area, z, rank(area), rank(cx), rank(cy),
                             np.log(h / tile), np.log(w / tile), area / (h * w), mean_p, s[:, 8],
                             rank(mean_p), np.full(n, np.log(n)), bm, bs])
        return f.astype(np.float32)

    def paint(self, r0: int, r1: int, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Rows ``[r0, r1)`` with each component's pixels set to ``values[component]``."""
        out = np.full((r1 - r0, self.width), fill, np.float32)
        if len(self) == 0:
            return out
        lo, hi = np.searchsorted(self.row, [r0, r1])
        for r, a, b, c in zip(self.row[lo:hi], self.c0[lo:hi], self.c1[lo:hi], self.comp[lo:hi]):
            out[r - r0, a:b] = values[c]
        return out

    def label_image(self) -> np.ndarray:
        """``[H, W]`` int32: component index + 1, 0 for background (tests, small scenes)."""
        return self.paint(0, self.height, np.arange(1, len(self) + 1, dtype=np.float32)).astype(np.int32)
