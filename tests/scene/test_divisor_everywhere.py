"""A divisor ``scale`` made for another bit depth is refused wherever pixels enter, not only in
datasets: ``model.predict`` on an array and ``segment_scene`` on a GeoTIFF (which also checks
the values the scene holds)."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

import rrsis

PIXELS = np.random.default_rng(3).integers(0, 4096, (64, 64, 3)).astype(np.uint16)  # 12-bit data


def test_predict_refuses_an_eight_bit_divisor_on_sixteen_bit_pixels(tiny_model):
    with pytest.raises(ValueError, match=r"scale=255 is for data up to 255 or less, but the file is uint16"):
        tiny_model.predict([PIXELS], ["the building"], scale=255)
    # The divisor of the data's own bit depth reads them, 4095 → 1.
    (mask,) = tiny_model.predict([PIXELS], ["the building"], scale=4095)
    assert mask.shape == (64, 64)


def test_segment_scene_refuses_it_window_by_window(tiny_model, tmp_path):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 64, 1, 1)) as ds:
        ds.write(PIXELS.transpose(2, 0, 1))
    with pytest.raises(ValueError, match=r"scene\.tif: scale=255 "):
        rrsis.segment_scene(tiny_model, str(path), ["the building"], out=str(tmp_path / "a"), scale=255)
    assert not list(tmp_path.glob("a*"))
    result = rrsis.segment_scene(tiny_model, str(path), ["the building"], out=str(tmp_path / "b"), scale=4095)
    assert result is not None and (tmp_path / "b_mask.tif").exists()
