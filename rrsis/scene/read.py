"""Scenes as sources of windows: rasters through rasterio (bounded memory), plain images in memory.

A :class:`Scene` hands out windows of the scene as ``[h, w, 3]`` uint8 RGB (bands chosen, values
stretched) plus a validity mask (nodata and alpha honoured), at full or reduced resolution, so no
caller ever needs the whole raster in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PLAIN_SUFFIXES", "Scene", "open_scene", "require_geo"]

# Files read with PIL exactly as ``model.predict`` reads them (no geo extra needed).
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# GDAL's block cache counts towards the process's memory; a small one keeps peak memory
# independent of the scene size (reads are sequential, so a big cache buys little).
GDAL_ENV = {"GDAL_CACHEMAX": 64}
STATS_SIDE = 512


def require_geo(what: str):
    """Import rasterio, or raise an ``ImportError`` that names the extra to install."""
    try:
        import rasterio
    except ImportError:  # pragma: no cover - exercised by simulating a missing rasterio
        raise ImportError(
            f"{what} needs rasterio (and shapely for polygons): pip install \"rrsis[geo]\""
        ) from None
    return rasterio


def _parse_bands(bands: str | Sequence[int] | None) -> tuple[int, ...] | None:
    if bands is None:
        return None
    if isinstance(bands, str):
        try:
            bands = [int(b) for b in bands.replace(" ", "").split(",") if b]
        except ValueError:
            raise ValueError(f"bands {bands!r}: expected 1-based band numbers like '4,3,2'") from None
    out = tuple(int(b) for b in bands)
    if len(out) not in (1, 3):
        raise ValueError(f"bands {out}: give 3 bands (R,G,B) or 1 (shown as grey), 1-based")
    return out


def _resize_weights(n_in: int, n_out: int, offset: int, limit: int) -> tuple[np.ndarray, int, int]:
    """Antialiased bilinear weights (PIL's ``BILINEAR``, torch's ``antialias=True``) of ``n_out``
    samples over ``n_in`` source samples starting at ``offset``, restricted to the source
    samples inside ``[0, limit)`` (outside ones count as zeros). Returns ``(w [n_out, k], lo,
    hi)``: the weights of the absolute source samples ``lo…hi-1`` (``k = hi - lo``)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    first = np.floor(centre - support).astype(np.int64)
    taps = first[:, None] + np.arange(int(np.ceil(2 * support)) + 2)[None, :]  # [n_out, taps]
    w = np.clip(1.0 - np.abs(taps + 0.5 - centre[:, None]) / support, 0.0, None)
    w[(taps < 0) | (taps >= n_in)] = 0.0  # outside the window
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)  # normalised over the (zero-padded) window
    lo, hi = max(offset, 0), max(min(offset + n_in, limit), max(offset, 0))
    src = taps + offset
    keep = (src >= lo) & (src < hi) & (w > 0)
    dense = np.zeros((n_out, hi - lo), np.float32)
    rows = np.broadcast_to(np.arange(n_out)[:, None], taps.shape)
    dense[rows[keep], src[keep] - lo] = w[keep]
    return dense, lo, hi


def _resize_window(a: np.ndarray, window: tuple[int, int, int, int], out_shape: tuple[int, int],
                   band_rows: int = 128) -> np.ndarray:
    """Resize ``window`` of ``a [H, W, C]`` uint8 (zero outside ``a``) to ``out_shape``, never
    holding more than ``band_rows`` source rows as floats: bounded memory for any ``a``."""
    r0, c0, r1, c1 = window
    wy, ylo, yhi = _resize_weights(r1 - r0, out_shape[0], r0, a.shape[0])
    wx, xlo, xhi = _resize_weights(c1 - c0, out_shape[1], c0, a.shape[1])
    acc = np.zeros((out_shape[0], out_shape[1], a.shape[2]), np.float32)
    for y in range(ylo, yhi, band_rows):
        ye = min(y + band_rows, yhi)
        wb = wy[:, y - ylo:ye - ylo]
        rows = np.flatnonzero(wb.any(axis=1))
        if rows.size == 0:
            continue
        band = a[y:ye, xlo:xhi].astype(np.float32)  # [b, k, C]
        part = (wb[rows] @ band.reshape(band.shape[0], -1)).reshape(rows.size, xhi - xlo, -1)
        acc[rows] += np.matmul(wx, part)  # [r, k, C] -> [r, out_w, C]
    return np.clip(np.round(acc), 0, 255).astype(np.uint8)


class Scene:
    """One scene, read window by window.

    Use :func:`open_scene` to build one. Attributes: ``height``, ``width``, ``crs``,
    ``transform`` (an affine or ``None``), ``georeferenced``, ``profile`` (rasterio's, or
    ``None``), ``bands`` (1-based band numbers shown as R, G, B), ``stretch_range``
    (per-band ``(low, high)`` mapped to 0..255, or ``None`` for uint8 data shown as is).
    """

    def __init__(self, *, array: np.ndarray | None = None, dataset: Any = None,
                 bands: tuple[int, ...] | None = None, stretch: Any = "auto",
                 name: str = "scene") -> None:
        self.name = name
        self._array = array
        self._ds = dataset
        if array is not None:
            self.height, self.width = array.shape[:2]
            self.crs = self.transform = self.profile = None
            self.bands = (1, 2, 3)
            self.stretch_range = None
            self.dtype = "uint8"
            return
        ds = dataset
        self.height, self.width = ds.height, ds.width
        self.crs = ds.crs
        self.transform = ds.transform
        self.profile = ds.profile
        self.dtype = ds.dtypes[0]
        from rasterio.enums import ColorInterp

        colour = [ds.colorinterp[i] for i in range(ds.count)]
        data_bands = [i + 1 for i, c in enumerate(colour) if c != ColorInterp.alpha] or [1]
        if bands is None:
            bands = tuple(data_bands[:3]) if len(data_bands) >= 3 else (data_bands[0],)
        bad = [b for b in bands if not 1 <= b <= ds.count]
        if bad:
            raise ValueError(f"{name}: bands {bad} out of range; the raster has {ds.count} band(s) (1-based)")
        self.bands = bands
        self.stretch_range = self._stretch_range(stretch)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()

    def __enter__(self) -> Scene:  # noqa: PYI034 - a final class
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ stretch
    def _stretch_range(self, stretch: Any) -> list[tuple[float, float]] | None:
        if stretch == "auto":
            stretch = None if self.dtype == "uint8" else (2.0, 98.0)
        if stretch is None or stretch is False:
            if self.dtype != "uint8":
                info = np.iinfo(self.dtype) if np.dtype(self.dtype).kind in "ui" else None
                if info is None:
                    raise ValueError(f"{self.name}: {self.dtype} data needs a stretch (e.g. (2, 98))")
                return [(float(info.min), float(info.max))] * len(self.bands)
            return None
        lo, hi = (float(v) for v in stretch)
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"stretch percentiles must satisfy 0 <= low < high <= 100, got {stretch}")
        side = max(self.height, self.width)
        f = min(1.0, STATS_SIDE / side)
        shape = (max(1, round(self.height * f)), max(1, round(self.width * f)))
        data, valid = self._read_raw(None, shape, decimate=True)
        out = []
        for b in range(data.shape[0]):
            v = data[b][valid]
            v = v[np.isfinite(v)] if v.dtype.kind == "f" else v
            if v.size == 0:
                out.append((0.0, 1.0))
                continue
            a, z = np.percentile(v, [lo, hi])
            out.append((float(a), float(z) if z > a else float(a) + 1.0))
        return out

    # ------------------------------------------------------------------ reads
    def _read_raw(self, window, out_shape, decimate=False):
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        rasterio = require_geo("reading a raster scene")
        win = None if window is None else Window(window[1], window[0], window[3] - window[1],
                                                 window[2] - window[0])
        full = window is None or (window[0] >= 0 and window[1] >= 0 and window[2] <= self.height
                                  and window[3] <= self.width)
        shrink = out_shape is not None and (
            out_shape[0] < (self.height if window is None else window[2] - window[0]))
        kw = {"window": win, "out_shape": None if out_shape is None else (len(self.bands), *out_shape),
              "boundless": not full,
              "resampling": Resampling.average if shrink and not decimate else Resampling.nearest}
        with rasterio.Env(**GDAL_ENV):
            data = self._ds.read(list(self.bands), **kw)
            # One band's mask: GDAL's per-dataset (alpha, internal mask) or nodata masks are the
            # same for every band of ordinary rasters, and each band read costs a decompression.
            kw["out_shape"] = None if out_shape is None else tuple(out_shape)
            masks = self._ds.read_masks(self.bands[0], **kw)
        valid = masks >= 128
        return data, valid

    def read(self, window: tuple[int, int, int, int] | None = None,
             out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read ``window = (row0, col0, row1, col1)`` (may reach outside the scene: filled as
        nodata) resampled to ``out_shape`` (``None``: native). Returns ``(rgb [h, w, 3] uint8,
        valid [h, w] bool)``; invalid pixels are black."""
        if self._array is not None:
            return self._read_array(window, out_shape)
        data, valid = self._read_raw(window, out_shape)
        if self.stretch_range is None:
            img = data.astype(np.uint8)
        else:
            img = np.empty(data.shape, np.uint8)
            for b, (lo, hi) in enumerate(self.stretch_range):
                x = (data[b].astype(np.float32) - lo) * (255.0 / (hi - lo))
                img[b] = np.clip(np.nan_to_num(x, nan=0.0), 0, 255).round().astype(np.uint8)
        img = np.moveaxis(img, 0, -1)
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        img[~valid] = 0
        return np.ascontiguousarray(img), valid

    def _read_array(self, window, out_shape):
        a = self._array
        a3 = a[:, :, None] if a.ndim == 2 else a  # grey arrays stay 2-D until read
        r0, c0, r1, c1 = window or (0, 0, self.height, self.width)
        rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, self.height), min(c1, self.width)
        if out_shape is None or tuple(out_shape) == (r1 - r0, c1 - c0):
            img = np.zeros((r1 - r0, c1 - c0, a3.shape[2]), np.uint8)
            valid = np.zeros((r1 - r0, c1 - c0), bool)
            if rr1 > rr0 and cc1 > cc0:
                img[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = a3[rr0:rr1, cc0:cc1]
                valid[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = True
        else:
            img = _resize_window(a3, (r0, c0, r1, c1), tuple(out_shape))
            # Nearest-neighbour validity: inside the scene or not, per output row and column.
            ys = r0 + np.floor((np.arange(out_shape[0]) + 0.5) * (r1 - r0) / out_shape[0]).astype(np.int64)
            xs = c0 + np.floor((np.arange(out_shape[1]) + 0.5) * (c1 - c0) / out_shape[1]).astype(np.int64)
            valid = ((ys >= 0) & (ys < self.height))[:, None] & ((xs >= 0) & (xs < self.width))[None, :]
            img[~valid] = 0
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        return img, valid

    def read_valid(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """Validity of ``window`` at full resolution."""
        if self._array is not None:
            return self._read_array(window, None)[1]
        return self._read_raw(window, None)[1]


def open_scene(source: Any, *, bands: str | Sequence[int] | None = None, stretch: Any = "auto") -> Scene:
    """Open a path (any raster GDAL reads; PNG/JPEG without the geo extra), a PIL image or a
    numpy array (``[H, W]`` / ``[H, W, C]`` as ``model.predict`` takes) as a :class:`Scene`.

    Args:
        source: the scene.
        bands: 1-based band numbers to show as R, G, B (``"4,3,2"`` or ``(4, 3, 2)``); one band
            is shown as grey. Default: the first three non-alpha bands.
        stretch: ``"auto"`` (uint8 as is; other types: 2–98 % per band), ``None`` (no
            stretch: the dtype's range), or ``(low, high)`` percentiles, computed on a
            decimated read of the valid pixels.
    """
    from ..models.base import load_image

    band_tuple = _parse_bands(bands)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: file not found")
        if path.lower().endswith(PLAIN_SUFFIXES):
            if band_tuple not in (None, (1, 2, 3)):
                raise ValueError(f"{path}: --bands applies to rasters read by rasterio, not PNG/JPEG")
            return Scene(array=load_image(path), name=path)
        rasterio = require_geo(f"reading {os.path.basename(path)}")
        import warnings

        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                ds = rasterio.open(path)
        except RasterioIOError as exc:
            raise ValueError(f"{path}: cannot read raster ({exc})") from None
        try:
            return Scene(dataset=ds, bands=band_tuple, stretch=stretch, name=path)
        except Exception:
            ds.close()
            raise
    if band_tuple is not None:
        arr = np.asarray(source)
        if arr.ndim == 3:
            bad = [b for b in band_tuple if not 1 <= b <= arr.shape[2]]
            if bad:
                raise ValueError(f"bands {bad} out of range; the array has {arr.shape[2]} band(s)")
            source = arr[:, :, [b - 1 for b in band_tuple]]
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.size and (
            source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (1, 3, 4))):
        # uint8 grey/RGB/RGBA arrays are read in place (no whole-scene copy): the values
        # load_image would give, with a declared alpha band (the 4th) dropped as it drops it.
        if source.ndim == 3:
            source = source[:, :, 0] if source.shape[2] == 1 else source[:, :, :3]  # views
        return Scene(array=source, name="array")
    # Other arrays (16-bit, float, 2 bands, ...) are converted once, whole, by load_image.
    return Scene(array=load_image(source), name="array")
