"""Vector geometry as an area of interest reads it: files through pyogrio, polygonal parts,
validity (:mod:`rrsis.scene.aoi` places the result on a scene); labelled features one by one,
with a text attribute, for training chips (:mod:`rrsis.scene.chips`)."""

from __future__ import annotations

import math
import warnings

from .ground import geodesic_area

__all__ = ["AOI_DEFAULT_CRS", "checked_area", "geodesic_area", "need_shapely", "pixels_area_m2", "polygonal_part",
           "read_labelled_features", "read_vector_file", "union_areas"]

# RFC 7946: GeoJSON coordinates are WGS 84 longitudes and latitudes; geometries, mappings and
# bounds given without a CRS are read the same way.
AOI_DEFAULT_CRS = "EPSG:4326"


def need_shapely():
    try:
        import shapely
    except ImportError:  # pragma: no cover - exercised by simulating a missing shapely
        raise ImportError('an area of interest needs shapely: pip install "rrsis[geo]"') from None
    return shapely


def pixels_area_m2(mask, transform, crs) -> float | None:
    """Ground area in m² of the true pixels of a mask (``[H, W]``, on the grid ``transform`` in
    ``crs``), each piece measured on the ellipsoid as ``segment_scene`` measures its polygons
    where the CRS distorts areas (EPSG:4326, Web Mercator). Areas add up, so a mask read in
    strips is measured strip by strip."""
    import numpy as np
    from rasterio.features import shapes
    from shapely.geometry import shape

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    areas = [geodesic_area(shape(g), crs) for g, _ in shapes(m, mask=m > 0, transform=transform)]
    return None if None in areas else sum(areas)


def polygonal_part(geom):
    """The polygonal part of ``geom`` (a collection's polygons, unioned), or an empty polygon."""
    from shapely.geometry import MultiPolygon, Polygon
    from shapely.ops import unary_union

    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    return unary_union(parts) if parts else Polygon()


def checked_area(geom, what: str):
    """``geom`` as a valid polygonal geometry with area, or a ``ValueError`` naming the problem."""
    shapely = need_shapely()
    if geom is None or geom.is_empty:
        raise ValueError(f"area of interest {what}: the geometry is empty")
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        fixed = polygonal_part(shapely.make_valid(geom))
        if fixed.is_empty or fixed.area <= 0:
            raise ValueError(f"area of interest {what}: invalid geometry ({reason}), and shapely.make_valid "
                             "leaves no area; fix it in a GIS")
        warnings.warn(f"area of interest {what}: invalid geometry ({reason}), repaired with shapely.make_valid",
                      UserWarning, stacklevel=4)
        geom = fixed
    poly = polygonal_part(geom)
    if poly.is_empty or poly.area <= 0:
        raise ValueError(f"area of interest {what}: a {geom.geom_type} has no area; give a polygon or a "
                         "box (buffer a point or a line first, in a projected CRS)")
    return poly


def union_areas(shapes: list, what: str, stacklevel: int = 4):
    """The union of the geometries with area; the others (points, lines) are left out with a
    warning (all without area: the first, for :func:`checked_area` to refuse)."""
    import shapely

    kept = [checked_area(g, what) for g in shapes if g.area > 0]
    if kept and len(kept) < len(shapes):
        kinds = sorted({g.geom_type for g in shapes if g.area <= 0})
        warnings.warn(f"area of interest {what}: {len(shapes) - len(kept)} feature(s) without area "
                      f"({', '.join(kinds)}) left out", UserWarning, stacklevel=stacklevel)
    return shapely.union_all(kept) if kept else shapes[0]



def read_vector_file(path: str):
    """``(geometry, crs, implied crs)``: every feature of the file's first layer, unioned; the CRS
    the file names (or ``None``) and the one it implies without naming one (RFC 7946's EPSG:4326
    for GeoJSON, else ``None``)."""
    try:
        import pyogrio
        from pyogrio import raw
    except ImportError:
        raise ImportError('reading an area of interest file needs pyogrio: pip install "rrsis[geo]"') from None
    import shapely

    try:
        layers = pyogrio.list_layers(path)
        meta, _, geoms, _ = raw.read(path, layer=0, columns=[])  # named: no pyogrio warning of its own
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for one cause
        raise ValueError(f"area of interest {path}: cannot read it as a vector file (GeoJSON, GeoPackage, "
                         f"shapefile, ...): {exc}") from None
    if len(layers) > 1:
        warnings.warn(f"area of interest {path}: {len(layers)} layers; the first ({layers[0][0]}) is read",
                      UserWarning, stacklevel=4)
    shapes = [g for g in (shapely.from_wkb(b) for b in geoms if b is not None) if not g.is_empty]
    if not shapes:
        raise ValueError(f"area of interest {path}: no feature with a geometry")
    crs, implied = meta.get("crs"), None
    if crs is not None and pyogrio.read_info(path, layer=0).get("driver") == "GeoJSON" and not _declares_crs(path):
        crs, implied = None, AOI_DEFAULT_CRS  # GDAL reports EPSG:4326 for any GeoJSON that names none
    return union_areas(shapes, path, 5), crs, implied


def read_labelled_features(path: str, field: str, layer: str | None = None):
    """``(fids, geometries, texts, crs, implied crs)`` of every feature of one layer of a vector
    file: shapely geometries (``None`` where a feature has none), the ``field`` attribute as text
    (``""`` where empty or null), and the CRS as :func:`read_vector_file` reports it.

    Args:
        path: a vector file pyogrio reads (GeoPackage, GeoJSON, shapefile, ...).
        field: the attribute that holds each feature's text.
        layer: the layer's name; ``None``: the only layer (a file of several names them in the error).

    Raises:
        ValueError: an unreadable file, an unknown layer or a missing field (naming the layers or
            fields there are, with the closest one).
    """
    import difflib

    try:
        import pyogrio
        from pyogrio import raw
    except ImportError:
        raise ImportError('reading a vector file needs pyogrio: pip install "rrsis[geo]"') from None
    shapely = need_shapely()

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for one cause
        raise ValueError(f"{path}: cannot read it as a vector file (GeoPackage, GeoJSON, shapefile, ...): "
                         f"{exc}") from None
    if layer is None and len(layers) > 1:
        raise ValueError(f"{path}: {len(layers)} layers ({', '.join(layers)}); name one (--layer)")
    if layer is not None and layer not in layers:
        close = difflib.get_close_matches(layer, layers, n=1)
        raise ValueError(f"{path}: no layer {layer!r}; its layers: {', '.join(layers)}"
                         + (f"; did you mean {close[0]!r}?" if close else ""))
    name = layer or layers[0]
    info = pyogrio.read_info(path, layer=name)
    fields = [str(f) for f in info["fields"]]
    if field not in fields:
        close = difflib.get_close_matches(field, fields, n=1)
        raise ValueError(f"{path}: layer {name!r} has no field {field!r}; its fields: "
                         f"{', '.join(fields) or '(none)'}" + (f"; did you mean {close[0]!r}?" if close else "")
                         + " (--text-field)")
    meta, fids, geoms, values = raw.read(path, layer=name, columns=[field], return_fids=True)
    shapes = [None if b is None else shapely.from_wkb(b) for b in geoms]
    texts = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in values[0]]
    crs, implied = meta.get("crs"), None
    if crs is not None and info.get("driver") == "GeoJSON" and not _declares_crs(path):
        crs, implied = None, AOI_DEFAULT_CRS  # as read_vector_file: RFC 7946
    ids = list(range(len(shapes))) if fids is None else [int(f) for f in fids]
    return ids, shapes, texts, crs, implied


def _declares_crs(path: str) -> bool:
    """Whether a GeoJSON file has a top-level ``crs`` member (GeoJSON 2008)."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return True  # GDAL read it another way (GeoJSON sequence, ...): keep what GDAL says
    return isinstance(doc, dict) and "crs" in doc
