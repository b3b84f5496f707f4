"""One vector file of every polygon of a region: GeoPackage (pyogrio) or GeoParquet (pyarrow).

Each row is one polygon of one scene's GeoJSON, with the scene id, the expression, the area
(px and m²), the mean foreground probability and the scene's source (its path or URL). The file is written through
:func:`rrsis._atomic.atomic_path`: a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..._atomic import atomic_path
from ..ground import finished_geometry

__all__ = ["FIELDS", "check_merged_path", "left_out_text", "place_parts", "read_geojson_rows", "write_merged"]

FIELDS = ("scene", "expression", "area_px", "area_m2", "mean_probability", "source")
_GPKG = (".gpkg",)
_PARQUET = (".parquet", ".geoparquet")


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        extra = ('pip install "rrsis[parquet]" (or write a GeoPackage: a merged path ending in .gpkg)'
                 if module == "pyarrow" else 'pip install "rrsis[geo]"')
        raise ImportError(f"{what} needs {module}: {extra}") from None


def check_merged_path(path: str | os.PathLike) -> str:
    """The format of a merged file from its suffix (``gpkg`` or ``parquet``), its library
    importable (and shapely and rasterio, which place its polygons: the geo extra, for either
    format); checked before any scene is segmented."""
    low = os.fspath(path).lower()
    kind = "gpkg" if low.endswith(_GPKG) else "parquet" if low.endswith(_PARQUET) else None
    if kind is None:
        raise ValueError(f"merged file {os.fspath(path)!r}: end it in .gpkg (GeoPackage) or .parquet (GeoParquet)")
    what = "the merged GeoPackage" if kind == "gpkg" else "the merged GeoParquet"
    for module in ("pyogrio" if kind == "gpkg" else "pyarrow", "shapely", "rasterio"):
        _require(module, what)
    return kind


def _crs_of(fc: dict) -> str:
    name = (fc.get("crs") or {}).get("properties", {}).get("name")
    return name or "EPSG:4326"  # RFC 7946: longitude, latitude on WGS 84


def read_geojson_rows(scene: str, path: str | os.PathLike, source: str | None = None
                      ) -> tuple[str, list[dict[str, Any]]]:
    """``(crs, rows)`` of one per-scene GeoJSON: each row the polygon's GeoJSON geometry and
    :data:`FIELDS` (``source``: the scene's path or URL)."""
    with open(path, encoding="utf-8") as fh:
        fc = json.load(fh)
    rows = []
    for f in fc["features"]:
        p = f["properties"]
        rows.append({"geometry": f["geometry"], "scene": scene, "expression": p.get("expression"),
                     "area_px": p.get("area_px"), "area_m2": p.get("area_m2"),
                     "mean_probability": p.get("mean_probability"), "source": source})
    return _crs_of(fc), rows


def _merge_crs(parts: list[tuple[str, list[dict[str, Any]]]]) -> str:
    crss = {crs for crs, _ in parts} or {"EPSG:4326"}
    return crss.pop() if len(crss) == 1 else "EPSG:4326"


def place_parts(parts: list[tuple[str, list[dict[str, Any]]]]
                ) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[str]]:
    """``(parts, left_out)``: the parts in the merged file's CRS (theirs if they share one, else
    EPSG:4326), their geometries transformed to it, and the ids of the scenes whose polygons cannot
    be (a local engineering grid or another planet's CRS, which reaches no Earth CRS): left out."""
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    target = _merge_crs(parts)
    placed, left_out = [], []
    for crs, rows in parts:
        if crs == target:
            placed.append((crs, rows))
            continue
        try:
            moved = [{**r, "geometry": transform_geom(crs, target, r["geometry"])} for r in rows]
            fine = all(np.isfinite(shape(r["geometry"]).bounds).all() for r in moved)
        except Exception:  # noqa: BLE001 - GDAL's CPLE_NotSupportedError and kin
            fine = False
        if fine:
            placed.append((target, moved))
        else:
            left_out += [r["scene"] for r in rows[:1] if r["scene"] not in left_out]
    return placed, left_out


def left_out_text(path: str | os.PathLike, left_out: list[str]) -> str:
    """The warning naming the scenes :func:`place_parts` left out of the merged file ``path``."""
    return (f"{os.fspath(path)}: scene(s) {', '.join(left_out)} left out of it: their CRS cannot be transformed to "
            "EPSG:4326 (a local grid or another planet's); their polygons are in their own GeoJSON files")


def write_merged(path: str | os.PathLike, parts: list[tuple[str, list[dict[str, Any]]]]) -> int:
    """Write the rows of every part (``(crs, rows)`` of :func:`read_geojson_rows`) to ``path``.

    Parts in one CRS keep it; parts in several are brought to EPSG:4326, those of a scene whose
    CRS cannot be (a local grid) left out with a warning naming it (:func:`place_parts`). Each
    polygon is rounded and oriented as in the GeoJSONs (:func:`~rrsis.scene.ground.finished_geometry`).
    Returns the number of polygons written.
    """
    from shapely import to_wkb
    from shapely.geometry import MultiPolygon, Polygon, shape

    kind = check_merged_path(path)
    parts, left_out = place_parts(parts)
    if left_out:
        import warnings

        warnings.warn(left_out_text(path, left_out), UserWarning, stacklevel=2)
    target = _merge_crs(parts)
    geoms, cols = [], {k: [] for k in FIELDS}
    for _, rows in parts:
        for r in rows:
            g = finished_geometry(shape(r["geometry"]), target)  # exterior rings counter-clockwise
            geoms.append(MultiPolygon([g]) if isinstance(g, Polygon) else g)
            for k in FIELDS:
                cols[k].append(r.get(k))
    wkb = np.array([to_wkb(g) for g in geoms], dtype=object)
    data = [np.array(cols["scene"], dtype=object), np.array(cols["expression"], dtype=object),
            np.array([-1 if v is None else v for v in cols["area_px"]], dtype=np.int64),
            np.array([np.nan if v is None else v for v in cols["area_m2"]], dtype=np.float64),
            np.array([np.nan if v is None else v for v in cols["mean_probability"]], dtype=np.float64),
            np.array(cols["source"], dtype=object)]
    with atomic_path(path, keep_suffix=True) as tmp:
        if kind == "gpkg":
            from pyogrio.raw import write

            write(str(tmp), wkb, data, list(FIELDS), layer="polygons", driver="GPKG",
                  geometry_type="MultiPolygon", crs=target)
        else:
            _write_geoparquet(tmp, wkb, data, target)
    return len(geoms)


def _write_geoparquet(path: Path, wkb: np.ndarray, data: list[np.ndarray], crs: str) -> None:
    """GeoParquet 1.0: a WKB ``geometry`` column and the ``geo`` file metadata."""
    pa = _require("pyarrow", "the merged GeoParquet")
    import pyarrow.parquet as pq

    # from_pandas: NaN (an area without a CRS) is stored as null, as in the GeoPackage
    columns = {name: pa.array(values.tolist(), from_pandas=True) for name, values in zip(FIELDS, data)}
    columns["geometry"] = pa.array(wkb.tolist(), type=pa.binary())
    column_meta: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["MultiPolygon"]}
    if crs != "EPSG:4326":  # absent means OGC:CRS84, the GeoJSON's longitude-latitude
        from rasterio.crs import CRS

        column_meta["crs"] = CRS.from_user_input(crs).to_dict(projjson=True)
    geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": column_meta}}
    table = pa.table(columns).replace_schema_metadata({"geo": json.dumps(geo)})
    pq.write_table(table, str(path))
