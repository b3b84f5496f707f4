"""Per-band statistics of training chips, for :func:`~rrsis.scene.chips.write_chips`.

A model of a band count other than 3 needs its own normalisation (``--model.mean``,
``--model.std``: ``(x - mean) / std`` on the values it reads). They are measured here on the
values ``rrsis train`` gives the model: each chip's pixels as written, through the value scaling
the printed train line sets (:func:`~rrsis.data.bands.scale_values`, as
:func:`~rrsis.data.read_image` applies it) and in the order the training reader takes the chip's
bands (:func:`~rrsis.data.bands.select_bands`), over the pixels that were valid in the scene.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from ..data.bands import Scale, declared_rgb, scale_values, select_bands
from ..data.statistics import Moments, combine

__all__ = ["Moments", "chip_moments", "combine", "read_order", "stats_option"]


def read_order(n_bands: int, colours: Sequence[str] | None, names: Sequence[str | None] | None) -> list[int]:
    """The chip bands (counted from 1) the training reader gives the model, in its channel order:
    file order for 2 or 4+ bands, the declared red, green, blue for 3, band 1 three times for 1."""
    channels = None if n_bands in (1, 3) else n_bands
    index = np.arange(1, n_bands + 1).reshape(1, 1, n_bands)
    return [int(b) for b in select_bands(index, False, None, "chips", channels, declared_rgb(colours, names))[0, 0]]


def chip_moments(data: np.ndarray, valid: np.ndarray, scale: Scale, order: Sequence[int]) -> Moments:
    """Moments of one chip's valid pixels (``valid``: bool ``[H, W]``) of ``data`` (``[C, H, W]``,
    as written), scaled as ``read_image`` scales the chip and taken in ``order``."""
    values = scale_values(data.transpose(1, 2, 0), scale, "chip")[..., [b - 1 for b in order]]
    v = values[valid].astype(np.float64)
    if not len(v):
        return 0, np.zeros(len(order)), np.zeros(len(order))
    mean = v.mean(axis=0)
    return len(v), mean, ((v - mean) ** 2).sum(axis=0)


def stats_option(mean: Sequence[float], std: Sequence[float]) -> str:
    """``--model.mean '[...]' --model.std '[...]'``, quoted for a shell, six significant digits; a
    band constant over the train chips (std 0, which a model refuses) is given std 1."""
    def text(values: Sequence[float]) -> str:
        return json.dumps([float(f"{v:.6g}") for v in values])

    return f"--model.mean '{text(mean)}' --model.std '{text([s if s > 0 else 1.0 for s in std])}'"
