"""rrsis/scene/read.py: a picture file's transparency (a paletted PNG's tRNS entry, an RGBA PNG's
alpha) is nodata in a scene, as a raster's alpha band is, with or without an area of interest."""

import numpy as np
import pytest
import torch
from _fixtures import WrappedModel
from PIL import Image

from rrsis.data.bands import transparent_pixels
from rrsis.models.base import SegmentationOutput
from rrsis.scene import segment_scene

SIZE = 64
PALETTE = [0, 0, 0, 200, 30, 30, 30, 160, 40, 40, 40, 190]


class Everywhere(WrappedModel):
    """Foreground at every pixel: the mask is then exactly the scene's valid pixels."""

    def forward_with_text(self, pixels, text, *position):
        ones = torch.ones_like(pixels[:, 0])
        return SegmentationOutput(logits=torch.stack([-10 * ones, 10 * ones], 1))


@pytest.fixture(scope="module")
def everywhere(tiny_model):
    return Everywhere(tiny_model)


def _indices():
    idx = np.random.default_rng(1).integers(1, 4, (SIZE, SIZE)).astype(np.uint8)
    idx[:16] = 0  # a transparent margin, as a clipped export has
    idx[40:44, 10:50] = 0
    return idx


def _paletted_png(path, world=False):
    im = Image.fromarray(_indices(), "P")
    im.putpalette(PALETTE + [0] * (256 * 3 - len(PALETTE)))
    im.save(path, transparency=0)
    if world:  # 10 m pixels, UTM 33N
        path.with_suffix(".pgw").write_text("10\n0\n0\n-10\n500005\n5000635\n")
    return str(path)


def test_a_paletted_png_is_nodata_where_its_palette_is_transparent(everywhere, tmp_path):
    # Before: the transparent margin was segmented like the picture (the mask was all True).
    path = _paletted_png(tmp_path / "map.png")
    (res,) = segment_scene(everywhere, path, "the red building", mode="tiles", tile=64, return_mask=True)
    assert np.array_equal(res.mask, _indices() != 0)


def test_a_world_filed_png_gives_the_same_mask_with_and_without_an_area(everywhere, tmp_path):
    # The area's path reads through GDAL, which masked the transparency; the plain path now does too.
    path = _paletted_png(tmp_path / "map.png", world=True)
    kw = {"mode": "tiles", "tile": 64, "return_mask": True, "crs": "EPSG:32633"}
    (whole,) = segment_scene(everywhere, path, "the red building", **kw)
    (inside,) = segment_scene(everywhere, path, "the red building", aoi=(500000.0, 4999995.0, 500640.0, 5000640.0),
                              aoi_crs="EPSG:32633", **kw)
    assert inside.window == (0, 0, SIZE, SIZE)
    assert np.array_equal(whole.mask, inside.mask) and np.array_equal(whole.mask, _indices() != 0)


def test_an_rgba_png_is_nodata_where_alpha_is_zero(everywhere, tmp_path):
    rgba = np.random.default_rng(2).integers(1, 255, (SIZE, SIZE, 4)).astype(np.uint8)
    rgba[:, :20, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    (res,) = segment_scene(everywhere, str(tmp_path / "rgba.png"), "the red building", mode="tiles", tile=64,
                           return_mask=True)
    assert not res.mask[:, :20].any() and res.mask[:, 20:].all()


@pytest.mark.parametrize(("alpha", "bands", "channels", "masked"), [
    (True, None, None, True),      # the RGB rule drops RGBA's alpha
    (True, None, 4, False),        # a 4-band model reads it as data
    (True, (1, 2, 3), 3, True),    # bands= leaves it out
    (True, (1, 2, 4), 3, False),   # bands= reads it
    (False, None, None, False),    # no declared alpha: a 4th band is no mask
])
def test_which_alpha_bands_mask(alpha, bands, channels, masked):
    arr = np.full((2, 2, 4), 7, np.uint8)
    arr[0, 0, 3] = 0
    got = transparent_pixels(arr, alpha, bands, channels)
    assert (got is not None) == masked
    if masked:
        assert np.array_equal(got, [[True, False], [False, False]])
