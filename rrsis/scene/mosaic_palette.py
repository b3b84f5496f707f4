"""Paletted tiles in a mosaic: their colour table kept, or each tile expanded to its colours first.

A paletted raster (one band of colour-table indices: land-cover maps, scanned maps) is read as
the R, G, B of its table (:mod:`rrsis.scene.rectify`). :func:`~rrsis.scene.mosaic.build_vrt`
keeps that true of a mosaic of such tiles:

- Tiles that are all paletted, on one grid, with one colour table, data type and nodata index
  (without one, no gap between them: a gap would read as index 0's colour): the mosaic is a
  paletted VRT carrying that table (GDAL's ``<ColorTable>``), its indices placed
  as they are; the scene reader expands it as it expands a single paletted raster.
- Otherwise (a tile to warp, tables that differ, paletted tiles beside RGB ones): each paletted
  tile is first read through the document that expands one paletted raster to R, G, B and alpha
  (rectify.py's, written to ``OUT_STEM_warped/TILE.palette.vrt``), and that view is placed or
  warped as an RGB tile is. Resampling then blends colours, never indices (bilinear between
  index 1, red, and index 3, blue, would give index 2, a colour in neither tile). The mosaic
  is 3 bands of 8 bits; a transparent table entry or the nodata index is alpha 0, so its pixels
  are invalid, as are pixels outside every tile (the mosaic's mask band).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from .georef import RECTIFY_HINT
from .rectify import PALETTE_COLOURS, _palette_xml, open_raster

__all__ = ["COLOURS", "colour_table_xml", "colours_tag", "expanded", "keeps_palette", "refuse_mixed", "table_of"]

# The colour interpretation of a mosaic of expanded tiles.
COLOURS = ["Red", "Green", "Blue"]


def table_of(ds: Any) -> dict[int, tuple[int, ...]] | None:
    """The colour table of a paletted raster (one band, Palette), ``None`` for any other."""
    from rasterio.enums import ColorInterp

    if ds.count != 1 or ds.colorinterp[0] != ColorInterp.palette:
        return None
    try:
        return ds.colormap(1)
    except ValueError:  # a band declared Palette without a table: read as its values
        return None


def keeps_palette(infos: list[dict]) -> bool:
    """Whether tiles on one grid may make a paletted mosaic: every tile paletted with the first
    one's colour table, data type and nodata index (an index then means one colour), and, with
    no nodata index, no gap between them (a gap would read as index 0's colour, not as nodata)."""
    first = infos[0]
    alike = all(i["palette"] is not None and i["palette"] == first["palette"] and i["dtypes"] == first["dtypes"]
                and (i["nodata"] == first["nodata"] or i["nodata"] is first["nodata"]) for i in infos)
    return alike and (first["nodata"] is not None or _gapless(infos))


def _gapless(infos: list[dict]) -> bool:
    """Whether tiles on one grid cover their whole bounding box: each cell between consecutive
    tile edges (at most 2n x 2n cells for n tiles) lies under a tile."""
    import numpy as np

    t0 = infos[0]["transform"]
    rects = []
    for i in infos:
        x, y = round((i["transform"].c - t0.c) / t0.a), round((i["transform"].f - t0.f) / t0.e)
        rects.append((x, y, x + i["width"], y + i["height"]))
    xs = np.unique([v for r in rects for v in (r[0], r[2])])
    ys = np.unique([v for r in rects for v in (r[1], r[3])])
    covered = np.zeros((len(ys) - 1, len(xs) - 1), bool)
    for x0, y0, x1, y1 in rects:
        covered[np.searchsorted(ys, y0):np.searchsorted(ys, y1), np.searchsorted(xs, x0):np.searchsorted(xs, x1)] = True
    return bool(covered.all())


def colour_table_xml(table: dict[int, tuple[int, ...]]) -> list[str]:
    """A VRT band's ``<ColorTable>`` lines holding ``table`` (entries missing from it: transparent)."""
    entries = [table.get(k, (0, 0, 0, 0)) for k in range(max(table) + 1)]
    return ["    <ColorTable>",
            *(f'      <Entry c1="{e[0]}" c2="{e[1]}" c3="{e[2]}" c4="{e[3] if len(e) > 3 else 255}"/>'
              for e in entries),
            "    </ColorTable>"]


def refuse_mixed(infos: list[dict]) -> None:
    """Refuse, in a mosaic with paletted tiles that is read as colours, a tile that is not RGB
    (3 bands of uint8, optionally an alpha band after them), and a paletted tile placed by RPCs
    only (its expansion cannot carry them), naming the tile."""
    for i in infos:
        if i["palette"] is not None:
            if i["placed"] == "RPCs":
                raise ValueError(f"{i['uri']}: a paletted tile placed by RPCs only; {RECTIFY_HINT}")
            continue
        bands = i["colorinterp"]
        rgb = "Alpha" not in bands[:3] and (i["count"] == 3 or (i["count"] == 4 and bands[3] == "Alpha"))
        if not rgb or i["dtypes"] != {"uint8"}:
            raise ValueError(f"{i['uri']} has {i['count']} band(s) of {'/'.join(sorted(i['dtypes']))}: a mosaic "
                             "with paletted tiles reads them as their colours (R, G, B of 8 bits), so its other "
                             "tiles must be RGB (3 uint8 bands, optionally an alpha band)")


def expanded(info: dict, folder: Path, doc: str, source: tuple[str, bool]) -> tuple[dict, str]:
    """``(info, document)``: the expansion of the paletted tile ``info`` to R, G, B and alpha,
    to be written as ``folder / doc`` (the tile named ``source = (name, relative to folder)``),
    and the tile's info as the mosaic reads it there: 3 bands of 8 bits whose alpha band (its
    4th) is its mask. ``info["tile"]`` keeps the tile's own path."""
    with open_raster(info["uri"]) as ds:
        xml = _palette_xml(ds, gcps=info["placed"] is not None)
    name, relative = source
    tag = f'<SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>'
    old = '<SourceFilename relativeToVRT="0">'
    if xml.count(old) != 4:
        raise RuntimeError(f"{info['uri']}: unexpected palette document (four sources expected)")
    parts = xml.split(old)
    xml = parts[0] + "".join(tag + p.split("</SourceFilename>", 1)[1] for p in parts[1:])
    return {**info, "uri": str(folder / doc), "tile": info.get("tile", info["uri"]), "count": 3,
            "dtypes": {"uint8"}, "nodata": None, "colorinterp": COLOURS, "has_alpha": True,
            "palette": None}, xml


def colours_tag() -> str:
    """The VRT's metadata line saying its colours come from paletted tiles (the scene reader
    then refuses it for a model of other than 3 bands, as it refuses a paletted raster)."""
    return f'  <Metadata><MDI key="{PALETTE_COLOURS}">YES</MDI></Metadata>'
