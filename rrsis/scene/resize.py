"""A scene resampled as ``model.preprocess`` resamples an image: where each resampled pixel's
validity comes from, and a whole raster resized row by row (:func:`resized_whole`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.transforms import resize_image_bands

__all__ = ["nearest_pixels", "resized_whole"]


def nearest_pixels(window: tuple[int, int, int, int], shape: tuple[int, int], height: int, width: int):
    """``(ys, xs, inside)``: the scene row and column each pixel of ``window`` resampled to
    ``shape`` takes its value from (nearest neighbour), and whether that pixel lies in the scene."""
    r0, c0, r1, c1 = window
    ys = r0 + np.floor((np.arange(shape[0]) + 0.5) * (r1 - r0) / shape[0]).astype(np.int64)
    xs = c0 + np.floor((np.arange(shape[1]) + 0.5) * (c1 - c0) / shape[1]).astype(np.int64)
    return ys, xs, ((ys >= 0) & (ys < height))[:, None] & ((xs >= 0) & (xs < width))[None, :]


def resized_whole(read: Callable[[tuple[int, int, int, int]], tuple[np.ndarray, np.ndarray]], height: int,
                  width: int, out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A whole scene of ``height × width`` read at full size a band of rows at a time (``read(window)``
    → ``(pixels [h, w, C], valid [h, w])``) and resized to ``out_shape`` by
    :func:`~rrsis.data.transforms.resize_image_bands`, the numbers ``model.preprocess`` gives the
    whole image; a resampled pixel is valid where its nearest scene pixel is. Invalid pixels are 0."""
    valid_full = np.zeros((height, width), bool)

    def rows(y0: int, y1: int) -> np.ndarray:
        img, valid_full[y0:y1] = read((y0, 0, y1, width))
        return img

    img = np.ascontiguousarray(resize_image_bands(rows, height, width, out_shape).permute(1, 2, 0).numpy())
    ys, xs, valid = nearest_pixels((0, 0, height, width), out_shape, height, width)
    valid &= valid_full[ys][:, xs]
    img[~valid] = 0
    return img, valid
