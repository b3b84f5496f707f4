"""Paletted rasters are read as the colours of their table, not as indices: in the whole-scene
reader (rrsis/scene/rectify.py), ``model.predict`` and ``read_image``. The reference is the RGB
GeoTIFF holding the same colours, expanded here with numpy."""

import numpy as np
import pytest
from PIL import Image

from rrsis.data import read_image
from rrsis.scene import open_scene, segment_scene

rasterio = pytest.importorskip("rasterio")
from affine import Affine
from rasterio.control import GroundControlPoint

H, W = 64, 96
T = Affine(2.0, 0, 500000.0, 0, -2.0, 4000000.0)
TABLE = {0: (10, 20, 30, 255), 1: (200, 100, 50, 255), 2: (0, 250, 0, 255), 3: (90, 90, 200, 255),
         4: (250, 30, 40, 255)}


def indices():
    """uint8 ``[H, W]`` palette indices 0-3 in blocks, and a block of index 4 (red)."""
    rng = np.random.default_rng(1)
    idx = np.kron(rng.integers(0, 4, (H // 4, W // 4)), np.ones((4, 4), np.int64)).astype(np.uint8)
    idx[16:40, 50:80] = 4
    return idx


def colours(idx, table=TABLE):
    lut = np.zeros((256, 4), np.uint8)
    for k, v in table.items():
        lut[k] = v
    return lut[idx]


def write_pair(tmp_path, table=TABLE, *, nodata=None, compress="deflate", **place):
    """The paletted GeoTIFF and the RGB GeoTIFF of the same colours."""
    idx = indices()
    place = place or {"crs": "EPSG:32633", "transform": T}
    common = {"driver": "GTiff", "height": H, "width": W, "dtype": "uint8", "compress": compress, **place}
    with rasterio.open(tmp_path / "pal.tif", "w", count=1, photometric="palette", nodata=nodata, **common) as ds:
        ds.write(idx, 1)
        ds.write_colormap(1, table)
    with rasterio.open(tmp_path / "rgb.tif", "w", count=3, photometric="rgb", **common) as ds:
        ds.write(np.moveaxis(colours(idx, table)[:, :, :3], -1, 0))
    return tmp_path / "pal.tif", tmp_path / "rgb.tif"


@pytest.mark.parametrize("compress", ["deflate", None])
def test_a_paletted_geotiff_reaches_the_model_as_its_colours(tiny_model, tmp_path, compress):
    pal, rgb = write_pair(tmp_path, compress=compress)
    expected = colours(indices())[:, :, :3] / 255.0
    with open_scene(pal) as p, open_scene(rgb) as r:
        assert p.bands == r.bands == (1, 2, 3) and p.dtype == "uint8"
        np.testing.assert_allclose(p.read()[0], expected, atol=1e-6)
        for window, shape in (((-8, -8, 40, 40), None), ((0, 0, 64, 64), (32, 32)), ((5, 3, 47, 60), (19, 23))):
            got, want = p.read(window, shape), r.read(window, shape)  # averaged colours, not indices
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        # The whole scene reduced (the global pass) is warped straight to the reduced grid: its
        # average is within one grey level (1/255) of GDAL's average of the RGB file; indices
        # averaged would be far off.
        (got, vg), (want, vw) = p.read(None, (21, 37)), r.read(None, (21, 37))
        np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6)
        np.testing.assert_array_equal(vg, vw)
    np.testing.assert_allclose(read_image(pal), expected, atol=1e-6)  # model.predict's and the datasets' reader
    (mp,), (mr,) = tiny_model.predict([pal], ["the red building"]), tiny_model.predict([rgb], ["the red building"])
    np.testing.assert_array_equal(mp, mr)
    (a,) = segment_scene(tiny_model, pal, "the red building", mode="tiles", tile=64, probabilities=True,
                         out=tmp_path / "p")
    (b,) = segment_scene(tiny_model, rgb, "the red building", mode="tiles", tile=64, probabilities=True,
                         out=tmp_path / "r")
    with rasterio.open(a.files["mask"]) as ma, rasterio.open(b.files["mask"]) as mb:
        assert ma.crs == mb.crs and ma.transform == mb.transform
        np.testing.assert_array_equal(ma.read(1), mb.read(1))


def test_the_nodata_index_is_nodata(tmp_path):
    # A TIFF colour table holds no alpha; GDAL gives the nodata index alpha 0.
    pal, _ = write_pair(tmp_path, nodata=3)
    idx = indices()
    with open_scene(pal) as sc:
        img, valid = sc.read()
        np.testing.assert_array_equal(valid, idx != 3)
        np.testing.assert_allclose(img[valid], colours(idx)[valid][:, :3] / 255.0, atol=1e-6)
        assert (img[~valid] == 0).all()


def test_a_paletted_raster_without_georeference_keeps_its_rows(tmp_path):
    # No CRS or transform: the expansion must not flip it (GDAL's identity transform is south-up).
    pal, _ = write_pair(tmp_path, compress=None, transform=None, crs=None)
    with open_scene(pal, crs="none") as sc:
        assert not sc.georeferenced
        np.testing.assert_allclose(sc.read()[0], colours(indices())[:, :, :3] / 255.0, atol=1e-6)


def test_a_paletted_raster_placed_by_gcps_is_expanded_and_rectified(tmp_path):
    gcps = [GroundControlPoint(row=r, col=c, x=(T @ (c, r))[0], y=(T @ (c, r))[1])
            for r, c in ((0, 0), (0, W), (H, 0), (H, W), (H / 2, W / 2))]
    pal, _ = write_pair(tmp_path, gcps=gcps, crs="EPSG:32633")
    with open_scene(pal) as sc:
        assert sc.rectified and sc.crs == "EPSG:32633" and sc.transform.almost_equals(T, precision=1e-6)
        np.testing.assert_allclose(sc.read()[0], colours(indices())[:, :, :3] / 255.0, atol=1e-6)


def test_a_paletted_raster_on_a_four_band_model_is_refused(tmp_path):
    pal, _ = write_pair(tmp_path)
    with pytest.raises(ValueError, match=r"pal\.tif: a paletted raster .*R, G, B.*in_chans=4"):
        open_scene(pal, channels=4)
    with pytest.raises(ValueError, match="3 band.*in_chans=4"):
        read_image(pal, channels=4)


def test_a_paletted_png_is_read_as_its_colours(tmp_path):
    idx = indices()
    im = Image.fromarray(idx, mode="P")
    im.putpalette([v for k in range(256) for v in colours(np.array([k]))[0, :3]])
    im.save(tmp_path / "pal.png")
    Image.fromarray(colours(idx)[:, :, :3]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "pal.png"), read_image(tmp_path / "rgb.png"))
    with open_scene(tmp_path / "pal.png") as p, open_scene(tmp_path / "rgb.png") as r:
        np.testing.assert_array_equal(p.read()[0], r.read()[0])
