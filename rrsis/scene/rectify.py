"""Rasters read through a GDAL virtual view: GCP- or RPC-only rasters rectified, palettes expanded.

A raster georeferenced by ground control points (raw Sentinel-1 GRD, many level-1 scenes,
scanned maps) or by rational polynomial coefficients alone has no affine transform. rrsis reads
it through GDAL's warper (``rasterio.vrt.WarpedVRT``): GDAL's GCP transformer (its automatic
polynomial: order 1 with 3-5 points, 2 from 6) or RPC transformer (heights at 0 m: no DEM)
maps it onto a north-up grid in the GCPs' CRS (EPSG:4326 for RPCs), resampled by nearest
neighbour, and the scene is that grid. Every output (mask, polygons, overlay) then lies on the
rectified grid, not the raw pixel grid; pixels outside the raw footprint are nodata.

A paletted raster (one band of colour-table indices) is read as the R, G, B (and alpha) of its
colour table. GDAL's virtual raster applies a colour table after resampling the indices, which
would average indices instead of colours, so the expanded raster is wrapped in a warped view on
its own grid: a reduced read then averages colours, as for the same RGB raster.

The view is a VRT document opened as an ordinary dataset (windows reaching outside the scene
are read as from any raster). GDAL warps it block by block from the source, so memory stays
bounded whatever the raster's size; a whole-scene reduced read (the global pass, the
statistics) is warped straight onto the reduced grid (:class:`ReducedReads`), within a grey
level of averaging the full-resolution view, which GDAL would warp whole first (20000² pixels,
3 bands, on 2 busy cores: opening 6 s instead of 137 s, a 512² global read 31 s instead of 191 s,
+144 MiB of peak memory instead of +37 MiB).
"""

from __future__ import annotations

import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from ..data.bands import raster_bands
from .georef import RECTIFY_HINT, gcp_problem

__all__ = ["PALETTE_COLOURS", "RasterView", "ReducedReads", "numbered_bands", "open_raster", "raster_view",
           "separate_files", "window_view"]

# The metadata item of a VRT mosaic whose colours are paletted tiles' (rrsis.scene.mosaic_palette).
PALETTE_COLOURS = "RRSIS_PALETTE_COLOURS"
# What names a file over the network, alone or inside another GDAL path (/vsizip//vsicurl/...).
_NETWORK = ("http://", "https://", "ftp://", "s3://", "gs://", "az://", "/vsicurl", "/vsis3", "/vsigs", "/vsiaz",
            "/vsiadls", "/vsioss", "/vsiswift", "/vsiwebhdfs")


@dataclass
class RasterView:
    """What a scene reads: ``dataset`` (the source, or the virtual view over it), where it lies
    (``crs``, ``transform``, rasterio ``profile``), ``rectified`` (a sentence naming the
    rectification, or ``None``), ``problem`` (why a GCP-only raster could not be rectified, or
    ``None``), ``mask`` (a view's ``(alpha band, threshold)``: valid where the band's value
    is at least the threshold; ``None``: GDAL's masks of ``dataset``) and ``xml`` (a rectified
    view's warped VRT document, which :func:`window_view` cuts)."""

    dataset: Any
    crs: Any
    transform: Any
    profile: dict
    rectified: str | None = None
    problem: str | None = None
    mask: tuple[int, float] | None = None
    xml: str | None = None


def _palette_xml(ds: Any, gcps: bool = False) -> str:
    """A VRT document expanding band 1's colour table to R, G, B and alpha (a nodata index is
    alpha 0), placed by the source's transform or (``gcps``) its ground control points."""
    nodata = ds.nodata
    src = escape(ds.name)
    kind = "UInt16" if ds.dtypes[0] == "uint16" else "Byte"
    names = ["Red", "Green", "Blue", "Alpha"]
    rect = f'xOff="0" yOff="0" xSize="{ds.width}" ySize="{ds.height}"'
    # A source pixel equal to NODATA is not written: it keeps the band's initial 0 (alpha 0).
    skip = "" if nodata is None else f"<NODATA>{nodata:g}</NODATA>"
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{i + 1}"><ColorInterp>{name}</ColorInterp><ComplexSource>'
        f'<SourceFilename relativeToVRT="0">{src}</SourceFilename><SourceBand>1</SourceBand>'
        f'<SourceProperties RasterXSize="{ds.width}" RasterYSize="{ds.height}" DataType="{kind}"/>'
        f"<SrcRect {rect}/><DstRect {rect}/>{skip}<ColorTableComponent>{i + 1}</ColorTableComponent>"
        "</ComplexSource></VRTRasterBand>" for i, name in enumerate(names))
    # The warper needs a CRS and a transform; a non-georeferenced raster gets stand-ins (the
    # scene keeps the source's own).
    if gcps:
        place = _gcp_xml(ds)
    else:
        crs = ds.crs.to_wkt() if ds.crs is not None else "EPSG:3857"
        gt = ",".join(repr(float(v)) for v in ds.transform.to_gdal())
        place = f"<SRS>{escape(crs)}</SRS><GeoTransform>{gt}</GeoTransform>"
    return f'<VRTDataset rasterXSize="{ds.width}" rasterYSize="{ds.height}">{place}{bands}</VRTDataset>'


def _gcp_xml(ds: Any) -> str:
    points, crs = ds.gcps
    place = "".join(f'<GCP Id="{i}" Pixel="{p.col!r}" Line="{p.row!r}" X="{p.x!r}" Y="{p.y!r}" Z="{p.z or 0.0!r}"/>'
                    for i, p in enumerate(points))
    return f'<GCPList Projection="{escape(crs.to_wkt(), {chr(34): "&quot;"})}">{place}</GCPList>'


def _bands_xml(ds: Any) -> str:
    """A VRT document of ``ds``'s bands as they are, none declared alpha, placed by its GCPs: the
    warper then warps an alpha band the model reads as data (a 4-band model on RGBA-declared
    data) instead of masking the raster with it and writing 0/255 in its place."""
    from rasterio.dtypes import dtype_rev, typename_fwd

    rect = f'xOff="0" yOff="0" xSize="{ds.width}" ySize="{ds.height}"'
    bands = "".join(
        f'<VRTRasterBand dataType="{typename_fwd[dtype_rev[dt]]}" band="{b}">'
        + ("" if ds.nodata is None else f"<NoDataValue>{ds.nodata!r}</NoDataValue>")
        + f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(ds.name)}</SourceFilename>'
        f"<SourceBand>{b}</SourceBand><SrcRect {rect}/><DstRect {rect}/></SimpleSource></VRTRasterBand>"
        for b, dt in zip(ds.indexes, ds.dtypes))
    return f'<VRTDataset rasterXSize="{ds.width}" rasterYSize="{ds.height}">{_gcp_xml(ds)}{bands}</VRTDataset>'


def _has_alpha(ds: Any) -> bool:
    from rasterio.enums import ColorInterp

    return ColorInterp.alpha in ds.colorinterp


def _warped_xml(ds: Any, **kw: Any) -> str:
    """The VRT document of ``WarpedVRT(ds, **kw)`` (nearest neighbour), to open as a dataset.

    A paletted view always has an alpha band: GDAL (3.10) then serves a reduced read from
    full-resolution warped blocks, averaging colours; without one, the expansion's reduced
    read resamples indices."""
    from rasterio.vrt import WarpedVRT

    with WarpedVRT(ds, resampling=0, **kw) as vrt:
        return vrt.tags(ns="xml:VRT")["xml:VRT"]


def open_raster(path: str):
    """``rasterio.open(path)`` for reading (a raster without georeference is no warning: the
    scene says what it lacks when outputs are asked for), or a ``ValueError`` naming the file."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    # A URL: GDAL would list its "directory" and probe each side-car (.aux.xml, .msk, .ovr, ...)
    # with a request (39 against 4 for a COG); a COG carries its own. Unless the caller chose.
    remote = any(k in path for k in _NETWORK) and "GDAL_DISABLE_READDIR_ON_OPEN" not in os.environ
    try:
        with warnings.catch_warnings(), rasterio.Env(**({"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"} if remote else {})):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        raise ValueError(f"{path}: cannot read raster ({exc})") from None
    if ds.count == 0:  # a container (GeoPackage of several tables, netCDF of several variables)
        names = [v for k, v in sorted(ds.tags(ns="SUBDATASETS").items(), key=lambda kv: _number(kv[0]))
                 if k.endswith("_NAME")] or list(ds.subdatasets)
        ds.close()
        if not names:
            raise ValueError(f"{path}: no raster band to read")
        shown = ", ".join(names[:8]) + (f" (and {len(names) - 8} more)" if len(names) > 8 else "")
        raise ValueError(f"{path} holds {len(names)} raster(s) (GDAL subdatasets) and no band of its own: pass "
                         f"one by its GDAL name: {shown}")
    odd = [d for d in dict.fromkeys(ds.dtypes) if not _real(d)]
    if odd:  # complex (SAR single-look) or another type no stretch or scaling has a meaning for
        ds.close()
        raise ValueError(f"{path}: {', '.join(odd)} pixels, which rrsis cannot read: it reads rasters of real "
                         "numbers (integers or floats); convert the bands first (e.g. the amplitude of complex data)")
    return ds


def _real(dtype: str) -> bool:
    """Whether a rasterio band type holds real numbers (not complex, ``complex_int16`` included)."""
    return dtype in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16",
                     "float32", "float64")


def _number(key: str) -> int:
    """``SUBDATASET_12_NAME``'s 12: GDAL's order (a string sort puts 10 before 2)."""
    digits = re.sub(r"\D", "", key)
    return int(digits) if digits else 0


def separate_files(ds: Any, bands: Sequence[int]) -> bool:
    """Whether ``bands`` of ``ds`` are read from different files: a VRT stacking one file per band
    (:func:`~rrsis.scene.build_stack`, ``gdalbuildvrt -separate``), each band with its own nodata,
    so a pixel one band lacks is nodata (:func:`~rrsis.data.bands.nodata_pixels`, ``every=False``).
    A mosaic's bands all read the same tiles: not separate."""
    if ds.driver != "VRT":
        return False
    try:
        root = ET.fromstring(ds.tags(ns="xml:VRT").get("xml:VRT", ""))
    except ET.ParseError:
        return False
    files = {b.get("band"): frozenset((f.text or "").strip() for f in b.iter("SourceFilename"))
             for b in root.iter("VRTRasterBand")}
    return len({files.get(str(b), frozenset()) for b in bands}) > 1


def _open_xml(xml: str):
    import rasterio

    return rasterio.open(xml)


def _alpha_mask(view: Any, xml: str) -> tuple[int, float] | None:
    """``(band, threshold)`` of a warped view's alpha band (``None`` without one). GDAL takes an
    alpha band as the mask only of a 2- or 4-band raster, so the scene reads it itself; its top
    value is the warper's ``DST_ALPHA_MAX`` (255, or 65535 for UInt16 data)."""
    from rasterio.enums import ColorInterp

    if not _has_alpha(view):
        return None
    top = re.search(r'<Option name="DST_ALPHA_MAX">([0-9.]+)</Option>', xml)
    return list(view.colorinterp).index(ColorInterp.alpha) + 1, (float(top.group(1)) if top else 255.0) / 2


class ReducedReads:
    """A rectified view whose whole-scene reduced reads (the global pass, the statistics) are
    warped from the source straight onto the reduced grid: GDAL would warp the whole raster at
    full resolution for them (minutes for a 20000² raster). Everything else is the view's."""

    def __init__(self, view: Any, xml: str) -> None:
        self._view, self._xml, self._reduced = view, xml, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def _target(self, kw: dict) -> tuple[Any, dict]:
        shape = kw.get("out_shape")
        if kw.get("window") is not None or shape is None or not (
                shape[-2] < self._view.height and shape[-1] < self._view.width):
            return self._view, kw
        from rasterio.enums import Resampling

        h, w = int(shape[-2]), int(shape[-1])
        alg = "Average" if kw.get("resampling") == Resampling.average else "NearestNeighbour"
        if (h, w, alg) not in self._reduced:
            from affine import Affine

            t = self._view.transform @ Affine.scale(self._view.width / w, self._view.height / h)
            # GDAL warps a view block by block, each from its whole source window at once:
            # 128-column blocks of as many rows as keep that window near 16 M source pixels.
            per_px = (self._view.width / w) * (self._view.height / h)
            cols = min(w, 128)
            rows = max(1, min(h, int(2**24 / (cols * per_px))))
            self._reduced[h, w, alg] = _open_xml(_resized_xml(self._xml, h, w, t, alg, cols, rows))
        return self._reduced[h, w, alg], {k: v for k, v in kw.items() if k not in ("out_shape", "resampling")}

    def read(self, indexes: Any = None, **kw: Any):
        ds, kw = self._target(kw)
        return ds.read(indexes, **kw)

    def read_masks(self, indexes: Any = None, **kw: Any):
        ds, kw = self._target(kw)
        return ds.read_masks(indexes, **kw)

    def close(self) -> None:
        for ds in self._reduced.values():
            ds.close()
        self._view.close()


def _reduced_reads(view: Any, xml: str) -> Any:
    """``view`` as :class:`ReducedReads`, or as it is where GDAL's document cannot be resized."""
    try:
        _resized_xml(xml, 1, 1, view.transform, "Average", 1, 1)
    except ValueError:
        return view
    return ReducedReads(view, xml)


def _resized_xml(xml: str, h: int, w: int, t: Any, alg: str, cols: int, rows: int) -> str:
    """A warped VRT document on a ``h`` x ``w`` grid of transform ``t`` (same extent) resampled
    by ``alg``, in blocks of ``cols`` x ``rows``: the same transformer, another destination."""
    gdal = ",".join(repr(float(v)) for v in t.to_gdal())
    inverse = ",".join(repr(float(v)) for v in (~t).to_gdal())
    for pattern, new in ((r'rasterXSize="\d+" rasterYSize="\d+"', f'rasterXSize="{w}" rasterYSize="{h}"'),
                         (r"<GeoTransform>[^<]*</GeoTransform>", f"<GeoTransform>{gdal}</GeoTransform>"),
                         (r"<DstGeoTransform>[^<]*</DstGeoTransform>", f"<DstGeoTransform>{gdal}</DstGeoTransform>"),
                         (r"<DstInvGeoTransform>[^<]*</DstInvGeoTransform>",
                          f"<DstInvGeoTransform>{inverse}</DstInvGeoTransform>"),
                         (r"<ResampleAlg>[^<]*</ResampleAlg>", f"<ResampleAlg>{alg}</ResampleAlg>"),
                         (r"<BlockXSize>\d+</BlockXSize>", f"<BlockXSize>{cols}</BlockXSize>"),
                         (r"<BlockYSize>\d+</BlockYSize>", f"<BlockYSize>{rows}</BlockYSize>")):
        xml, n = re.subn(pattern, new, xml, count=1)
        if n != 1:  # a GDAL whose document differs: GDAL's own (slow) reduced reads
            raise ValueError(f"unexpected warped VRT document (no {pattern})")
    return xml


def _paletted(ds: Any) -> bool:
    from rasterio.enums import ColorInterp

    return ds.count == 1 and ds.colorinterp[0] == ColorInterp.palette


def numbered_bands(source: Any, view: Any) -> Any:
    """The dataset whose bands a scene's band numbers count: the file ``source`` itself (a view
    rectifying it adds the warper's alpha band, none of the file's), or for a paletted file its
    ``view``, whose bands are the colour table's R, G, B and alpha."""
    return view if _paletted(source) else source


def raster_view(ds: Any, name: str, *, crs: Any = None, channels: int | None = None,
                bands: Any = None) -> RasterView:
    """The dataset a :class:`~rrsis.scene.read.Scene` reads for ``ds``: ``ds`` itself, or a view
    rectifying a GCP- or RPC-only raster (unless ``crs="none"``, which keeps the raw grid) and
    expanding a paletted one to R, G, B. ``channels`` and ``bands`` are the scene's band rule: a
    declared alpha band it reads as data is rectified as data, not used as the warper's mask.

    Raises:
        ValueError: a paletted raster, or a mosaic of paletted tiles read as their colours, for a
            model of ``channels`` other than 3 (its colours are R, G, B).
    """
    from rasterio.enums import ColorInterp
    from rasterio.errors import RasterioError

    paletted = _paletted(ds)
    if channels not in (None, 3) and (paletted or ds.tags().get(PALETTE_COLOURS)):
        raise ValueError(f"{name}: a paletted raster (one band of colour-table indices) is read as the R, G, B "
                         f"of its colour table, but the model takes {channels} bands (in_chans={channels}); "
                         "give it a raster of that many bands of data")
    points, gcp_crs = ds.gcps
    rpcs = None if points else ds.rpcs
    view = RasterView(ds, ds.crs, ds.transform, ds.profile)
    rectify = not (isinstance(crs, str) and crs.strip().lower() == "none")
    rectifying = rectify and ds.transform.is_identity and (bool(points) or rpcs is not None)
    if rectifying:
        view.problem = gcp_problem(ds, name) if points else (
            f"{name}: a paletted raster placed by RPCs only; {RECTIFY_HINT}" if paletted else None)
        rectifying = view.problem is None
    if not (rectifying or paletted):
        return view
    source = _open_xml(_palette_xml(ds, gcps=rectifying)) if paletted else ds
    if rectifying and points and not paletted and _has_alpha(ds):
        alpha = [c == ColorInterp.alpha for c in ds.colorinterp]
        if raster_bands(alpha, bands, channels, name)[1]:  # the scene's band rule reads it as data
            source = _open_xml(_bands_xml(ds))
    try:
        if rectifying:
            target = gcp_crs if points else "EPSG:4326"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # Nodata stays nodata (GDAL's masks then skip it in reduced reads, as in
                    # the source); without one, an alpha band marks the raw footprint.
                    keep = _has_alpha(source) or ds.nodata is not None
                    xml = _warped_xml(source, crs=target, **({} if keep else {"add_alpha": True}))
            except RasterioError as exc:
                view.problem = f"{name}: GDAL cannot rectify it from its {'GCPs' if points else 'RPCs'} ({exc}); {RECTIFY_HINT}"
                rectifying = False
        if rectifying:
            out = _open_xml(xml)
            mask = _alpha_mask(out, xml)
            out = _reduced_reads(out, xml)
            how = (f"{len(points)} ground control points (GDAL's polynomial transformer)" if points
                   else "its RPCs (GDAL's RPC transformer, heights at 0 m)")
            return RasterView(out, out.crs, out.transform, out.profile, rectified=(
                f"{name}: georeferenced by {how} only; read rectified onto a north-up grid in "
                f"{out.crs.to_string()} ({out.width}x{out.height} pixels of {abs(out.transform.a):.6g}, "
                "nearest neighbour): the mask, polygons and overlay lie on that grid, not the raw pixel grid"),
                mask=mask, xml=xml)
        # The colours on the source's own grid (a stand-in CRS where it has none; the scene keeps its own).
        xml = _warped_xml(source, src_crs=source.crs, crs=source.crs, transform=ds.transform,
                          width=ds.width, height=ds.height)
        view.dataset = _open_xml(xml)
        view.mask = _alpha_mask(view.dataset, xml)
        view.dataset = _reduced_reads(view.dataset, xml)
        return view
    finally:
        if source is not ds:
            source.close()


def window_view(view: RasterView, window: tuple[int, int, int, int]) -> RasterView:
    """A rectified ``view`` cut to ``window = (row0, col0, row1, col1)`` of its grid (an area of
    interest's window); ``view``'s dataset is closed.

    The cut is the same warped VRT document with the window as its destination grid (the
    rectified grid's pixels, its transform moved to the window's corner): GDAL then warps, and
    reads from the source, only what lies under the window, so time and memory follow the
    window, not the raster.
    """
    from affine import Affine

    if view.xml is None:
        raise ValueError("window_view cuts a rectified view (a GCP- or RPC-only raster read through GDAL's warper)")
    r0, c0, r1, c1 = window
    h, w = r1 - r0, c1 - c0
    if not (0 <= r0 < r1 <= view.dataset.height and 0 <= c0 < c1 <= view.dataset.width):
        raise ValueError(f"window {window} is not inside the {view.dataset.height}x{view.dataset.width} rectified grid")
    blocks = [int(m.group(1)) for m in re.finditer(r"<Block[XY]Size>(\d+)</Block[XY]Size>", view.xml)]
    cols, rows = (min(w, blocks[0]), min(h, blocks[1])) if len(blocks) == 2 else (min(w, 512), min(h, 128))
    transform = view.transform @ Affine.translation(c0, r0)
    xml = _resized_xml(view.xml, h, w, transform, "NearestNeighbour", cols, rows)
    out = _open_xml(xml)
    view.dataset.close()
    return RasterView(_reduced_reads(out, xml), out.crs, out.transform, out.profile,
                      rectified=f"{view.rectified}; of that grid only the area of interest's window is read "
                                f"(rows {r0}-{r1}, columns {c0}-{c1})",
                      mask=_alpha_mask(out, xml), xml=xml)
