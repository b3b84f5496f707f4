"""rrsis/scene/read.py + rrsis/data/bands.py: which pixels a raster's declared nodata values mask.

One file's bands (GDAL's dataset-mask convention, rasterio's ``dataset_mask()``): a pixel is nodata
only when every band read holds the value, so an 8-bit RGB orthophoto with nodata 0 keeps its
pixels whose red alone is 0. Bands from separate files (a stack): a pixel one band lacks is nodata.
"""

import numpy as np
import rasterio
import torch
from _fixtures import WrappedModel
from rasterio.transform import from_origin

from rrsis.data.bands import nodata_pixels
from rrsis.models.base import SegmentationOutput
from rrsis.scene import build_stack, build_vrt, open_scene, segment_scene

SIZE = 64


class Everywhere(WrappedModel):
    """Foreground at every pixel: the mask is then exactly the scene's valid pixels."""

    def forward_with_text(self, pixels, text, *position):
        ones = torch.ones_like(pixels[:, 0])
        return SegmentationOutput(logits=torch.stack([-10 * ones, 10 * ones], 1))


def _write(path, data, nodata, x0=500000.0, **kw):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, nodata=nodata, crs="EPSG:32633",
                       transform=from_origin(x0, 5000000.0, 10, 10), **kw) as ds:
        ds.write(data)
    return str(path)


def _ortho():
    """An RGB ortho: a nodata border (all bands 0), dark water whose red is 0, a blue-0 strip."""
    a = np.random.default_rng(0).integers(20, 250, (3, SIZE, SIZE)).astype(np.uint8)
    a[:, :, :6] = 0
    a[0, 20:40, 20:40] = 0
    a[2, 50:54, :] = 0
    return a


def test_one_file_masks_a_pixel_only_where_every_band_is_nodata(tmp_path):
    path = _write(tmp_path / "ortho.tif", _ortho(), 0)
    with open_scene(path) as scene:
        _, valid = scene.read()
    expected = ~(_ortho() == 0).all(axis=0)
    assert valid[25, 25] and valid[52, 30] and not valid[10, 2]
    assert np.array_equal(valid, expected)
    with rasterio.open(path) as ds:  # rasterio's own reading of the same file
        assert np.array_equal(valid, ds.dataset_mask() > 0)


def test_the_mask_of_segment_scene_keeps_dark_water(tmp_path, tiny_model):
    # Before: every pixel whose red was 0 was nodata (the first band's mask alone), a hole in the water.
    path = _write(tmp_path / "ortho.tif", _ortho(), 0, tiled=True, blockxsize=32, blockysize=32)
    (res,) = segment_scene(Everywhere(tiny_model), path, "the lake", mode="tiles", tile=SIZE, return_mask=True)
    assert np.array_equal(res.mask, ~(_ortho() == 0).all(axis=0))


def test_bands_from_separate_files_mask_a_pixel_any_band_lacks(tmp_path):
    bands = np.full((3, SIZE, SIZE), 900, np.uint16)
    bands[0, :, :4] = 0      # each band file's own swath edge
    bands[1, :, :9] = 0
    bands[2, :3, :] = 0
    files = [_write(tmp_path / f"B0{i}.tif", bands[i:i + 1], 0) for i in range(3)]
    vrt = build_stack(files, str(tmp_path / "stack.vrt"))
    with open_scene(vrt, scale="dtype") as scene:
        _, valid = scene.read()
        reduced = scene.read(out_shape=(SIZE // 2, SIZE // 2))[1]
    assert np.array_equal(valid, ~(bands == 0).any(axis=0))
    assert not reduced[:, :4].any() and reduced[2:, 5:].all()  # columns 0-7 of the full grid lack band 2


def test_a_mosaic_of_tiles_keeps_the_one_file_rule(tmp_path):
    a = _ortho()
    left = _write(tmp_path / "left.tif", a[:, :, :32].copy(), 0)
    right = _write(tmp_path / "right.tif", a[:, :, 32:].copy(), 0, x0=500320.0)
    vrt = build_vrt([left, right], str(tmp_path / "area.vrt"))
    with open_scene(vrt) as scene:
        assert np.array_equal(scene.read()[1], ~(a == 0).all(axis=0))


def test_a_window_reaching_outside_is_nodata_outside(tmp_path):
    path = _write(tmp_path / "ortho.tif", _ortho(), 0)
    with open_scene(path) as scene:
        _, valid = scene.read((-8, 40, 24, 72))
    assert not valid[:8].any() and not valid[:, 24:].any()
    assert np.array_equal(valid[8:, :24], ~(_ortho()[:, :24, 40:64] == 0).all(axis=0))


def test_a_value_the_band_type_cannot_hold_masks_nothing():
    data = np.zeros((3, 8, 8), np.uint8)
    assert nodata_pixels(data, (-9999.0,) * 3) is None
    assert nodata_pixels(data, (0.0, 0.0, None)) is None  # one band declares none: never all nodata
    assert nodata_pixels(data, (0.0, 0.0, None), every=False).all()
    assert nodata_pixels(data, (float("nan"),) * 3) is None  # NaN: the non-finite rule's


def test_values_are_compared_in_the_band_type():
    data = np.array([[[-3.4028235e38, 1.0]]], np.float32)
    hit = nodata_pixels(data, (-3.4028234663852886e38,))
    assert hit.tolist() == [[True, False]]
    assert nodata_pixels(np.zeros((4, 4, 2), np.int16), (0, 0), axis=2).all()
