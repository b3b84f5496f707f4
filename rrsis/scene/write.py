"""Outputs written strip by strip: a mask Cloud-Optimized GeoTIFF, GeoJSON polygons with areas,
an overlay PNG (with a world file and its CRS beside it when the scene is georeferenced).

:func:`staged_outputs` writes the files of one expression to temporary names beside their
targets and renames them together when all are complete, so an interrupted or failed run
leaves none of them under the final names (the previous files, if any, stay).
:func:`remove_stale_temporaries` removes what a killed run left beside a target.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import (
    atomic_open,
    atomic_path,
    atomic_write,
    json_text,
    remove_stale_temporaries,
    temporary_path,
)
from .cog import COG_BLOCK, translate_to_cog
from .ground import geodesic_area as _geodesic_area
from .ground import output_geometry, pixel_area_m2
from .read import GDAL_ENV, Scene, require_geo

__all__ = ["MaskWriter", "PolygonCollector", "overlay_transform", "pixel_area_m2", "remove_stale_temporaries",
           "staged_outputs", "write_crs_sidecar", "write_overlay", "write_world_file", "writing"]



@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an ``OSError`` met while writing ``path`` as one that names the file (disk
    full gives ``[Errno 28]`` and no file name otherwise) and says nothing was kept."""
    try:
        yield
    except OSError as exc:
        code = exc.errno if exc.errno is not None else errno_codes.EIO
        reason = exc.strerror or str(exc) or type(exc).__name__
        hint = "; free some space or choose another --out" if code == errno_codes.ENOSPC else ""
        raise OSError(code, f"{path}: cannot write ({reason}); none of this expression's output "
                            f"files were written, files already there are left as they were{hint}") from exc


@contextlib.contextmanager
def staged_outputs(paths: dict[str, str], seal: str | None = None) -> Iterator[dict[str, Path]]:
    """All-or-nothing files: yield ``kind → temporary path`` beside each target; when the block
    ends without an exception every temporary replaces its target (complete files only),
    otherwise every temporary is removed and no target changes. ``seal``: the first kind, which
    replaces its target last, its old file removed before any other is replaced, so a ``seal``
    file there means its run's other files are too."""
    with contextlib.ExitStack() as stack:
        yield {k: stack.enter_context(atomic_path(p, keep_suffix=True)) for k, p in paths.items()}
        if seal is not None:  # the block ended without an exception; nothing replaced yet
            with contextlib.suppress(FileNotFoundError):
                os.unlink(paths[seal])


class MaskWriter:
    """Single-band uint8 Cloud-Optimized GeoTIFF with the scene's CRS and transform.

    Strips go to a temporary tiled GeoTIFF beside ``path`` (named as a temporary of it); on
    :meth:`close` GDAL's COG driver copies that to ``path`` with 512-pixel tiles, DEFLATE and
    overviews (:func:`~rrsis.scene.cog.translate_to_cog`), and the temporary is removed. Memory
    stays near GDAL's block cache whatever the scene's size; the disk briefly holds both files.
    The scene's profile is copied and updated; invalid (nodata/alpha) pixels are 0 and are
    also marked in an internal mask band, so a GIS shows them as nodata while 0 stays
    "not the target" elsewhere.

    Args:
        path: the file written (``segment_scene`` gives the temporary path of
            :func:`staged_outputs`, so the target appears only when complete).
        scene: the (rasterio-backed) scene.
        resampling: of the overviews: ``"nearest"`` for a 0/255 mask, ``"average"`` for
            probabilities scaled to 0-255.
        probabilities: the values are probabilities scaled to 0-255: the band is described as
            ``probability`` with a scale of 1/255 (offset 0), so a GIS reads 0-1; otherwise as
            ``mask`` (0 or 255).
        target: the file ``path`` becomes (``segment_scene``: the mask's own name): the strips are
            named as a temporary of it, not as a temporary of the temporary (default: ``path``).
    """

    def __init__(self, path: str | os.PathLike, scene: Scene, *, resampling: str = "nearest",
                 probabilities: bool = False, target: str | os.PathLike | None = None) -> None:
        rasterio = require_geo("writing a mask GeoTIFF")
        if resampling not in ("nearest", "average"):
            raise ValueError(f"resampling {resampling!r}: choose nearest (masks) or average (probabilities)")
        self.path = Path(path)
        self.resampling = resampling
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.strips = temporary_path(self.path if target is None else target, keep_suffix=True)
        profile = dict(scene.profile or {})
        for key in ("photometric", "nodata", "blockxsize", "blockysize", "compress", "interleave",
                    "tiled", "predictor", "alpha"):
            profile.pop(key, None)
        # Fast compression: this copy lives until close() turns it into the COG.
        profile.update(driver="GTiff", count=1, dtype="uint8", height=scene.height,
                       width=scene.width, crs=scene.crs, transform=scene.transform, tiled=True,
                       blockxsize=COG_BLOCK, blockysize=COG_BLOCK, compress="deflate", zlevel=1,
                       bigtiff="IF_SAFER")
        self._env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, **GDAL_ENV)
        self._env.__enter__()
        try:
            self.ds = rasterio.open(self.strips, "w", **profile)
            self.ds.set_band_description(1, "probability" if probabilities else "mask")
            if probabilities:  # the COG copies these: a GIS shows value * scale + offset
                self.ds.scales, self.ds.offsets = (1.0 / 255.0,), (0.0,)
        except BaseException:
            self._env.__exit__(None, None, None)
            with contextlib.suppress(OSError):
                self.strips.unlink()
            raise

    def write(self, row0: int, values: np.ndarray, valid: np.ndarray) -> None:
        from rasterio.windows import Window

        win = Window(0, row0, values.shape[1], values.shape[0])
        self.ds.write(values.astype(np.uint8)[None], window=win)
        self.ds.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=win)

    def close(self, tags: dict[str, str] | None = None) -> None:
        """Finish the file: the strips become the COG at ``path`` (a full disk shows now), with
        ``tags`` as its metadata (:func:`rrsis.scene.outputs.record_tags`)."""
        try:
            if tags:
                self.ds.update_tags(**tags)
            self.ds.close()
            translate_to_cog(self.strips, self.path, resampling=self.resampling)
        finally:
            self._env.__exit__(None, None, None)
            with contextlib.suppress(OSError):
                self.strips.unlink()

    def discard(self) -> None:
        """Stop without writing ``path`` (the computation failed): the strips are removed."""
        try:
            self.ds.close()
        finally:
            self._env.__exit__(None, None, None)
            with contextlib.suppress(OSError):
                self.strips.unlink()


class PolygonCollector:
    """Vectorises mask strips (``rasterio.features.shapes``), merges pieces cut by strip edges,
    simplifies (tolerance in pixels), reprojects and writes GeoJSON with areas.

    Args:
        scene: the scene (its transform and CRS place the polygons).
        simplify: tolerance in pixels (0: exact pixel outlines).
        clip: a polygon in the scene's pixel coordinates (an area of interest) that every
            output polygon is clipped to, after simplification; areas stay the pixels' own.
    """

    def __init__(self, scene: Scene, simplify: float = 0.5, clip: Any = None) -> None:
        require_geo("writing GeoJSON polygons")
        try:
            import shapely  # noqa: F401
        except ImportError:  # pragma: no cover
            raise ImportError('GeoJSON polygons need shapely: pip install "rrsis[geo]"') from None
        self.scene = scene
        self.simplify = float(simplify)
        self.clip = clip
        self.inner: list = []  # polygons that touch no strip edge
        self.cut: list = []  # polygons that may continue into the next strip
        self.prob_sums: dict[int, float] | None = None  # id(piece) → its probability sum, when add() gets one

    def add(self, row0: int, mask: np.ndarray, probability: np.ndarray | None = None) -> None:
        """Collect a strip's polygons; with ``probability`` (``[h, W]``) each polygon's
        GeoJSON properties get ``mean_probability`` (mean over its pixels)."""
        from affine import Affine
        from rasterio.features import rasterize, shapes
        from shapely.geometry import shape

        if probability is not None and self.prob_sums is None:
            self.prob_sums = {}
        if not mask.any():
            return
        t = Affine.translation(0, row0)  # pixel coordinates; georeferenced at the end
        h = mask.shape[0]
        m = mask.astype(np.uint8)
        pieces = [shape(geom) for geom, _ in shapes(m, mask=mask, transform=t, connectivity=4)]
        if probability is not None:  # pixel-edge polygons rasterise back to exactly their pixels
            labels = rasterize(((p, i + 1) for i, p in enumerate(pieces)), m.shape, transform=t, dtype="int32")
            sums = np.bincount(labels.ravel(), probability.ravel().astype(np.float64), len(pieces) + 1)
            self.prob_sums.update({id(p): float(v) for p, v in zip(pieces, sums[1:])})
        for poly in pieces:
            y0, y1 = poly.bounds[1], poly.bounds[3]
            (self.cut if y0 <= row0 or y1 >= row0 + h else self.inner).append(poly)

    def features(self, crs: str = "EPSG:4326", properties: dict[str, Any] | None = None) -> dict:
        """The GeoJSON FeatureCollection. ``crs``: ``"EPSG:4326"`` (RFC 7946), ``"native"`` or
        any other CRS; coordinates not in WGS 84 are named by a ``crs`` member (GeoJSON 2008)."""
        from rasterio.crs import CRS
        from shapely.affinity import affine_transform
        from shapely.ops import unary_union

        merged = list(self.inner)
        sums = self.prob_sums
        if self.cut:
            u = unary_union(self.cut)
            joined = list(getattr(u, "geoms", [u]))
            if sums is not None:  # a joined polygon's sum: its pieces' (each inside exactly one)
                for j in joined:
                    sums[id(j)] = sum(sums[id(c)] for c in self.cut if j.contains(c.representative_point()))
            merged += joined
        t = self.scene.transform
        src_crs = self.scene.crs
        px_area = pixel_area_m2(self.scene)
        feats = []
        for raw in sorted(merged, key=lambda p: (-p.area, p.bounds)):
            poly, n_px = raw, raw.area
            if self.simplify > 0:
                poly = poly.simplify(self.simplify, preserve_topology=True)
            if self.clip is not None:
                from .vector import polygonal_part

                poly = polygonal_part(poly.intersection(self.clip))
                if poly.is_empty:
                    continue
            coeffs = [t.a, t.b, t.d, t.e, t.c, t.f]
            geo = affine_transform(poly, coeffs)
            if px_area is not None:
                area_m2 = n_px * px_area
            elif src_crs is not None:  # the pixels' area, as above, not the simplified outline's
                area_m2 = _geodesic_area(affine_transform(raw, coeffs) if poly is not raw else geo, src_crs)
            else:
                area_m2 = None
            g = output_geometry(geo, src_crs, crs)
            props = {**(properties or {}), "area_px": round(n_px),
                     "area_m2": None if area_m2 is None else float(area_m2)}
            if sums is not None:
                props["mean_probability"] = sums[id(raw)] / n_px
            feats.append({"type": "Feature", "properties": props, "geometry": g})
        fc: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
        named = src_crs if crs == "native" else CRS.from_user_input(crs)
        if named.to_epsg() != 4326 and named.to_string() != "OGC:CRS84":  # not RFC 7946's lon/lat: say so
            epsg = named.to_epsg()
            name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else named.to_wkt()
            fc["crs"] = {"type": "name", "properties": {"name": name}}
        return fc

    def write(self, path: str | os.PathLike, crs: str = "EPSG:4326",
              properties: dict[str, Any] | None = None) -> dict:
        fc = self.features(crs, properties)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as fh:
            fh.write(json_text(fc))
        return fc


def overlay_transform(scene: Scene, shape: tuple[int, int]):
    """The transform of a picture of ``shape`` ``(h, w)`` covering the whole scene."""
    from affine import Affine

    return scene.transform @ Affine.scale(scene.width / shape[1], scene.height / shape[0])


def write_world_file(path: str | os.PathLike, transform, *, durable: bool = True) -> Path:
    """An ESRI world file (``.pgw`` beside a PNG, ``.jgw`` beside a JPEG): the six numbers of
    ``transform`` in the file's order (x size, row rotation, column rotation, y size), then the
    *centre* of the upper-left pixel, as the format wants (``durable``: fsync'ed)."""
    t = transform
    centre = t @ (0.5, 0.5)
    lines = [t.a, t.d, t.b, t.e, centre[0], centre[1]]
    return atomic_write(path, "".join(f"{float(v)!r}\n" for v in lines), durable=durable)


def write_crs_sidecar(path: str | os.PathLike, crs, *, durable: bool = True) -> Path:
    """The CRS of a picture in GDAL's ``.aux.xml`` sidecar (``PICTURE.png.aux.xml``), which
    GDAL-based software (QGIS, rasterio) and ArcGIS read; a world file cannot hold it."""
    from xml.sax.saxutils import escape

    wkt = escape(crs.to_wkt())
    return atomic_write(path, f"<PAMDataset>\n  <SRS>{wkt}</SRS>\n</PAMDataset>\n", durable=durable)


def write_overlay(path: str | os.PathLike, scene: Scene, mask_source: Any, max_side: int = 1024, *,
                  world_file: str | os.PathLike | None = None,
                  crs_file: str | os.PathLike | None = None, nodata_transparent: bool = False) -> None:
    """A quick-look PNG: the scene decimated to ``max_side`` with the mask drawn on it.

    Args:
        path: target PNG.
        scene: the scene.
        mask_source: a bool ``[H, W]`` array or the path of the written mask GeoTIFF.
        max_side: longer side of the picture.
        world_file: where to write the picture's world file (``PICTURE.pgw``;
            :func:`write_world_file`), so that a GIS places it over the scene.
        crs_file: where to write its CRS (``PICTURE.png.aux.xml``; :func:`write_crs_sidecar`).
        nodata_transparent: the mask GeoTIFF's nodata pixels (outside an area of interest) too.

    The scene's nodata pixels (the validity :meth:`Scene.read` returns: nodata values, NaN, alpha
    and mask bands) are transparent (RGBA; a GIS shows its basemap there, not a black collar).
    """
    from ..pictures import overlay, save_png

    f = min(1.0, max_side / max(scene.height, scene.width))
    shape = (max(1, round(scene.height * f)), max(1, round(scene.width * f)))
    pixels, valid = scene.read(None, shape)  # shown in its red, green and blue, else its first three bands
    rgb = getattr(scene, "rgb", None)
    pixels = pixels[..., list(rgb)] if rgb is not None and pixels.shape[2] > max(rgb) else \
        pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    image = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    if isinstance(mask_source, np.ndarray):
        ys = np.minimum((np.arange(shape[0]) + 0.5) / f, scene.height - 1).astype(int)
        xs = np.minimum((np.arange(shape[1]) + 0.5) / f, scene.width - 1).astype(int)
        mask = mask_source[ys][:, xs]
    else:
        rasterio = require_geo("reading the mask GeoTIFF")
        from rasterio.enums import Resampling

        with rasterio.Env(**GDAL_ENV), rasterio.open(mask_source) as ds:
            mask = ds.read(1, out_shape=shape, resampling=Resampling.nearest) >= 128
            if nodata_transparent:
                valid = valid & (ds.read_masks(1, out_shape=shape, resampling=Resampling.nearest) >= 128)
    picture = overlay(image, mask, outline_width=max(1, math.ceil(max(shape) / 400)))
    if not valid.all():
        picture = np.dstack([picture, np.where(valid, 255, 0).astype(np.uint8)])
    save_png(picture, path)
    if world_file is not None:
        write_world_file(world_file, overlay_transform(scene, shape))
    if crs_file is not None:
        write_crs_sidecar(crs_file, scene.crs)
