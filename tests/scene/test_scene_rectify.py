"""rrsis/scene/rectify.py: rasters georeferenced by ground control points (or RPCs) only are read
rectified onto a north-up grid. The reference is independent of the warp: the same pixels with
an affine transform, and GCPs computed exactly from that affine."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from rrsis.scene import open_scene, segment_scene

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import RedPixels
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.features import rasterize
from rasterio.rpc import RPC

UTM = "EPSG:32633"
H, W = 96, 128
NORTH_UP = Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0)
CORNERS_AND_CENTRE = [(0, 0), (0, W), (H, 0), (H, W), (H / 2, W / 2)]


def pixels():
    """uint8 ``[3, H, W]``: textured ground with a red block (rows 20-50, columns 70-110)."""
    rng = np.random.default_rng(3)
    data = rng.integers(20, 120, (3, H, W)).astype(np.uint8)
    obj = np.zeros((H, W), bool)
    obj[20:50, 70:110] = True
    data[0][obj] = 240
    return data, obj


def gcps_of(affine, positions=CORNERS_AND_CENTRE):
    """Ground control points at ``(row, col)`` pixel positions, placed exactly by ``affine``."""
    return [GroundControlPoint(row=r, col=c, x=(affine @ (c, r))[0], y=(affine @ (c, r))[1])
            for r, c in positions]


def write(path, *, transform=None, gcps=None, rpcs=None, crs=UTM):
    data, obj = pixels()
    kw = {"crs": crs, "transform": transform} if transform is not None else {}
    if gcps is not None:
        kw = {"gcps": gcps, "crs": crs}
    if rpcs is not None:
        kw = {"rpcs": rpcs}
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8", **kw) as ds:
        ds.write(data)
    return obj


@pytest.fixture(scope="module")
def red(tiny_model):
    return RedPixels(tiny_model)


def test_gcps_from_an_affine_give_the_north_up_files_outputs(tiny_model, tmp_path):
    # Five GCPs lying exactly on the affine: GDAL's order-1 fit is that affine, its grid the
    # source grid, and nearest neighbour copies each pixel. Tolerance: none, pixel for pixel,
    # except a whole-scene reduced read (the global pass), which the warper averages straight
    # from the source: within one grey level (1/255) of GDAL's average of the north-up file.
    write(tmp_path / "north.tif", transform=NORTH_UP)
    write(tmp_path / "gcp.tif", gcps=gcps_of(NORTH_UP))
    with open_scene(tmp_path / "north.tif") as a, open_scene(tmp_path / "gcp.tif") as g:
        assert (g.height, g.width, g.crs) == (a.height, a.width, a.crs) and g.rectified and not a.rectified
        assert g.transform.almost_equals(a.transform, precision=1e-6)
        for window, shape in ((None, None), ((-16, -16, 48, 48), None), ((0, 0, 64, 64), (32, 32))):
            np.testing.assert_array_equal(g.read(window, shape)[0], a.read(window, shape)[0])
            np.testing.assert_array_equal(g.read(window, shape)[1], a.read(window, shape)[1])
        (pg, vg), (pa, va) = g.read(None, (40, 52)), a.read(None, (40, 52))
        np.testing.assert_allclose(pg, pa, atol=1 / 255 + 1e-6)
        np.testing.assert_array_equal(vg, va)
    results = {}
    for name in ("north", "gcp"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            (results[name],) = segment_scene(tiny_model, tmp_path / f"{name}.tif", "the red building",
                                             mode="tiles", tile=64, out=tmp_path / name, probabilities=True,
                                             geojson_crs="native", return_mask=True)
        said = [str(w.message) for w in seen if "ground control points" in str(w.message)]
        assert bool(said) == (name == "gcp")
    assert "5 ground control points" in said[0] and "rectified" in said[0] and UTM in said[0]
    a, g = results["north"], results["gcp"]
    np.testing.assert_array_equal(g.mask, a.mask)
    assert (g.area_px, g.area_m2, g.n_polygons) == (a.area_px, a.area_m2, a.n_polygons)
    with rasterio.open(a.files["mask"]) as ma, rasterio.open(g.files["mask"]) as mg:
        assert mg.crs == ma.crs and mg.shape == ma.shape
        assert max(abs(x - y) for x, y in zip(mg.bounds, ma.bounds)) < 1e-6
        np.testing.assert_array_equal(mg.read(1), ma.read(1))
    fa, fg = (json.loads(Path(r.files["geojson"]).read_text())["features"] for r in (a, g))
    for x, y in zip(fa, fg):
        np.testing.assert_allclose(np.asarray(y["geometry"]["coordinates"][0]),
                                   np.asarray(x["geometry"]["coordinates"][0]), atol=1e-6)


def test_gcps_of_a_rotated_raster_give_a_north_up_grid_over_its_footprint(red, tmp_path):
    rotated = NORTH_UP @ Affine.rotation(20)
    obj = write(tmp_path / "rot.tif", gcps=gcps_of(rotated))
    with pytest.warns(UserWarning, match="rectified onto a north-up grid"):
        (res,) = segment_scene(red, tmp_path / "rot.tif", "the red building", mode="global",
                               out=tmp_path / "rot", geojson_crs="native", simplify=0.0, return_mask=True)
    # Every raw pixel's centre lies on the grid (GDAL rounds the grid to whole pixels, so the
    # footprint's outer corners may overhang it by less than a pixel).
    rows, cols = np.mgrid[0:H, 0:W] + 0.5
    xs, ys = rotated.a * cols + rotated.b * rows + rotated.c, rotated.d * cols + rotated.e * rows + rotated.f
    with rasterio.open(res.files["mask"]) as m:
        t = m.transform
        assert m.crs == UTM and t.b == t.d == 0 and t.e < 0  # north-up
        left, bottom, right, top = m.bounds
        assert left < xs.min() and xs.max() < right and bottom < ys.min() and ys.max() < top
        inside = m.read_masks(1) > 0  # the raw footprint; nodata around it
        assert 0.97 < inside.sum() * abs(t.a * t.e) / (H * W * 4.0) < 1.03
        # Independent reference: the red block placed by the rotated affine, drawn on the grid.
        block = [(c, r) for r, c in ((20, 70), (20, 110), (50, 110), (50, 70), (20, 70))]
        truth = rasterize([({"type": "Polygon", "coordinates": [[rotated @ p for p in block]]}, 1)],
                          m.shape, transform=t) > 0
        assert (res.mask & truth).sum() / (res.mask | truth).sum() > 0.9
    assert res.area_m2 == pytest.approx(obj.sum() * 4.0, rel=0.05)  # ground m², 2 m pixels


@pytest.mark.parametrize(("positions", "why"), [
    ([(0, 0)], "1 ground control point"),
    ([(0, 0), (H, W)], "2 ground control point"),
    ([(0, 0), (H / 4, W / 4), (H / 2, W / 2), (H, W)], "on one line in the image"),
])
def test_too_few_or_collinear_gcps_are_refused_naming_the_file(red, tmp_path, positions, why):
    path = tmp_path / "few.tif"
    write(path, gcps=gcps_of(NORTH_UP, positions))
    with pytest.raises(ValueError, match=rf"few\.tif: .*{why}.*gdalwarp.*--crs none"):
        segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p")
    (res,) = segment_scene(red, path, "the red building", mode="global", out=tmp_path / "p", crs="none")
    assert sorted(res.files) == ["mask", "overlay"] and res.shape == (H, W)  # the raw grid, as PNGs


def test_crs_none_keeps_the_raw_grid_of_a_gcp_raster(red, tmp_path):
    obj = write(tmp_path / "rot.tif", gcps=gcps_of(NORTH_UP @ Affine.rotation(20)))
    with open_scene(tmp_path / "rot.tif", crs="none") as sc:
        assert (sc.height, sc.width) == (H, W) and not sc.georeferenced and sc.rectified is None
    (res,) = segment_scene(red, tmp_path / "rot.tif", "the red building", mode="global", crs="none",
                           out=tmp_path / "p", return_mask=True)
    assert res.mask.shape == (H, W) and (res.mask & obj).sum() / (res.mask | obj).sum() > 0.95  # unrotated


def linear_rpc():
    """RPCs whose row and column are linear in latitude and longitude: 0.001° per pixel."""
    zero = [0.0] * 20
    one, row, col = list(zero), list(zero), list(zero)
    one[0], row[2], col[1] = 1.0, -1.0, 1.0  # terms 1, longitude, latitude (RPC00B order)
    return RPC(height_off=0.0, height_scale=100.0, lat_off=45.0, lat_scale=0.001 * H / 2, long_off=15.0,
               long_scale=0.001 * W / 2, line_off=H / 2, line_scale=H / 2, samp_off=W / 2, samp_scale=W / 2,
               line_num_coeff=row, line_den_coeff=one, samp_num_coeff=col, samp_den_coeff=one,
               err_bias=0.0, err_rand=0.0)


def test_an_rpc_only_raster_is_rectified_to_wgs84(red, tmp_path):
    obj = write(tmp_path / "rpc.tif", rpcs=linear_rpc())
    with open_scene(tmp_path / "rpc.tif") as sc:
        assert sc.crs == "EPSG:4326" and "RPCs" in sc.rectified
        left, top = sc.transform @ (0, 0)
        assert left == pytest.approx(15.0 - 0.001 * W / 2, abs=1e-3) and top == pytest.approx(45.0 + 0.001 * H / 2, abs=1e-3)
        np.testing.assert_allclose(sc.read()[0][1:-1, 1:-1], np.moveaxis(pixels()[0], 0, -1)[1:-1, 1:-1] / 255.0, atol=1e-6)
    with pytest.warns(UserWarning, match="RPCs"):
        (res,) = segment_scene(red, tmp_path / "rpc.tif", "the red building", mode="global", out=tmp_path / "p")
    # Ground m² on the ellipsoid: 0.001° is about 111 m north-south and 79 m east-west at 45° N.
    assert res.area_m2 == pytest.approx(obj.sum() * 111.1 * 78.8, rel=0.02)


def write_multiband(path, nodata, **place):
    """4 bands of uint16 (R, G, B, NIR), a 0 strip on the west edge."""
    data = (np.random.default_rng(4).integers(1, 10000, (4, H, W))).astype(np.uint16)
    data[:, :, :7] = 0
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=4, dtype="uint16", nodata=nodata,
                       **place) as ds:
        ds.write(data)


def test_a_multiband_gcp_raster_keeps_its_nodata_and_footprint(tmp_path):
    # 16-bit, 4 bands: GDAL takes an added alpha band as the mask only of 2- or 4-band rasters,
    # so the footprint of a 5-band view (4 + alpha) is read from its alpha band by the scene.
    write_multiband(tmp_path / "north.tif", 0, crs=UTM, transform=NORTH_UP)
    write_multiband(tmp_path / "gcp.tif", 0, crs=UTM, gcps=gcps_of(NORTH_UP))
    with open_scene(tmp_path / "north.tif") as a, open_scene(tmp_path / "gcp.tif") as g:
        assert g.stretch_range == a.stretch_range
        for window, shape in ((None, None), ((-5, -5, 90, 120), (41, 47))):
            np.testing.assert_array_equal(g.read(window, shape)[0], a.read(window, shape)[0])
            np.testing.assert_array_equal(g.read(window, shape)[1], a.read(window, shape)[1])
        (pg, vg), (pa, va) = g.read(None, (37, 51)), a.read(None, (37, 51))  # the global pass's read
        assert np.abs(pg - pa).mean() < 1e-3 and (vg == va).mean() > 0.97
    write_multiband(tmp_path / "rot.tif", None, crs=UTM, gcps=gcps_of(NORTH_UP @ Affine.rotation(20)))
    with open_scene(tmp_path / "rot.tif", stretch=None) as r:
        valid = r.read_valid((0, 0, r.height, r.width))
        assert 0.97 < valid.sum() / (H * W) < 1.03  # the raw footprint, not the whole grid
        assert not valid[0, 0] and not valid[-1, -1]  # corners of the grid lie outside it


def test_whole_scene_reduced_reads_are_warped_straight_to_the_reduced_grid(tmp_path):
    # The reduced view (the same transformer, another destination) against GDAL's reduced read
    # of the full-resolution view, which warps every pixel first: the same smooth picture.
    from rasterio.enums import Resampling

    from rrsis.scene.rectify import ReducedReads

    yy, xx = np.mgrid[0:H, 0:W]
    smooth = np.stack([xx * 2, yy * 2, (xx + yy)]).astype(np.uint8)
    with rasterio.open(tmp_path / "rot.tif", "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8",
                       gcps=gcps_of(NORTH_UP @ Affine.rotation(20)), crs=UTM) as ds:
        ds.write(smooth)
    with open_scene(tmp_path / "rot.tif") as sc:
        assert isinstance(sc._ds, ReducedReads)
        full = sc._ds._view  # the view GDAL reads at full resolution
        for shape, how in (((33, 41), Resampling.average), ((50, 57), Resampling.nearest)):
            got = sc._ds.read([1, 2, 3], out_shape=(3, *shape), resampling=how).astype(float)
            want = full.read([1, 2, 3], out_shape=(3, *shape), resampling=how).astype(float)
            a, b = (d.read(4, out_shape=shape, resampling=how) >= 128 for d in (sc._ds, full))
            assert (a == b).mean() > 0.95  # the footprint, to a pixel at its edge
            assert np.abs(got - want)[:, a & b].mean() < 2.0  # grey levels, of 0-255
