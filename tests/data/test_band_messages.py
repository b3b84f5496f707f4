"""What a model of N bands tells a raster or array of another count: the counts, why (the model
was trained on N-band images) and a way out that exists (a file with those bands when it has
fewer, bands= when it has more); and a 2-band raster or array read alike by both readers."""

import numpy as np
import pytest

from rrsis.data.bands import raster_bands, select_bands


def test_a_4_band_model_on_3_bands_asks_for_a_raster_with_those_bands():
    with pytest.raises(ValueError) as info:
        raster_bands([False] * 3, None, 4, "r/rgb_utm.tif")
    msg = str(info.value)
    assert msg.startswith("r/rgb_utm.tif: the raster has 3 band(s) (alpha aside) but the model takes 4 (it was "
                          "trained on 4-band images")
    assert "give it a raster with those 4 bands" in msg and "bands=" not in msg  # no 4 band numbers to give
    with pytest.raises(ValueError) as info:
        select_bands(np.zeros((4, 4, 3), np.uint8), False, None, "image 0: array", channels=4)
    assert "the image has 3 band(s) but the model takes 4" in str(info.value)
    assert "give it an image with those 4 bands" in str(info.value) and "bands=" not in str(info.value)


def test_a_4_band_model_on_more_bands_is_told_to_choose_them():
    with pytest.raises(ValueError, match=r"the raster has 6 band\(s\) \(alpha aside\) but the model takes 4 .*"
                                         r"pass bands= \(--bands\) with 4 band numbers counted from 1"):
        raster_bands([False] * 6, None, 4, "s2.tif")
    with pytest.raises(ValueError, match=r"image has 5 band\(s\) but .* pass bands= \(--bands\) with 4 band"):
        select_bands(np.zeros((4, 4, 5), np.uint8), False, None, "image", channels=4)


def test_a_2_channel_array_is_offered_band_1_as_grey_as_a_scene_reads_it():
    with pytest.raises(ValueError) as info:
        select_bands(np.zeros((4, 4, 2), np.uint8), False, None, "image 0: array")
    msg = str(info.value)
    assert "bands=(1,) to read band 1 as grey, as a scene reads a 2-band raster" in msg
    assert "(1, 2, 3)" not in msg  # no third band to name
    grey = select_bands(np.arange(32, dtype=np.uint8).reshape(4, 4, 2), False, (1,), "image", channels=3)
    assert grey.shape == (4, 4, 3) and (grey[..., 2] == grey[..., 0]).all()
    assert raster_bands([False, False], None, 3, "two.tif") == ((1,), [])  # the scene reader: band 1


def test_a_2_band_raster_is_read_as_grey_and_says_so(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rrsis.scene import open_scene

    path = tmp_path / "two.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=2, dtype="uint8", crs="EPSG:32633",
                       transform=rasterio.Affine(1, 0, 500000, 0, -1, 0)) as ds:
        ds.write(np.full((2, 8, 8), 7, np.uint8))
    with open_scene(str(path)) as sc:
        assert sc.bands == (1,)
        assert "2 bands, none declared alpha; an RGB model reads band 1 as grey (bands=(2,)" in sc.band_note
        assert "rio edit-info --colorinterp gray,alpha FILE" in sc.band_note
    with open_scene(str(path), bands=(2,)) as sc:  # chosen: nothing to say
        assert sc.band_note is None
