"""segment_scene's GIS outputs: the mask (or probability) COG and the overlay a GIS places,
read back with rasterio and compared with the scene they came from."""

import os
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from affine import Affine
from rasterio.warp import transform as warp_points

import rrsis.scene.api as scene_api
from rrsis.scene import open_scene, segment_scene
from rrsis.scene.cog import cog_problems
from rrsis.scene.write import write_overlay

TRANSFORM = Affine(0.5, 0.05, 399960.0, 0.02, -0.5, 5000040.0)  # sheared, UTM metres
CRS = "EPSG:32633"
H, W = 600, 700


def write_scene(path, h=H, w=W, *, crs=CRS, transform=TRANSFORM):
    rng = np.random.default_rng(1)
    data = rng.integers(1, 255, (3, h, w)).astype(np.uint8)
    data[0, h // 3: h // 2, w // 4: w // 2] = 255
    data[:, h - 50:, :80] = 0  # a nodata corner
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8", crs=crs,
                       transform=transform, nodata=0) as ds:
        ds.write(data)
    return path


@pytest.fixture(scope="module")
def scene_tif(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("cog") / "scene.tif")


def assert_placed_like(picture, scene_path, shape):
    """The picture is read with the scene's CRS and the scene's transform at its own resolution:
    the same corners on the map."""
    with rasterio.open(scene_path) as src, rasterio.open(picture) as pic:
        assert pic.crs == src.crs
        assert (pic.height, pic.width) == shape
        expected = src.transform @ Affine.scale(src.width / pic.width, src.height / pic.height)
        assert pic.transform.almost_equals(expected, precision=1e-9)
        for row, col in [(0, 0), (pic.height, pic.width), (0, pic.width), (pic.height, 0)]:
            corner = src.transform @ (col * src.width / pic.width, row * src.height / pic.height)
            np.testing.assert_allclose(pic.transform @ (col, row), corner, rtol=0, atol=1e-6)


def test_segment_scene_writes_a_mask_cog_and_an_overlay_a_gis_places(tiny_model, scene_tif, tmp_path):
    (res,) = segment_scene(tiny_model, scene_tif, "the red building", mode="global", global_size=64, out=tmp_path / "pred",
                           return_mask=True)
    assert sorted(res.files) == ["geojson", "mask", "overlay", "overlay_crs", "overlay_world"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # no temporaries left beside them
        "pred.geojson", "pred_mask.tif", "pred_overlay.pgw", "pred_overlay.png", "pred_overlay.png.aux.xml"]
    assert cog_problems(res.files["mask"]) == []
    with rasterio.open(res.files["mask"]) as ds:
        assert ds.overviews(1) == [2] and ds.block_shapes == [(512, 512)]
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(ds.read(1), np.where(res.mask, 255, 0))
        assert not ds.dataset_mask()[H - 50:, :80].any()
    assert_placed_like(res.files["overlay"], scene_tif, (H, W))
    world = [float(v) for v in Path(res.files["overlay_world"]).read_text().split()]
    # A world file's last two numbers are the centre of the upper-left pixel, not its corner.
    assert world == pytest.approx([0.5, 0.02, 0.05, -0.5, 399960.0 + 0.25 + 0.025, 5000040.0 + 0.01 - 0.25])


def test_overlay_of_a_large_scene_is_placed_at_its_own_resolution(tmp_path):
    path = write_scene(tmp_path / "big.tif", 1100, 900)
    with open_scene(path) as scene:
        write_overlay(tmp_path / "ov.png", scene, np.zeros((1100, 900), bool), max_side=256,
                      world_file=tmp_path / "ov.pgw", crs_file=tmp_path / "ov.png.aux.xml")
    assert_placed_like(tmp_path / "ov.png", path, (256, 209))


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3035"])  # latitude-first and northing-first axes
def test_overlay_crs_sidecar_round_trips_axis_order(tmp_path, crs):
    t = Affine(0.001, 0.0, 12.5, 0.0, -0.001, 41.9) if crs == "EPSG:4326" else Affine(10, 0, 4321000, 0, -10, 3210000)
    path = write_scene(tmp_path / "s.tif", 40, 60, crs=crs, transform=t)
    with open_scene(path) as scene:
        write_overlay(tmp_path / "o.png", scene, np.zeros((40, 60), bool),
                      world_file=tmp_path / "o.pgw", crs_file=tmp_path / "o.png.aux.xml")
    assert_placed_like(tmp_path / "o.png", path, (40, 60))
    with rasterio.open(tmp_path / "o.png") as pic:
        lon, lat = warp_points(pic.crs, "EPSG:4326", [pic.transform.c], [pic.transform.f])
    expected = warp_points(crs, "EPSG:4326", [t.c], [t.f])
    np.testing.assert_allclose([lon[0], lat[0]], [expected[0][0], expected[1][0]], atol=1e-9)


def test_probability_cog_holds_255p_with_averaged_overviews(tiny_model, scene_tif, tmp_path):
    (res,) = segment_scene(tiny_model, scene_tif, "the red building", mode="global", global_size=64, out=tmp_path / "p",
                           probabilities=True)
    assert cog_problems(res.files["mask"]) == []
    with rasterio.open(res.files["mask"]) as ds:
        full = ds.read(1).astype(float)
        valid = ds.dataset_mask() > 0
        half = ds.read(1, out_shape=(H // 2, W // 2)).astype(float)
    assert len(np.unique(full)) > 2  # probabilities, not 0/255
    blocks = full.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))
    whole = valid.reshape(H // 2, 2, W // 2, 2).all(axis=(1, 3))
    assert np.abs(half - blocks)[whole].max() <= 1.0  # the 2x2 mean, rounded


def test_a_failure_mid_scene_leaves_no_file_and_no_temporary(tiny_model, scene_tif, tmp_path, monkeypatch):
    real = scene_api.predict_strips

    def fails_after_one_strip(*a, **k):
        for i, strip in enumerate(real(*a, **k)):
            if i == 1:
                raise RuntimeError("out of memory (simulated)")
            yield strip

    monkeypatch.setattr(scene_api, "predict_strips", fails_after_one_strip)
    with pytest.raises(RuntimeError, match="simulated"):
        segment_scene(tiny_model, scene_tif, "the red building", mode="global", global_size=64, strip_rows=100,
                      out=tmp_path / "x")
    assert os.listdir(tmp_path) == []
