"""A 4-band uint8 GeoTIFF written with GDAL's defaults declares its 4th band alpha. The datasets
and ``model.predict`` read it as the 4th band of a 4-band model; the scene reader now reads it
the same way (data, not a nodata mask, with a warning), so training, ``predict`` and
``segment_scene`` see the same pixels. For an RGB model the alpha band still masks."""

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")

import rrsis
from rrsis.data import read_image
from rrsis.data.bands import raster_bands
from rrsis.scene.read import open_scene


@pytest.fixture(scope="module")
def rgba_tif(tmp_path_factory):
    path = tmp_path_factory.mktemp("alpha") / "rgbn.tif"
    data = np.random.default_rng(3).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    data[3, :, :20] = 0  # a NIR band that is dark in places: as alpha it would mask them
    with rasterio.open(path, "w", driver="GTiff", height=64, width=64, count=4, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(5e5, 4e6, 0.5, 0.5)) as ds:
        ds.write(data)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha  # GDAL's default, the case here
    return str(path), data


def test_a_4_band_model_reads_a_declared_alpha_band_as_data(rgba_tif, tiny_tokenizer):
    path, data = rgba_tif
    with pytest.warns(UserWarning, match=r"band\(s\) \[4\] declared alpha: read as data"):
        scene = open_scene(path, channels=4)
    with scene:
        pixels, valid = scene.read()
    assert scene.bands == (1, 2, 3, 4) and valid.all()
    np.testing.assert_array_equal(pixels, read_image(path, channels=4))       # the datasets' pixels
    np.testing.assert_allclose(pixels, np.moveaxis(data, 0, -1) / 255.0, atol=1e-7)

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=[0.5] * 4, std=[0.25] * 4, image_size=64,
                               text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    want = model.predict(path, "the red building", threshold=1e-6)[0]
    with pytest.warns(UserWarning, match="declared alpha"):
        got = rrsis.segment_scene(model, path, "the red building", mode="global", threshold=1e-6)[0]
    np.testing.assert_array_equal(got.mask, want)
    assert want.all()  # threshold near 0: every pixel, so a masked strip would show


def test_an_rgb_model_still_masks_by_the_alpha_band(rgba_tif):
    path, data = rgba_tif
    with open_scene(path) as scene:
        _, valid = scene.read()
    assert scene.bands == (1, 2, 3)
    np.testing.assert_array_equal(valid, data[3] >= 128)


def test_the_raster_band_rule():
    assert raster_bands([False] * 4, None, 4, "x") == ((1, 2, 3, 4), [])
    assert raster_bands([False, False, False, True], None, 4, "x") == ((1, 2, 3, 4), [4])
    assert raster_bands([False, False, False, False, True], None, 4, "x") == ((1, 2, 3, 4), [])
    assert raster_bands([False, False, False, True], None, None, "x") == ((1, 2, 3), [])
    assert raster_bands([False] * 13, "4,3,2,8", 4, "x") == ((4, 3, 2, 8), [])
    with pytest.raises(ValueError, match=r"x: the raster has 3 band\(s\) \(alpha aside\) but the model takes 4"):
        raster_bands([False] * 3, None, 4, "x")
    with pytest.raises(ValueError, match=r"bands \[14\] out of range; the raster has 13"):
        raster_bands([False] * 13, (4, 3, 2, 14), 4, "x")


def test_an_rgb_model_on_a_multiband_raster_reads_the_first_three_and_says_so(tmp_path, tiny_tokenizer):
    import warnings

    data = np.random.default_rng(4).integers(0, 4000, (5, 64, 64), dtype=np.uint16)
    path = str(tmp_path / "five.tif")
    with rasterio.open(path, "w", driver="GTiff", height=64, width=64, count=5, dtype="uint16",
                       photometric="MINISBLACK") as ds:
        ds.write(data)
    with open_scene(path, scale=4000) as scene:
        pixels, _ = scene.read()
    assert scene.bands == (1, 2, 3) and scene.first_three_of == 5
    np.testing.assert_allclose(pixels, np.moveaxis(data[:3], 0, -1) / 4000.0, atol=1e-6)
    rgb = rrsis.create_model("gl-msin-tiny", image_size=64, text_vocab_size=len(tiny_tokenizer)).eval()
    rgb.tokenizer = tiny_tokenizer
    with pytest.warns(UserWarning, match=r"5 bands, none declared red, green or blue; an RGB model reads bands \(1, 2, 3\) \(bands= chooses"):
        rrsis.segment_scene(rgb, path, "the red building", mode="global", scale=4000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rrsis.segment_scene(rgb, path, "the red building", mode="global", scale=4000, bands=(4, 3, 2))
        with open_scene(path, channels=5, scale=4000) as scene:   # a 5-band model reads them all
            assert scene.bands == (1, 2, 3, 4, 5) and scene.first_three_of == 0
