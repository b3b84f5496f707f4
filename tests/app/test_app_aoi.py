"""The app's area of interest (rrsis/app/limits.py ``parse_area``/``check_area_file``,
rrsis/app/session.py ``area_request``): bounds or GeoJSON typed in the page, or a vector file
uploaded, give the masks ``segment_scene(aoi=...)`` gives, and a bad area gets the sentence
``rrsis predict --aoi`` prints."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from rrsis.app import InputError, Limits, run
from rrsis.app.limits import check_area_file, parse_area
from rrsis.app.session import Workspace, respond
from rrsis.cli import build_parser, main
from rrsis.scene import segment_scene

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
from affine import Affine  # comes with rasterio
from rasterio.windows import Window

TEXT = "the red building"
H, W = 96, 128
X0, Y0, GSD = 440720.0, 3751320.0, 2.0
TRANSFORM = Affine(GSD, 0.0, X0, 0.0, -GSD, Y0)
UTM = "EPSG:32611"  # the scene's CRS: X0, Y0 lie in UTM zone 11 (southern California)
# A box on whole pixels in the scene's metres: columns 20-60, rows 10-40 (an independent reference
# for the window the app must read).
BOX_UTM = (X0 + 20 * GSD, Y0 - 40 * GSD, X0 + 60 * GSD, Y0 - 10 * GSD)
BOX_TEXT = ",".join(f"{v:.1f}" for v in BOX_UTM)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("app-aoi") / "scene.tif"
    data = np.random.default_rng(7).integers(0, 256, (3, H, W)).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", crs=UTM,
                       transform=TRANSFORM) as ds:
        ds.write(data)
    return path


@pytest.fixture(scope="module")
def lonlat(scene):
    """The scene's bounds in longitude, latitude."""
    from rasterio.warp import transform_bounds

    with rasterio.open(scene) as src:
        return transform_bounds(src.crs, "EPSG:4326", *src.bounds)


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("app-aoi-model") / "model"
    tiny_model.save_pretrained(out)
    return out


def triangle(lonlat) -> dict:
    """A GeoJSON Feature: a lon/lat triangle over the scene's middle."""
    w, s, e, n = lonlat
    ring = [[w + fx * (e - w), s + fy * (n - s)] for fx, fy in ((0.2, 0.2), (0.8, 0.2), (0.5, 0.8), (0.2, 0.2))]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def mask_of(tif):
    with rasterio.open(tif) as ds:
        return ds.read(1), ds.read_masks(1) > 0, ds.transform


def the_mask(response):
    (tif,) = [f for f in response.files if f.endswith("_mask.tif")]
    return mask_of(tif)


def app_error(response) -> str:
    assert not response.ok, response.message
    assert response.message.startswith("**Cannot run this request:** ")
    return response.message[len("**Cannot run this request:** "):]


def cli_error(argv, capsys) -> str:
    capsys.readouterr()
    assert main(["predict", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrsis predict: error: ")
    return err[len("rrsis predict: error: "):]


def ask(model, scene, **area):
    """The page's response, its mask ``(values, valid, transform)`` and its GeoJSON."""
    with Workspace() as ws:
        r = respond(model, ws, Limits(), str(scene), TEXT, "global", 0.5, **area)
        if not r.ok:
            return r, None, None
        (gj,) = [f for f in r.files if f.endswith(".geojson")]
        with open(gj) as fh:  # read before the workspace goes
            return r, the_mask(r), json.load(fh)


# ------------------------------------------------------------------ the answers
def test_run_with_an_area_is_segment_scene_with_it(tiny_model, scene, tmp_path):
    (want,) = segment_scene(tiny_model, str(scene), TEXT, mode="global", aoi=BOX_TEXT, aoi_crs=UTM,
                            out=str(tmp_path / "api"))
    (got,) = run(tiny_model, scene, [TEXT], mode="global", workdir=tmp_path, aoi=BOX_TEXT, aoi_crs=UTM)
    # The window a GIS computes for a box on whole pixels: rows 10-40, columns 20-60.
    assert got.window == want.window == (10, 20, 40, 60)
    vals, valid, transform = mask_of(got.mask_tif)
    api_vals, api_valid, api_transform = mask_of(want.files["mask"])
    assert vals.shape == (30, 40) and valid.all() and api_valid.all()  # a box on whole pixels: all inside
    with rasterio.open(scene) as src:
        assert transform == api_transform == src.window_transform(Window(20, 10, 40, 30))
    np.testing.assert_array_equal(vals, api_vals)
    assert 0 < (vals > 0).sum() < vals.size, "the test needs a mask with structure"
    assert got.area_px == want.area_px == int((vals > 0).sum())
    assert got.area_m2 == pytest.approx(got.area_px * GSD * GSD)
    (tmp_path / "whole").mkdir()  # without an area: the whole scene, no window
    (whole,) = run(tiny_model, scene, [TEXT], mode="global", workdir=tmp_path / "whole", aoi="")
    assert whole.window is None and mask_of(whole.mask_tif)[0].shape == (H, W)


def test_the_page_with_bounds_text(tiny_model, scene, tmp_path):
    r, (vals, valid, transform), _ = ask(tiny_model, scene, area=f"  {BOX_TEXT}\n", area_crs=f" {UTM} ")
    assert valid.all()
    assert r.ok and "inside the area of interest: 40×30 pixels read of 128×96 (rows 10–40, columns 20–60)" \
        in r.message, r.message
    assert "share of area's window" in r.table
    (want,) = segment_scene(tiny_model, str(scene), TEXT, mode="global", aoi=BOX_UTM, aoi_crs=UTM,
                            return_mask=True)
    np.testing.assert_array_equal(vals > 0, want.mask)
    assert transform == TRANSFORM @ Affine.translation(20, 10)


def test_the_page_with_pasted_geojson(tiny_model, scene, lonlat):
    feature = triangle(lonlat)
    r, (vals, valid, _), polygons = ask(tiny_model, scene, area=json.dumps(feature, indent=2))
    assert r.ok and "inside the area of interest" in r.message, r.message
    # As a GIS reads them: the polygons (RFC 7946 lon/lat) lie inside the triangle (a pixel corner
    # on its edge may stick out by rounding, far less than a pixel: 1e-7 degrees is about 1 cm).
    from shapely.geometry import shape

    found = [shape(f["geometry"]) for f in polygons["features"]]
    assert found and (vals > 0).any(), "the test needs polygons"
    area = shape(feature["geometry"]).buffer(1e-7)
    assert all(area.contains(g) for g in found)
    (want,) = segment_scene(tiny_model, str(scene), TEXT, mode="global", aoi=feature, return_mask=True)
    np.testing.assert_array_equal(vals > 0, want.mask)
    # Outside the triangle (the window's top corners) is nodata; its centre is inside.
    assert not valid[0, 0] and not valid[0, -1] and valid[valid.shape[0] // 2, valid.shape[1] // 2]
    # A FeatureCollection of the same triangle, in the page: the same answer.
    fc = {"type": "FeatureCollection", "features": [feature]}
    r2, (vals2, valid2, _), _ = ask(tiny_model, scene, area=json.dumps(fc))
    assert r2.ok, r2.message
    np.testing.assert_array_equal(vals2, vals)
    np.testing.assert_array_equal(valid2, valid)


def test_the_page_with_an_area_file(tiny_model, scene, lonlat, tmp_path):
    import pyogrio.raw

    feature = triangle(lonlat)
    gj = tmp_path / "area.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    r, (vals, valid, _), _ = ask(tiny_model, scene, area_file=str(gj))
    assert r.ok and "inside the area of interest" in r.message, r.message
    (want,) = segment_scene(tiny_model, str(scene), TEXT, mode="global", aoi=feature, return_mask=True)
    np.testing.assert_array_equal(vals > 0, want.mask)
    # A zipped shapefile of the same triangle, in the scene's metres (its .prj names the CRS).
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    utm = shape(transform_geom("EPSG:4326", UTM, feature["geometry"]))
    pyogrio.raw.write(str(tmp_path / "area.shp"), np.array([shapely.to_wkb(utm)], dtype=object), field_data=[],
                      fields=[], geometry_type="Polygon", crs=UTM, driver="ESRI Shapefile")
    with zipfile.ZipFile(tmp_path / "area.zip", "w") as z:
        for part in tmp_path.glob("area.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj"):
                z.write(part, part.name)
    r2, (vals2, valid2, _), _ = ask(tiny_model, scene, area_file=str(tmp_path / "area.zip"))
    assert r2.ok, r2.message
    # Reprojected by a straight-edged transform here and densified there: within a pixel's rim.
    assert (valid2 != valid).sum() <= valid.shape[0] + valid.shape[1]
    np.testing.assert_array_equal(vals2[valid & valid2], vals[valid & valid2])


def test_a_repaired_polygon_is_said_in_the_message(tiny_model, scene, lonlat):
    w, s, e, n = lonlat
    bowtie = {"type": "Polygon", "coordinates": [[[w, s], [e, n], [e, s], [w, n], [w, s]]]}
    r, _, _ = ask(tiny_model, scene, area=json.dumps(bowtie))
    assert r.ok and "Note: area of interest Polygon mapping: invalid geometry (Self-intersection" in r.message


# ------------------------------------------------------------------ bad areas
def test_area_errors_are_the_command_lines_own(tiny_model, saved, scene, tmp_path, capsys):
    """The same checks, in the same words, as ``rrsis predict --aoi`` on the same file."""
    far = "10.0,45.0,10.1,45.1"  # northern Italy: nowhere near the scene
    cases = [("30,20,10,40", None, "need minx < maxx"), (far, None, "does not overlap the scene"),
             (BOX_TEXT, None, "are not longitudes and latitudes"), (BOX_TEXT, "EPSG:nonsense", "not a CRS")]
    base = ["--model", str(saved), "--text", TEXT, "--mode", "global", "--image", str(scene)]
    for i, (aoi, crs, words) in enumerate(cases):
        flags = [f"--aoi={aoi}"] + (["--aoi-crs", crs] if crs else [])
        want = cli_error([*base, "--out", str(tmp_path / f"out{i}"), *flags], capsys)
        r, _, _ = ask(tiny_model, scene, area=aoi, area_crs=crs or "")
        got = app_error(r)
        assert words in got and got == want
        with pytest.raises(InputError, match=words):
            run(tiny_model, scene, [TEXT], workdir=tmp_path, aoi=aoi, aoi_crs=crs)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("*mask*"))


def test_a_bad_geojson_gets_segment_scenes_sentence(tiny_model, scene, lonlat, tmp_path):
    w, s, e, n = lonlat
    point = {"type": "Point", "coordinates": [(w + e) / 2, (s + n) / 2]}
    for mapping, words in ((point, "a Point has no area"),
                           ({"type": "Polygon", "coordinates": 3}, "not a GeoJSON geometry")):
        with pytest.raises(ValueError, match=words) as api:
            segment_scene(tiny_model, str(scene), TEXT, aoi=mapping)
        r, _, _ = ask(tiny_model, scene, area=json.dumps(mapping))
        assert app_error(r) == str(api.value)


@pytest.mark.parametrize("fields, words", [
    ({"area": "1,2,3"}, "area of interest '1,2,3': not bounds minx,miny,maxx,maxy (four numbers"),
    ({"area": "PATH"}, "...': not bounds minx,miny,maxx,maxy"),  # a path on the server: never read
    ({"area": '{"type": "Polygon", '}, "the area of interest is not GeoJSON text: Expecting property name"),
    ({"area": "{" * 3000 + "}" * 3000}, "not GeoJSON text"),
    ({"area": "1" * 50_001}, "the area of interest is 50,001 characters long; the limit is 50,000"),
    ({"area": BOX_TEXT, "area_crs": UTM, "area_file": "FILE"}, "given twice, as text and as a file"),
    ({"area_crs": UTM}, f"the area CRS ({UTM}) is the CRS of an area of interest, and none is given"),
    ({"area_file": "notes.txt"}, "notes.txt: an area of interest file is a GeoJSON (.geojson, .json)"),
    ({"area_file": "bomb.zip"}, "bomb.zip holds 2.0 MiB unzipped; the limit is 1.0 MiB"),
])
def test_each_bad_area_field_gets_its_sentence(tiny_model, scene, tmp_path, fields, words):
    (tmp_path / "notes.txt").write_text("not an area")
    (tmp_path / "FILE.geojson").write_text("{}")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("area.shp", b"\0" * (2 << 20))
    if fields.get("area") == "PATH":
        fields = {**fields, "area": str(tmp_path / "FILE.geojson")}
    if "area_file" in fields:
        name = fields["area_file"]
        fields = {**fields, "area_file": str(tmp_path / (name + ".geojson" if name == "FILE" else name))}
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(max_upload_mb=1, max_stored_mb=8), str(scene), TEXT, "global", 0.5,
                    **fields)
    assert words in app_error(r)
    assert "Traceback" not in r.message and not r.files


def test_an_area_on_a_plain_image_is_refused(tiny_model, tmp_path):
    png = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(png)
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(), str(png), TEXT, "global", 0.5, "", "", "-70.3,43.6,-70.2,43.7")
    assert app_error(r) == ("photo.png is a plain image without georeference, so an area of interest cannot "
                            "be placed on it: clear the area fields, or upload the scene as a GeoTIFF")
    # The Python call on a path: segment_scene's own sentence (a world file beside it would place it).
    with pytest.raises(InputError, match="no georeference .*an area of interest cannot be placed"):
        run(tiny_model, png, [TEXT], workdir=tmp_path, aoi="-70.3,43.6,-70.2,43.7")
    assert not list(tmp_path.glob("*mask*"))


def test_area_limits_and_flag(tmp_path):
    limits = Limits(max_area_chars=12)
    assert parse_area(" 1,2,3,4 ", limits) == "1,2,3,4" and parse_area("\n", limits) is None
    assert parse_area('{"a": [1]}', limits) == {"a": [1]}
    with pytest.raises(InputError, match="13 characters long; the limit is 12"):
        parse_area("1,2,3,4,5,6,7", limits)
    assert check_area_file(None, limits) is None
    with pytest.raises(InputError, match="gone from the server"):
        check_area_file(str(tmp_path / "gone.gpkg"), limits)
    with pytest.raises(ValueError, match="max_area_chars must be positive"):
        Limits(max_area_chars=0)
    assert build_parser().parse_args(["app"]).max_area_chars == Limits().max_area_chars == 50_000
    assert build_parser().parse_args(["app", "--max-area-chars", "300"]).max_area_chars == 300


def test_a_missing_geo_extra_names_it(tiny_model, scene, tmp_path, monkeypatch):
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "shapely" else real(name, *a))
    with pytest.raises(InputError, match=r'an area of interest needs the geo extra .*pip install "rrsis\[geo\]"'):
        run(tiny_model, scene, [TEXT], workdir=tmp_path, aoi=BOX_TEXT, aoi_crs=UTM)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "shapely", None)  # the page: shapely cannot be imported
    r, _, _ = ask(tiny_model, scene, area=BOX_TEXT, area_crs=UTM)
    assert app_error(r) == 'an area of interest needs shapely: pip install "rrsis[geo]"'


def test_the_page_wires_the_area_fields_to_the_request(tiny_model, scene):
    pytest.importorskip("gradio")
    from rrsis.app.card import summarise
    from rrsis.app.page import build_app

    with Workspace() as ws:
        app = build_app(tiny_model, card=summarise(tiny_model, "tiny"), workspace=ws)
        (segment,) = [f for f in app.fns.values() if f.api_name == "segment"]
        ids = [b.elem_id for b in segment.inputs]
        assert ids[-3:] == ["area", "area-crs", "area-file"]
        values = {"upload": str(scene), "expressions": TEXT, "mode": "global", "threshold": 0.5,
                  "area": BOX_TEXT, "area-crs": UTM}
        _, table, files, message = segment.fn(*[values.get(i, "") for i in ids])
        assert "inside the area of interest: 40×30 pixels read of 128×96" in message, message
        assert "share of area's window" in table and any(f.endswith("_mask.tif") for f in files)
        _, _, _, message = segment.fn(*[{**values, "area-crs": ""}.get(i, "") for i in ids])
        assert "are not longitudes and latitudes" in message
