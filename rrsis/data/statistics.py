"""Per-band statistics of a dataset: the ``mean``/``std`` a model of any band count normalises with.

A model of a band count other than 3 needs its own normalisation (``(x - mean) / std`` on the
values it reads). :func:`measure_statistics` measures them on the values a dataset's reader gives
the model (its bands, in its order, through its value scaling), which is what ``rrsis train
--model.mean auto --model.std auto`` records; ``rrsis chips`` measures its chips the same way
(:mod:`rrsis.scene.chip_stats`, through :func:`combine`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .io import _read_masked

__all__ = ["Moments", "combine", "measure_statistics"]

Moments = tuple[int, np.ndarray, np.ndarray]  # pixel count, per-channel mean, sum of squared deviations


def combine(parts: Sequence[Moments], channels: int) -> Moments:
    """The moments of the union of ``parts`` (Chan et al.'s pairwise update)."""
    n, mean, m2 = 0, np.zeros(channels), np.zeros(channels)
    for nb, mb, m2b in parts:
        if not nb:
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * nb / total
        m2 = m2 + m2b + delta ** 2 * n * nb / total
        n = total
    return n, mean, m2


def measure_statistics(dataset, digits: int = 6) -> tuple[list[float], list[float]]:
    """Per-band ``(mean, std)`` of the values ``dataset`` gives a model, before its normalisation.

    Each image of the dataset is read once (several targets may share one), as the dataset reads
    it (:func:`~rrsis.data.read_image` with its ``bands``, ``scale`` and band count; a model's band
    names as found at construction), at its own size; its nodata pixels (a declared nodata value,
    NaN) are left out, as ``rrsis chips`` leaves them out. ``std`` is the population's (numpy's
    ``std``), in float64; both are rounded to ``digits`` significant digits, and a band constant
    over the images (std 0, which a model refuses) is given std 1.

    Args:
        dataset: an rrsis dataset (:class:`~rrsis.data.ReferringDataset`): its ``entries``.
        digits: significant digits kept.

    Raises:
        ValueError: the dataset holds no image, or no valid pixel.
    """
    parts, seen = [], set()
    for entry in dataset.entries:
        if entry.image_path in seen:
            continue
        seen.add(entry.image_path)
        values, nodata = _read_masked(entry.image_path, dataset.bands, dataset.scale, None, dataset.channels)
        v = (values.reshape(-1, values.shape[2]) if nodata is None else values[~nodata]).astype(np.float64)
        if len(v):
            mean = v.mean(axis=0)
            parts.append((len(v), mean, ((v - mean) ** 2).sum(axis=0)))
    if not parts:
        raise ValueError(f"{type(dataset).__name__}: no image (or no valid pixel) to measure band statistics on")
    n, mean, m2 = combine(parts, len(parts[0][1]))
    std = np.sqrt(m2 / n)

    def kept(v: float) -> float:
        return float(f"{v:.{digits}g}")

    return [kept(v) for v in mean], [kept(v) if kept(v) > 0 else 1.0 for v in std]
