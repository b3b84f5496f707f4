"""Areas and GeoJSON for rasters whose CRS cannot reach WGS 84 (a local engineering site grid,
Mars), rasters with a CRS but no place on the map, a raster past the pole, and polygons across
the antimeridian in a projected output CRS. A stand-in model marks bright red pixels, so each
mask, and so each area, has an answer computed from the scene itself."""

import json
import math
import warnings

import numpy as np
import pytest

from rrsis.scene import segment_scene

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import RedPixels
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box, shape

from rrsis.scene.ground import geodesic_area

LOCAL = 'LOCAL_CS["site grid",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
LOCAL_FT = 'LOCAL_CS["site grid",UNIT["US survey foot",0.304800609601219],AXIS["X",EAST],AXIS["Y",NORTH]]'
MARS_A, MARS_RF = 3396190.0, 169.894447223612
MARS = (f'GEOGCS["Mars 2000",DATUM["D_Mars_2000",SPHEROID["Mars_2000_IAU_IAG",{MARS_A},{MARS_RF}]],'
        'PRIMEM["Greenwich",0],UNIT["Decimal_Degree",0.0174532925199433]]')
MARS_EQC = (f'PROJCS["Mars_Equirectangular",{MARS},PROJECTION["Equirectangular"],PARAMETER["standard_parallel_1",0],'
            'PARAMETER["central_meridian",0],PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["Meter",1]]')
H, W = 64, 96


@pytest.fixture(scope="module")
def red(tiny_model):
    return RedPixels(tiny_model)


def write_tif(path, crs, transform=None):
    """A dark scene with a red disc centred on column 72, row 16; its mask is returned."""
    yy, xx = np.mgrid[0:H, 0:W]
    obj = (yy - 16) ** 2 + (xx - 72) ** 2 < 12 ** 2
    data = np.full((3, H, W), 40, np.uint8)
    data[0][obj] = 240
    kw = {} if transform is None else {"transform": transform}
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8",
                       crs=CRS.from_user_input(crs), **kw) as ds:
        ds.write(data)
    return obj


def zone_area(a, rf, lat0, lat1, dlon):
    """Exact area in m² of the lon/lat cell between two latitudes (degrees) and ``dlon`` degrees
    wide on the ellipsoid ``a``, ``1/rf`` (the authalic latitude's closed form)."""
    f = 1.0 / rf
    e = math.sqrt(f * (2 - f))
    b = a * (1 - f)

    def q(lat):
        s = math.sin(math.radians(lat))
        return s / (2 * (1 - e * e * s * s)) + math.log((1 + e * s) / (1 - e * s)) / (4 * e)

    return b * b * math.radians(dlon) * abs(q(lat1) - q(lat0))


def test_the_zone_formula_agrees_with_earth_areas():
    assert zone_area(6378137.0, 298.257223563, 50.0, 50.01, 0.01) == pytest.approx(
        geodesic_area(box(10.0, 50.0, 10.01, 50.01), "EPSG:4326"), rel=1e-6)


@pytest.mark.parametrize("crs,unit", [(LOCAL, 1.0), (LOCAL_FT, 0.304800609601219)])
def test_a_local_site_grid_gets_its_outputs_and_areas_in_its_unit(red, tmp_path, crs, unit):
    obj = write_tif(tmp_path / "site.tif", crs, Affine(0.05, 0, 1000, 0, -0.05, 2000))
    with pytest.warns(UserWarning, match="cannot be transformed to WGS 84"):
        r = segment_scene(red, str(tmp_path / "site.tif"), "red", out=str(tmp_path / "p"), mode="global")[0]
    expected = obj.sum() * (0.05 * unit) ** 2
    assert r.area_px == obj.sum() and r.area_m2 == pytest.approx(expected, rel=1e-9)
    fc = json.loads((tmp_path / "p.geojson").read_text())
    assert "site grid" in fc["crs"]["properties"]["name"]  # written in the grid's own coordinates
    g = shape(fc["features"][0]["geometry"])
    assert g.area == pytest.approx(obj.sum() * 0.05 ** 2, rel=0.05) and 1000 < g.bounds[0] < g.bounds[2] < 1004.8
    with rasterio.open(tmp_path / "p_mask.tif") as m:
        assert m.crs == CRS.from_user_input(crs) and (m.read(1) > 0).sum() == obj.sum()
    r = segment_scene(red, str(tmp_path / "site.tif"), "red", mode="global")[0]  # no out=: the same area
    assert r.area_m2 == pytest.approx(expected, rel=1e-9)


def test_another_named_crs_is_refused_before_inference(red, tmp_path):
    write_tif(tmp_path / "site.tif", LOCAL, Affine(0.05, 0, 1000, 0, -0.05, 2000))
    with pytest.raises(ValueError, match="cannot be transformed to EPSG:3857.*--geojson-crs native"):
        segment_scene(red, str(tmp_path / "site.tif"), "red", out=str(tmp_path / "p"), mode="global",
                      geojson_crs="EPSG:3857")
    assert not list(tmp_path.glob("p*"))
    segment_scene(red, str(tmp_path / "site.tif"), "red", out=str(tmp_path / "n"), mode="global", geojson_crs="native")
    assert (tmp_path / "n.geojson").exists()


def test_mars_areas_are_measured_on_mars(red, tmp_path):
    """Equirectangular (x = a·lon, y = a·lat, in radians) and geographic Mars rasters: each pixel is
    a lon/lat cell of the Mars ellipsoid, whose exact area the zone formula gives."""
    deg = 180.0 / math.pi / MARS_A  # degrees per metre of the equirectangular grid
    for name, crs, t, size in (("eqc", MARS_EQC, Affine(6, 0, 8145000, 0, -6, -272000), 6 * deg),
                               ("ll", MARS, Affine(1e-4, 0, 137.4, 0, -1e-4, -4.6), 1e-4)):
        obj = write_tif(tmp_path / f"{name}.tif", crs, t)
        top = t.f * (deg if name == "eqc" else 1.0)
        expected = sum(n * zone_area(MARS_A, MARS_RF, top - i * size, top - (i + 1) * size, size)
                       for i, n in enumerate(obj.sum(axis=1)))
        with pytest.warns(UserWarning, match="Mars.*cannot be transformed to WGS 84"):
            r = segment_scene(red, str(tmp_path / f"{name}.tif"), "red", out=str(tmp_path / name), mode="global")[0]
        assert r.area_m2 == pytest.approx(expected, rel=1e-5), name
        fc = json.loads((tmp_path / f"{name}.geojson").read_text())
        assert "Mars" in fc["crs"]["properties"]["name"]
        assert segment_scene(red, str(tmp_path / f"{name}.tif"), "red", mode="global")[0].area_m2 == \
            pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:4326"])
def test_a_crs_without_a_transform_places_nothing_and_measures_no_area(red, tmp_path, crs):
    obj = write_tif(tmp_path / "crs_only.tif", crs)
    r = segment_scene(red, str(tmp_path / "crs_only.tif"), "red", out=str(tmp_path / "p"), mode="global")[0]
    assert r.area_px == obj.sum() and r.area_m2 is None
    assert sorted(r.files) == ["mask", "overlay"] and r.files["mask"].endswith(".png")
    assert segment_scene(red, str(tmp_path / "crs_only.tif"), "red", mode="global")[0].area_m2 is None


def test_a_raster_past_the_pole_is_told_so(red, tmp_path):
    write_tif(tmp_path / "pole.tif", "EPSG:4326", Affine(1e-3, 0, 10, 0, -1e-4, 90.01))
    for out in (str(tmp_path / "p"), None):
        with pytest.raises(ValueError, match=r"bounds \(latitude 90.0036 to 90.01\) are outside the valid range"):
            segment_scene(red, str(tmp_path / "pole.tif"), "red", out=out, mode="global")


def across_180(tmp_path, name):
    """A scene whose red disc is cut by 180°: UTM 60 south (Fiji), 2 m pixels, or lon/lat past 180."""
    from rasterio.warp import transform

    if name == "utm":
        xs, ys = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])
        crs, t = "EPSG:32760", Affine(2, 0, round(xs[0]) - 144, 0, -2, ys[0] + 32)
    else:
        crs, t = "EPSG:4326", Affine(1e-4, 0, 180.0 - 72e-4, 0, -1e-4, -16.5)
    write_tif(tmp_path / f"{name}.tif", crs, t)
    return str(tmp_path / f"{name}.tif")


@pytest.mark.parametrize("name", ["utm", "ll"])
def test_a_polygon_across_the_antimeridian_in_web_mercator_is_cut_there(red, tmp_path, name):
    src = across_180(tmp_path, name)
    r = segment_scene(red, src, "red", out=str(tmp_path / "m"), mode="global", geojson_crs="EPSG:3857")[0]
    g = shape(json.loads((tmp_path / "m.geojson").read_text())["features"][0]["geometry"])
    assert g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    edge = 20037508.342789244  # x of ±180° in Web Mercator
    for part in g.geoms:  # each part against one edge of the map, none across it
        assert edge - 1000 < abs(part.bounds[0]) and edge - 1000 < abs(part.bounds[2])
    k2 = 1 / math.cos(math.radians(16.5)) ** 2  # Web Mercator's areal scale there, about
    assert g.area == pytest.approx(r.area_m2 * k2, rel=0.02)
    # RFC 7946: longitudes within ±180, the polygon cut in two
    segment_scene(red, src, "red", out=str(tmp_path / "w"), mode="global")
    ll = shape(json.loads((tmp_path / "w.geojson").read_text())["features"][0]["geometry"])
    assert ll.geom_type == "MultiPolygon" and ll.bounds[0] == -180.0 and ll.bounds[2] == 180.0
    # a CRS continuous across 180° (PDC Mercator, centred on 150° E) keeps it whole
    segment_scene(red, src, "red", out=str(tmp_path / "c"), mode="global", geojson_crs="EPSG:3832")
    c = shape(json.loads((tmp_path / "c.geojson").read_text())["features"][0]["geometry"])
    assert c.geom_type == "Polygon" and c.area == pytest.approx(g.area, rel=0.02)


def test_a_region_merges_the_scenes_it_can_place_and_leaves_a_local_grid_out(red, tmp_path):
    from rrsis.scene.region import segment_scenes

    pyogrio = pytest.importorskip("pyogrio")
    write_tif(tmp_path / "site.tif", LOCAL, Affine(0.05, 0, 1000, 0, -0.05, 2000))
    write_tif(tmp_path / "utm.tif", "EPSG:32633", Affine(1, 0, 500000, 0, -1, 4000000))
    scenes, out = [str(tmp_path / "site.tif"), str(tmp_path / "utm.tif")], tmp_path / "reg"
    for run in range(2):  # the rerun (every scene done) merges the same way
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            s = segment_scenes(red, scenes, "red", out=out, mode="global")
        assert (s.done if run == 0 else s.skipped) == ["site", "utm"] and s.left_out == ["site"]
        told = [str(w.message) for w in got if "left out of it" in str(w.message)]
        assert len(told) == 1 and "site" in told[0] and "utm" not in told[0] and "merged.gpkg" in told[0]
        meta, _, _, fields = pyogrio.raw.read(out / "merged.gpkg")
        assert meta["crs"] == "EPSG:4326" and s.n_polygons == 1 and list(fields[0]) == ["utm"]
        assert json.loads((out / "region.json").read_text())["left_out"] == ["site"]
    from rrsis.scene.region.merge import read_geojson_rows, write_merged  # called alone: the same

    parts = [read_geojson_rows(sid, out / sid / f"{sid}.geojson") for sid in ("site", "utm")]
    with pytest.warns(UserWarning, match=r"m\.gpkg: scene\(s\) site left out of it"):
        assert write_merged(tmp_path / "m.gpkg", parts) == 1


def _labels(path, crs, x0, y0):
    square = box(x0, y0, x0 + 1, y0 + 1).__geo_interface__
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
                                "features": [{"type": "Feature", "properties": {"text": "red"}, "geometry": square}]}))


def test_labels_in_an_earth_crs_on_a_local_grid_are_refused_naming_both(red, tmp_path):
    from rrsis.scene.chips import write_chips
    from rrsis.scene.evaluate import evaluate_scene

    write_tif(tmp_path / "site.tif", LOCAL, Affine(0.05, 0, 1000, 0, -0.05, 2000))
    write_tif(tmp_path / "utm.tif", "EPSG:32633", Affine(1, 0, 500000, 0, -1, 4000000))
    _labels(tmp_path / "utm.geojson", "EPSG:32633", 500010, 3999950)
    told = r"utm\.geojson: its CRS \(EPSG:32633\) cannot be transformed to the CRS of .*site\.tif \(site grid; the scene's"
    with pytest.raises(ValueError, match=told + r".*must be in the scene's own CRS$"):
        write_chips(tmp_path / "site.tif", tmp_path / "utm.geojson", tmp_path / "chips", size=32)
    with pytest.raises(ValueError, match=told):
        evaluate_scene(red, str(tmp_path / "site.tif"), tmp_path / "utm.geojson", modes="naive")
    # the other way round: labels in the site grid over a UTM scene
    _labels(tmp_path / "site.geojson", LOCAL, 1001, 1998)
    with pytest.raises(ValueError, match=r"site\.geojson: its CRS \(site grid\) .* \(EPSG:32633; theirs is a local"):
        write_chips(tmp_path / "utm.tif", tmp_path / "site.geojson", tmp_path / "chips2", size=32)


def test_an_area_of_interest_in_an_earth_crs_on_a_local_grid_is_refused_naming_both(tmp_path):
    from rrsis.scene import area_of_interest, open_aoi_scene

    write_tif(tmp_path / "site.tif", LOCAL, Affine(0.05, 0, 1000, 0, -0.05, 2000))
    with pytest.raises(ValueError, match=r"site\.tif: the area of interest's CRS \(EPSG:32633\) cannot be "
                                         r"transformed to the raster's \(site grid: .*own CRS$"):
        open_aoi_scene(str(tmp_path / "site.tif"), area_of_interest("500010,3999900,500100,3999990", "EPSG:32633"))
    sc, _ = open_aoi_scene(str(tmp_path / "site.tif"), area_of_interest("1001,1998,1002,1999", LOCAL))
    sc.close()  # in the grid's own CRS: placed
