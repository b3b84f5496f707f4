"""One scene from many: a GDAL VRT mosaic of rasters, warped onto one pixel grid where they are not.

An area delivered as tiles (``tiles/*.tif``) is many scenes to :func:`~rrsis.scene.segment_scenes`,
which asks each expression of each tile on its own: "the largest building" then gets one answer
per tile. :func:`build_vrt` writes a small XML file (a GDAL virtual raster) that reads the tiles as
one scene, so :func:`~rrsis.scene.segment_scene` asks the expression once over the whole area and
reads the tiles window by window, as it reads any large GeoTIFF. Nothing is copied.

Tiles on one north-up pixel grid (one CRS and pixel size, corners whole pixels apart) are placed
as they are, nothing resampled. Tiles that are not (two UTM zones, several pixel sizes, off each
other's grid, rotated or south-up, placed by ground control points or RPCs only) are warped onto
one grid (:mod:`~rrsis.scene.mosaic_warp`: the CRS asked for or the one of most of their valid
area, the finest pixel size): each tile not already on it is read through a warped VRT of GDAL's
(``OUT_STEM_warped/TILE.vrt``, the document :mod:`~rrsis.scene.rectify` writes for one raster),
bilinear by default, block by block as the mosaic is read. The tiles must share a band count, data
type, nodata value and red, green, blue bands; gaps and the warped edges outside footprints are nodata
(with no nodata value, a mask band of the tiles' footprints says so), and where tiles overlap the
one later in the sorted list is drawn on top. Paletted tiles are read as their colours
(:mod:`~rrsis.scene.mosaic_palette`: resampling blends colours, never indices; RGB tiles may join).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, unescape

from .._atomic import atomic_write
from ..data.bands import declared_rgb
from . import mosaic_palette as palettes
from .georef import RECTIFY_HINT, gcp_problem, parse_crs
from .mosaic_warp import GRID_TOLERANCE, Grid, masked_xml, mosaic_grid, on_grid, warped_tile
from .read import require_geo
from .rectify import open_raster
from .region.entries import is_gdal_url, scene_sources

__all__ = ["build_vrt"]

# GDAL's names of the data types rasterio reads.
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32",
               "float64": "Float64"}
# The resamplings of warped tiles: the names build_vrt takes, and GDAL's.
_RESAMPLING = {"bilinear": "Bilinear", "nearest": "NearestNeighbour", "cubic": "Cubic", "average": "Average"}


def _info(uri: str) -> dict:
    with open_raster(uri) as ds:
        points, gcp_crs = ds.gcps
        placed = None if not ds.transform.is_identity else (
            f"{len(points)} ground control points" if points else "RPCs" if ds.rpcs else None)
        colours = [c.name.capitalize() for c in ds.colorinterp]
        rgb = declared_rgb(colours, ds.descriptions)  # declared by descriptions: by colour in the VRT
        for b, name in zip(rgb or (), ("Red", "Green", "Blue")):
            colours[b - 1] = name
        return {"uri": uri, "crs": ds.crs, "transform": ds.transform, "width": ds.width, "height": ds.height,
                "count": ds.count, "dtypes": set(ds.dtypes), "nodata": ds.nodata, "colorinterp": colours, "rgb": rgb or (1, 2, 3),
                "has_alpha": "Alpha" in colours, "placed": placed, "gcps": points, "gcp_crs": gcp_crs if points else None,
                "rpcs": None if points else ds.rpcs, "problem": gcp_problem(ds, uri) if placed and points else None,
                "palette": palettes.table_of(ds)}


def _same_nodata(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _refuse(infos: list[dict], alike: bool = True) -> None:
    """Refuse tiles no grid can join: unplaced, without a CRS, or (``alike``) of another band
    count, data type or nodata value than the first (the message names the tile)."""
    first = infos[0]
    for i in infos:
        name, t = i["uri"], i["transform"]
        if i["problem"]:
            raise ValueError(f"{i['problem'].removesuffix('; ' + RECTIFY_HINT)}: a mosaic cannot place it; rectify "
                             "it first (gdalwarp -r bilinear [-order N | -tps] IN OUT) and mosaic that file")
        if t.is_identity and not i["placed"]:
            raise ValueError(f"{name} has no placement (no geotransform, ground control points or RPCs): a mosaic "
                             "cannot tell where it lies")
        if i["crs"] is None and not i["placed"]:
            raise ValueError(f"{name} has no CRS: a mosaic places its tiles by their CRS and transform (give "
                             "the tile one first, e.g. gdal_edit.py -a_srs EPSG:32633 TILE)")
        if not alike:
            continue
        if i["count"] != first["count"]:
            raise ValueError(f"{name} has {i['count']} band(s), {first['uri']} {first['count']}")
        if len(i["dtypes"]) != 1 or i["dtypes"] != first["dtypes"]:
            raise ValueError(f"{name} has data type(s) {sorted(i['dtypes'])}, {first['uri']} "
                             f"{sorted(first['dtypes'])}: a mosaic needs one (their values are on different "
                             "scales)")
        if i["rgb"] != first["rgb"]:
            raise ValueError(f"{name} has red, green, blue in bands {i['rgb']}, {first['uri']} in {first['rgb']}")
        if not _same_nodata(i["nodata"], first["nodata"]):
            raise ValueError(f"{name} has nodata {i['nodata']}, {first['uri']} {first['nodata']}: a mosaic "
                             "needs one nodata value")


def _one_grid(infos: list[dict]) -> bool:
    """Whether the tiles lie on one north-up pixel grid as they are (one CRS, one pixel size,
    corners whole pixels apart): the mosaic then reads them without resampling."""
    t0, crs0 = infos[0]["transform"], infos[0]["crs"]
    for i in infos:
        t = i["transform"]
        if i["placed"] or t.b != 0 or t.d != 0 or t.e >= 0 or t.a <= 0 or i["crs"] != crs0:
            return False
        if not (math.isclose(t.a, t0.a, rel_tol=1e-9) and math.isclose(t.e, t0.e, rel_tol=1e-9)):
            return False
        for offset in ((t.c - t0.c) / t0.a, (t.f - t0.f) / t0.e):
            if abs(offset - round(offset)) > GRID_TOLERANCE:
                return False
    return True


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
              asset: str | None = None, crs: Any = None, resampling: str = "bilinear") -> Path:
    """Write a GDAL VRT that reads ``sources`` as one scene; returns its path.

    Tiles on one north-up pixel grid are read as they are. Otherwise the mosaic has one grid
    (:mod:`~rrsis.scene.mosaic_warp`: ``crs`` or the CRS of most of the tiles' valid area, the
    finest pixel size, corners on a tile's grid or at whole multiples of the pixel size), and each
    tile not on it is read through a warped VRT written to ``OUT_STEM_warped/`` beside ``out`` (the
    documents an earlier build left there and this one does not read are removed). Tiles covering
    under :data:`SPARSE` of the mosaic (far apart) give a warning.

    Paletted tiles sharing one colour table on one grid make a paletted mosaic with that table;
    otherwise each is expanded to its colours first (``OUT_STEM_warped/TILE.palette.vrt``),
    then placed or warped as an RGB tile, RGB tiles may join them, and the mosaic is 3 bands of
    8 bits with a mask band (:mod:`~rrsis.scene.mosaic_palette`).

    Args:
        sources: the tiles, as :func:`~rrsis.scene.resolve_scenes` takes them (paths, quoted
            globs, list files, STAC JSON, URLs GDAL reads).
        out: the ``.vrt`` file to write (atomically, after its warped tiles; its folder must
            exist). Local tiles are named relative to it, so the folder of tiles and the VRT
            (with its ``_warped`` folder) can move together.
        asset: for STAC sources, the asset to read (one key an item; several are refused).
        crs: the mosaic's CRS (``"EPSG:32633"``, WKT, a rasterio ``CRS``); default: the CRS
            holding the largest valid ground area of tiles (each tile's ground area times its
            share of valid pixels). Tiles on one grid in another CRS are warped.
        resampling: how warped tiles are resampled: ``"bilinear"`` (default: imagery, where a
            reprojected pixel lies between source pixels), ``"nearest"``, ``"cubic"`` or
            ``"average"``.

    Raises:
        ValueError: a tile has another band count, data type or nodata value than the first
            (beside paletted tiles read as colours: a tile that is not RGB), no CRS, or no
            placement (no transform, GCPs or RPCs), or GCPs GDAL cannot fit; a paletted tile placed
            by RPCs only in a mosaic of colours; an unknown ``resampling`` or ``crs`` (the message
            names the tile or the value).
        ImportError: without the ``geo`` extra.
    """
    rasterio = require_geo("a VRT mosaic")
    out = Path(out)
    if out.suffix.lower() != ".vrt":
        raise ValueError(f"{out}: a mosaic is written as a .vrt file")
    method = _resampling(resampling)
    target = None if crs is None else parse_crs(crs)
    infos = [_info(s.uri) for s in scene_sources(sources, asset, "build_vrt's asset= (--mosaic --asset)")]
    one_grid = _one_grid(infos) and (target is None or target == infos[0]["crs"])
    # Paletted tiles stay indices only where one table means one colour per index and nothing is resampled.
    colours = any(i["palette"] is not None for i in infos) and not (one_grid and palettes.keeps_palette(infos))
    _refuse(infos, alike=not colours)
    if colours:
        palettes.refuse_mixed(infos)
        infos = _expand(infos, out)
    first = infos[0]
    gdal_type = _GDAL_TYPES.get(next(iter(first["dtypes"])))
    if gdal_type is None:
        raise ValueError(f"{first['uri']}: data type {next(iter(first['dtypes']))} has no VRT name")
    folder = out.resolve().parent
    if one_grid and not colours:
        lines = _grid_lines(infos, gdal_type, folder, first["palette"])
    else:
        lines = _warped_lines(infos, mosaic_grid(infos, target), gdal_type, out, method, colours)
    width, height = (int(v) for v in re.match(r'<VRTDataset rasterXSize="(\d+)" rasterYSize="(\d+)"',
                                               lines[0]).groups())
    _warn_if_sparse(lines, width, height, len(infos), out)
    atomic_write(out, "\n".join(lines) + "\n")
    count = 3 if colours else first["count"]
    with rasterio.open(out) as ds:  # GDAL reads back what was written
        if (ds.width, ds.height, ds.count) != (width, height, count):
            raise RuntimeError(f"{out}: GDAL reads {ds.width}×{ds.height}×{ds.count}, expected {width}×{height}×{count}")
    _drop_stale(out, lines)
    return out


def _doc_name(uri: str, used: set[str]) -> str:
    """A name for a tile's documents in ``OUT_STEM_warped/``: its file's stem, numbered when
    ``used`` holds it already (tiles of one name in several folders); added to ``used``."""
    stem, k = Path(uri.split("?")[0]).stem or "tile", 1
    doc = stem
    while doc in used:
        k += 1
        doc = f"{stem}_{k}"
    used.add(doc)
    return doc


def _expand(infos: list[dict], out: Path) -> list[dict]:
    """``infos`` with each paletted tile replaced by the view of its colours, written (atomically)
    to ``OUT_STEM_warped/TILE.palette.vrt`` (:func:`~rrsis.scene.mosaic_palette.expanded`)."""
    warped = out.resolve().parent / f"{out.stem}_warped"
    result, used = [], set()
    for i in infos:
        if i["palette"] is None:
            result.append(i)
            continue
        doc = f"{_doc_name(i['uri'], used)}.palette.vrt"
        warped.mkdir(exist_ok=True)
        info, xml = palettes.expanded(i, warped, doc, _source_name(i["uri"], warped))
        atomic_write(warped / doc, xml)
        result.append(info)
    return result


def _drop_stale(out: Path, lines: list[str]) -> None:
    """Remove the tile documents an earlier build of ``out`` left in ``OUT_STEM_warped/`` that the
    mosaic just written does not read, directly or through another of them (and the folder, when
    it is then empty)."""
    warped = out.resolve().parent / f"{out.stem}_warped"
    if not warped.is_dir():
        return
    used = {unescape(m) for m in re.findall(rf">{re.escape(escape(warped.name))}/([^<]+\.vrt)<", "\n".join(lines))}
    todo = list(used)
    while todo:  # the documents those read (a warped tile's view, a paletted tile's colours)
        doc = warped / todo.pop()
        text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
        for name in re.findall(r'relativeToVRT="1">([^<]+)<', text):
            name = unescape(name)
            if "/" not in name and name not in used:
                used.add(name)
                todo.append(name)
    for f in warped.glob("*.vrt"):
        if f.name not in used:
            f.unlink(missing_ok=True)
    if not any(warped.iterdir()):
        warped.rmdir()


# Below this share of the mosaic's pixels under a tile, the mosaic is mostly nodata: a warning.
SPARSE = 0.25


def _warn_if_sparse(lines: list[str], width: int, height: int, n_tiles: int, out: Path) -> None:
    """Warn when the tiles cover under :data:`SPARSE` of the mosaic (tiles far apart): the whole
    extent is then one scene, mostly nodata, and a global pass sees the tiles as specks."""
    rects = {tuple(int(v) for v in m.groups()) for m in
             (re.search(r'<DstRect xOff="(-?\d+)" yOff="(-?\d+)" xSize="(\d+)" ySize="(\d+)"', x) for x in lines) if m}
    covered = min(sum(w * h for _, _, w, h in rects) / max(width * height, 1), 1.0)  # overlaps counted twice
    if covered < SPARSE:
        warnings.warn(f"{out}: the {n_tiles} tiles cover {covered:.1%} of the mosaic's {width}×{height} pixels "
                      "(they lie far apart); the rest is nodata. Give the tiles without --mosaic (one answer "
                      "per tile) or mosaic the tiles that lie together", stacklevel=3)


def _resampling(name: str) -> str:
    """GDAL's name of the resampling ``name``."""
    if name not in _RESAMPLING:
        close = difflib.get_close_matches(str(name), _RESAMPLING, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"resampling {name!r}: one of {', '.join(_RESAMPLING)}{hint}")
    return _RESAMPLING[name]


def _nodata_xml(nodata: float) -> str:
    return "nan" if math.isnan(nodata) else repr(nodata)


def _vrt_head(width: int, height: int, crs: Any, geo: tuple[float, float, float, float]) -> list[str]:
    """A VRT's first lines: its size, CRS and north-up transform ``(left, res_x, top, -res_y)``."""
    left, res_x, top, res_y = geo
    return [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">', f"  <SRS>{escape(crs.to_wkt())}</SRS>",
            f"  <GeoTransform>{left!r}, {res_x!r}, 0, {top!r}, 0, {res_y!r}</GeoTransform>"]


def _band_head(band: int, gdal_type: str, nodata: float | None, colorinterp: str) -> list[str]:
    """A VRT band's opening lines (its nodata value, when it has one, and colour)."""
    return [f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">',
            *([f"    <NoDataValue>{_nodata_xml(nodata)}</NoDataValue>"] if nodata is not None else []),
            f"    <ColorInterp>{colorinterp}</ColorInterp>"]


def _grid_lines(infos: list[dict], gdal_type: str, folder: Path, table: dict | None = None) -> list[str]:
    """The VRT of tiles on one grid: each tile's pixels placed as they are (paletted tiles of one
    colour ``table``: their indices, the band carrying the table)."""
    first = infos[0]
    t0 = first["transform"]
    res_x, res_y = t0.a, t0.e
    left = float(min(i["transform"].c for i in infos))
    top = float(max(i["transform"].f for i in infos))
    right = float(max(i["transform"].c + i["width"] * res_x for i in infos))
    bottom = float(min(i["transform"].f + i["height"] * res_y for i in infos))
    res_x, res_y = float(res_x), float(res_y)
    width, height = round((right - left) / res_x), round((bottom - top) / res_y)
    nodata = None if first["nodata"] is None else float(first["nodata"])
    lines = _vrt_head(width, height, first["crs"], (left, res_x, top, res_y))
    for band in range(1, first["count"] + 1):
        lines += _band_head(band, gdal_type, nodata, first["colorinterp"][band - 1])
        lines += palettes.colour_table_xml(table) if table else []
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
                lines.append(f"      <NODATA>{_nodata_xml(nodata)}</NODATA>")
            lines.append(f"    </{kind}>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return lines


def _warped_lines(infos: list[dict], grid: Grid, gdal_type: str, out: Path, method: str,
                  colours: bool = False) -> list[str]:
    """The VRT of tiles on ``grid``: those on it placed as they are, the others through warped
    VRTs written (atomically) to ``OUT_STEM_warped/``. Outside every tile's footprint the mosaic
    is nodata: the tiles' nodata value, or (without one) 0 in a mask band made of the tiles'
    masks, which the warped tiles' alpha bands make 0 outside their footprints. ``colours``:
    R, G, B of tiles with paletted ones among them (:mod:`~rrsis.scene.mosaic_palette`), each
    tile's own mask saying where it is valid."""
    first = infos[0]
    folder = out.resolve().parent
    warped = folder / f"{out.stem}_warped"
    sources, used = [], set()  # (name, relative, src size, dst window)
    for i in infos:
        at = on_grid(i, grid)
        if at is not None:
            sources.append((*_source_name(i["uri"], folder), (i["width"], i["height"]), (*at, i["width"], i["height"])))
            continue
        window, xml = warped_tile(i, grid, method)
        doc = _doc_name(i.get("tile", i["uri"]), used)
        warped.mkdir(exist_ok=True)
        src, relative = _source_name(i["uri"], warped)
        tag = f'<SourceDataset relativeToVRT="{int(relative)}">{escape(src)}</SourceDataset>'
        xml = re.sub(r"<SourceDataset[^>]*>[^<]*</SourceDataset>", lambda _, tag=tag: tag, xml)
        if i["nodata"] is None and not i["has_alpha"]:  # its added alpha band declared its mask
            atomic_write(warped / f"{doc}.warp.vrt", xml)
            xml = masked_xml(f"{doc}.warp.vrt", i, grid, window, gdal_type)
        atomic_write(warped / f"{doc}.vrt", xml)
        sources.append((f"{warped.name}/{doc}.vrt", True, window[2:], window))
    nodata = None if first["nodata"] is None or colours else float(first["nodata"])
    interp = palettes.COLOURS if colours else first["colorinterp"]
    lines = _vrt_head(grid.width, grid.height, grid.crs, (grid.left, grid.res_x, grid.top, -grid.res_y))
    lines += [palettes.colours_tag()] if colours else []

    def source(name, relative, size, dst, band, skip):
        return ["    <ComplexSource>",
                f'      <SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>',
                f"      <SourceBand>{band}</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{size[0]}" ySize="{size[1]}"/>',
                f'      <DstRect xOff="{dst[0]}" yOff="{dst[1]}" xSize="{dst[2]}" ySize="{dst[3]}"/>',
                f"      {skip}", "    </ComplexSource>"]

    # Pixels outside a tile's footprint are not drawn, so a neighbour under them shows.
    skip = "<UseMaskBand>true</UseMaskBand>" if nodata is None else f"<NODATA>{_nodata_xml(nodata)}</NODATA>"
    for band in range(1, len(interp) + 1 if colours else first["count"] + 1):
        lines += _band_head(band, gdal_type, nodata, interp[band - 1])
        for s in sources:
            lines += source(*s, band, skip)
        lines.append("  </VRTRasterBand>")
    if nodata is None:
        lines += ["  <MaskBand>", '    <VRTRasterBand dataType="Byte">']
        for s in sources:
            lines += ["  " + line for line in source(*s, "mask,1", "<NODATA>0</NODATA>")]
        lines += ["    </VRTRasterBand>", "  </MaskBand>"]
    lines.append("</VRTDataset>")
    return lines
