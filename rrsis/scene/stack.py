"""One scene from several band files: a GDAL VRT stacking every band of each file, in order.

Free satellite products come as one file per band: Landsat Collection 2 (``..._SR_B4.TIF``,
``_B3``, ``_B2``), Sentinel-2 (``B04.jp2``, ``B03.jp2``, ``B02.jp2``, ``B08.jp2`` at 10 m;
``B8A``, ``B11`` at 20 m). :func:`build_stack` writes a small XML file (a GDAL virtual raster)
that reads them as one multi-band scene, bands in the order the files are given, nothing copied:
the scene :func:`~rrsis.scene.segment_scene` reads window by window, as it reads any GeoTIFF.

The files must lie in one CRS over the same area (bounds within half of the finest pixel) and
share a data type. Pixel sizes may differ: the stack is on the finest file's grid and a coarser
band is resampled onto it as it is read (the VRT source's ``resampling`` attribute, bilinear by
default). Each band keeps its file's nodata value (the scene reads a pixel any band lacks as
nodata), colour interpretation and description (when it has none, what the file's stem does not
share with the others': ``B4`` of Landsat's ``..._SR_B4.TIF``), unless ``colours`` declares each
band's colour, which is how an RGB model finds red, green and blue (:func:`~rrsis.data.bands.declared_rgb`). Tiles lying
side by side are another thing: :func:`~rrsis.scene.build_vrt` (``--mosaic``) joins those.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from .._atomic import atomic_write
from .gdal_names import absolute_name
from .mosaic import _GDAL_TYPES, _band_head, _nodata_xml, _source_name, _vrt_head
from .read import require_geo
from .rectify import open_raster
from .region.entries import _expand

__all__ = ["RESAMPLING", "build_stack"]

# The resamplings of coarser bands: the names build_stack takes are GDAL's VRT source attribute's.
RESAMPLING = ("nearest", "bilinear", "cubic")
# GDAL's names of the colour interpretations rasterio names otherwise (others: capitalized).
_GDAL_COLOURS = {"Y": "YCbCr_Y", "Cb": "YCbCr_Cb", "Cr": "YCbCr_Cr", "other_ir": "OtherIR"}


def _sources(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The band files, in the order given (a glob's matches sorted by name, a list file's in its
    order): absolute paths, or URLs GDAL reads. A file listed twice is refused."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    uris: list[str] = []
    for entry in sources:
        text = os.fspath(entry)
        if not text.strip():
            raise ValueError("a band file entry is empty: give a path, a quoted glob or a list file")
        for _, uri in _expand(text, None):
            uri = absolute_name(uri)  # a subdataset's or /vsigzip/'s file made absolute too; URLs as they are
            if uri in uris:
                raise ValueError(f"{uri} is listed twice: a stack reads each band file once")
            uris.append(uri)
    if not uris:
        raise ValueError("no band files given")
    return uris


def _info(uri: str) -> dict:
    with open_raster(uri) as ds:
        t = ds.transform
        if t.is_identity:
            raise ValueError(f"{uri} has no geotransform: a stack matches band files by the area they cover "
                             "(a raster placed by GCPs or RPCs only: rectify it first)")
        if ds.crs is None:
            raise ValueError(f"{uri} has no CRS: a stack matches band files by the area they cover (give the "
                             "file one first, e.g. gdal_edit.py -a_srs EPSG:32633 FILE)")
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise ValueError(f"{uri} is not north-up (rotated or south-up transform {tuple(t)[:6]}): a stack "
                             "resamples bands by their pixel sizes only; warp it first (gdalwarp)")
        if any(c.name == "palette" for c in ds.colorinterp):
            raise ValueError(f"{uri} is paletted: a stack reads values, not colour-table indices; expand "
                             "it first (gdal_translate -expand rgb)")
        if len(set(ds.dtypes)) != 1:
            raise ValueError(f"{uri} has bands of several data types {sorted(set(ds.dtypes))}")
        return {"uri": uri, "crs": ds.crs, "transform": t, "width": ds.width, "height": ds.height,
                "bounds": tuple(ds.bounds), "dtype": ds.dtypes[0], "nodata": list(ds.nodatavals),
                "colours": [c.name for c in ds.colorinterp], "descriptions": list(ds.descriptions)}


def _band_stems(uris: Sequence[str]) -> list[str]:
    """What each file's stem says that the others' do not: the leading and trailing ``_``/``-``/``.``
    separated tokens common to every stem dropped (``B4`` of Landsat's ``LC09_L2SP_..._T1_SR_B4``;
    ``B04_10m`` and ``B8A_20m`` of Sentinel-2 L2A's ``T32TQM_20240101T101431_B04_10m``), so a band is
    named alike in every date's product. Stems are kept whole for one file, or when a stem would
    be left with nothing."""
    stems = [Path(u.split("?")[0]).stem or "band" for u in uris]
    spans = [[m.span() for m in re.finditer(r"[^_.\-]+", s)] for s in stems]
    shortest = min(len(x) for x in spans)
    if len(stems) < 2 or shortest == 0:
        return stems
    tokens = [[s[a:b] for a, b in x] for s, x in zip(stems, spans)]
    lead = next((k for k in range(shortest) if len({t[k] for t in tokens}) > 1), shortest)
    trail = next((k for k in range(shortest - lead) if len({t[-1 - k] for t in tokens}) > 1), shortest - lead)
    if lead + trail >= shortest:  # a stem would be left with nothing (the same name in two folders)
        return stems
    return [s[x[lead][0]:x[len(x) - 1 - trail][1]] for s, x in zip(stems, spans)]


def _refuse(infos: list[dict], fine: dict) -> None:
    """Refuse a file in another CRS or over another area than the finest, or of another data type
    than the first (the message names both files)."""
    half_x, half_y = fine["transform"].a / 2, -fine["transform"].e / 2
    for i in infos:
        if i["crs"] != fine["crs"]:
            raise ValueError(f"{i['uri']} is in {i['crs'].to_string()}, {fine['uri']} in "
                             f"{fine['crs'].to_string()}: a stack needs one CRS (warp the band first)")
        off = [abs(a - b) for a, b in zip(i["bounds"], fine["bounds"])]
        if max(off[0], off[2]) > half_x or max(off[1], off[3]) > half_y:
            bounds = [", ".join(f"{v:.12g}" for v in x["bounds"]) for x in (i, fine)]
            raise ValueError(
                f"{i['uri']} covers ({bounds[0]}), {fine['uri']} ({bounds[1]}) (left, bottom, right, top): "
                "a stack needs band files over the same area, within half a pixel. Tiles lying side by side "
                "are joined with --mosaic (build_vrt), not stacked")
        if i["dtype"] != infos[0]["dtype"]:
            raise ValueError(f"{i['uri']} has data type {i['dtype']}, {infos[0]['uri']} {infos[0]['dtype']}: "
                             "a stack needs one (their values are on different scales)")


def _colours(colours: Sequence[str] | None, n: int) -> list[str] | None:
    """``colours`` checked (one colour interpretation a band) as rasterio names them, or ``None``."""
    if colours is None:
        return None
    from rasterio.enums import ColorInterp

    names = [str(c).strip() for c in (colours.split(",") if isinstance(colours, str) else colours)]
    if len(names) != n:
        raise ValueError(f"colours: {len(names)} name(s) for a stack of {n} band(s); give one a band, in "
                         "order (e.g. red, green, blue, undefined)")
    known = {c.name.lower(): c.name for c in ColorInterp} | {"grey": "gray"}
    for c in names:
        if c.lower() not in known:
            close = difflib.get_close_matches(c.lower(), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"colours: {c!r} is no colour interpretation (red, green, blue, gray, undefined, "
                             f"alpha, nir, ...){hint}")
    return [known[c.lower()] for c in names]


def build_stack(sources: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike, *,
                colours: Sequence[str] | None = None, resampling: str = "bilinear") -> Path:
    """Write a GDAL VRT reading every band of each of ``sources``, in order, as one scene; returns
    its path.

    The stack is on the grid of the finest file (the smallest pixel; the first of equal ones);
    a coarser file's bands are resampled onto it by ``resampling`` as the stack is read.

    Args:
        sources: the band files, in the order their bands take in the stack (never sorted): paths,
            URLs GDAL reads, list files (``@bands.txt``: one a line, in order) or quoted globs
            (their matches sorted by name). A file of several bands adds them all.
        out: the ``.vrt`` file to write (atomically). Local files are named relative to it, so
            the folder of bands and the VRT can move together.
        colours: each band's colour interpretation, one name a band of the stack, as a list or
            one comma-separated string (``red``, ``green``, ``blue``, ``gray``, ``undefined``,
            ``alpha``, ``nir``, ...; any case);
            default: each file's own. Declaring ``red``, ``green`` and ``blue`` tells an RGB model
            which bands to read, in that order.
        resampling: how coarser bands are resampled onto the finest grid: ``"bilinear"``
            (default), ``"nearest"`` or ``"cubic"``.

    Each band keeps its file's nodata value and description; a band without a description is
    named after what its file's stem does not share with the others' (``B4``
    of Landsat's ``LC09_L2SP_190030_20240101_02_T1_SR_B4.TIF``, so another date's stack names its
    bands alike; ``STEM_N`` for band N of a file of several).

    Raises:
        ValueError: ``out`` is not a ``.vrt``; a file has no CRS or geotransform, is rotated or
            paletted, is listed twice, lies in another CRS or over another area (bounds apart by
            more than half of the finest pixel), or has another data type than the others (the
            message names the files); ``colours`` has another length than the stack's band count
            or an unknown name; an unknown ``resampling``.
        FileNotFoundError: a file or list file is missing, or a glob matches nothing.
        ImportError: without the ``geo`` extra.
    """
    rasterio = require_geo("a VRT stack of band files")
    out = Path(out)
    if out.suffix.lower() != ".vrt":
        raise ValueError(f"{out}: a stack is written as a .vrt file")
    if resampling not in RESAMPLING:
        close = difflib.get_close_matches(str(resampling), RESAMPLING, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"resampling {resampling!r}: one of {', '.join(RESAMPLING)}{hint}")
    infos = [_info(uri) for uri in _sources(sources)]
    for i, stem in zip(infos, _band_stems([i["uri"] for i in infos])):  # a band's own description first
        n_bands = len(i["descriptions"])
        i["descriptions"] = [d or (stem if n_bands == 1 else f"{stem}_{b}") for b, d in enumerate(i["descriptions"], 1)]
    fine = min(infos, key=lambda i: i["transform"].a * -i["transform"].e)  # min keeps the first of equals
    _refuse(infos, fine)
    n = sum(len(i["nodata"]) for i in infos)
    declared = _colours(colours, n)
    gdal_type = _GDAL_TYPES.get(fine["dtype"])
    if gdal_type is None:
        raise ValueError(f"{fine['uri']}: data type {fine['dtype']} has no VRT name")
    t = fine["transform"]
    width, height = fine["width"], fine["height"]
    folder = out.resolve().parent
    lines = _vrt_head(width, height, fine["crs"], (float(t.c), float(t.a), float(t.f), float(t.e)))
    lines.append('  <Metadata><MDI key="RRSIS_STACK">build_stack</MDI></Metadata>')  # its colours: colours=
    band = 0
    for i in infos:
        name, relative = _source_name(i["uri"], folder)
        same = (i["width"], i["height"]) == (width, height)
        for b, nodata in enumerate(i["nodata"], 1):
            band += 1
            colour = declared[band - 1] if declared else i["colours"][b - 1]
            head = _band_head(band, gdal_type, nodata, _GDAL_COLOURS.get(colour, colour.capitalize()))
            lines += [head[0], f"    <Description>{escape(i['descriptions'][b - 1])}</Description>", *head[1:]]
            # The coarse file's whole extent onto the whole grid: bounds agree within half a fine pixel.
            kind = "SimpleSource" if nodata is None else "ComplexSource"
            lines += [f"    <{kind}" + ("" if same else f' resampling="{resampling}"') + ">",
                      f'      <SourceFilename relativeToVRT="{int(relative)}">{escape(name)}</SourceFilename>',
                      f"      <SourceBand>{b}</SourceBand>",
                      f'      <SrcRect xOff="0" yOff="0" xSize="{i["width"]}" ySize="{i["height"]}"/>',
                      f'      <DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                      *([f"      <NODATA>{_nodata_xml(nodata)}</NODATA>"] if nodata is not None else []),
                      f"    </{kind}>", "  </VRTRasterBand>"]
    lines.append("</VRTDataset>")
    atomic_write(out, "\n".join(lines) + "\n")
    with rasterio.open(out) as ds:  # GDAL reads back what was written
        if (ds.width, ds.height, ds.count) != (width, height, n):
            raise RuntimeError(f"{out}: GDAL reads {ds.width}×{ds.height}×{ds.count}, expected "
                               f"{width}×{height}×{n}")
    return out
