"""rrsis/scene/aoi: an area of interest read and segmented as its own scene, on the scene's grid."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pyogrio = pytest.importorskip("pyogrio")
from affine import Affine
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_points
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import LineString, Point, Polygon, box, mapping, shape
from test_scene import tiny  # noqa: F401  (the sharpened tiny model fixture)

from rrsis.cli import main
from rrsis.scene import (
    AOIOutsideError,
    area_of_interest,
    open_aoi_scene,
    segment_scene,
    segment_scenes,
)
from rrsis.scene.aoi import scene_window
from rrsis.scene.read import NoValidPixelsError

UTM = "EPSG:32633"
SIZE = 128
TRANSFORM = from_origin(500000.0, 5000000.0, 10.0, 10.0)  # north-up, 10 m pixels, UTM 33N
BLOCK = 16
# A pentagon over the bright blob's edge (scene metres): its window is rows 21-97, columns 28-108.
PENTAGON = Polygon([(500285.0, 4999785.0), (500900.0, 4999700.0), (501075.0, 4999300.0),
                    (500700.0, 4999030.0), (500350.0, 4999200.0)])


def _scene(path, nodata=None):
    """A 128² uint16 3-band tiled GeoTIFF (16² DEFLATE blocks) with a bright blob, like a tank."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    data = rng.integers(800, 1200, (3, SIZE, SIZE)).astype(np.uint16)
    data[0][(yy - 50) ** 2 + (xx - 70) ** 2 < 24 ** 2] += 9000
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint16", crs=UTM,
                       transform=TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate",
                       nodata=nodata) as ds:
        ds.write(data)
    return path


def _expected_window(bounds, transform=TRANSFORM):
    """Independently of rrsis: rasterio's window of the bounds, widened to whole pixels."""
    w = from_bounds(*bounds, transform=transform)
    r0, c0 = math.floor(w.row_off), math.floor(w.col_off)
    return r0, c0, math.ceil(w.row_off + w.height), math.ceil(w.col_off + w.width)


def _spoil_blocks_outside(path, window):
    """Overwrite every compressed block of ``path`` that does not meet ``window`` with garbage, so
    that any read of a pixel there fails."""
    r0, c0, r1, c1 = window
    spans = []
    with rasterio.open(path) as ds:
        for i in range(math.ceil(SIZE / BLOCK)):
            for j in range(math.ceil(SIZE / BLOCK)):
                if (i + 1) * BLOCK <= r0 or i * BLOCK >= r1 or (j + 1) * BLOCK <= c0 or j * BLOCK >= c1:
                    spans.append((int(ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=1)),
                                  int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))))
    with open(path, "r+b") as fh:
        for offset, n in spans:
            fh.seek(offset)
            fh.write(b"\xff" * n)
    return len(spans)


@pytest.mark.parametrize("mode", ["global", "tiles"])
def test_the_area_answer_is_the_window_as_its_own_geotiff_and_reads_nothing_else(tiny, tmp_path, mode):  # noqa: F811
    scene = _scene(tmp_path / "scene.tif")
    window = _expected_window(PENTAGON.bounds)
    r0, c0, r1, c1 = window
    # The reference: the same pixels written by rasterio as a GeoTIFF of their own.
    with rasterio.open(scene) as src:
        win = Window(c0, r0, c1 - c0, r1 - r0)
        profile = {**src.profile, "width": c1 - c0, "height": r1 - r0, "transform": src.window_transform(win)}
        with rasterio.open(tmp_path / "window.tif", "w", **profile) as dst:
            dst.write(src.read(window=win))
    kw = {"mode": mode, "tile": 64, "overlap": 0.25, "simplify": 0.0, "return_mask": True, "geojson_crs": "native"}
    (ref,) = segment_scene(tiny, tmp_path / "window.tif", "the red building", out=tmp_path / "ref", **kw)
    # The blocks no pixel of the window lies in become unreadable: the area's run must not touch them.
    assert _spoil_blocks_outside(scene, window) > 20
    with rasterio.open(scene) as ds, pytest.raises(RasterioIOError):
        ds.read()
    (res,) = segment_scene(tiny, scene, "the red building", out=tmp_path / "aoi", aoi=PENTAGON, aoi_crs=UTM, **kw)
    assert res.window == window and res.shape == (r1 - r0, c1 - c0)
    with rasterio.open(res.files["mask"]) as ds:
        assert ds.crs.to_string() == UTM and ds.transform == TRANSFORM @ Affine.translation(c0, r0)
        values, valid = ds.read(1), ds.dataset_mask() > 0
    inside = rasterize([(PENTAGON, 1)], out_shape=res.shape, transform=ds.transform).astype(bool)
    assert 0.05 < ref.mask[inside].mean() < 0.95, "the test needs a mask with structure inside the area"
    np.testing.assert_array_equal(valid, inside)  # nodata outside the pentagon
    np.testing.assert_array_equal(values[inside], np.where(ref.mask, 255, 0)[inside])
    assert not values[~inside].any()
    np.testing.assert_array_equal(res.mask, ref.mask & inside)
    assert res.area_px == int((ref.mask & inside).sum()) and res.area_m2 == pytest.approx(res.area_px * 100.0)
    # Polygons: clipped to the area (some are cut by it), areas the pixels' own on the ground.
    fc = json.loads(Path(res.files["geojson"]).read_text())
    polys = [shape(f["geometry"]) for f in fc["features"]]
    assert polys and all(PENTAGON.buffer(1e-3).contains(p) for p in polys)  # coordinates to the millimetre
    pixel_outlines = rasterize([(p, 1) for p in polys], out_shape=res.shape, transform=ds.transform) > 0
    assert (pixel_outlines & ~res.mask).sum() == 0
    assert sum(f["properties"]["area_m2"] for f in fc["features"]) == pytest.approx(res.area_m2)
    assert sum(p.area for p in polys) < res.area_m2  # cut polygons lose the pixels' parts outside
    from PIL import Image

    alpha = np.asarray(Image.open(res.files["overlay"]))[..., 3]
    np.testing.assert_array_equal(alpha > 0, inside)  # transparent outside the area


def test_a_lon_lat_box_on_a_utm_scene_selects_its_window(tmp_path):
    # A box in longitude/latitude (EPSG:4326, the default) inside the scene.
    lon, lat = warp_points(UTM, "EPSG:4326", [500300.0, 501100.0], [4999150.0, 4999750.0])
    bbox = (lon[0] + 1e-5, lat[0] + 1e-5, lon[1] - 2e-5, lat[1] - 1e-5)
    expected = _expected_window(transform_bounds("EPSG:4326", UTM, *bbox, densify_pts=101))
    area = area_of_interest(",".join(map(repr, bbox)))
    assert scene_window(area, SIZE, SIZE, TRANSFORM, rasterio.crs.CRS.from_string(UTM)).window == expected
    sc, win = open_aoi_scene(_scene(tmp_path / "s.tif"), area)
    with sc:
        r0, c0, r1, c1 = expected
        assert win.window == expected and (sc.height, sc.width) == (r1 - r0, c1 - c0)
        assert sc.transform == TRANSFORM @ Affine.translation(c0, r0)
    # A wide lon/lat box becomes its curved outline in UTM: the middle of its north edge lies on
    # the parallel (on the zone's central meridian, 15° E), well south of the straight line
    # between its corners.
    curved = area_of_interest((13.0, 45.0, 17.0, 46.0)).in_crs(UTM)
    (xm,), (ym,) = warp_points("EPSG:4326", UTM, [15.0], [46.0])
    _, (ya, yb) = warp_points("EPSG:4326", UTM, [13.0, 17.0], [46.0, 46.0])
    sagitta = (ya + yb) / 2 - ym
    assert sagitta > 1000  # metres
    assert curved.boundary.distance(Point(xm, ym)) < 0.01 * sagitta
    assert not curved.contains(Point(xm, ym + sagitta / 2))  # a chord would have included it


def test_a_region_skips_and_lists_the_scenes_outside_the_area(tiny, tmp_path):  # noqa: F811
    near = _scene(tmp_path / "near.tif")
    far = tmp_path / "far.tif"
    with rasterio.open(near) as src:
        profile = {**src.profile, "transform": from_origin(600000.0, 5000000.0, 10.0, 10.0)}
        with rasterio.open(far, "w", **profile) as dst:
            dst.write(src.read())
    area = box(500400.0, 4999300.0, 500900.0, 4999700.0)
    s = segment_scenes(tiny, [str(near), str(far)], "the red building", out=tmp_path / "region", mode="global",
                       aoi=mapping(area), aoi_crs=UTM)
    assert s.done == ["near"] and s.outside == ["far"] and not s.failed and s.merged is not None
    record = json.loads((tmp_path / "region" / "far" / "done.json").read_text())
    assert record["outputs"] == [] and "does not overlap" in record["outside_aoi"]
    with rasterio.open(tmp_path / "region" / "near" / "near_mask.tif") as ds:
        assert (ds.height, ds.width) == (40, 50)
    again = segment_scenes(tiny, [str(near), str(far)], "the red building", out=tmp_path / "region",
                           mode="global", aoi=mapping(area), aoi_crs=UTM)
    assert sorted(again.skipped) == ["far", "near"] and not again.done
    # Outputs never replace the area's own file, even with overwrite=True.
    (tmp_path / "area.geojson").write_text(json.dumps({**mapping(area), "crs": {"type": "name",
                                                       "properties": {"name": "EPSG:32633"}}}))
    with pytest.raises(ValueError, match="would replace the area of interest's file"):
        segment_scene(tiny, near, "a", out=tmp_path / "area", aoi=tmp_path / "area.geojson", overwrite=True)


def test_areas_that_cannot_be_used_are_named(tmp_path):
    scene = _scene(tmp_path / "s.tif")
    with pytest.raises(AOIOutsideError, match=r"does not overlap.*area bounds \(600000.00.*scene bounds "
                                              r"\(500000.00, 4998720.00, 501280.00, 5000000.00\).*32633"):
        open_aoi_scene(scene, area_of_interest((600000, 4999000, 600500, 4999500), UTM))
    with pytest.raises(ValueError, match="Point has no area"):
        area_of_interest(Point(14.0, 45.0))
    with pytest.raises(ValueError, match="LineString has no area"):
        area_of_interest(mapping(LineString([(14, 45), (14.1, 45.1)])))
    with pytest.raises(ValueError, match="empty"):
        area_of_interest(Polygon())
    with pytest.raises(ValueError, match="minx < maxx"):
        area_of_interest("14.1,45,14.0,45.1")
    bowtie = Polygon([(14.0, 45.0), (14.1, 45.1), (14.1, 45.0), (14.0, 45.1)])
    with pytest.warns(UserWarning, match="Self-intersection.*make_valid"):
        fixed = area_of_interest(bowtie)
    assert fixed.geometry.is_valid and fixed.geometry.area == pytest.approx(0.005)
    with pytest.raises(ValueError, match="not longitudes and latitudes.*aoi_crs"):
        area_of_interest((500400, 4999300, 500900, 4999700))  # UTM numbers, default lon/lat
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.geojson: cannot read it as a vector file"):
        area_of_interest(bad)
    with pytest.raises(FileNotFoundError, match="no such file, and not bounds"):
        area_of_interest(tmp_path / "missing.gpkg")
    # A GeoJSON without a crs member is longitude/latitude (RFC 7946) unless aoi_crs names another.
    legacy = tmp_path / "legacy.geojson"
    legacy.write_text(json.dumps(mapping(box(500400, 4999300, 500900, 4999700))))
    with pytest.raises(ValueError, match="not longitudes and latitudes.*EPSG:4326.*aoi_crs"):
        area_of_interest(legacy)
    assert area_of_interest(legacy, UTM).crs.to_string() == UTM
    # A shapefile without .prj has no CRS: aoi_crs gives it one; a differing one is refused.
    shp = tmp_path / "area.shp"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        pyogrio.raw.write(shp, np.array([box(500400, 4999300, 500900, 4999700).wkb], dtype=object), [], [],
                          geometry_type="Polygon", driver="ESRI Shapefile")
    with pytest.raises(ValueError, match="has no CRS; give it with aoi_crs"):
        area_of_interest(shp)
    assert area_of_interest(shp, UTM).crs.to_string() == UTM
    gpkg = tmp_path / "area.gpkg"
    pyogrio.raw.write(gpkg, np.array([box(500400, 4999300, 500900, 4999700).wkb], dtype=object), [], [],
                      geometry_type="Polygon", crs=UTM, driver="GPKG")
    assert area_of_interest(gpkg).crs.to_string() == UTM
    with pytest.raises(ValueError, match="has its own CRS"):
        area_of_interest(gpkg, "EPSG:32632")
    # A raster with a transform but no CRS: the area cannot be placed; --crs gives the CRS.
    plain = tmp_path / "nocrs.tif"
    with rasterio.open(scene) as src, rasterio.open(plain, "w", **{**src.profile, "crs": None}) as dst:
        dst.write(src.read())
    area = area_of_interest(gpkg)
    with pytest.raises(ValueError, match="no CRS.*crs=.*--crs"):
        open_aoi_scene(plain, area)
    sc, win = open_aoi_scene(plain, area, crs=UTM)
    assert win.window == _expected_window((500400, 4999300, 500900, 4999700))
    # An area over nodata only: the scene's own error, naming the window.
    holed = _scene(tmp_path / "holed.tif", nodata=0)
    with rasterio.open(holed, "r+") as ds:
        ds.write(np.zeros((3, 40, 50), np.uint16), window=Window(40, 30, 50, 40))
    with pytest.raises(NoValidPixelsError, match=r"holed.tif: every pixel of the area of interest's window "
                                                 r"\(rows 30-70, columns 40-90\) is nodata"):
        open_aoi_scene(holed, area)
    with pytest.raises(ValueError, match="aoi_crs= is the CRS of aoi="):
        segment_scene(None, scene, "a", aoi_crs=UTM)
    with sc, pytest.raises(ValueError, match="give the raster's path, not an open Scene"):
        segment_scene(None, sc, "a", aoi=area)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny):  # noqa: F811
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("aoi_cli")
    save_pretrained(tiny.model, out / "model")
    _scene(out / "scene.tif")
    (out / "tiles").mkdir()
    with rasterio.open(out / "scene.tif") as src:  # the scene as two tiles, for --mosaic
        for name, col in (("west", 0), ("east", SIZE // 2)):
            win = Window(col, 0, SIZE // 2, SIZE)
            profile = {**src.profile, "width": SIZE // 2, "transform": src.window_transform(win)}
            with rasterio.open(out / "tiles" / f"{name}.tif", "w", **profile) as dst:
                dst.write(src.read(window=win))
    return out


@pytest.mark.parametrize("form", ["geojson", "bbox", "mosaic"])
def test_predict_with_aoi_file_or_bbox(saved, tmp_path, capsys, form):
    lon, lat = warp_points(UTM, "EPSG:4326", [500400.0, 500900.0], [4999300.0, 4999700.0])
    if form == "geojson":  # RFC 7946: no crs member, longitudes and latitudes
        aoi = tmp_path / "area.geojson"
        feature = {"type": "Feature", "properties": {}, "geometry": mapping(box(lon[0], lat[0], lon[1], lat[1]))}
        aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        aoi = str(aoi)
    else:
        aoi = f"{lon[0]},{lat[0]},{lon[1]},{lat[1]}"
    prefix = tmp_path / "port"
    # The area cuts a mosaic of the scene's two halves as it cuts the scene (the area spans both).
    image = [str(saved / "tiles" / "west.tif"), str(saved / "tiles" / "east.tif"), "--mosaic"] if form == "mosaic" \
        else [str(saved / "scene.tif")]
    assert main(["predict", "--model", str(saved / "model"), "--image", *image, "--text",
                 "the red building", "--out", str(prefix), "--quiet", "--mode", "global", "--aoi", aoi]) == 0
    expected = _expected_window(transform_bounds("EPSG:4326", UTM, lon[0], lat[0], lon[1], lat[1],
                                                 densify_pts=101))
    r0, c0, r1, c1 = expected
    assert c0 < SIZE // 2 < c1  # across both tiles of the mosaic
    assert (tmp_path / "port_mosaic.vrt").is_file() == (form == "mosaic")
    with rasterio.open(f"{prefix}_mask.tif") as ds:
        assert (ds.height, ds.width) == (r1 - r0, c1 - c0)
        assert ds.transform == TRANSFORM @ Affine.translation(c0, r0)
    out = capsys.readouterr().out
    assert f"rows {r0}-{r1}, columns {c0}-{c1}" in out and "of the area of interest's window" in out
    if form == "geojson":  # an output named like the area's file would replace it, even with --overwrite
        assert main(["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"), "--text",
                     "a", "--out", str(tmp_path / "area"), "--aoi", aoi, "--overwrite"]) == 2
        assert "would replace it" in capsys.readouterr().err
    assert main(["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"), "--text", "a",
                 "--out", str(tmp_path / "x"), "--aoi", "20,10,21,11"]) == 2
    assert "does not overlap" in capsys.readouterr().err
    assert main(["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"), "--text", "a",
                 "--out", str(tmp_path / "x"), "--aoi-crs", UTM]) == 2
    assert "--aoi-crs is the CRS of --aoi" in capsys.readouterr().err


def _values(path, data):
    with rasterio.open(path, "w", driver="GTiff", height=SIZE, width=SIZE, count=3, dtype=data.dtype, crs=UTM,
                       transform=TRANSFORM) as ds:
        ds.write(data)


def test_value_range_messages_name_the_users_file_not_the_vrt_window(tmp_path):
    area = area_of_interest(PENTAGON.bounds, UTM)
    zero_one = np.zeros((3, SIZE, SIZE), np.uint8)
    zero_one[:, 40:80, 40:80] = 1
    _values(tmp_path / "zero_one.tif", zero_one)
    with pytest.warns(UserWarning, match=r"8-bit values span only 0-1") as got:
        sc, _ = open_aoi_scene(str(tmp_path / "zero_one.tif"), area)
    sc.close()
    told = [str(w.message) for w in got if "span only" in str(w.message)]
    assert told and all(m.startswith(f"{tmp_path}/zero_one.tif: ") and "vrt://" not in m for m in told)
    _values(tmp_path / "float2.tif", np.full((3, SIZE, SIZE), 2.5, np.float32))
    with pytest.raises(ValueError, match=r"beyond the \[0, 1\]") as err:
        open_aoi_scene(str(tmp_path / "float2.tif"), area, stretch=None)
    assert str(err.value).startswith(f"{tmp_path}/float2.tif: ") and "vrt://" not in str(err.value)
