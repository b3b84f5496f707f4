"""rrsis's vector and raster outputs against their formats' standards: RFC 7946 ring orientation
(exterior counter-clockwise, holes clockwise) on south-up and mirrored scenes and across the
antimeridian, the same in the merged GeoPackage and GeoParquet, coordinate precision (7
decimals of a degree, 3 of a metre) without invalid geometries, and the mask GeoTIFF's band
description and probability scale. A stand-in model marks bright red pixels: a red ring (a
polygon with a hole) whose outline is known from the scene itself."""

import itertools
import json

import numpy as np
import pytest

from rrsis.scene import segment_scene

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import RedPixels
from affine import Affine
from rasterio.crs import CRS
from shapely import LinearRing, is_ccw
from shapely.geometry import MultiPolygon, Polygon, box, shape

from rrsis.scene.cog import cog_problems

H, W = 64, 96
# North-up, south-up (rows run north) and mirrored (columns run west), 1 m UTM pixels
TRANSFORMS = {"north_up": Affine(1, 0, 500000, 0, -1, 4000064), "south_up": Affine(1, 0, 500000, 0, 1, 4000000),
              "mirrored": Affine(-1, 0, 500096, 0, -1, 4000064)}


@pytest.fixture(scope="module")
def red(tiny_model):
    return RedPixels(tiny_model)


def write_tif(path, crs, transform, ring=True):
    """A dark scene with a red ring (a hole in its middle) or disc centred on column 60, row 30."""
    yy, xx = np.mgrid[0:H, 0:W]
    d2 = (yy - 30) ** 2 + (xx - 60) ** 2
    obj = (d2 < 14 ** 2) & ((d2 > 6 ** 2) if ring else True)
    data = np.full((3, H, W), 40, np.uint8)
    data[0][obj] = 240
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8",
                       crs=CRS.from_user_input(crs), transform=transform) as ds:
        ds.write(data)
    return str(path)


def polygons(geometry):
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


def windings(geometry):
    """``[[exterior CCW?, hole CCW?, ...], ...]`` of a GeoJSON (Multi)Polygon."""
    return [[bool(is_ccw(LinearRing(r))) for r in p] for p in polygons(geometry)]


def oriented(w):
    return all(rings[0] and not any(rings[1:]) for rings in w)


def decimals(x):
    s = repr(float(x))
    return len(s.split(".")[1]) if "." in s and "e" not in s else 0


def max_decimals(geometry):
    return max(decimals(v) for p in polygons(geometry) for r in p for xy in r for v in xy)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("crs", ["EPSG:4326", "native", "EPSG:3857"])
def test_rings_are_oriented_as_rfc_7946_wants_whatever_the_raster_s_orientation(red, tmp_path, name, crs):
    src = write_tif(tmp_path / f"{name}.tif", "EPSG:32633", TRANSFORMS[name])
    for clip in (None, (500001, 4000001, 500095, 4000063)):  # with an area of interest too
        out = tmp_path / f"m{clip is not None}"
        segment_scene(red, src, "red", out=str(out), mode="global", geojson_crs=crs, aoi=clip,
                      aoi_crs="EPSG:32633" if clip else None)
        (f,) = json.loads(out.with_suffix(".geojson").read_text())["features"]
        w = windings(f["geometry"])
        assert [len(rings) for rings in w] == [2]  # the ring's outline and its hole
        assert oriented(w), w


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
@pytest.mark.parametrize("where", ["utm", "ll"])
def test_both_parts_of_a_polygon_cut_at_the_antimeridian_are_counter_clockwise(red, tmp_path, where, crs):
    from rasterio.warp import transform

    if where == "utm":  # UTM 60 south (Fiji), 2 m pixels, 180° through the ring
        xs, ys = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])
        src = write_tif(tmp_path / "a.tif", "EPSG:32760", Affine(2, 0, round(xs[0]) - 120, 0, -2, ys[0] + 60))
    else:  # longitudes past 180°
        src = write_tif(tmp_path / "a.tif", "EPSG:4326", Affine(1e-4, 0, 180.0 - 60e-4, 0, -1e-4, -16.5))
    segment_scene(red, src, "red", out=str(tmp_path / "m"), mode="global", geojson_crs=crs)
    (f,) = json.loads((tmp_path / "m.geojson").read_text())["features"]
    assert f["geometry"]["type"] == "MultiPolygon" and len(f["geometry"]["coordinates"]) == 2
    assert oriented(windings(f["geometry"])), windings(f["geometry"])
    # a polygon wholly past 180° (brought back by 360°) too
    far = write_tif(tmp_path / "far.tif", "EPSG:4326", Affine(1e-4, 0, 180.01, 0, -1e-4, -16.5))
    segment_scene(red, far, "red", out=str(tmp_path / "f"), mode="global")
    (f,) = json.loads((tmp_path / "f.geojson").read_text())["features"]
    assert f["geometry"]["type"] == "Polygon" and f["geometry"]["coordinates"][0][0][0] < -179
    assert oriented(windings(f["geometry"]))


@pytest.mark.parametrize(("crs", "most"), [("EPSG:4326", 7), ("native", 3), ("EPSG:3857", 3)])
def test_coordinates_are_written_to_a_fixed_precision_and_stay_valid(red, tmp_path, crs, most):
    t = Affine(0.3137, 0.0021, 500000.123456, 0.0017, -0.2971, 4000064.654321)  # sheared, decimals everywhere
    src = write_tif(tmp_path / "s.tif", "EPSG:32633", t)
    segment_scene(red, src, "red", out=str(tmp_path / "m"), mode="global", geojson_crs=crs, simplify=0)
    (f,) = json.loads((tmp_path / "m.geojson").read_text())["features"]
    assert max_decimals(f["geometry"]) == most  # rounded, not written with 15-17 digits
    g = shape(f["geometry"])
    assert g.is_valid
    for ring in polygons(f["geometry"])[0]:  # no repeated positions left by the rounding
        assert all(a != b for a, b in itertools.pairwise(ring))
    if crs == "native":  # the outline is the pixels' own, within the rounding (half a mm along it)
        exact = segment_scene(red, src, "red", mode="global", return_mask=True)[0].mask.sum() * abs(t.determinant)
        assert abs(g.area - exact) <= g.length * 0.5e-3


def test_rounding_that_would_make_a_polygon_invalid_keeps_it_valid():
    from rrsis.scene.ground import finished_geometry

    # a hole 3e-8 degrees from its shell's edge: plain rounding to 7 decimals makes them touch
    # along a line (invalid); the result is valid, oriented, and on the grid or unrounded
    shell = box(10.0, 45.0, 10.001, 45.001)
    hole = box(10.0005, 45.0002, 10.001 - 3e-8, 45.0008)
    poly = Polygon(shell.exterior.coords[::-1], [hole.exterior.coords])  # exterior clockwise
    assert not Polygon([(round(x, 7), round(y, 7)) for x, y in poly.exterior.coords],
                       [[(round(x, 7), round(y, 7)) for x, y in poly.interiors[0].coords]]).is_valid
    out = finished_geometry(poly, "EPSG:4326")
    assert out.is_valid and out.area == pytest.approx(poly.area, rel=1e-3)
    for p in getattr(out, "geoms", [out]):
        assert p.exterior.is_ccw and not any(r.is_ccw for r in p.interiors)


@pytest.mark.parametrize("name", ["merged.gpkg", "merged.parquet"])
def test_the_merged_file_s_polygons_have_counter_clockwise_exteriors(tmp_path, name):
    from shapely import from_wkb

    from rrsis.scene.region.merge import write_merged

    if name.endswith(".parquet"):
        pq = pytest.importorskip("pyarrow.parquet")
    else:
        pyogrio = pytest.importorskip("pyogrio")
    donut = Polygon(box(0, 0, 10, 10).exterior.coords[::-1], [box(2, 2, 4, 4).exterior.coords])  # as wound wrongly
    two = MultiPolygon([Polygon(box(20, 0, 22, 2).exterior.coords[::-1]), box(30, 0, 31, 1)])
    rows = [{"geometry": g.__geo_interface__, "scene": "s", "expression": "red", "area_px": 1, "area_m2": 1.0,
             "mean_probability": 0.9, "source": "s.tif"} for g in (donut, two)]
    assert write_merged(tmp_path / name, [("EPSG:32633", rows)]) == 2
    if name.endswith(".parquet"):
        wkb = pq.read_table(tmp_path / name).column("geometry").to_pylist()
    else:
        wkb = pyogrio.raw.read(tmp_path / name)[2]
    for g in from_wkb(list(wkb)):
        for p in g.geoms:
            assert p.exterior.is_ccw and not any(r.is_ccw for r in p.interiors)


@pytest.mark.parametrize("probabilities", [False, True])
def test_the_mask_band_is_described_and_probabilities_read_as_0_to_1(red, tmp_path, probabilities):
    src = write_tif(tmp_path / "s.tif", "EPSG:32633", TRANSFORMS["north_up"])
    (res,) = segment_scene(red, src, "red", out=str(tmp_path / "m"), mode="global", probabilities=probabilities,
                           return_mask=True)
    assert cog_problems(res.files["mask"]) == []
    with rasterio.open(res.files["mask"]) as ds:
        assert ds.descriptions == ("probability" if probabilities else "mask",)
        assert ds.scales == ((1 / 255,) if probabilities else (1.0,)) and ds.offsets == (0.0,)
        raw = ds.read(1)  # the stored values stay 0-255: rrsis's readers see what they saw
        assert raw.dtype == np.uint8 and raw.max() == 255
        if probabilities:
            shown = raw * ds.scales[0] + ds.offsets[0]  # what a GIS shows
            assert 0.0 <= shown.min() and shown.max() == pytest.approx(1.0)
            assert ((shown >= 0.5) == res.mask).all()
        else:
            assert ((raw == 255) == res.mask).all()
