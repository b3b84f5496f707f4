"""rrsis/scene/aoi.py with rrsis/scene/rectify.py: an area of interest on a raster placed by ground
control points or RPCs only is cut from the rectified north-up grid, and only that window is
warped. References are independent of the cut: the north-up raster the GCPs were computed from
(exactly), and the whole rectified scene segmented without an area."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
from _fixtures import RedPixels
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.features import rasterize
from rasterio.rpc import RPC
from rasterio.windows import from_bounds
from shapely.geometry import Polygon, box, shape
from shapely.ops import unary_union

from rrsis.scene import AOIOutsideError, area_of_interest, open_aoi_scene, open_scene, segment_scene
from rrsis.scene.read import NoValidPixelsError
from rrsis.scene.rectify import ReducedReads

UTM = "EPSG:32633"
H, W = 96, 128
NORTH_UP = Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0)  # 2 m pixels
# A pentagon over the red block's edge (rows 20-50, columns 70-110: x 500140-500220, y 3999900-3999960).
PENTAGON = Polygon([(500121.0, 3999971.0), (500191.0, 3999975.0), (500231.0, 3999929.0),
                    (500199.0, 3999881.0), (500109.0, 3999899.0)])
DOCS = Path(__file__).resolve().parents[2] / "docs" / "guides" / "geotiff.md"


@pytest.fixture(scope="module")
def red(tiny_model):
    return RedPixels(tiny_model)


def gcps_of(affine, height=H, width=W):
    """GCPs at the corners and the centre, placed exactly by ``affine``."""
    return [GroundControlPoint(row=r, col=c, x=(affine @ (c, r))[0], y=(affine @ (c, r))[1])
            for r, c in ((0, 0), (0, width), (height, 0), (height, width), (height / 2, width / 2))]


def write(path, **place):
    """uint8 ``[3, H, W]`` textured ground with a red block (rows 20-50, columns 70-110)."""
    data = np.random.default_rng(3).integers(20, 120, (3, H, W)).astype(np.uint8)
    data[0, 20:50, 70:110] = 240
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", **place) as ds:
        ds.write(data)
    return str(path)


def linear_rpc():
    """RPCs whose row and column are linear in latitude and longitude: 0.001° per pixel."""
    zero = [0.0] * 20
    one, row, col = list(zero), list(zero), list(zero)
    one[0], row[2], col[1] = 1.0, -1.0, 1.0  # terms 1, longitude, latitude (RPC00B order)
    return RPC(height_off=0.0, height_scale=100.0, lat_off=45.0, lat_scale=0.001 * H / 2, long_off=15.0,
               long_scale=0.001 * W / 2, line_off=H / 2, line_scale=H / 2, samp_off=W / 2, samp_scale=W / 2,
               line_num_coeff=row, line_den_coeff=one, samp_num_coeff=col, samp_den_coeff=one,
               err_bias=0.0, err_rand=0.0)


def outlines(result):
    return unary_union([shape(f["geometry"]) for f in json.loads(Path(result.files["geojson"]).read_text())["features"]])


def test_an_area_on_a_gcp_copy_gives_the_north_up_rasters_answer(red, tmp_path):
    north = write(tmp_path / "north.tif", crs=UTM, transform=NORTH_UP)
    gcp = write(tmp_path / "gcp.tif", gcps=gcps_of(NORTH_UP), crs=UTM)
    kw = {"mode": "tiles", "tile": 64, "probabilities": True, "geojson_crs": "native", "simplify": 0.0,
          "return_mask": True, "aoi": PENTAGON, "aoi_crs": UTM}
    (a,) = segment_scene(red, north, "the red building", out=tmp_path / "north", **kw)
    with pytest.warns(UserWarning, match=r"rectified onto a north-up grid.*area of interest's window"):
        (g,) = segment_scene(red, gcp, "the red building", out=tmp_path / "gcp", **kw)
    # Independently of rrsis: rasterio's window of the pentagon on the north-up grid.
    w = from_bounds(*PENTAGON.bounds, transform=NORTH_UP)
    expected = (int(w.row_off), int(w.col_off), int(np.ceil(w.row_off + w.height)), int(np.ceil(w.col_off + w.width)))
    assert a.window == g.window == expected and g.shape == a.shape
    with rasterio.open(a.files["mask"]) as ma, rasterio.open(g.files["mask"]) as mg:
        assert mg.crs == ma.crs and mg.shape == ma.shape
        assert mg.transform.almost_equals(NORTH_UP @ Affine.translation(expected[1], expected[0]), precision=1e-6)
        inside = rasterize([(PENTAGON, 1)], out_shape=ma.shape, transform=ma.transform).astype(bool)
        np.testing.assert_array_equal(mg.read(1), ma.read(1))
        np.testing.assert_array_equal(mg.dataset_mask() > 0, inside)  # nodata outside the pentagon
        values = mg.read(1)
    assert 0.1 < (values[inside] >= 128).mean() < 0.9, "the test needs a mask with structure inside the area"
    np.testing.assert_array_equal(g.mask, a.mask)
    assert (g.area_px, g.n_polygons) == (a.area_px, a.n_polygons) and g.area_m2 == pytest.approx(a.area_m2)
    pa, pg = outlines(a), outlines(g)
    assert pg.hausdorff_distance(pa) < 2.0  # within a pixel (2 m)
    assert PENTAGON.buffer(1e-3).contains(pg)  # clipped to the area (coordinates to the millimetre)


def test_an_rpc_raster_with_a_lon_lat_area_is_the_whole_scenes_answer_inside_it(red, tmp_path):
    rpc = write(tmp_path / "rpc.tif", rpcs=linear_rpc())
    with open_scene(rpc) as sc:
        grid, shape_ = sc.transform, (sc.height, sc.width)
    # Around the red block (columns 70-110, rows 20-50 from 14.936°E, 45.048°N), in lon/lat.
    area = Polygon([(15.0, 45.03), (15.05, 45.03), (15.05, 45.015), (15.03, 45.005), (15.0, 45.015)])
    kw = {"mode": "tiles", "tile": 64, "geojson_crs": "native", "simplify": 0.0, "return_mask": True}
    with pytest.warns(UserWarning, match="RPCs"):
        (whole,) = segment_scene(red, rpc, "the red building", out=tmp_path / "whole", **kw)
    with pytest.warns(UserWarning, match=r"RPCs.*only the area of interest's window is read"):
        (part,) = segment_scene(red, rpc, "the red building", out=tmp_path / "part", aoi=area, **kw)
    r0, c0, r1, c1 = part.window
    w = from_bounds(*area.bounds, transform=grid)
    assert (r0, c0) == (int(w.row_off + 1e-6), int(w.col_off + 1e-6)) and (r1, c1) <= shape_
    assert part.shape == (r1 - r0, c1 - c0) < shape_
    with rasterio.open(part.files["mask"]) as m:
        assert m.crs == "EPSG:4326" and m.transform.almost_equals(grid @ Affine.translation(c0, r0), precision=1e-9)
        inside = rasterize([(area, 1)], out_shape=m.shape, transform=m.transform).astype(bool)
        np.testing.assert_array_equal(m.dataset_mask() > 0, inside)
    cut = whole.mask[r0:r1, c0:c1]
    assert 0.1 < cut[inside].mean() < 0.9, "the test needs a mask with structure inside the area"
    np.testing.assert_array_equal(part.mask, cut & inside)
    assert area.buffer(1e-7).contains(outlines(part))  # longitudes and latitudes to 7 decimals


def test_an_area_outside_the_rectified_footprint_is_outside_the_scene(tmp_path):
    gcp = write(tmp_path / "gcp.tif", gcps=gcps_of(NORTH_UP), crs=UTM)
    far = area_of_interest(box(600000.0, 3999850.0, 600100.0, 3999950.0), UTM)
    with pytest.raises(AOIOutsideError, match=r"gcp\.tif \(rectified onto a north-up grid\): the area of interest "
                                              r"does not overlap the scene.*scene bounds \(500000\.00"):
        open_aoi_scene(gcp, far)
    # Inside the rotated raster's north-up grid, but in a corner beyond its footprint: all nodata.
    rot = write(tmp_path / "rot.tif", gcps=gcps_of(NORTH_UP @ Affine.rotation(20)), crs=UTM)
    with open_scene(rot) as sc:
        x, y = sc.transform @ (1, 1)
        assert not sc.read_valid((0, 0, 4, 4)).any()
    with pytest.raises(NoValidPixelsError, match=r"rot\.tif: every pixel .* of the rectified grid\) is nodata"):
        open_aoi_scene(rot, area_of_interest(box(x - 1, y - 1, x + 1, y + 1), UTM))
    # GCPs GDAL cannot fit give no grid to cut the area from: the reason, named.
    few = write(tmp_path / "few.tif", gcps=gcps_of(NORTH_UP)[:2], crs=UTM)
    with pytest.raises(ValueError, match=r"few\.tif: .*2 ground control point.*an area of interest is cut from "
                                         r"the rectified grid"):
        open_aoi_scene(few, far)


def test_crs_none_is_refused_and_the_docs_say_areas_work_on_these_rasters(tmp_path):
    gcp = write(tmp_path / "gcp.tif", gcps=gcps_of(NORTH_UP), crs=UTM)
    area = area_of_interest(PENTAGON, UTM)
    sc, win = open_aoi_scene(gcp, area)  # before: refused, "rectify the raster first"
    with sc:
        r0, c0, r1, c1 = win.window
        assert sc.rectified and isinstance(sc._ds, ReducedReads) and (sc.height, sc.width) == (r1 - r0, c1 - c0)
    with pytest.raises(ValueError, match=r"crs='none' keeps its raw pixel grid, on which no area of interest"):
        open_aoi_scene(gcp, area, crs="none")
    text = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "has no pixel grid to cut a window from" not in text
    assert "An area on a raster placed by GCPs or RPCs only is cut from its rectified grid" in text


def test_only_the_area_is_warped_from_a_large_gcp_raster(tmp_path):
    # The bytes read from the raster, counted by the kernel (/proc/self/io's rchar): a 64² area
    # of a 4096² raster (48 MiB uncompressed) reads a small part of it; the whole rectified scene
    # reads all of it (which shows the count sees the reads).
    if not os.path.exists("/proc/self/io"):
        pytest.skip("needs Linux's /proc/self/io")

    def rchar():
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("rchar"))

    n = 4096
    t = NORTH_UP @ Affine.rotation(10)
    path = tmp_path / "big.tif"
    with rasterio.open(path, "w", driver="GTiff", height=n, width=n, count=3, dtype="uint8", tiled=True,
                       gcps=gcps_of(t, n, n), crs=UTM) as ds:
        ds.write(np.full((3, n, n), 100, np.uint8))
    size = path.stat().st_size
    x, y = t @ (n / 2, n / 2)
    area = area_of_interest(box(x - 64, y - 64, x + 64, y + 64), UTM)
    open_aoi_scene(path, area)[0].close()  # once before counting: PROJ's and GDAL's own files
    before = rchar()
    sc, win = open_aoi_scene(path, area)
    with sc:
        pixels, valid = sc.read()
    read = rchar() - before
    r0, c0, r1, c1 = win.window
    assert valid.all() and pixels.shape[:2] == (r1 - r0, c1 - c0) and np.allclose(pixels, 100 / 255)
    assert read < 0.1 * size, f"{read} bytes read for a 64² area of a {size}-byte raster"
    before = rchar()
    open_scene(path).close()
    assert rchar() - before > size


@pytest.mark.parametrize("kind", ["nodata", "palette"])
def test_the_window_of_a_rotated_raster_is_the_whole_rectified_scenes_pixels(tmp_path, kind):
    # The cut warps the window alone; its pixels and footprint are the whole view's, cropped.
    t = NORTH_UP @ Affine.rotation(15)
    path = tmp_path / "rot.tif"
    if kind == "nodata":
        write(path, gcps=gcps_of(t), crs=UTM, nodata=0)
    else:
        idx = np.random.default_rng(0).integers(0, 4, (1, H, W)).astype(np.uint8)
        with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=1, dtype="uint8", gcps=gcps_of(t),
                           crs=UTM, photometric="palette") as ds:
            ds.write(idx)
            ds.write_colormap(1, {0: (250, 0, 0, 255), 1: (0, 250, 0, 255), 2: (0, 0, 250, 255), 3: (9, 9, 9, 255)})
    with open_scene(path) as sc:
        whole, valid = sc.read()
        x, y = t @ (W - 10, H / 2)  # an area over the footprint's east edge
    sc, win = open_aoi_scene(path, area_of_interest(box(x - 40, y - 30, x + 40, y + 30), UTM))
    r0, c0, r1, c1 = win.window
    with sc:
        part, part_valid = sc.read()
    assert 0.2 < part_valid.mean() < 0.9, "the test needs the footprint's edge inside the window"
    np.testing.assert_array_equal(part, whole[r0:r1, c0:c1])
    np.testing.assert_array_equal(part_valid, valid[r0:r1, c0:c1])


def test_the_models_band_names_are_read_and_checked_on_the_rectified_grid(tmp_path):
    """As open_scene does on a north-up raster: the named bands in the model's order, a raster of the
    model's band count described otherwise read by position with a warning, another count refused
    naming its bands."""
    names = ("B04", "B03", "B02", "B08")
    levels = np.arange(1, 7, dtype=np.uint16)[:, None, None] * 1000 * np.ones((6, H, W), np.uint16)

    def gcp_raster(name, count, described):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", height=H, width=W, count=count, dtype="uint16",
                           gcps=gcps_of(NORTH_UP), crs=UTM) as ds:
            ds.write(levels[:count])
            for i, d in enumerate(described or [], 1):
                ds.set_band_description(i, d)
        return str(tmp_path / name)

    area = area_of_interest(PENTAGON, crs=UTM)
    kw = {"channels": 4, "names": names, "scale": 65535}
    stack = gcp_raster("stack.tif", 6, ["B01", "B02", "B03", "B04", "B05", "B08"])
    sc, _ = open_aoi_scene(stack, area, **kw)
    with sc:
        assert sc.bands == (4, 3, 2, 6)
        pixels, valid = sc.read()
        np.testing.assert_allclose(pixels[valid].max(axis=0) * 65535, [4000, 3000, 2000, 6000], rtol=1e-4)
    other = gcp_raster("other.tif", 4, ["B02", "B03", "B04", "B05"])
    with pytest.warns(UserWarning) as heard:
        sc, _ = open_aoi_scene(other, area, **kw)
    sc.close()
    said = [str(w.message) for w in heard if "backbone.band_names" in str(w.message)]
    assert len(said) == 1 and "described B02, B03, B04, B05" in said[0] and "B08 cannot" in said[0]
    bare = gcp_raster("bare.tif", 6, None)
    with pytest.raises(ValueError, match=r"6 band.*backbone.band_names|band_names.*6"):
        open_aoi_scene(bare, area, **kw)
