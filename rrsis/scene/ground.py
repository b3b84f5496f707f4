"""Ground areas and output coordinates in any CRS a raster may have: Earth's (areas on the
ellipsoid through WGS 84), another body's (Mars: on its own ellipsoid, as it cannot reach WGS 84),
or a local engineering grid (a drone or CAD site grid: planar areas in its linear unit); GeoJSON
coordinates in another CRS, with polygons across the antimeridian cut there, as RFC 7946 cuts
them, wherever the output CRS is discontinuous at 180° (Web Mercator)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["PLANAR_AREA_TOLERANCE", "check_bounds", "finished_geometry", "geodesic_area", "geographic_base",
           "geojson_target", "output_geometry", "pixel_area_m2", "reaches"]

# A projected CRS's planar pixel area is used when it is the ground's within this fraction over
# the scene (UTM, measured: -0.06 to +0.07 % inside its zone, +0.75 % 7° from its central
# meridian); beyond it (Web Mercator: 4x at 60° N) polygons are measured on the ellipsoid instead.
PLANAR_AREA_TOLERANCE = 0.01
_ANGULAR = ("degree", "radian", "grad", "arc")


def _crs(crs: Any):
    from rasterio.crs import CRS

    return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)


def _is_wgs84(crs: Any) -> bool:
    return crs.to_epsg() == 4326 or crs.to_string() == "OGC:CRS84"


def geographic_base(crs: Any) -> str | None:
    """The WKT of the geographic CRS ``crs`` is (or is projected from); ``None`` for a CRS without
    one (an engineering CRS: a local site grid)."""
    wkt = _crs(crs).to_wkt()
    start, depth = wkt.find("GEOGCS["), 0
    for j in range(max(start, 0), len(wkt) if start >= 0 else 0):
        depth += {"[": 1, "]": -1}.get(wkt[j], 0)
        if wkt[j] == "]" and depth == 0:
            return wkt[start:j + 1]
    return None


def _metres_per_unit(crs: Any) -> float | None:
    """Metres per unit of an engineering CRS's axes; ``None`` when its unit is not a length."""
    try:
        name, factor = crs.units_factor
    except Exception:  # noqa: BLE001 - rasterio raises several types for a CRS without units
        return None
    if not factor or factor <= 0 or any(a in str(name).lower() for a in _ANGULAR):
        return None
    return float(factor)


def _check_latitudes(geom: Any, crs: Any, what: str = "the geometry") -> None:
    if crs.is_geographic and (geom.bounds[1] < -90.0 - 1e-9 or geom.bounds[3] > 90.0 + 1e-9):
        raise ValueError(f"{what}'s bounds (latitude {geom.bounds[1]:.6g} to {geom.bounds[3]:.6g}) are outside the "
                         "valid range of its CRS (latitude -90° to 90°); its geotransform is wrong")


def geodesic_area(geom: Any, crs: Any) -> float | None:
    """Area in m² of a geometry in ``crs``, through an equal-area projection centred on it (GDAL
    does the transformation): on the WGS 84 ellipsoid, or on the CRS's own where it cannot reach
    WGS 84 (another planet's); the planar area times the unit's square in an engineering CRS.
    ``None``, with a warning, where no metric area can be computed (an engineering CRS whose unit
    is not a length).

    Raises:
        ValueError: a geographic geometry beyond latitude ±90°.
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    crs = _crs(crs)
    _check_latitudes(geom, crs)
    base = geographic_base(crs)
    if base is None:  # a local grid: flat, in its own unit
        unit = _metres_per_unit(crs)
        if unit is None:
            warnings.warn(f"CRS {crs.to_wkt()[:60]}...: no linear unit, so no area in m² (area_m2 is None)",
                          UserWarning, stacklevel=2)
            return None
        return float(geom.area) * unit * unit
    if reaches(crs, "EPSG:4326", *geom.representative_point().coords[0]):
        wgs = shape(transform_geom(crs, "EPSG:4326", mapping(geom)))
        c = wgs.centroid
        laea = f"+proj=laea +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m +no_defs"
        return float(shape(transform_geom("EPSG:4326", laea, mapping(wgs))).area)
    own = shape(transform_geom(crs, CRS.from_wkt(base), mapping(geom)))  # another body: its own ellipsoid
    c = own.centroid
    laea = (f'PROJCS["equal area",{base},PROJECTION["Lambert_Azimuthal_Equal_Area"],'
            f'PARAMETER["latitude_of_center",{c.y!r}],PARAMETER["longitude_of_center",{c.x!r}],'
            'PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1]]')
    return float(shape(transform_geom(CRS.from_wkt(base), CRS.from_wkt(laea), mapping(own))).area)


def pixel_area_m2(scene: Any) -> float | None:
    """Area of one pixel in m² when the CRS is projected and its planar areas are the ground's
    within :data:`PLANAR_AREA_TOLERANCE` over the scene, or an engineering CRS with a linear unit;
    ``None`` otherwise (geographic or area-distorting CRS: each polygon's area is then measured
    on the ellipsoid; or no transform: a scene not placed on a map has no ground area)."""
    crs, t = scene.crs, scene.transform
    if crs is None or t is None or t.is_identity:
        return None
    from shapely.geometry import Polygon

    engineering = geographic_base(crs) is None
    if not crs.is_projected and not engineering:
        return None
    unit = _metres_per_unit(crs) if engineering else crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    if unit is None:
        return None
    planar = abs(t.a * t.e - t.b * t.d) * unit * unit
    if engineering:
        return planar
    f = np.linspace(0.0, 1.0, 17)[:-1]  # the footprint's edges densified: they curve on the ground
    h, w = scene.height, scene.width
    ring = [(x * w, 0.0) for x in f] + [(w, y * h) for y in f] + [(w - x * w, h) for x in f] + [(0.0, h - y * h) for y in f]
    footprint = Polygon([(t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f) for x, y in ring])
    ground = geodesic_area(footprint, crs)
    return planar if ground is not None and abs(ground / (planar * h * w) - 1.0) <= PLANAR_AREA_TOLERANCE else None


def check_bounds(scene: Any) -> None:
    """A ``ValueError`` for a geographic raster whose bounds run past latitude ±90°."""
    crs, t = scene.crs, scene.transform
    if crs is None or t is None or t.is_identity or not crs.is_geographic:
        return
    from shapely.geometry import MultiPoint

    corners = MultiPoint([t @ (x, y) for x in (0, scene.width) for y in (0, scene.height)])
    _check_latitudes(corners, crs, f"{scene.name}: the raster")


def reaches(src: Any, dst: Any, x: float, y: float) -> bool:
    """Whether GDAL transforms the point ``(x, y)`` of ``src`` to ``dst`` (no: a local engineering
    grid, or another planet's CRS, to an Earth CRS)."""
    from rasterio.warp import transform

    try:
        xs, ys = transform(src, dst, [x], [y])
    except Exception:  # noqa: BLE001 - GDAL's CPLE_NotSupportedError and kin
        return False
    return math.isfinite(xs[0]) and math.isfinite(ys[0])


def geojson_target(scene: Any, geojson_crs: str) -> str:
    """The CRS the GeoJSON of ``scene`` is written in: ``geojson_crs``, or ``"native"`` with a
    warning where the scene's CRS cannot reach WGS 84 (RFC 7946, the default).

    Raises:
        ValueError: an unknown CRS, or another CRS that the scene's cannot reach.
    """
    if geojson_crs == "native" or not scene.georeferenced:
        return geojson_crs
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        dst = CRS.from_user_input(geojson_crs)
    except (CRSError, ValueError) as exc:
        raise ValueError(f"geojson_crs {geojson_crs!r}: {exc}") from None
    if reaches(scene.crs, dst, *(scene.transform @ (scene.width / 2, scene.height / 2))):
        return geojson_crs
    own = scene.crs.to_wkt().split('"')[1] if '"' in scene.crs.to_wkt() else scene.crs.to_string()
    if _is_wgs84(dst):
        warnings.warn(f"{scene.name}: its CRS ({own}) cannot be transformed to WGS 84 (a local grid or another "
                      "planet's), so its GeoJSON is written in that CRS, named in its crs member, not in RFC 7946 "
                      "longitudes and latitudes (geojson_crs='native', --geojson-crs native, without this warning)",
                      UserWarning, stacklevel=3)
        return "native"
    raise ValueError(f"{scene.name}: its CRS ({own}) cannot be transformed to {geojson_crs}; write the GeoJSON in "
                     "the raster's own CRS: geojson_crs='native' (--geojson-crs native)")


def _polygons(geom: Any) -> list:
    return [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]


def _wrapped(geom: Any):
    """A longitude/latitude geometry cut at ±180° and its parts beyond brought back into -180…180."""
    from shapely.affinity import translate
    from shapely.geometry import box
    from shapely.ops import unary_union

    x0, _, x1, _ = geom.bounds
    if x0 >= -180.0 and x1 <= 180.0:
        return geom
    parts = [translate(geom.intersection(box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)), -360.0 * k)
             for k in range(math.floor((x0 + 180.0) / 360.0), math.ceil((x1 - 180.0) / 360.0) + 1)]
    return unary_union([p for part in parts for p in _polygons(part)])


def _seam(dst: Any, lat: float) -> bool:
    """Whether ``dst`` tears the map apart at 180° at latitude ``lat`` (Web Mercator does; a polar
    stereographic or a UTM zone across it does not)."""
    from rasterio.warp import transform

    xs, ys = transform("EPSG:4326", dst, [180.0 - 1e-6, -180.0 + 1e-6, 180.0 - 2e-6], [lat] * 3)
    return math.hypot(xs[1] - xs[0], ys[1] - ys[0]) > 1000.0 * math.hypot(xs[2] - xs[0], ys[2] - ys[0])


def _decimals(crs: Any) -> int:
    """The decimals output coordinates in ``crs`` are rounded to: 7 of a degree (about 1 cm, RFC
    7946 §11.2), 9 of another angular unit (a radian), 3 of a linear unit (a millimetre)."""
    if crs is None or not _crs(crs).is_geographic:
        return 3
    return 7 if "degree" in str(_crs(crs).units_factor[0]).lower() else 9


def _rounded(geom: Any, decimals: int) -> Any:
    """``geom`` with its coordinates rounded (the vertices kept in order, repeated ones dropped),
    or, where that leaves it invalid, put on the same grid by GEOS, which keeps it valid; ``None``
    where neither gives a valid polygonal geometry."""
    import shapely

    def plain():
        try:
            return shapely.remove_repeated_points(shapely.transform(geom, lambda c: np.round(c, decimals)))
        except shapely.errors.GEOSException:  # a ring collapsed below 4 positions
            return None

    for make in (plain, lambda: shapely.set_precision(geom, 10.0 ** -decimals)):
        g = make()
        if g is not None and not g.is_empty and g.is_valid and g.geom_type in ("Polygon", "MultiPolygon"):
            return g
    return None


def _oriented(geom: Any) -> Any:
    from shapely.geometry import MultiPolygon
    from shapely.geometry.polygon import orient

    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    if geom.geom_type == "MultiPolygon":
        return MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    return geom


def finished_geometry(geom: Any, crs: Any) -> Any:
    """``geom`` (shapely, in ``crs``) as rrsis writes it (GeoJSON, the merged GeoPackage and
    GeoParquet): its coordinates rounded (:func:`_decimals`: 7 decimals of a degree, 3 of a
    metre; :func:`_rounded` keeps it valid, or leaves it unrounded where it cannot), then every
    polygon's exterior ring counter-clockwise and its holes clockwise (RFC 7946 §3.1.6, as OGC
    simple features want too), whatever the pixels' order (a south-up or mirrored raster) or a
    cut at the antimeridian gave. A finished geometry comes back as it is."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        geom = _rounded(geom, _decimals(crs)) or geom
    return _oriented(geom)


def output_geometry(geom: Any, src: Any, dst: str) -> dict:
    """``geom`` (shapely, in ``src``) as a GeoJSON geometry mapping in ``dst`` (``"native"``: as it
    is). In a geographic ``dst`` a polygon across the antimeridian is cut at ±180° (RFC 7946); in a
    projected one that is discontinuous there, its parts cut at ±180° are transformed one by one,
    so it never spans the whole world. Coordinates are rounded and rings oriented last
    (:func:`finished_geometry`)."""
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    if dst == "native":
        return mapping(finished_geometry(geom, src))
    target = _crs(dst)
    if target.is_geographic:
        out = shape(transform_geom(src, target, mapping(geom)))
        return mapping(finished_geometry(_wrapped(out) if "degree" in str(target.units_factor[0]).lower() else out,
                                         target))
    try:  # where the geometry lies in longitudes (an Earth CRS), and whether dst is torn there
        ll = _wrapped(shape(transform_geom(src, "EPSG:4326", mapping(geom))))
        xs = [x for p in _polygons(ll) for x, _ in p.exterior.coords]
        torn = bool(xs) and max(xs) >= 180.0 - 1e-9 and min(xs) <= -180.0 + 1e-9 and _seam(target, ll.centroid.y)
    except Exception:  # noqa: BLE001 - another planet's CRS: no antimeridian of Earth's
        torn = False
    if torn:
        out = unary_union([shape(transform_geom("EPSG:4326", target, mapping(p))) for p in _polygons(ll)])
    else:
        out = shape(transform_geom(src, target, mapping(geom)))
    return mapping(finished_geometry(out, target))
