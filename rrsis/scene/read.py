"""Scenes as sources of windows: rasters through rasterio (bounded memory), plain images in memory.

A :class:`Scene` hands out windows as ``[h, w, C]`` float32 pixels (C = 3, or the model's ``in_chans``),
scaled as :func:`rrsis.data.read_image` scales them, and a validity mask (nodata, alpha, NaN, infinite values)
at full or reduced resolution: nobody needs the whole raster in memory. Plain images and arrays take
:func:`rrsis.data.read_image`'s steps, so a global pass sees what ``model.predict`` sees (less transparent pixels).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._paths import file_error
from ..data import bands as _bands
from ..data.band_names import bands_by_name
from ..data.bands import model_bands, raster_bands, select_bands, transparent_pixels, uint8_to_unit
from ..data.io import MAX_PIXELS, Scale, _load, check_pixels, nodata_mask, scale_values
from ..data.transforms import resize_image_bands
from .gdal_names import is_gdal_url
from .georef import assign_crs, plain_georeference, plain_tiff, require_geo
from .ranges import check_scale, scale_range, stats_shape, stretch_range, stretch_values
from .rectify import numbered_bands, open_raster, raster_view, separate_files
from .resize import nearest_pixels, resized_whole

__all__ = ["EXACT_FACTOR", "PLAIN_SUFFIXES", "NoValidPixelsError", "Scene", "open_scene", "raster_scene", "require_geo"]

# A raster of at most this many times a whole-scene read's pixels (the global pass: 16 × 480² ≈
# 1920², RefSegRS's and RRSIS-D's images among them) is read at full size and resized as
# model.preprocess resizes, so its global mask is model.predict's; a larger one by GDAL's averaging.
EXACT_FACTOR = 16

# Files read with PIL exactly as ``model.predict`` reads them (no geo extra needed).
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# GDAL's block cache counts towards the process's memory; a small one keeps peak memory independent
# of the scene size (reads are sequential). In bytes (rasterio hands it to GDALSetCacheMax64): 64 was a
# 64-byte cache, and a 512² read of a 4096² four-tile mosaic took 43 s instead of 0.15 s.
GDAL_ENV = {"GDAL_CACHEMAX": 64 * 2**20}


class NoValidPixelsError(ValueError):
    """A scene whose every pixel is nodata (NaN, infinite, or masked): nothing to segment."""


class Scene:
    """One scene, read window by window.

    Use :func:`open_scene` to build one. Attributes: ``height``, ``width``, ``crs``,
    ``transform`` (an affine or ``None``), ``georeferenced``, ``profile`` (rasterio's, or
    ``None``), ``bands`` (band numbers counted from 1 read, shown as R, G, B), ``dtype`` (the
    source data's type), ``stretch_range`` (a raster's per-band ``(low, high)`` mapped to
    [0, 1] by the stretch or the value scaling; ``None`` for in-memory scenes), ``rectified`` (a
    GCP/RPC-only raster read on a rectified grid: the sentence saying so, else ``None``). ``view``:
    ``dataset``'s :class:`~rrsis.scene.rectify.RasterView` when made already (cut to an area's window).
    Read-only: ``band_count`` and ``band_descriptions`` of a raster's bands.
    """

    def __init__(self, *, array: np.ndarray | None = None, dataset: Any = None,
                 bands: tuple[int, ...] | None = None, stretch: Any = "auto", scale: Scale = None,
                 to_unit: Callable[[np.ndarray], np.ndarray] | None = None,
                 dtype: str | None = None, name: str = "scene", nodata: np.ndarray | None = None,
                 crs: Any = None, channels: int | None = None, view: Any = None) -> None:
        self.name, self._grey_as_rgb = name, channels in (None, 3)  # a 1-band model reads grey as is
        self._array, self._ds = array, dataset
        self._nodata = nodata  # in-memory scenes: bool [H, W] of non-finite or transparent source pixels
        self.crs_declined = False  # crs="none": outputs without georeference were asked for
        self.gcp_problem = self.rectified = self._source = self._mask = None
        if array is not None:
            # ``array``: the chosen bands at their own depth (grey may stay 2-D); ``to_unit``
            # turns a window of it into the reader's float32 values.
            self.height, self.width = array.shape[:2]
            self.crs = self.transform = self.profile = None
            n = array.shape[2] if array.ndim == 3 and array.shape[2] > 1 else 3 if self._grey_as_rgb else 1
            self.bands = tuple(range(1, n + 1))
            self.rgb, self.declared = _bands.rgb_positions(self.bands, None), None
            self.stretch_range, self._clip = None, False
            self.dtype = dtype or str(array.dtype)  # the source's type, before any scaling
            self._to_unit = to_unit or (lambda x: x)
            return
        view = view or raster_view(dataset, name, crs=crs, channels=channels, bands=bands)  # rectified, palettes expanded
        self._ds = ds = view.dataset  # its alpha band (``_mask``) is the validity of a warped view
        self._source, self._mask, self.gcp_problem, self.rectified = dataset, view.mask, view.problem, view.rectified
        self.height, self.width, self.dtype = ds.height, ds.width, ds.dtypes[0]
        self.crs, self.transform, self.profile = view.crs, view.transform, view.profile
        assign_crs(self, crs)
        from rasterio.enums import ColorInterp

        self.declared = _bands.declared_rgb([c.name for c in ds.colorinterp], ds.descriptions)
        self.bands, self._alpha_data = raster_bands([c == ColorInterp.alpha for c in ds.colorinterp], bands,
                                                    channels, name, rgb=self.declared)
        self.rgb = _bands.rgb_positions(self.bands, self.declared, grey=self._grey_as_rgb)
        self._chosen = bands is not None  # the caller's bands, never reordered (take_colours_at)
        self._mask_rule(ds)
        if self._alpha_data:  # GDAL declares a 4-band uint8 GeoTIFF's 4th band alpha by default
            warnings.warn(f"{name}: band(s) {self._alpha_data} declared alpha: read as data, not as a mask",
                          stacklevel=2)
        # The band count when the RGB default took the first three of more (segment_scene says so).
        n = sum(c != ColorInterp.alpha for c in ds.colorinterp)
        self.first_three_of = n if bands is None and channels in (None, 3) and n > 3 else 0
        # What segment_scene tells an RGB model on an undeclared raster read in part: the first three, or band 1 of 2.
        self.band_note = _bands.first_three_note(name, n, self.bands, stack="RRSIS_STACK" in ds.tags()) \
            if bands is None and channels in (None, 3) and (n > 3 or n == 2) else None
        if scale is not None and stretch not in ("auto", None, False):
            raise ValueError(f"{name}: give scale= (value scaling) or stretch= (percentiles), not both")
        self._clip = scale is None  # a stretch saturates; a value scaling is kept as read_image keeps it
        self._check_has_data()
        self.stretch_range = stretch_range(self, stretch) if scale is None else scale_range(self, scale)

    def _mask_rule(self, ds: Any) -> None:
        """How :meth:`_read_raw` finds valid pixels: a view's alpha band; the bands' declared
        nodata values (:func:`~rrsis.data.bands.nodata_pixels`: every band read for one file's,
        any for bands of separate files); none (an alpha band read as data masks nothing); or
        GDAL's per-dataset mask (an alpha band, an internal or ``.msk`` mask)."""
        from rasterio.enums import MaskFlags

        flags = [ds.mask_flag_enums[b - 1] for b in self.bands]
        self._no_mask = bool(self._alpha_data) or all(MaskFlags.all_valid in f for f in flags)
        per_band = not self._no_mask and not any(MaskFlags.per_dataset in f for f in flags)
        self._nodata_values = tuple(ds.nodatavals[b - 1] if MaskFlags.nodata in f else None
                                    for b, f in zip(self.bands, flags)) if per_band else None
        self._separate = per_band and separate_files(ds, self.bands)

    def take_colours_at(self, positions: Sequence[int]) -> bool:
        """Read the raster's declared red, green and blue at ``positions`` among the bands read (a
        model's recorded ``backbone.rgb``), its other bands after them in file order
        (:func:`~rrsis.data.bands.colours_at`), unless ``bands`` were chosen; before any read. Returns
        whether the order changed."""
        positions = tuple(positions)
        if self._ds is None or self._chosen or self.rgb is None or self.declared is None or positions == self.rgb:
            return False
        order = _bands.colours_at(self.bands, self.declared, positions)
        if self.stretch_range is not None:
            self.stretch_range = [self.stretch_range[self.bands.index(b)] for b in order]
        self.bands, self.rgb = order, positions
        self._mask_rule(self._ds)
        return True

    def _check_has_data(self) -> None:
        """Refuse a raster with no valid pixel (every pixel NaN, infinite or masked)."""
        # A decimated read first; it can miss a small valid area, so strips at full size next.
        if self._read_raw(None, stats_shape(self), decimate=True)[1].any() or any(
                self._read_raw((r, 0, min(r + 256, self.height), self.width), None)[1].any()
                for r in range(0, self.height, 256)):
            return
        raise NoValidPixelsError(f"{self.name}: every pixel is nodata (NaN, infinite, or masked by "
                                 "the raster's nodata value or alpha band): nothing to segment")

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity

    def close(self) -> None:
        for ds in {id(d): d for d in (self._ds, self._source) if d is not None}.values():
            ds.close()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def band_count(self) -> int | None:
        """A raster's band count, as ``bands`` number them: the file's (a paletted one's: its colours
        R, G, B and alpha, 4); ``None`` for plain images and arrays."""
        return None if self._ds is None else numbered_bands(self._source, self._ds).count

    @property
    def band_descriptions(self) -> tuple[str | None, ...] | None:
        """GDAL's description of each of those bands (``None`` where unset); ``None`` for plain
        images and arrays."""
        return None if self._ds is None else tuple(d or None for d in numbered_bands(self._source, self._ds).descriptions)

    @property
    def in_memory(self) -> bool:
        """Whether the scene's pixels are held in memory (plain images, arrays)."""
        return self._array is not None

    @property
    def may_have_nodata(self) -> bool:
        """Whether a pixel may be invalid (``False``: no nodata rule, mask or float values to test)."""
        return self._nodata is not None if self._ds is None else not (self._no_mask and self._mask is None and np.dtype(self.dtype).kind != "f")

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
            kw["out_shape"] = None if out_shape is None else tuple(out_shape)
            if self._mask is not None:
                valid = self._ds.read(self._mask[0], **kw) >= self._mask[1]
            elif self._nodata_values is not None:  # declared values: the rule of the bands read
                hit = _bands.nodata_pixels(data, self._nodata_values, every=not self._separate)
                valid = np.ones(data.shape[1:], bool) if hit is None else ~hit
            elif self._no_mask:
                valid = np.ones(data.shape[1:], bool)
            else:  # GDAL's per-dataset mask (alpha band, internal mask): one band's is the dataset's
                valid = self._ds.read_masks(self.bands[0], **kw) >= 128
        if not full:  # a boundless read: valid where the window lies inside the scene
            valid &= nearest_pixels(window, data.shape[1:], self.height, self.width)[2]
        if data.dtype.kind == "f":  # NaN is nodata everywhere, tagged or not
            valid &= np.isfinite(data).all(axis=0)
        return data, valid

    def read(self, window: tuple[int, int, int, int] | None = None,
             out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read ``window = (row0, col0, row1, col1)`` (may reach outside the scene: filled as
        nodata) resampled to ``out_shape`` (``None``: native). Returns ``(pixels [h, w, 3]
        float32, valid [h, w] bool)``: the reader's values (in [0, 1] unless a ``scale``
        divisor leaves some above); invalid pixels are 0. A raster is resampled by GDAL's
        averaging (from its overviews where it has them), a plain image or array as
        ``model.preprocess`` resamples (see :meth:`read_resized`)."""
        if self._array is not None:
            return self._read_array(window, out_shape)
        data, valid = self._read_raw(window, out_shape)
        img = np.empty(data.shape, np.float32)
        for b, (lo, hi) in enumerate(self.stretch_range):
            # In float64, as read_image scales (16-bit data then matches it for "dtype" or a divisor).
            x = (data[b].astype(np.float64) - lo) / (hi - lo)
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            img[b] = np.clip(x, 0.0, 1.0) if self._clip else x
        img = np.moveaxis(img, 0, -1)
        if img.shape[2] == 1 and self._grey_as_rgb:
            img = np.repeat(img, 3, axis=2)
        img[~valid] = 0
        return np.ascontiguousarray(img), valid

    def read_resized(self, out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The whole scene resized to ``out_shape`` as ``model.preprocess`` resizes an image (the
        global pass): :meth:`read` for a plain image or array; a raster of at most
        :data:`EXACT_FACTOR` times ``out_shape``'s pixels read at full size a band of rows at a
        time and resized the same way (:func:`~rrsis.scene.resize.resized_whole`); a larger
        raster by GDAL's averaging (:meth:`read`), which reads only what the output needs."""
        if self._array is None and self.height * self.width <= EXACT_FACTOR * out_shape[0] * out_shape[1]:
            return resized_whole(self.read, self.height, self.width, tuple(out_shape))
        return self.read(None, out_shape)

    def _rows(self, window: tuple[int, int, int, int]) -> Callable[[int, int], np.ndarray]:
        """``(y0, y1) -> [y1 - y0, w, C]`` float32 rows of ``window`` (zeros outside the scene)."""
        a = self._array
        r0, c0, _, c1 = window
        cc0, cc1 = max(c0, 0), min(c1, self.width)

        def rows(y0: int, y1: int) -> np.ndarray:
            out = np.zeros((y1 - y0, c1 - c0, len(self.bands)), np.float32)
            s0, s1 = max(r0 + y0, 0), min(r0 + y1, self.height)
            if s1 > s0 and cc1 > cc0:
                part = self._to_unit(a[s0:s1, cc0:cc1])
                part = part[:, :, None] if part.ndim == 2 else part
                out[s0 - r0 - y0:s1 - r0 - y0, cc0 - c0:cc1 - c0] = part  # grey broadcasts to 3
            return out

        return rows

    def _read_array(self, window, out_shape):
        r0, c0, r1, c1 = window or (0, 0, self.height, self.width)
        rows = self._rows((r0, c0, r1, c1))
        if out_shape is None or tuple(out_shape) == (r1 - r0, c1 - c0):
            img = rows(0, r1 - r0)
            valid = np.zeros((r1 - r0, c1 - c0), bool)
            ya, yb, xa, xb = max(r0, 0), min(self.height, r1), max(c0, 0), min(self.width, c1)
            if yb > ya and xb > xa:
                inside = True if self._nodata is None else ~self._nodata[ya:yb, xa:xb]
                valid[ya - r0:yb - r0, xa - c0:xb - c0] = inside
            return img, valid
        img = resize_image_bands(rows, r1 - r0, c1 - c0, tuple(out_shape)).permute(1, 2, 0).numpy()
        ys, xs, valid = nearest_pixels((r0, c0, r1, c1), out_shape, self.height, self.width)
        if self._nodata is not None:
            yc, xc = np.clip(ys, 0, self.height - 1), np.clip(xs, 0, self.width - 1)
            valid &= ~self._nodata[yc][:, xc]
        img = np.ascontiguousarray(img)
        img[~valid] = 0
        return img, valid

    def read_valid(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """Validity of ``window`` at full resolution."""
        if self._array is not None:
            return self._read_array(window, None)[1]
        return self._read_raw(window, None)[1]


def open_scene(source: Any, *, bands: str | Sequence[int] | None = None, scale: Scale = None,
               stretch: Any = "auto", max_pixels: int | None = MAX_PIXELS, crs: Any = None,
               channels: int | None = None, names: Sequence[str] | None = None) -> Scene:
    """Open a path (any raster GDAL reads, a subdataset's GDAL name such as ``GPKG:f.gpkg:table``
    among them; PNG/JPEG and plain TIFFs without the geo extra), a PIL image or a
    numpy array (``[H, W]`` / ``[H, W, C]`` as ``model.predict`` takes) as a :class:`Scene`.
    Plain images and arrays are read as :func:`rrsis.data.read_image` reads them (same band
    rule, ``bands`` and ``scale``): ``segment_scene(mode="global")`` gives ``model.predict``'s mask;
    a PNG/JPEG with a world file is placed by it (:func:`~rrsis.scene.georef.plain_georeference`).
    A raster GDAL reads (a GeoTIFF) is read window by window; its global pass is
    ``model.preprocess``'s resize up to :data:`EXACT_FACTOR` times its pixels, GDAL's averaging
    beyond, where its mask may differ from ``model.predict``'s at object boundaries
    (docs/guides/geotiff.md).

    Args:
        source: the scene.
        bands: band numbers counted from 1 (as GDAL counts) shown as R, G, B (``"4,3,2"``); one
            band is shown as grey; ``channels`` of them for a model of another band count.
            Default: a raster's declared red, green and blue, else its first three non-alpha bands
            (all ``channels`` of them for such a model); :func:`~rrsis.data.read_image`'s rule otherwise.
        scale: value scaling with :func:`~rrsis.data.read_image`'s meaning (``"dtype"``,
            ``"max"``, ``"minmax"`` or a divisor) for 16-bit or float data; on a raster read
            by rasterio ``"max"``/``"minmax"`` take their statistics from a decimated read.
        stretch: rasters, when ``scale`` is not given: ``"auto"`` (uint8 as is, values all in
            0–3 warned about: they look black; other types: 2–98 % per band), ``None`` (no stretch:
            the dtype's range; float values in [0, 1] as they are, others refused), or ``(low,
            high)`` percentiles, computed on a decimated read of the valid pixels. A plain
            image's 16-bit or float values are stretched so by ``(low, high)`` only (``"auto"``
            and ``None`` keep :func:`~rrsis.data.read_image`'s rule: they need a ``scale``); its
            8-bit values are read as they are.
        max_pixels: largest plain image or array held in memory (``model.predict``'s bound;
            ``None``: none). Rasters are read window by window and are not bounded.
        crs: the CRS of a raster (or world-filed picture) with a transform but no CRS (``"EPSG:32633"``, WKT);
            ``"none"`` accepts outputs without georeference. A different CRS than the raster's
            own is refused. A scene with no valid pixel (see the module's nodata rule) raises.
        channels: the model's band count (``in_chans``, which ``segment_scene`` passes).
        names: the model's ``backbone.band_names`` (which ``segment_scene`` passes): with no
            ``bands``, a raster describing bands so (among any others) is read with those bands,
            in that order (:func:`~rrsis.data.band_names.named_bands`).
    """
    band_tuple = model_bands(bands, channels)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if (error := file_error(path, path)) and not is_gdal_url(path):  # URLs, subdatasets: GDAL's
            raise error
        if path.lower().endswith(PLAIN_SUFFIXES) or plain_tiff(path):  # a TIFF without the geo extra too
            scene = check_scale(_in_memory(path, band_tuple, scale, path, max_pixels, channels, stretch), scale)
            scene.crs, scene.transform = plain_georeference(path)  # a world file places it
            assign_crs(scene, crs)
            return scene
        require_geo(f"reading {os.path.basename(path)}")
        return raster_scene(path, path, band_tuple, stretch=stretch, scale=scale, crs=crs, channels=channels,
                            names=names)
    if (isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.size and band_tuple is None
            and scale is None and channels in (None, 3) and (source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (1, 3, 4)))):
        # uint8 grey/RGB/RGBA arrays are read in place (no whole-scene copy), a window at a
        # time, with read_image's arithmetic; a declared alpha band (the 4th) dropped as it drops it.
        check_pixels(source.shape[0], source.shape[1], max_pixels, "array")
        if source.ndim == 3:
            source = source[:, :, 0] if source.shape[2] == 1 else source[:, :, :3]  # views
        return Scene(array=source, to_unit=uint8_to_unit, name="array")
    return check_scale(_in_memory(source, band_tuple, scale, "array", max_pixels, channels), scale)


def raster_scene(path: str, name: str, bands: tuple[int, ...] | None, *, stretch: Any = "auto", scale: Scale = None,
                 crs: Any = None, channels: int | None = None, names: Sequence[str] | None = None) -> Scene:
    """The raster GDAL opens by ``path`` as :func:`open_scene` opens it, named ``name`` in the scene
    and its messages (an area of interest's ``vrt://…?srcwin=`` window: the user's file)."""
    ds = open_raster(path)
    try:
        bands = bands_by_name(ds.descriptions, [c.name for c in ds.colorinterp], bands, names, channels, name)
        return check_scale(Scene(dataset=ds, bands=bands, stretch=stretch, scale=scale, name=name, crs=crs,
                                 channels=channels), scale)
    except Exception:
        ds.close()
        raise


def _in_memory(source: Any, bands: tuple[int, ...] | None, scale: Scale, name: str,
               max_pixels: int | None = MAX_PIXELS, channels: int | None = None, stretch: Any = None) -> Scene:
    """A plain image or array through read_image's steps (a file's transparent pixels nodata, as a raster's
    alpha makes them); 8-bit data kept as bytes, scaled a window at a time (a quarter of the memory)."""
    arr, alpha, where, rgb = _load(source, max_pixels=max_pixels)[:4]
    clear = transparent_pixels(arr, alpha, bands, channels, rgb) if isinstance(source, (str, os.PathLike)) else None
    arr = select_bands(arr, alpha, bands, where, channels, rgb)
    if arr.dtype == np.uint8 and scale is None:
        return Scene(array=arr, to_unit=uint8_to_unit, name=name, channels=channels, nodata=clear)
    extra = nodata_mask(arr)
    nodata = clear if extra is None else extra if clear is None else extra | clear
    if stretch not in ("auto", None, False):  # (low, high) percentiles, as a raster's stretch
        if scale is not None:
            raise ValueError(f"{name}: give scale= (value scaling) or stretch= (percentiles), not both")
        values = stretch_values(arr if arr.ndim == 3 else arr[:, :, None], stretch, nodata, name).reshape(arr.shape)
    else:
        values = scale_values(arr, scale, where)
    return Scene(array=values, dtype=str(arr.dtype), name=name, nodata=nodata, channels=channels)
