"""``rrsis.scene.mosaic.build_vrt`` and ``rrsis predict --mosaic``: tiles on one grid read as one scene (tiles off
it: tests/scene/test_mosaic_warp.py)."""

from __future__ import annotations

import numpy as np
import pytest

import rrsis
from rrsis.cli import main
from rrsis.scene.mosaic import build_vrt

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine, from_origin

CRS = "EPSG:32633"
X0, Y0, PX = 500000.0, 4000000.0, 0.5


def _tile(path, data, col, row, crs=CRS, px=PX, nodata=None, transform=None):
    count, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=count, dtype=data.dtype, crs=crs,
                       transform=transform or from_origin(X0 + col * px, Y0 - row * px, px, px),
                       nodata=nodata) as ds:
        ds.write(data)


def _grid(folder, nodata=None):
    """Three tiles on one grid with a gap at the bottom right: (rows, cols) offsets in pixels."""
    rng = np.random.default_rng(0)
    layout = {"a": (0, 0, 40, 64), "b": (0, 64, 40, 48), "c": (40, 0, 24, 64)}  # row, col, h, w
    full = np.full((3, 64, 112), 0 if nodata is None else nodata, np.uint8)
    for name, (r, c, h, w) in layout.items():
        data = rng.integers(1, 255, (3, h, w), dtype=np.uint8)
        _tile(folder / f"{name}.tif", data, c, r, nodata=nodata)
        full[:, r:r + h, c:c + w] = data
    return full


def test_the_mosaic_reads_every_tile_in_its_place(tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    full = _grid(tiles, nodata=0)
    vrt = build_vrt(str(tiles / "*.tif"), tmp_path / "area.vrt")
    with rasterio.open(vrt) as ds:
        assert (ds.width, ds.height, ds.count) == (112, 64, 3)
        assert ds.crs == rasterio.crs.CRS.from_user_input(CRS)
        assert ds.transform == from_origin(X0, Y0, PX, PX)
        assert ds.nodata == 0
        np.testing.assert_array_equal(ds.read(), full)
    # Tiles are named relative to the VRT: the folder moves with it.
    assert 'relativeToVRT="1">tiles/a.tif<' in vrt.read_text()
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "tiles").mkdir()
    for f in tiles.iterdir():
        (moved / "tiles" / f.name).write_bytes(f.read_bytes())
    (moved / "area.vrt").write_text(vrt.read_text())
    with rasterio.open(moved / "area.vrt") as ds:
        np.testing.assert_array_equal(ds.read(), full)


@pytest.mark.parametrize("change", [
    {"px": 1.0},
    {"transform": from_origin(X0 + 64.25 * PX, Y0, PX, PX)},
    {"transform": Affine(PX, 0.1, X0 + 64 * PX, 0.0, -PX, Y0)},  # rotated
    {"transform": Affine(PX, 0.0, X0 + 64 * PX, 0.0, PX, Y0 - 8 * PX)},  # south-up
])
def test_a_tile_off_the_first_ones_grid_is_warped_onto_it(tmp_path, change):
    data = np.ones((3, 8, 8), np.uint8)
    _tile(tmp_path / "a.tif", data, 0, 0)
    _tile(tmp_path / "b.tif", 2 * data, 64, 0, **change)
    vrt = build_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")
    text = vrt.read_text()
    assert 'relativeToVRT="1">a.tif<' in text and 'relativeToVRT="1">m_warped/b.vrt<' in text
    with rasterio.open(vrt) as ds:
        assert ds.crs == rasterio.crs.CRS.from_user_input(CRS) and ds.transform.a == PX
        assert ((ds.transform.c - X0) / PX).is_integer() and ((ds.transform.f - Y0) / PX).is_integer()
        data, valid = ds.read(1), ds.read_masks(1) == 255
        assert set(np.unique(data[valid])) == {1, 2} and valid.sum() >= 2 * 64 - 16


def test_tiles_of_another_nodata_value_are_named(tmp_path):
    data = np.ones((3, 8, 8), np.uint8)
    _tile(tmp_path / "a.tif", data, 0, 0)
    _tile(tmp_path / "b.tif", data, 64, 0, nodata=7)
    with pytest.raises(ValueError, match="needs one nodata value") as err:
        build_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")
    assert "b.tif" in str(err.value)
    assert not (tmp_path / "m.vrt").exists()


def test_band_count_and_dtype_must_match_and_the_output_is_a_vrt(tmp_path):
    _tile(tmp_path / "a.tif", np.ones((3, 8, 8), np.uint8), 0, 0)
    _tile(tmp_path / "b.tif", np.ones((4, 8, 8), np.uint8), 8, 0)
    _tile(tmp_path / "c.tif", np.ones((3, 8, 8), np.uint16), 8, 0)
    with pytest.raises(ValueError, match=r"b\.tif has 4 band\(s\)"):
        build_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")
    with pytest.raises(ValueError, match=r"c\.tif has data type\(s\) \['uint16'\]"):
        build_vrt([tmp_path / "a.tif", tmp_path / "c.tif"], tmp_path / "m.vrt")
    with pytest.raises(ValueError, match=r"written as a \.vrt file"):
        build_vrt([tmp_path / "a.tif"], tmp_path / "m.tif")


def test_one_question_over_the_area_equals_the_same_pixels_as_one_geotiff(tmp_path, tiny_model):
    """Inference on the VRT reads the tiles window by window; its answer equals the answer on a
    GeoTIFF holding the same pixels (the independent reference: one file, no VRT)."""
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    full = _grid(tiles, nodata=None)
    one = tmp_path / "one.tif"
    _tile(one, full, 0, 0)
    vrt = build_vrt(tiles / "*.tif", tmp_path / "area.vrt")
    text = ["the red building"]
    kw = {"mode": "tiles", "tile": 64, "overlap": 0.25, "probabilities": True, "overwrite": True}
    a = rrsis.segment_scene(tiny_model, vrt, text, out=tmp_path / "v", **kw)[0]
    b = rrsis.segment_scene(tiny_model, one, text, out=tmp_path / "o", **kw)[0]
    with rasterio.open(a.files["mask"]) as da, rasterio.open(b.files["mask"]) as db:
        assert da.transform == db.transform and da.crs == db.crs and da.shape == (64, 112)
        np.testing.assert_array_equal(da.read(), db.read())



def test_predict_mosaic_writes_one_answer_for_the_area(tmp_path, saved_model, capsys):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _grid(tiles, nodata=0)
    argv = ["predict", "--model", str(saved_model), "--image", str(tiles / "*.tif"), "--mosaic",
            "--text", "the red building", "--out", str(tmp_path / "out" / "area"), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "area_mosaic.vrt" in out
    with rasterio.open(tmp_path / "out" / "area_mask.tif") as ds:
        assert ds.shape == (64, 112) and ds.transform == from_origin(X0, Y0, PX, PX)
    assert not (tmp_path / "out" / "a").exists()  # not a region of separate scenes
    # Again without --overwrite: refused before anything is computed, the VRT named.
    assert main(argv) == 2
    assert "area_mosaic.vrt" in capsys.readouterr().err
    # One image is no mosaic; --merged belongs to separate scenes.
    assert main(["predict", "--model", str(saved_model), "--image", str(tiles / "a.tif"), "--mosaic",
                 "--text", "x", "--out", str(tmp_path / "p")]) == 2
    assert "--mosaic joins several scenes" in capsys.readouterr().err
    assert main([*argv[:-3], "--out", str(tmp_path / "q"), "--merged", str(tmp_path / "m.gpkg")]) == 2
    assert "not to --mosaic" in capsys.readouterr().err


def test_urls_are_named_as_gdal_reads_them_inside_a_vrt(tmp_path):
    from rrsis.scene.mosaic import _source_name

    assert _source_name("https://host/x/a.tif", tmp_path) == ("/vsicurl/https://host/x/a.tif", False)
    assert _source_name("s3://bucket/key/a.tif", tmp_path) == ("/vsis3/bucket/key/a.tif", False)
    assert _source_name("/vsizip/z.zip/a.tif", tmp_path) == ("/vsizip/z.zip/a.tif", False)
    assert _source_name(str(tmp_path / "t" / "a.tif"), tmp_path) == ("t/a.tif", True)
