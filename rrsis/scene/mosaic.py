"""One scene from many: a GDAL VRT mosaic of rasters on one pixel grid.

An area delivered as tiles (``tiles/*.tif``) is many scenes to :func:`~rrsis.scene.segment_scenes`,
which asks each expression of each tile on its own: "the largest building" then gets one answer
per tile. :func:`build_vrt` writes a small XML file (a GDAL virtual raster) that reads the tiles as
one scene, so :func:`~rrsis.scene.segment_scene` asks the expression once over the whole area and
reads the tiles window by window, as it reads any large GeoTIFF. Nothing is copied.

The tiles must share a CRS, pixel size, band count, data type and nodata value, be north-up, and
lie on one pixel grid (their corners whole pixels apart); gaps are nodata (0 where the tiles have
no nodata value), and where tiles overlap the one later in the sorted list is drawn on top. A tile
placed by ground control points or RPCs only is refused, named: a VRT places its sources by their
affine transforms, and each such tile rectified on its own lands on a grid of its own.
``gdalbuildvrt`` (GDAL's command line) makes the same kind of file and also resamples; use it, or
``gdalwarp``, for tiles that are not on one grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from .._atomic import atomic_write
from .read import require_geo
from .region.sources import is_gdal_url, resolve_scenes

__all__ = ["build_vrt"]

# GDAL's names of the data types rasterio reads.
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32",
               "float64": "Float64"}
# Corners closer than this to a whole pixel count as on the grid (in pixels).
GRID_TOLERANCE = 1e-3


def _info(rasterio, uri: str) -> dict:
    with rasterio.open(uri) as ds:
        return {"uri": uri, "crs": ds.crs, "transform": ds.transform, "width": ds.width, "height": ds.height,
                "count": ds.count, "dtypes": set(ds.dtypes), "nodata": ds.nodata,
                "colorinterp": [c.name.capitalize() for c in ds.colorinterp],
                "placed": None if not ds.transform.is_identity else (
                    f"{len(ds.gcps[0])} ground control points" if ds.gcps[0] else "RPCs" if ds.rpcs else None)}


def _same_nodata(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check(infos: list[dict]) -> tuple[float, float]:
    first = infos[0]
    t0 = first["transform"]
    for i in infos:
        name, t = i["uri"], i["transform"]
        if i["placed"]:
            # A VRT mosaic places each tile by its affine transform, which this tile lacks.
            raise ValueError(f"{name} is placed by {i['placed']} only (no affine transform): a mosaic lays its "
                             "tiles side by side on one north-up pixel grid, which such a tile has only once "
                             "rectified. Rectify the tiles onto one grid first (gdalwarp -r near -t_srs CRS "
                             "-tr RES RES -tap IN OUT, the same CRS and RES for every tile) and mosaic those, "
                             "or give the tiles without a mosaic (each is then read rectified on its own)")
        if i["crs"] is None:
            raise ValueError(f"{name} has no CRS: a mosaic places its tiles by their CRS and transform")
        if t.b != 0 or t.d != 0 or t.e >= 0 or t.a <= 0:
            raise ValueError(f"{name} is not north-up (transform {tuple(t)[:6]}); warp it first "
                             "(gdalwarp) or give the tiles one by one")
        if i["crs"] != first["crs"]:
            raise ValueError(f"{name} is in {i['crs']}, {first['uri']} in {first['crs']}: a mosaic needs one "
                             "CRS (reproject with gdalwarp, or give the tiles one by one)")
        if not (math.isclose(t.a, t0.a, rel_tol=1e-9) and math.isclose(t.e, t0.e, rel_tol=1e-9)):
            raise ValueError(f"{name} has pixels of {t.a:g} × {-t.e:g}, {first['uri']} of {t0.a:g} × {-t0.e:g}: "
                             "a mosaic needs one pixel size (resample with gdalwarp -tr)")
        if i["count"] != first["count"]:
            raise ValueError(f"{name} has {i['count']} band(s), {first['uri']} {first['count']}")
        if len(i["dtypes"]) != 1 or i["dtypes"] != first["dtypes"]:
            raise ValueError(f"{name} has data type(s) {sorted(i['dtypes'])}, {first['uri']} "
                             f"{sorted(first['dtypes'])}: a mosaic needs one")
        if not _same_nodata(i["nodata"], first["nodata"]):
            raise ValueError(f"{name} has nodata {i['nodata']}, {first['uri']} {first['nodata']}: a mosaic "
                             "needs one nodata value")
        for what, offset in (("x", (t.c - t0.c) / t0.a), ("y", (t.f - t0.f) / t0.e)):
            if abs(offset - round(offset)) > GRID_TOLERANCE:
                raise ValueError(f"{name} is {offset:.3f} pixels from {first['uri']} in {what}: not on the same "
                                 "pixel grid (resample with gdalwarp -tap, or gdalbuildvrt)")
    return t0.a, t0.e


# URL schemes rasterio opens, as the GDAL virtual file systems a VRT must name.
_VSI = {"http": "vsicurl", "https": "vsicurl", "ftp": "vsicurl", "s3": "vsis3", "gs": "vsigs", "az": "vsiaz",
        "adl": "vsiadls", "oss": "vsioss", "swift": "vsiswift"}


def _source_name(uri: str, folder: Path) -> tuple[str, bool]:
    """The name the VRT gives a tile: relative to the VRT's folder where it can be; a URL as the
    GDAL path that reads it (``/vsicurl/https://…``, ``/vsis3/bucket/key``), which GDAL needs
    inside a VRT where rasterio would have translated it."""
    if is_gdal_url(uri):
        scheme, _, rest = uri.partition("://")
        if uri.startswith("/vsi") or scheme.lower() not in _VSI:
            return uri, False
        vsi = _VSI[scheme.lower()]
        return (f"/{vsi}/{uri}" if vsi == "vsicurl" else f"/{vsi}/{rest}"), False
    try:
        return Path(os.path.relpath(uri, folder)).as_posix(), True
    except ValueError:  # another drive on Windows
        return Path(uri).as_posix(), False


def build_vrt(sources: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike, *,
              asset: str | None = None) -> Path:
    """Write a GDAL VRT that reads ``sources`` as one scene; returns its path.

    Args:
        sources: the tiles, as :func:`~rrsis.scene.resolve_scenes` takes them (paths, quoted
            globs, list files, STAC JSON, URLs GDAL reads).
        out: the ``.vrt`` file to write (atomically; its folder must exist). Local tiles are named
            relative to it, so the folder of tiles and the VRT can move together.
        asset: for STAC sources, the asset to read.

    Raises:
        ValueError: the tiles differ in CRS, pixel size, bands, data type or nodata, one is not
            north-up or is placed by GCPs or RPCs only, or they are not on one pixel grid (the
            message names the tile).
        ImportError: without the ``geo`` extra.
    """
    rasterio = require_geo("a VRT mosaic")
    out = Path(out)
    if out.suffix.lower() != ".vrt":
        raise ValueError(f"{out}: a mosaic is written as a .vrt file")
    infos = [_info(rasterio, s.uri) for s in resolve_scenes(sources, asset=asset)]
    res_x, res_y = _check(infos)
    left = float(min(i["transform"].c for i in infos))
    top = float(max(i["transform"].f for i in infos))
    right = float(max(i["transform"].c + i["width"] * res_x for i in infos))
    bottom = float(min(i["transform"].f + i["height"] * res_y for i in infos))
    res_x, res_y = float(res_x), float(res_y)
    width, height = round((right - left) / res_x), round((bottom - top) / res_y)
    first = infos[0]
    gdal_type = _GDAL_TYPES.get(next(iter(first["dtypes"])))
    if gdal_type is None:
        raise ValueError(f"{first['uri']}: data type {next(iter(first['dtypes']))} has no VRT name")
    nodata = None if first["nodata"] is None else float(first["nodata"])
    folder = out.resolve().parent
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(first['crs'].to_wkt())}</SRS>",
             f"  <GeoTransform>{left!r}, {res_x!r}, 0, {top!r}, 0, {res_y!r}</GeoTransform>"]
    for band in range(1, first["count"] + 1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">')
        if nodata is not None:
            lines.append(f"    <NoDataValue>{'nan' if math.isnan(nodata) else repr(nodata)}</NoDataValue>")
        lines.append(f"    <ColorInterp>{first['colorinterp'][band - 1]}</ColorInterp>")
        for i in infos:
            name, relative = _source_name(i["uri"], folder)
            t = i["transform"]
            x, y = round((t.c - left) / res_x), round((t.f - top) / res_y)
            kind = "SimpleSource" if nodata is None else "ComplexSource"
            lines += [f"    <{kind}>",
                      f'      <SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>',
                      f"      <SourceBand>{band}</SourceBand>",
                      f'      <SrcRect xOff="0" yOff="0" xSize="{i["width"]}" ySize="{i["height"]}"/>',
                      f'      <DstRect xOff="{x}" yOff="{y}" xSize="{i["width"]}" ySize="{i["height"]}"/>']
            if nodata is not None:
                lines.append(f"      <NODATA>{'nan' if math.isnan(nodata) else repr(nodata)}</NODATA>")
            lines.append(f"    </{kind}>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    atomic_write(out, "\n".join(lines) + "\n")
    with rasterio.open(out) as ds:  # GDAL reads back what was written
        if (ds.width, ds.height, ds.count) != (width, height, first["count"]):
            raise RuntimeError(f"{out}: GDAL reads {ds.width}×{ds.height}×{ds.count}, "
                               f"expected {width}×{height}×{first['count']}")
    return out

