"""Tiles that are not on one pixel grid: the grid a mosaic warps them onto, and each tile's view.

:func:`~rrsis.scene.mosaic.build_vrt` reads tiles in several CRSs, of several pixel sizes, off
each other's grid, rotated, or placed by ground control points or RPCs only, through GDAL's
warper: every tile not already on the mosaic's grid becomes a warped VRT
(``VRTWarpedDataset``, the document :mod:`rrsis.scene.rectify` writes for a single GCP/RPC
raster) whose destination is its own window of that one grid, so the mosaic takes its pixels
one for one. GDAL warps such a view block by block from the tile, on demand: reading a window
of the mosaic warps, and reads from the tiles, only what lies under it.

The grid (:func:`mosaic_grid`):

- CRS: the one asked for, else the CRS holding the largest valid ground area of tiles: each
  tile's footprint measured on the ellipsoid, times its share of valid pixels (:func:`valid_share`),
  so a tile that is mostly a nodata collar (a rotated scene in a north-up box) weighs what its
  data covers; a tie goes to the earlier tile's CRS. A tile placed by GCPs is in its GCPs' CRS,
  one placed by RPCs in EPSG:4326, as when rectified on its own.
- Pixel size: the finest tile's, taken whole (the smallest pixel area; never one axis from one
  tile and the other from another), each measured in that CRS: a north-up tile already in it by
  its own transform, any other by the sides of its centre pixel mapped there (through its
  transform, GCPs or RPCs), made a square of that area for a tile whose pixels are square in its
  own CRS (a 4326 tile's pixel is 0.44 x 0.59 m at 41.5° N). Map projections stretch a pixel
  differently in each CRS (UTM zones: up to about 0.4 % at the zone's edge), so a size within
  :data:`SAME_SIZE` of a north-up tile's own, on both axes, counts as that tile's, exactly: tiles
  of one resolution in two zones, or reprojected to 4326 or 3857, keep it, and those already on
  it are read as they are.
- Corners: on the grid of the first north-up tile already at that CRS and pixel size (its
  pixels then need no resampling); without one, at whole multiples of the pixel size
  (``gdalwarp -tap``). The extent covers every tile's footprint, widened to whole pixels.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

from .rectify import _resized_xml, _warped_xml, open_raster

__all__ = ["MASK_SIDE", "SAME_SIZE", "Grid", "masked_xml", "mosaic_grid", "on_grid", "valid_share", "warped_tile"]

# Pixel sizes within this fraction of a north-up tile's own count as that size.
SAME_SIZE = 0.01
# The longest side of the reduced mask read that measures a tile's share of valid pixels.
MASK_SIDE = 256
# Corners closer than this to a whole pixel count as on the grid (in pixels).
GRID_TOLERANCE = 1e-3


@dataclass
class Grid:
    """The mosaic's north-up grid: ``crs``, top-left corner ``(left, top)``, pixel size
    ``(res_x, res_y)`` (both positive) and ``width`` x ``height`` pixels."""

    crs: Any
    left: float
    top: float
    res_x: float
    res_y: float
    width: int
    height: int

    def window(self, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """``(col, row, width, height)`` of the whole pixels covering ``bounds`` (left, bottom,
        right, top in the grid's CRS)."""
        x0, y0 = (bounds[0] - self.left) / self.res_x, (self.top - bounds[3]) / self.res_y
        x1, y1 = (bounds[2] - self.left) / self.res_x, (self.top - bounds[1]) / self.res_y
        c0, r0 = math.floor(x0 + GRID_TOLERANCE), math.floor(y0 + GRID_TOLERANCE)
        c1, r1 = math.ceil(x1 - GRID_TOLERANCE), math.ceil(y1 - GRID_TOLERANCE)
        return c0, r0, max(c1, c0 + 1) - c0, max(r1, r0 + 1) - r0


def _north_up(t: Any) -> bool:
    return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0


def place_crs(info: dict) -> Any:
    """The CRS a tile lies in: its own, its GCPs', or EPSG:4326 for RPCs (as rectified alone)."""
    from rasterio.crs import CRS

    if info["placed"] is None:
        return info["crs"]
    return info["gcp_crs"] if info["gcp_crs"] is not None else CRS.from_epsg(4326)


def _bounds(ds: Any, crs: Any) -> tuple[float, float, float, float]:
    """Bounds of ``ds`` in ``crs``: those of the grid GDAL's warper suggests for it there (its
    edges sampled, as ``gdalwarp -t_srs`` finds the extent)."""
    from rasterio.vrt import WarpedVRT

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with WarpedVRT(ds, crs=crs) as vrt:
            return tuple(vrt.bounds)


def _pixel_size(info: dict, crs: Any) -> tuple[float, float]:
    """The lengths, in ``crs``, of the sides of the tile's centre pixel: the size of its pixels
    there. (GDAL's suggested warp grid keeps the pixel count of the bounding box's diagonal, so
    a tile rotated by a reprojection gets smaller pixels than its own: 7 % at 3.5°.)"""
    from rasterio.transform import xy
    from rasterio.warp import transform

    place = info["transform"] if info["placed"] is None else info["gcps"] or info["rpcs"]
    r, c = info["height"] // 2, info["width"] // 2
    xs, ys = xy(place, [r, r, r + 1], [c, c + 1, c], offset="ul")
    xs, ys = transform(place_crs(info), crs, xs, ys)
    return math.hypot(xs[1] - xs[0], ys[1] - ys[0]), math.hypot(xs[2] - xs[0], ys[2] - ys[0])


def _ground_area(info: dict, crs: Any) -> float:
    from shapely.geometry import box

    from .vector import geodesic_area

    return geodesic_area(box(*info["bounds"][crs.to_wkt()]), crs)


def valid_share(info: dict) -> float:
    """The share of the tile's pixels that are valid (GDAL's mask: nodata, alpha, internal mask),
    from a nearest-neighbour read of its mask reduced to at most :data:`MASK_SIDE` pixels a side:
    65,536 samples, so a collar's share is off by under a sample per row and boundary (about 1 %
    of the tile at 256 rows), far finer than the differences of area the CRS rule weighs. GDAL
    serves it from an overview where the tile has one; a tile with no mask is 1 with no read.
    (An 8192² DEFLATE tile, a diamond of data in an 80 % nodata collar: 0.198 for 0.200, in
    0.12 s; 0.005 s from its overviews.)"""
    from rasterio.enums import MaskFlags

    with open_raster(info["uri"]) as ds:
        if MaskFlags.all_valid in ds.mask_flag_enums[0]:
            return 1.0
        f = min(1.0, MASK_SIDE / max(ds.width, ds.height))
        shape = (max(1, round(ds.height * f)), max(1, round(ds.width * f)))
        return float((ds.read_masks(1, out_shape=shape) >= 128).mean())


def _measure(info: dict, crs: Any) -> None:
    """Record the tile's bounds and pixel size in ``crs`` (``info["bounds"]``, ``info["res"]``)."""
    key = crs.to_wkt()
    if key in info["bounds"]:
        return
    t = info["transform"]
    if info["placed"] is None and info["crs"] == crs and _north_up(t):
        info["bounds"][key] = (t.c, t.f + t.e * info["height"], t.c + t.a * info["width"], t.f)
        info["res"][key] = (t.a, -t.e)
        return
    with open_raster(info["uri"]) as ds:
        info["bounds"][key] = _bounds(ds, crs)
    info["res"][key] = _pixel_size(info, crs)


def _square(info: dict) -> bool:
    """Whether the tile's pixels are square in its own CRS (a tile placed by GCPs or RPCs is
    rectified onto square pixels, as GDAL's warper suggests)."""
    t = info["transform"]
    return info["placed"] is not None or math.isclose(math.hypot(t.a, t.d), math.hypot(t.b, t.e), rel_tol=1e-6)


def _finest(infos: list[dict], key: str) -> tuple[float, float]:
    """The pixel size of the finest tile as a whole (the smallest pixel area measured in the
    grid's CRS ``key``; ties to the earlier tile): its sides measured there, made a square of the
    same area for a tile whose pixels are square in its own CRS. (Per axis
    from different tiles, a 4326 tile's narrow x and a 3857 tile's y, it was finer than any tile.)"""
    finest = min(infos, key=lambda i: i["res"][key][0] * i["res"][key][1])
    x, y = finest["res"][key]
    return (math.sqrt(x * y),) * 2 if _square(finest) else (x, y)


def mosaic_grid(infos: list[dict], crs: Any = None) -> Grid:
    """The one north-up grid of the tiles ``infos`` (:func:`rrsis.scene.mosaic._info`), in
    ``crs`` (a rasterio ``CRS``) or, without one, the CRS of the largest valid ground area of
    tiles (each tile's ground area times its :func:`valid_share`)."""
    for i in infos:
        i.setdefault("bounds", {})
        i.setdefault("res", {})
    if crs is None and len({place_crs(i).to_wkt() for i in infos}) == 1:
        crs = place_crs(infos[0])  # one CRS to choose: no tile's area to measure
    if crs is None:
        areas: list[list] = []  # [crs, area], in the tiles' order
        for i in infos:
            own = place_crs(i)
            _measure(i, own)
            a = _ground_area(i, own) * valid_share(i)
            for entry in areas:
                if entry[0] == own:
                    entry[1] += a
                    break
            else:
                areas.append([own, a])
        crs = max(areas, key=lambda e: e[1])[0]  # max keeps the first of equal areas
    key = crs.to_wkt()
    for i in infos:
        _measure(i, crs)
    res_x, res_y = _finest(infos, key)
    own = [i for i in infos if i["placed"] is None and i["crs"] == crs and _north_up(i["transform"])]
    near = [i for i in own if abs(i["transform"].a / res_x - 1) <= SAME_SIZE and abs(-i["transform"].e / res_y - 1) <= SAME_SIZE]
    if near:
        anchor = min(near, key=lambda i: i["transform"].a * -i["transform"].e)["transform"]  # min keeps the first
        res_x, res_y, ox, oy = anchor.a, -anchor.e, anchor.c, anchor.f
    else:
        ox = oy = 0.0
    left = min(i["bounds"][key][0] for i in infos)
    bottom = min(i["bounds"][key][1] for i in infos)
    right = max(i["bounds"][key][2] for i in infos)
    top = max(i["bounds"][key][3] for i in infos)
    c0 = math.floor((left - ox) / res_x + GRID_TOLERANCE)
    r0 = math.floor((oy - top) / res_y + GRID_TOLERANCE)
    c1 = math.ceil((right - ox) / res_x - GRID_TOLERANCE)
    r1 = math.ceil((oy - bottom) / res_y - GRID_TOLERANCE)
    return Grid(crs, ox + c0 * res_x, oy - r0 * res_y, res_x, res_y, c1 - c0, r1 - r0)


def on_grid(info: dict, grid: Grid) -> tuple[int, int] | None:
    """``(col, row)`` of a tile lying on ``grid`` as it is (same CRS, north-up, same pixel size,
    corner whole pixels away); ``None`` when it must be warped."""
    t = info["transform"]
    if info["placed"] is not None or info["crs"] != grid.crs or not _north_up(t):
        return None
    if not (math.isclose(t.a, grid.res_x, rel_tol=1e-9) and math.isclose(-t.e, grid.res_y, rel_tol=1e-9)):
        return None
    x, y = (t.c - grid.left) / grid.res_x, (grid.top - t.f) / grid.res_y
    if abs(x - round(x)) > GRID_TOLERANCE or abs(y - round(y)) > GRID_TOLERANCE:
        return None
    return round(x), round(y)


def warped_tile(info: dict, grid: Grid, resampling: str) -> tuple[tuple[int, int, int, int], str]:
    """``((col, row, width, height), document)``: the tile's window of ``grid`` and the warped
    VRT document that reads the tile on it, resampled by ``resampling`` (GDAL's name,
    ``"Bilinear"``). The document is the one :mod:`rrsis.scene.rectify` writes for the tile
    (GDAL's GCP or RPC transformer for a tile placed by them, as it rectifies one alone) with the
    window as its destination, as :func:`~rrsis.scene.rectify.window_view` cuts one: GDAL then
    warps 512 x 128 blocks, each from the source pixels under it only. With a nodata value, its
    overviews (factors 2, 4, ... down to 64 pixels) are GDAL's implicit ones: a reduced read (the global pass, the
    statistics) is warped straight onto the coarser grid, bilinear samples rather than averages,
    instead of warping the whole tile at full resolution first (4 x 2048² tiles, 2 warped: opening
    the scene 1 s instead of 20 s, a 480² global read 0.06 s instead of 18 s). Outside the tile's
    footprint the view is the tile's nodata value, or 0 under an alpha band added for a tile
    without one."""
    from affine import Affine

    window = grid.window(info["bounds"][grid.crs.to_wkt()])
    c, r, w, h = window
    transform = Affine(grid.res_x, 0.0, grid.left + c * grid.res_x, 0.0, -grid.res_y, grid.top - r * grid.res_y)
    with open_raster(info["uri"]) as ds, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alpha = {} if ds.nodata is not None or info["has_alpha"] else {"add_alpha": True}
        # rasterio's WarpedVRT ignores GCPs and RPCs when given a destination grid: the document
        # is made on GDAL's own grid for the tile, then moved onto the window.
        xml = _warped_xml(ds, crs=grid.crs, **alpha)
    xml = _resized_xml(xml, h, w, transform, resampling, min(w, 512), min(h, 128))
    if len(re.findall(r"<SourceDataset[ >]", xml)) != 1 or xml.count("</GDALWarpOptions>") != 1:
        raise RuntimeError(f"{info['uri']}: unexpected warped VRT document (one SourceDataset expected)")
    # GDAL (3.10) reads an added alpha band as 0 from a warped view's implicit overviews: a tile
    # without nodata keeps none (its reduced reads warp at full resolution, slower but right).
    if _factors(w, h) and not alpha and not info["has_alpha"]:
        xml = xml.replace("</GDALWarpOptions>", f"</GDALWarpOptions>\n  <OverviewList>{_factors(w, h)}</OverviewList>")
    return window, xml


def _factors(w: int, h: int) -> str:
    """Overview factors of a warped tile's view: 2, 4, ... down to 64 pixels a side."""
    return " ".join(str(2**k) for k in range(1, 16) if max(w, h) >> k >= 64)


def masked_xml(warped: str, info: dict, grid: Grid, window: tuple[int, int, int, int], gdal_type: str) -> str:
    """A VRT document reading the warped view ``warped`` (a file name relative to it) of a tile
    without nodata: its bands, and its added alpha band as the dataset's mask. GDAL takes an alpha
    band as the mask only of 2- or 4-band Byte or UInt16 rasters; a mosaic reads every tile's
    mask (which pixels it draws, which are valid), so the mask is declared."""
    from xml.sax.saxutils import escape

    c, r, w, h = window
    rect = f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'

    def band(n: int) -> str:
        return (f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(warped)}</SourceFilename>'
                f"<SourceBand>{n}</SourceBand>{rect}</SimpleSource>")

    gt = f"{grid.left + c * grid.res_x!r}, {grid.res_x!r}, 0, {grid.top - r * grid.res_y!r}, 0, {-grid.res_y!r}"
    lines = [f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">', f"  <SRS>{escape(grid.crs.to_wkt())}</SRS>",
             f"  <GeoTransform>{gt}</GeoTransform>"]
    lines += [f'  <VRTRasterBand dataType="{gdal_type}" band="{b}"><ColorInterp>{ci}</ColorInterp>{band(b)}'
              "</VRTRasterBand>" for b, ci in enumerate(info["colorinterp"], 1)]
    lines += ['  <MaskBand><VRTRasterBand dataType="Byte">' + band(info["count"] + 1) + "</VRTRasterBand></MaskBand>",
              "</VRTDataset>"]
    return "\n".join(lines) + "\n"
