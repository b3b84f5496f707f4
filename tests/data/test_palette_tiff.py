"""rrsis/data: a paletted TIFF reaches the model as its colour table's colours, whichever decoder
reads it (PIL for 8-bit tables, rasterio for the 16-bit ones PIL cannot decode); a paletted mask
keeps its indices. The reference is the table applied with numpy."""

import numpy as np
import pytest

from rrsis.data import read_image, read_mask
from rrsis.data.tiff import palette_colours

rasterio = pytest.importorskip("rasterio")


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_a_paletted_tiff_is_read_as_its_colours_and_a_mask_as_its_indices(tmp_path, dtype):
    top = 300 if dtype == "uint16" else 200  # a 16-bit table reaches past index 255
    table = {k: (k % 256, (3 * k) % 256, 255 - k % 256, 255) for k in range(0, top + 1, 50)}
    rng = np.random.default_rng(0)
    idx = rng.choice(sorted(table), (24, 40)).astype(dtype)
    path = tmp_path / "pal.tif"
    with rasterio.open(path, "w", driver="GTiff", height=24, width=40, count=1, dtype=dtype,
                       photometric="palette", compress="deflate") as ds:
        ds.write(idx, 1)
        ds.write_colormap(1, table)
    want = np.array([table[int(k)][:3] for k in idx.ravel()], np.float32).reshape(24, 40, 3) / 255.0
    np.testing.assert_allclose(read_image(path), want, atol=1e-6)
    np.testing.assert_array_equal(read_mask(path, threshold=100), idx > 100)


def test_palette_colours_fills_missing_entries_opaque_black():
    lut = palette_colours({1: (1, 2, 3, 4)}, np.dtype("uint8"))
    assert lut.shape == (256, 4) and tuple(lut[1]) == (1, 2, 3, 4) and tuple(lut[7]) == (0, 0, 0, 255)
