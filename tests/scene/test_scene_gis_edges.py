"""rrsis/scene on the rasters a GIS user brings: tiles past the edge of a raster without nodata,
world-filed pictures, GCP-only rasters, south-up transforms, GeoJSON in another CRS, areas in
degrees. A stand-in model marks bright red pixels, so each mask has an independent answer."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rrsis
from rrsis.scene import open_scene, segment_scene

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import RedPixels
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import transform_geom

UTM = "EPSG:32611"
T_UTM = Affine(0.5, 0, 440720.0, 0, -0.5, 3751320.0)


@pytest.fixture(scope="module")
def red(tiny_model):
    return RedPixels(tiny_model)


def scene_pixels(h, w):
    """uint8 ``[3, h, w]``: dark, with a red disc in the north-east and a red bar in the south-west."""
    yy, xx = np.mgrid[0:h, 0:w]
    obj = ((yy - h / 4) ** 2 / (0.15 * h) ** 2 + (xx - 3 * w / 4) ** 2 / (0.12 * w) ** 2 < 1) | (
        (abs(yy - 3 * h / 4) < 0.08 * h) & (abs(xx - 0.3 * w) < 0.15 * w))
    data = np.full((3, h, w), 40, np.uint8)
    data[0][obj] = 240
    return data, obj


def write_tif(path, h, w, transform=T_UTM, crs=UTM, **profile):
    data, obj = scene_pixels(h, w)
    kw = {"crs": crs, "transform": transform} if transform is not None else {}
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8", **kw,
                       **profile) as ds:
        ds.write(data)
    return obj


@pytest.mark.parametrize(("h", "w", "mode", "ratio"), [(40, 50, "tiles", 1.0), (40, 300, "tiles", 1.0),
                                                       (40, 50, "object", 1.0), (200, 200, "tiles", 1.5)])
def test_tiles_past_the_edge_of_a_raster_without_nodata_see_its_pixels(red, tmp_path, h, w, mode, ratio):
    # A raster without nodata, mask or alpha: rasterio's boundless reads masked all of it, so
    # tiles reaching past its edge (a scene smaller than a tile, a strip, a fractional
    # pixel_ratio) were blank.
    path = tmp_path / "s.tif"
    obj = write_tif(path, h, w)
    with rasterio.open(path) as ds:
        assert ds.mask_flag_enums[0] == [rasterio.enums.MaskFlags.all_valid]
    (res,) = segment_scene(red, path, "the red building", mode=mode, tile=64, pixel_ratio=ratio)
    east = np.arange(w)[None, :] > w / 2
    # object keeps one component: the disc (east) or the bar (west), both as sure
    answers = [obj] if mode != "object" else [obj & east, obj & ~east]
    assert max((res.mask & a).sum() / (res.mask | a).sum() for a in answers) > 0.9


def test_a_window_past_the_edge_is_valid_exactly_inside_the_scene(tmp_path):
    path = tmp_path / "s.tif"
    write_tif(path, 40, 50)
    with open_scene(path) as sc:
        img, valid = sc.read((-8, -4, 56, 60), (64, 64))
        assert valid[8:48, 4:54].all() and valid.sum() == 40 * 50
        np.testing.assert_allclose(img[8:48, 4:54], sc.read()[0])
        _, half = sc.read((-8, -4, 56, 60), (32, 32))  # resampled: every other pixel
        assert half.sum() == 20 * 25 and half[4:24, 2:27].all()


def polygons_in(fc, crs):
    return [transform_geom(crs, UTM, f["geometry"]) if crs != UTM else f["geometry"] for f in fc["features"]]


@pytest.mark.parametrize("geojson_crs", ["EPSG:4326", "OGC:CRS84", "EPSG:3857", "native"])
def test_geojson_in_another_crs_says_which(red, tmp_path, geojson_crs):
    path = tmp_path / "s.tif"
    obj = write_tif(path, 64, 96)
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p",
                           geojson_crs=geojson_crs, simplify=0.0, return_mask=True)
    fc = json.loads(Path(res.files["geojson"]).read_text())
    if geojson_crs in ("EPSG:4326", "OGC:CRS84"):  # RFC 7946: no crs member, longitude first
        assert "crs" not in fc
        lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
        assert -118 < lon < -116 and 33 < lat < 35
    else:  # a GIS would read unnamed coordinates as WGS 84 and put them in the sea
        code = "3857" if geojson_crs == "EPSG:3857" else "32611"
        assert fc["crs"]["properties"]["name"] == f"urn:ogc:def:crs:EPSG::{code}"
    src_crs = UTM if geojson_crs == "native" else geojson_crs
    back = rasterize([(g, 1) for g in polygons_in(fc, src_crs)], (64, 96), transform=T_UTM) > 0
    np.testing.assert_array_equal(back, res.mask)
    assert (res.mask == obj).mean() > 0.99


def write_png(path, h=64, w=96, world=True, aux=True):
    data, obj = scene_pixels(h, w)
    Image.fromarray(np.moveaxis(data, 0, -1)).save(path)
    if world:  # x size, rotations, y size, then the centre of the upper-left pixel
        path.with_suffix(".pgw").write_text("0.5\n0\n0\n-0.5\n440720.25\n3751319.75\n")
    if aux:
        path.with_name(path.name + ".aux.xml").write_text("<PAMDataset><SRS>EPSG:32611</SRS></PAMDataset>")
    return obj


def test_a_png_with_a_world_file_gets_outputs_a_gis_places(red, tmp_path):
    obj = write_png(tmp_path / "photo.png")
    (res,) = segment_scene(red, tmp_path / "photo.png", "the red building", mode="global",
                           out=tmp_path / "p", simplify=0.0, return_mask=True)
    assert sorted(res.files) == ["geojson", "mask", "overlay", "overlay_crs", "overlay_world"]
    with rasterio.open(res.files["mask"]) as m:
        assert m.crs == rasterio.crs.CRS.from_user_input(UTM) and m.transform == T_UTM
        np.testing.assert_array_equal(m.read(1) >= 128, res.mask)
    assert (res.mask == obj).mean() > 0.99
    assert res.area_m2 == pytest.approx(res.mask.sum() * 0.25)
    # the same picture without a world file: PNG outputs, the same mask (model.predict's path)
    write_png(tmp_path / "plain.png", world=False, aux=False)
    (plain,) = segment_scene(red, tmp_path / "plain.png", "the red building", mode="global",
                             out=tmp_path / "q", return_mask=True)
    assert sorted(plain.files) == ["mask", "overlay"]
    np.testing.assert_array_equal(plain.mask, res.mask)


def test_a_world_file_without_a_crs_asks_for_one(red, tmp_path):
    path = tmp_path / "photo.png"
    write_png(path, aux=False)
    with pytest.raises(ValueError, match="transform but no CRS.*--crs"):
        segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p")
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p", crs=UTM)
    with rasterio.open(res.files["mask"]) as m:
        assert m.crs == rasterio.crs.CRS.from_user_input(UTM) and m.transform == T_UTM


def test_without_rasterio_a_world_file_is_ignored_with_a_warning(red, tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    write_png(path)
    monkeypatch.setitem(sys.modules, "rasterio", None)
    with pytest.warns(UserWarning, match=r'world file ignored.*pip install "rrsis\[geo\]"'):
        (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p")
    assert sorted(res.files) == ["mask", "overlay"]


def test_a_gcp_only_raster_that_cannot_be_rectified_is_refused_with_what_to_do(red, tmp_path):
    from rasterio.control import GroundControlPoint

    path = tmp_path / "gcp.tif"
    write_tif(path, 48, 64, transform=None, crs=None)
    corners = [(0, 0), (48, 64)]  # two points: no polynomial (tests/scene/test_scene_rectify.py: enough)
    with rasterio.open(path, "r+") as ds:
        ds.gcps = ([GroundControlPoint(r, c, 440720 + c / 2, 3751320 - r / 2) for r, c in corners],
                   rasterio.crs.CRS.from_user_input(UTM))
    for crs in (None, UTM):  # a CRS does not give it a transform
        with pytest.raises(ValueError, match="ground control points only.*gdalwarp.*--crs none"):
            segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p", crs=crs)
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p", crs="none")
    assert sorted(res.files) == ["mask", "overlay"]
    (res,) = segment_scene(red, path, "the red building", mode="global")  # no files: nothing to place
    assert res.mask.any()


@pytest.mark.parametrize("mode", ["global", "tiles"])
def test_a_south_up_raster_keeps_its_mask_over_its_object(red, tmp_path, mode):
    # Row 0 is the southern edge (positive y pixel size): the mask must stay on the pixels, and
    # the polygons over the same places on the ground.
    path = tmp_path / "south.tif"
    t = Affine(0.5, 0, 440720.0, 0, 0.5, 3751288.0)
    obj = write_tif(path, 64, 96, transform=t)
    (res,) = segment_scene(red, path, "the red building", mode=mode, tile=64, out=tmp_path / "p",
                           geojson_crs="native", simplify=0.0, return_mask=True)
    assert (res.mask == obj).mean() > 0.99
    with rasterio.open(res.files["mask"]) as m:
        assert m.transform == t
        np.testing.assert_array_equal(m.read(1) >= 128, res.mask)
    fc = json.loads(Path(res.files["geojson"]).read_text())
    back = rasterize([(f["geometry"], 1) for f in fc["features"]], (64, 96), transform=t) > 0
    np.testing.assert_array_equal(back, res.mask)


def cell_areas(t, h):
    """m² of the pixels of each row of a lon/lat grid on the WGS 84 ellipsoid (authalic latitude)."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e = np.sqrt(e2)

    def q(phi):
        s = np.sin(phi)
        return (1 - e2) * (s / (1 - e2 * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))

    top, bottom = np.radians(t.f + t.e * np.arange(h)), np.radians(t.f + t.e * np.arange(1, h + 1))
    return np.radians(abs(t.a)) * np.abs(q(top) - q(bottom)) * a * a / 2


@pytest.mark.parametrize("simplify", [0.0, 2.0])
def test_areas_in_degrees_are_the_pixels_areas_however_simplified(red, tmp_path, simplify):
    path = tmp_path / "wgs84.tif"
    t = Affine(1e-4, 0, 10.0, 0, -1e-4, 60.0)
    write_tif(path, 64, 96, transform=t, crs="EPSG:4326")
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p",
                           simplify=simplify, return_mask=True)
    expected = float((res.mask * cell_areas(t, 64)[:, None]).sum())
    features = json.loads(Path(res.files["geojson"]).read_text())["features"]
    assert sum(f["properties"]["area_m2"] for f in features) == pytest.approx(expected, rel=1e-3)
    assert res.area_m2 == pytest.approx(expected, rel=1e-3)


def test_cli_predict_places_a_world_filed_png(tiny_model, tmp_path, capsys):
    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    save_pretrained(tiny_model, tmp_path / "model")
    write_png(tmp_path / "my photo é.png", aux=False)
    args = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "my photo é.png"),
            "--text", "the red building", "--out", f"{tmp_path / 'out'}/", "--quiet", "--mode", "global"]
    assert main(args) == 2 and "--crs" in capsys.readouterr().err
    assert main([*args, "--crs", UTM]) == 0
    with rasterio.open(tmp_path / "out" / "my photo é_mask.tif") as m:
        assert m.crs == rasterio.crs.CRS.from_user_input(UTM) and m.transform == T_UTM
    assert (tmp_path / "out" / "my photo é.geojson").is_file()


def test_plain_pictures_find_their_world_files(tmp_path):
    from rrsis.scene.georef import world_file

    for name, sidecar in [("a.png", "a.pgw"), ("b.jpg", "b.JGW"), ("c.jpeg", "c.jpegw"), ("d.png", "d.wld")]:
        (tmp_path / sidecar).write_text("1\n0\n0\n-1\n0\n0\n")
        assert world_file(tmp_path / name) == str(tmp_path / sidecar)
    assert world_file(tmp_path / "e.png") is None
    assert rrsis.scene.georef.plain_georeference(tmp_path / "e.png") == (None, None)


def test_a_region_in_another_geojson_crs_merges_in_that_crs(red, tmp_path):
    pyogrio = pytest.importorskip("pyogrio")
    from rasterio.warp import transform_bounds

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"s{i}.tif")
        write_tif(paths[-1], 48, 64, transform=T_UTM * Affine.translation(100 * i, 0))
    summary = rrsis.segment_scenes(red, paths, "the red building", out=tmp_path / "region", mode="global",
                                   geojson_crs="EPSG:3857")
    info = pyogrio.read_info(summary.merged)
    assert info["crs"] == "EPSG:3857" and info["features"] == summary.n_polygons > 0
    # the polygons lie over the scenes, in metres of Web Mercator (read as degrees before)
    left, bottom, right, top = transform_bounds(UTM, "EPSG:3857", 440720.0, 3751296.0, 440832.0, 3751320.0)
    x0, y0, x1, y1 = info["total_bounds"]
    assert left - 1 < x0 < x1 < right + 1 and bottom - 1 < y0 < y1 < top + 1


def test_a_region_with_an_all_nodata_tile_and_an_empty_answer_still_merges(red, tmp_path):
    pyogrio = pytest.importorskip("pyogrio")

    with rasterio.open(tmp_path / "beyond_swath.tif", "w", driver="GTiff", height=32, width=32, count=3,
                       dtype="uint16", crs=UTM, transform=T_UTM, nodata=0) as ds:
        ds.write(np.zeros((3, 32, 32), np.uint16))
    write_tif(tmp_path / "dark.tif", 32, 48)
    with rasterio.open(tmp_path / "dark.tif", "r+") as ds:
        ds.write(np.full((3, 32, 48), 30, np.uint8))  # nothing red: an empty answer
    scenes = [tmp_path / "beyond_swath.tif", tmp_path / "dark.tif"]
    with pytest.warns(UserWarning, match="beyond_swath.*every pixel is nodata.*done with no outputs"):
        summary = rrsis.segment_scenes(red, scenes, "the red building", out=tmp_path / "r", mode="global")
    assert summary.failed == {} and sorted(summary.done) == ["beyond_swath", "dark"]
    assert pyogrio.read_info(summary.merged)["features"] == summary.n_polygons == 0
    record = json.loads((tmp_path / "r" / "beyond_swath" / "done.json").read_text())
    assert record["outputs"] == [] and "every pixel is nodata" in record["no_valid_pixels"]
    fc = json.loads((tmp_path / "r" / "dark" / "dark.geojson").read_text())
    assert {k: fc[k] for k in ("type", "features")} == {"type": "FeatureCollection", "features": []}
    assert fc["rrsis"]["expression"] == "the red building"  # an empty answer still says what it answers
    from rrsis.scene.cog import cog_problems

    assert cog_problems(tmp_path / "r" / "dark" / "dark_mask.tif") == []
    again = rrsis.segment_scenes(red, scenes, "the red building", out=tmp_path / "r", mode="global")
    assert sorted(again.skipped) == ["beyond_swath", "dark"] and again.merged


def test_web_mercator_areas_are_ground_areas_not_planar_ones(red, tmp_path):
    # EPSG:3857 stretches areas by about 1/cos²(latitude): 4x at 60° N. The ground area of a
    # pixel, from the projection's formulas (spherical Mercator over WGS 84 latitudes):
    # planar · N(φ) · M(φ) · cos²φ / a², with N and M the ellipsoid's radii of curvature.
    path = tmp_path / "web.tif"
    t = Affine(0.5, 0, 1113194.9, 0, -0.5, 8399737.9)  # about 10° E, 60° N
    write_tif(path, 64, 96, transform=t, crs="EPSG:3857")
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p",
                           simplify=0.0, return_mask=True)
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    y = t.f + t.e * (np.arange(64) + 0.5)
    phi = 2 * np.arctan(np.exp(y / a)) - np.pi / 2
    s2 = np.sin(phi) ** 2
    n, m = a / np.sqrt(1 - e2 * s2), a * (1 - e2) / (1 - e2 * s2) ** 1.5
    ground = 0.25 * n * m * np.cos(phi) ** 2 / a ** 2
    expected = float((res.mask * ground[:, None]).sum())
    assert res.area_m2 == pytest.approx(expected, rel=2e-3)
    features = json.loads(Path(res.files["geojson"]).read_text())["features"]
    assert sum(f["properties"]["area_m2"] for f in features) == pytest.approx(expected, rel=2e-3)
    assert res.area_m2 < 0.3 * res.area_px * 0.25  # the planar figure was 4x too large


def test_planar_areas_stay_where_the_projection_keeps_them(tmp_path):
    from rrsis.scene.write import pixel_area_m2

    class Footprint:
        height, width = 1000, 1000

    for crs, t, planar in [(UTM, T_UTM, 0.25), ("EPSG:2229", Affine(1.0, 0, 6.4e6, 0, -1.0, 1.8e6), 0.3048006 ** 2),
                           ("EPSG:3035", Affine(10, 0, 4e6, 0, -10, 3e6), 100.0), ("EPSG:3857", T_UTM, None),
                           ("EPSG:4326", Affine(1e-4, 0, 10, 0, -1e-4, 60), None)]:
        sc = Footprint()
        sc.crs, sc.transform = rasterio.crs.CRS.from_user_input(crs), t
        assert pixel_area_m2(sc) == (None if planar is None else pytest.approx(planar, rel=1e-6)), crs
