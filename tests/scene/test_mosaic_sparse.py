"""build_vrt warns when its tiles lie far apart: the mosaic is then mostly nodata."""

import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin

from rrsis.scene.mosaic import build_vrt


def _tile(path, left, top, size=32):
    data = np.full((3, size, size), 120, np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(left, top, 1.0, 1.0)) as ds:
        ds.write(data)
    return str(path)


def test_tiles_far_apart_warn_and_neighbours_do_not(tmp_path):
    a = _tile(tmp_path / "a.tif", 500000, 4000000)
    b = _tile(tmp_path / "b.tif", 500032, 4000000)  # right beside a
    far = _tile(tmp_path / "far.tif", 500320, 4000000)  # 288 pixels east of a
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_vrt([a, b], tmp_path / "near.vrt")
    with pytest.warns(UserWarning, match=r"the 2 tiles cover \d+\.\d% of the mosaic's 352×.* far apart"):
        out = build_vrt([a, far], tmp_path / "far.vrt")
    with rasterio.open(out) as ds:
        covered = 2 * 32 * 32 / (ds.width * ds.height)
    assert covered < 0.25


def test_a_rebuild_leaves_no_stale_warped_tiles(tmp_path):
    a = _tile(tmp_path / "a.tif", 500000, 4000000)
    b = _tile(tmp_path / "b.tif", 500032, 4000000)
    off = _tile(tmp_path / "off.tif", 500032.5, 4000000)  # half a pixel off a's grid: warped
    off2 = _tile(tmp_path / "off2.tif", 500000.5, 4000032)
    warped = tmp_path / "m_warped"
    build_vrt([a, off], tmp_path / "m.vrt")
    assert sorted(p.name for p in warped.glob("*.vrt")) == ["off.vrt", "off.warp.vrt"]
    build_vrt([a, off2], tmp_path / "m.vrt")  # another tile warped: the first one's documents go
    assert sorted(p.name for p in warped.glob("*.vrt")) == ["off2.vrt", "off2.warp.vrt"]
    with rasterio.open(tmp_path / "m.vrt") as ds:
        assert ds.read(1)[-8:, 4:8].min() == 120  # off2's pixels, read through its document
    build_vrt([a, b], tmp_path / "m.vrt")  # one grid: nothing warped, the folder goes
    assert not warped.exists()
    (tmp_path / "keep_warped").mkdir()
    (tmp_path / "keep_warped" / "notes.txt").write_text("mine")
    build_vrt([a, off], tmp_path / "keep.vrt")  # only .vrt documents are ever removed
    build_vrt([a, b], tmp_path / "keep.vrt")
    assert (tmp_path / "keep_warped" / "notes.txt").read_text() == "mine"
