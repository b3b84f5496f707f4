"""An area of interest: segment only the part of a scene inside a polygon or a box.

:func:`area_of_interest` turns what a GIS user holds (a vector file, a shapely geometry, a
GeoJSON mapping, bounds) into an :class:`AreaOfInterest`: a valid polygonal geometry and its CRS.
:func:`scene_window` densifies it, reprojects it to a scene's CRS and finds the scene's pixel
window that covers it. :func:`open_aoi_scene` opens that window as a scene of its own through
GDAL's ``vrt://PATH?srcwin=…`` (the source's nodata, mask, alpha and overviews kept, nothing
copied), so every mode runs on it as on any scene and only the window's pixels are read
(:func:`~rrsis.scene.segment_scene`'s ``aoi=`` then makes the pixels outside the polygon nodata).
A raster placed by ground control points or RPCs only is read on a rectified north-up grid
(:mod:`~rrsis.scene.rectify`): the window is cut from that grid, and GDAL's warper warps only it.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.band_names import bands_by_name
from ..data.bands import model_bands
from .gdal_names import is_gdal_url, is_subdataset
from .ground import reaches
from .ranges import check_scale
from .read import NoValidPixelsError, Scene, raster_scene, require_geo
from .rectify import open_raster, raster_view, window_view
from .vector import (
    AOI_DEFAULT_CRS,
    checked_area,
    need_shapely,
    polygonal_part,
    read_vector_file,
    union_areas,
)

__all__ = ["AOI_DEFAULT_CRS", "AOIOutsideError", "AreaOfInterest", "SceneWindow", "area_of_interest",
           "open_aoi_scene", "scene_window"]

# Points per side of the geometry's bounding box before reprojection, so that a lon/lat box
# becomes its curved outline in a projected CRS (the sagitta of each piece is then negligible).
DENSIFY = 64
# Pixel bounds closer than this to a whole pixel count as on it (reprojection round-off).
PIXEL_TOLERANCE = 1e-6


class AOIOutsideError(ValueError):
    """The area of interest does not overlap the scene (a region skips such scenes)."""


@dataclass(frozen=True, eq=False)
class AreaOfInterest:
    """A valid polygonal geometry and its CRS (build one with :func:`area_of_interest`).

    Attributes:
        geometry: a shapely ``Polygon`` or ``MultiPolygon`` with positive area.
        crs: its rasterio ``CRS``.
        source: what it was made from, for messages.
        path: the vector file it was read from, if any (outputs may not replace it).
    """

    geometry: Any
    crs: Any
    source: str
    path: str | None = None

    def __str__(self) -> str:  # a region's settings record: same area, same text
        digest = hashlib.sha1(self.geometry.wkb).hexdigest()[:12]
        return f"{self.source} ({self.crs.to_string()}, geometry {digest})"

    def in_crs(self, crs: Any):
        """The geometry in ``crs``, its edges densified first (:data:`DENSIFY`)."""
        shapely = need_shapely()
        from rasterio.warp import transform_geom
        from shapely.geometry import mapping, shape

        if crs == self.crs:
            return self.geometry
        x0, y0, x1, y1 = self.geometry.bounds
        dense = shapely.segmentize(self.geometry, max(x1 - x0, y1 - y0) / DENSIFY)
        out = shape(transform_geom(self.crs, crs, mapping(dense)))
        if not out.is_valid:
            out = polygonal_part(shapely.make_valid(out))
        return out


@dataclass(frozen=True)
class SceneWindow:
    """Where an area of interest lies on a scene.

    Attributes:
        window: ``(row0, col0, row1, col1)``: the scene's pixels that cover the area (clipped to
            the scene).
        pixels: the area (its part inside the scene) in the window's pixel coordinates
            (column, row from the window's top-left corner).
        transform: the window's affine transform (the scene's, moved to the window's corner).
    """

    window: tuple[int, int, int, int]
    pixels: Any
    transform: Any

    def inside(self, row0: int, shape: tuple[int, int]) -> np.ndarray:
        """bool ``[h, w]``: the pixels of rows ``row0 …`` of the window whose centre lies in the
        area (rasterio's ``rasterize`` rule)."""
        from affine import Affine
        from rasterio.features import rasterize

        return rasterize([(self.pixels, 1)], out_shape=shape, transform=Affine.translation(0, row0),
                         fill=0, dtype="uint8").astype(bool)


def _crs(crs: Any, what: str):
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs)
    except (CRSError, ValueError, TypeError) as exc:
        raise ValueError(f"{what} {crs!r}: not a CRS ({exc}); give e.g. EPSG:4326 or EPSG:32633") from None


def _bounds(values: Any, what: str):
    from shapely.geometry import box

    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"area of interest {what}: bounds are four numbers minx,miny,maxx,maxy") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (x0 < x1 and y0 < y1):
        bad = [f"{a} {u:.10g} >= {b} {v:.10g}" for a, u, b, v in (("minx", x0, "maxx", x1), ("miny", y0, "maxy", y1))
               if not u < v]
        raise ValueError(f"area of interest {what}: bounds minx,miny,maxx,maxy need minx < maxx and "
                         f"miny < maxy (a box with area){': ' + ', '.join(bad) + ' (swapped?)' if bad else ''}"
                         + ("; a box across the antimeridian is two boxes (a MultiPolygon)" if x1 < x0 else ""))
    return box(x0, y0, x1, y1)


def _parse_bounds_text(text: str) -> list[float] | None:
    try:
        parts = [float(p) for p in text.replace(" ", ",").split(",") if p]
    except ValueError:
        return None
    return parts if len(parts) == 4 else None


def area_of_interest(aoi: Any, crs: Any = None) -> AreaOfInterest:
    """An :class:`AreaOfInterest` from what a user holds.

    Args:
        aoi: a vector file path (GeoJSON, GeoPackage, shapefile, anything pyogrio reads: the
            features of its first layer unioned), a shapely geometry, a GeoJSON mapping
            (geometry, Feature or FeatureCollection), a bounds tuple ``(minx, miny, maxx, maxy)``
            or the string ``"minx,miny,maxx,maxy"``, or an :class:`AreaOfInterest`.
        crs: the CRS of a geometry, mapping or bounds, default ``EPSG:4326`` (longitude,
            latitude, as RFC 7946 reads GeoJSON); for a file, only when the file names none
            (a GeoJSON file without a ``crs`` member is EPSG:4326 unless ``crs`` is given). A
            mapping's own ``crs`` member (GeoJSON 2008) is read.

    Raises:
        ValueError: an empty geometry, one without area (a point, a line), one invalid beyond
            ``shapely.make_valid`` (a repaired one gives a warning), an unreadable file, a
            file without a CRS and no ``crs``, a CRS given that differs from the file's own,
            or coordinates that are not longitudes/latitudes in a geographic CRS.
        FileNotFoundError: a string that is neither a file nor bounds.
    """
    shapely = need_shapely()
    require_geo("an area of interest")
    from shapely.geometry import shape

    if isinstance(aoi, AreaOfInterest):
        if crs is not None and _crs(crs, "aoi_crs") != aoi.crs:
            raise ValueError(f"aoi_crs {crs!r}: the area of interest already has its CRS ({aoi.crs.to_string()})")
        return aoi
    given = None if crs is None else _crs(crs, "aoi_crs")
    if isinstance(aoi, (str, os.PathLike)):
        text = os.fspath(aoi)
        bounds = None if os.path.exists(text) else _parse_bounds_text(text)
        if bounds is not None:
            geom, what, own = _bounds(bounds, repr(text)), f"bounds {text}", None
        elif not os.path.isfile(text):
            raise FileNotFoundError(f"area of interest {text!r}: no such file, and not bounds "
                                    "minx,miny,maxx,maxy")
        else:
            geom, own, implied = read_vector_file(text)
            what = text
            own = implied if own is None and given is None else own
            if own is None and given is None:
                raise ValueError(f"area of interest {text}: the file has no CRS; give it with aoi_crs= "
                                 "(rrsis predict --aoi-crs, e.g. EPSG:32633)")
            own = None if own is None else _crs(own, f"area of interest {text}: CRS")
            if own is not None and given is not None and own != given:
                raise ValueError(f"area of interest {text}: the file has its own CRS ({own.to_string()}); "
                                 f"aoi_crs ({crs!r}) only gives one to a file that has none")
    elif isinstance(aoi, (tuple, list)) or (isinstance(aoi, np.ndarray) and aoi.ndim == 1):
        geom, what, own = _bounds(aoi, repr(tuple(aoi))), f"bounds {tuple(aoi)}", None
    elif isinstance(aoi, Mapping) or (hasattr(aoi, "__geo_interface__") and not hasattr(aoi, "geom_type")):
        m = aoi if isinstance(aoi, Mapping) else aoi.__geo_interface__
        what, own = f"{m.get('type', 'mapping')} mapping", None
        named = (m.get("crs") or {}).get("properties", {}).get("name") if isinstance(m.get("crs"), Mapping) else None
        own = None if named is None else _crs(named, "the mapping's crs member")
        try:
            if m.get("type") == "FeatureCollection":
                parts = [shape(f["geometry"]) for f in m.get("features", []) if f.get("geometry")]
                geom = union_areas(parts, what) if parts else None
            elif m.get("type") == "Feature":
                geom = shape(m["geometry"]) if m.get("geometry") else None
            else:
                geom = shape(m)
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
            raise ValueError(f"area of interest: not a GeoJSON geometry, Feature or FeatureCollection ({exc})") from None
        if own is not None and given is not None and own != given:
            raise ValueError(f"area of interest: the mapping names its CRS ({own.to_string()}); aoi_crs "
                             f"({crs!r}) differs")
    elif hasattr(aoi, "geom_type"):
        geom, what, own = aoi, f"{aoi.geom_type}", None
    else:
        raise TypeError(f"area of interest: got {type(aoi).__name__}; give a vector file path, a shapely "
                        "geometry, a GeoJSON mapping or bounds (minx, miny, maxx, maxy)")
    area_crs = own or given or _crs(AOI_DEFAULT_CRS, "aoi_crs")
    geom = checked_area(geom, what)
    x0, y0, x1, y1 = geom.bounds
    if area_crs.is_geographic and not (-360 <= x0 and x1 <= 360 and -90 <= y0 and y1 <= 90):
        raise ValueError(f"area of interest {what}: bounds {_fmt((x0, y0, x1, y1))} are not longitudes and "
                         f"latitudes, yet its CRS is {area_crs.to_string()} (the default for geometries, "
                         "mappings and bounds, and for GeoJSON files); give the CRS of its coordinates with "
                         "aoi_crs= (rrsis predict --aoi-crs, e.g. the scene's EPSG:32633)")
    path = os.path.abspath(os.fspath(aoi)) if isinstance(aoi, (str, os.PathLike)) and os.path.isfile(aoi) else None
    return AreaOfInterest(geometry=geom, crs=area_crs, source=what, path=path)


def _fmt(b) -> str:
    return "(" + ", ".join(f"{v:.6g}" if abs(v) < 1e3 else f"{v:.2f}" for v in b) + ")"


def scene_window(area: AreaOfInterest, height: int, width: int, transform: Any, crs: Any,
                 name: str = "scene") -> SceneWindow:
    """The pixel window of a ``height`` × ``width`` scene (``transform``, ``crs``) that covers
    ``area``: the pixels the area touches, clipped to the scene.

    Raises:
        AOIOutsideError: the area does not overlap the scene (both bounds, in the scene's CRS).
        ValueError: the scene has no CRS or no transform.
    """
    from affine import Affine
    from shapely import union_all as shapely_union
    from shapely.affinity import affine_transform, translate
    from shapely.geometry import box

    if transform is None or transform.is_identity:
        raise ValueError(f"{name}: the scene has no georeference (no affine transform), so an area of "
                         "interest cannot be placed on it")
    if crs is None:
        raise ValueError(f"{name}: the raster has no CRS, so the area of interest (in "
                         f"{area.crs.to_string()}) cannot be placed on it; give the raster's CRS with "
                         "crs= (rrsis predict --crs, e.g. EPSG:32633)")
    if area.crs != crs and not reaches(area.crs, crs, *area.geometry.representative_point().coords[0]):
        raise ValueError(f"{name}: the area of interest's CRS ({area.crs.to_string()}) cannot be transformed to "
                         f"the raster's ({crs.to_wkt().split(chr(34))[1]}: a local grid or another planet's, which "
                         "reaches no other); give the area in the raster's own CRS")
    shown = geom = area.in_crs(crs)
    if crs.is_geographic:  # the same place 360 degrees of longitude away (a scene across the antimeridian)
        geom = shapely_union([geom, translate(geom, 360), translate(geom, -360)])
    inv = ~transform
    pix = affine_transform(geom, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
    inter = polygonal_part(pix.intersection(box(0, 0, width, height)))
    if inter.is_empty or inter.area <= 0:
        from rasterio.transform import array_bounds

        scene_b = array_bounds(height, width, transform)
        raise AOIOutsideError(f"{name}: the area of interest does not overlap the scene: area bounds "
                              f"{_fmt(shown.bounds)}, scene bounds {_fmt(scene_b)} (minx, miny, maxx, maxy "
                              f"in the scene's CRS, {crs.to_string()})")
    x0, y0, x1, y1 = inter.bounds
    c0, r0 = max(0, math.floor(x0 + PIXEL_TOLERANCE)), max(0, math.floor(y0 + PIXEL_TOLERANCE))
    c1, r1 = min(width, math.ceil(x1 - PIXEL_TOLERANCE)), min(height, math.ceil(y1 - PIXEL_TOLERANCE))
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    win = SceneWindow(window=(r0, c0, r1, c1), pixels=translate(inter, -c0, -r0),
                      transform=transform @ Affine.translation(c0, r0))
    # Pixels count when their centre is inside: an area thinner than a pixel may hold none (a
    # window that large holds a centre unless the area is a sliver, not worth rasterizing).
    if (r1 - r0) * (c1 - c0) <= 2**22 and not win.inside(0, (r1 - r0, c1 - c0)).any():
        raise AOIOutsideError(f"{name}: the area of interest covers no pixel centre of the scene ({inter.area:.3g} "
                              f"pixels of area on it, in rows {r0}-{r1}, columns {c0}-{c1}): enlarge it to "
                              "at least a pixel")
    return win


def _gdal_name(path: str) -> str:
    """The name GDAL reads ``path`` by inside a ``vrt://`` connection string."""
    if "://" in path and not path.startswith("/vsi"):
        from .mosaic import _source_name

        return _source_name(path, os.getcwd())[0]
    return path if path.startswith("/vsi") or is_subdataset(path) else os.path.abspath(path)


def open_aoi_scene(source: Any, area: AreaOfInterest, *, crs: Any = None, **open_kwargs: Any
                   ) -> tuple[Scene, SceneWindow]:
    """Open the window of the raster file ``source`` that covers ``area`` as a scene.

    The window is read through GDAL's ``vrt://SOURCE?srcwin=…``: a virtual raster of those
    pixels with the source's CRS, nodata, mask, alpha and overviews, and a transform moved to
    the window's corner, so the scene's statistics (stretch, value scaling) and every read come
    from the window alone. A raster placed by GCPs or RPCs only has its window cut from the
    rectified grid it is read on (:func:`~rrsis.scene.rectify.window_view`): only the window is
    warped, and ``window`` counts that grid's rows and columns. ``crs`` and ``**open_kwargs`` are
    :func:`~rrsis.scene.read.open_scene`'s (``crs="none"`` on such a raster is refused: its raw
    grid has no place for the area).

    Returns:
        ``(scene, window)``; ``scene.name`` is ``source``.
    """
    if isinstance(source, Scene) or not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"an area of interest applies to a raster file (GeoTIFF, COG, VRT, a PNG with a world "
                        f"file, ...) given by its path, not to a {type(source).__name__}")
    path = os.fspath(source)
    if not os.path.isfile(path) and not is_gdal_url(path):  # a URL or subdataset: GDAL names what fails
        raise FileNotFoundError(f"{path}: file not found")
    require_geo(f"reading {os.path.basename(path)}")
    with open_raster(path) as ds:
        height, width, transform, own_crs = ds.height, ds.width, ds.transform, ds.crs
        placed = f"{len(ds.gcps[0])} ground control points" if ds.gcps[0] else ("RPCs" if ds.rpcs else None)
    declined = isinstance(crs, str) and crs.strip().lower() == "none"
    if transform.is_identity and placed:
        if declined:
            raise ValueError(f"{path}: placed by {placed} only, and crs='none' keeps its raw pixel grid, on "
                             "which no area of interest can be placed: leave crs= out (the raster is then "
                             "read rectified and the area cut from that grid), or rectify it first "
                             "(gdalwarp -r near IN OUT) and give that file")
        return _open_rectified_window(path, area, crs=crs, **open_kwargs)
    scene_crs = own_crs if own_crs is not None or crs is None or declined else _crs(crs, "crs")
    win = scene_window(area, height, width, transform, scene_crs, path)
    name = _gdal_name(path)
    if "?" in name:
        raise ValueError(f"{path}: an area of interest reads the scene through vrt://, which cannot name a "
                         "path with '?' (a signed URL): download the scene, or cut the area with gdal_translate")
    r0, c0, r1, c1 = win.window
    try:
        kw = {k: v for k, v in open_kwargs.items() if k not in ("bands", "max_pixels")}  # as open_scene's
        sc = raster_scene(f"vrt://{name}?srcwin={c0},{r0},{c1 - c0},{r1 - r0}", path,  # named so in messages
                          model_bands(open_kwargs.get("bands"), open_kwargs.get("channels")), crs=crs, **kw)
    except NoValidPixelsError:
        raise NoValidPixelsError(f"{path}: every pixel of the area of interest's window (rows {r0}-{r1}, columns "
                                 f"{c0}-{c1}) is nodata: nothing to segment") from None
    return sc, win


def _open_rectified_window(path: str, area: AreaOfInterest, *, crs: Any = None, bands: Any = None,
                           scale: Any = None, stretch: Any = "auto", max_pixels: Any = None,
                           channels: int | None = None, names: Any = None) -> tuple[Scene, SceneWindow]:
    """:func:`open_aoi_scene` of a raster placed by GCPs or RPCs only: the area's window is cut
    from the rectified (north-up) grid the raster is read on, and only that window is warped
    (``max_pixels`` bounds in-memory images, not rasters read window by window)."""
    band_tuple = model_bands(bands, channels)
    ds = open_raster(path)
    try:
        band_tuple = bands_by_name(ds.descriptions, [c.name for c in ds.colorinterp], band_tuple, names, channels,
                                   path)  # as open_scene reads the model's bands
        view = raster_view(ds, path, crs=crs, channels=channels, bands=band_tuple)
        if view.rectified is None:  # GCPs GDAL cannot fit: no grid to cut the area from
            raise ValueError(f"{view.problem or path + ': cannot be rectified'}; an area of interest is cut "
                             "from the rectified grid")
        grid = view.dataset
        try:
            win = scene_window(area, grid.height, grid.width, view.transform, view.crs,
                               f"{path} (rectified onto a north-up grid)")
        except ValueError:
            grid.close()
            raise
        view = window_view(view, win.window)
        try:
            sc = Scene(dataset=ds, view=view, bands=band_tuple, stretch=stretch, scale=scale, name=path,
                       crs=crs, channels=channels)
        except NoValidPixelsError:
            view.dataset.close()
            r0, c0, r1, c1 = win.window
            raise NoValidPixelsError(f"{path}: every pixel of the area of interest's window (rows {r0}-{r1}, "
                                     f"columns {c0}-{c1} of the rectified grid) is nodata (beyond the raster's "
                                     "footprint, or nodata in it): nothing to segment") from None
        except Exception:
            view.dataset.close()
            raise
        return check_scale(sc, scale), win
    except Exception:
        ds.close()
        raise
