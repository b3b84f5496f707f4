"""rrsis/scene/aoi.py and vector.py, used as a GIS user would: an area crossing the antimeridian
on a lon/lat scene, a FeatureCollection of points and polygons, an area smaller than a pixel,
an area on a raster placed by ground control points, a polygon with a hole."""

import json
import math

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")
from rasterio.control import GroundControlPoint
from rasterio.transform import from_origin
from rasterio.windows import from_bounds
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping

from rrsis.scene import AOIOutsideError, area_of_interest, open_aoi_scene
from rrsis.scene.aoi import scene_window

UTM = "EPSG:32633"
UTM_T = from_origin(500000.0, 5000000.0, 10.0, 10.0)
# A lon/lat scene across the antimeridian, its longitudes running past 180 as GDAL writes them.
AM_T = from_origin(179.95, -16.0, 0.001, 0.001)


def _raster(path, size=128, **place):
    data = np.random.default_rng(0).integers(0, 255, (3, size, size), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", **place) as ds:
        ds.write(data)
    return str(path)


def _window(bounds, transform):
    """Independently of rrsis: rasterio's window of the bounds, widened to whole pixels."""
    w = from_bounds(*bounds, transform=transform)
    r0, c0 = math.floor(w.row_off + 1e-9), math.floor(w.col_off + 1e-9)
    return r0, c0, math.ceil(w.row_off + w.height - 1e-9), math.ceil(w.col_off + w.width - 1e-9)


def test_an_area_west_of_the_antimeridian_finds_a_scene_whose_longitudes_pass_180():
    # -179.99 is 180.01 on this scene's axis: before, the area "did not overlap the scene".
    area = area_of_interest((-179.99, -16.1, -179.95, -16.02))
    win = scene_window(area, 128, 128, AM_T, rasterio.crs.CRS.from_epsg(4326))
    assert win.window == _window((180.01, -16.1, 180.05, -16.02), AM_T) == (20, 60, 100, 100)


def test_an_area_split_at_the_antimeridian_covers_both_halves_of_the_window():
    # RFC 7946 cuts a polygon crossing the antimeridian into two: both parts lie on the scene.
    split = MultiPolygon([box(179.99, -16.1, 180.0, -16.02), box(-180.0, -16.1, -179.95, -16.02)])
    win = scene_window(area_of_interest(split), 128, 128, AM_T, rasterio.crs.CRS.from_epsg(4326))
    assert win.window == _window((179.99, -16.1, 180.05, -16.02), AM_T)
    inside = win.inside(0, (win.window[2] - win.window[0], win.window[3] - win.window[1]))
    assert inside.all()  # no gap along the antimeridian


def test_an_area_on_neither_side_is_still_outside_with_its_own_bounds():
    with pytest.raises(AOIOutsideError, match=r"area bounds \(-170, -16.1, -169.9, -16.02\)"):
        scene_window(area_of_interest((-170.0, -16.1, -169.9, -16.02)), 128, 128, AM_T,
                     rasterio.crs.CRS.from_epsg(4326))


def _points_and_polygon():
    poly = box(500100.0, 4999100.0, 500500.0, 4999500.0)
    return poly, {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(Point(500050.0, 4999950.0))},
        {"type": "Feature", "properties": {}, "geometry": mapping(poly)}]}


def test_a_feature_collection_of_points_and_polygons_is_its_polygons_as_a_file_is(tmp_path):
    # Before, the mapping was refused ("not a GeoJSON geometry ... a Point has no area") while
    # the same collection in a file was read; both now keep the polygons and say what was left out.
    poly, fc = _points_and_polygon()
    with pytest.warns(UserWarning, match=r"1 feature\(s\) without area \(Point\) left out"):
        from_mapping = area_of_interest(fc, UTM)
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps(fc))
    with pytest.warns(UserWarning, match=r"without area \(Point\)"):
        from_file = area_of_interest(path, UTM)
    assert from_mapping.geometry.equals(poly) and from_file.geometry.equals(poly)


def test_a_feature_collection_of_points_only_is_refused_for_having_no_area():
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(Point(15.0, 45.0))}]}
    with pytest.raises(ValueError, match="a Point has no area"):
        area_of_interest(fc)


def test_an_area_smaller_than_a_pixel_is_outside_not_an_empty_answer():
    # Before: a 1x1 window whose one pixel was nodata, segmented for nothing.
    tiny = area_of_interest(box(500001.0, 4999991.0, 500002.0, 4999992.0), UTM)
    with pytest.raises(AOIOutsideError, match="covers no pixel centre"):
        scene_window(tiny, 128, 128, UTM_T, rasterio.crs.CRS.from_string(UTM))
    # One that reaches a pixel centre is a one-pixel area.
    one = scene_window(area_of_interest(box(500004.0, 4999994.0, 500006.0, 4999996.0), UTM), 128, 128, UTM_T,
                       rasterio.crs.CRS.from_string(UTM))
    assert one.window == (0, 0, 1, 1) and one.inside(0, (1, 1)).all()


def test_a_hole_in_the_area_is_outside_it():
    outer = [(500100, 4999900), (501100, 4999900), (501100, 4998900), (500100, 4998900)]
    hole = [(500400, 4999600), (500800, 4999600), (500800, 4999200), (500400, 4999200)]
    win = scene_window(area_of_interest(Polygon(outer, [hole]), UTM), 128, 128, UTM_T,
                       rasterio.crs.CRS.from_string(UTM))
    assert win.window == (10, 10, 110, 110)
    inside = win.inside(0, (100, 100))
    expected = np.ones((100, 100), bool)
    expected[30:70, 30:70] = False  # the hole: rows 40-80, columns 40-80 of the scene
    assert np.array_equal(inside, expected)


def test_an_area_on_a_raster_placed_by_ground_control_points_is_cut_from_its_rectified_grid(tmp_path):
    # Before: "the scene has no georeference (no affine transform)", of a georeferenced raster;
    # then: refused, "rectify the raster first". The GCPs lie on UTM_T's grid exactly, so the
    # rectified grid is that grid (tests/scene/test_aoi_rectified.py compares the outputs).
    gcps = [GroundControlPoint(row=r, col=c, x=(UTM_T @ (c, r))[0], y=(UTM_T @ (c, r))[1])
            for r, c in [(0, 0), (0, 64), (64, 0), (64, 64), (32, 32)]]
    path = _raster(tmp_path / "gcps.tif", 64, gcps=gcps, crs=UTM)
    bounds = (500100.0, 4999500.0, 500400.0, 4999800.0)
    sc, win = open_aoi_scene(path, area_of_interest(box(*bounds), UTM))
    with sc:
        assert win.window == _window(bounds, UTM_T) and sc.rectified
    with pytest.raises(ValueError, match=r"placed by 5 ground control points only, and crs='none' keeps its raw "):
        open_aoi_scene(path, area_of_interest(box(*bounds), UTM), crs="none")


def test_a_geopackage_of_several_layers_reads_the_first_with_one_warning(tmp_path):
    from pyogrio import raw

    path = str(tmp_path / "layers.gpkg")
    first = box(500100.0, 4999100.0, 500500.0, 4999500.0)
    raw.write(path, np.array([shapely.to_wkb(first)], dtype=object), [], [], layer="fields",
              geometry_type="Polygon", crs=UTM)
    raw.write(path, np.array([shapely.to_wkb(box(15.0, 45.0, 15.01, 45.01))], dtype=object), [], [],
              layer="roads", geometry_type="Polygon", crs="EPSG:4326", append=False)
    with pytest.warns(UserWarning) as caught:
        area = area_of_interest(path)
    assert [str(w.message) for w in caught] == [f"area of interest {path}: 2 layers; the first (fields) is read"]
    assert area.geometry.equals(first) and area.crs == rasterio.crs.CRS.from_string(UTM)


@pytest.mark.parametrize(("text", "named"), [
    ("501000,4999000,500300,4999900", "minx 501000 >= maxx 500300 (swapped?); a box across the antimeridian"),
    ("500300,4999900,501000,4999000", "miny 4999900 >= maxy 4999000 (swapped?)"),
])
def test_swapped_bounds_name_the_pair(text, named):
    with pytest.raises(ValueError, match="minx < maxx") as err:
        area_of_interest(text, UTM)
    assert named in str(err.value)
    assert ("antimeridian" in str(err.value)) == text.startswith("501000")
