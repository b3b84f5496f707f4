"""In ``object`` (and ``ranked``) mode with an area of interest, the choice is made among the
components inside the area, not over its rectangular window: a surer look-alike just outside
a non-rectangular area must not win (and leave the answer empty after clipping)."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")

from rasterio.transform import from_origin
from shapely.geometry import Polygon

import rrsis
from rrsis.scene import rank

SIZE = 96
TRANSFORM = from_origin(500000.0, 5000000.0, 10.0, 10.0)
# Two blobs (rows, cols): A, surer, in the window's top-right corner; B inside the triangle.
A, B = (slice(8, 20), slice(76, 88)), (slice(60, 72), slice(12, 24))
# A right triangle over the whole scene's lower-left half (scene metres): B inside, A outside;
# its bounding window is the whole scene.
TRIANGLE = Polygon([(500000.0, 5000000.0), (500000.0, 5000000.0 - 960.0), (500960.0, 5000000.0 - 960.0)])


def _fake_tiles(scene, model, text, opt, progress_factory=None, counts=None):
    """The tiled pass: A at p = 0.95, B at p = 0.7, 0 elsewhere, in strips of 32 rows."""
    p = np.zeros((scene.height, scene.width), np.float32)
    p[A], p[B] = 0.95, 0.7
    for r0 in range(0, scene.height, 32):
        r1 = min(r0 + 32, scene.height)
        yield r0, p[r0:r1], np.ones((r1 - r0, scene.width), bool)


@pytest.fixture
def scene_path(tmp_path):
    path = tmp_path / "scene.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, SIZE, SIZE)).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as ds:
        ds.write(data)
    return str(path)


def test_object_mode_picks_the_surest_component_inside_the_area(tiny_model, scene_path, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(rank, "predict_strips", _fake_tiles)
    whole = rrsis.segment_scene(tiny_model, scene_path, ["the tank"], mode="object", return_mask=True)[0]
    assert whole.mask[A].all() and not whole.mask[B].any()  # without an area: A, the surer one
    inside = rrsis.segment_scene(tiny_model, scene_path, ["the tank"], mode="object", return_mask=True,
                                 aoi=TRIANGLE, aoi_crs="EPSG:32633")[0]
    assert inside.window == (0, 0, SIZE, SIZE)
    assert inside.mask[B].all() and not inside.mask[A].any()
    assert inside.area_px == 144
