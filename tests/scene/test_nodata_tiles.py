"""Tiles that reach no valid pixel (all nodata) are not run: the model is called only for tiles
with valid pixels, the probabilities are the same bits as with every tile run, and the result and
its record say how many were skipped."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import WrappedModel

from rrsis.scene import SceneOptions, open_scene, segment_scene
from rrsis.scene.infer import predict_strips, tile_starts
from rrsis.scene.outputs import read_record
from rrsis.scene.tile_rows import TileRows

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin

H, W, VALID_COLS = 256, 320, 160  # the scene's columns >= 160 are nodata


class Counting(WrappedModel):
    """The wrapped model, counting the tiles it is given (one image per tile)."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.tiles = 0

    def forward_with_text(self, pixels, text, *position):
        self.tiles += int(pixels.shape[0])
        return self.model.forward_with_text(pixels, text, *position)


@pytest.fixture
def half_nodata(tmp_path):
    """A GeoTIFF (nodata 0) whose right half is nodata, the left half random and never 0."""
    data = np.random.default_rng(0).integers(1, 256, (3, H, W)).astype(np.uint8)
    data[:, :, VALID_COLS:] = 0
    path = tmp_path / "half.tif"
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 1.0, 1.0)) as ds:
        ds.write(data)
    return path


def _every_tile_run(monkeypatch) -> None:
    """Today's pass without the skip: every tile reaches data."""
    monkeypatch.setattr(TileRows, "_with_data", lambda self, y0: lambda x0: True)


def _probability(model, path, opt, text):
    with open_scene(path) as sc:
        resolved = opt.resolved(model, sc.height, sc.width, sc)
        strips = list(predict_strips(sc, model, text, resolved))
    return np.concatenate([p for _, p, _ in strips]), np.concatenate([v for _, _, v in strips])


@pytest.mark.parametrize(("ratio", "batch"), [(1.0, 1), (1.5, 1), (1.0, 3), (1.5, 4)])
def test_only_tiles_with_valid_pixels_run_and_the_valid_half_is_unchanged(tiny_model, half_nodata, ratio, batch,
                                                                        monkeypatch):
    tok = tiny_model.tokenizer(["the red building"])
    text = tiny_model.encode_text(tok["input_ids"], tok["attention_mask"])
    opt = SceneOptions(mode="tiles", tile=64, overlap=0.25, pixel_ratio=ratio, batch_size=batch)
    counted = Counting(tiny_model)
    p, valid = _probability(counted, half_nodata, opt, text)
    run = counted.tiles
    with monkeypatch.context() as m:
        _every_tile_run(m)
        every = Counting(tiny_model)
        p_all, _ = _probability(every, half_nodata, opt, text)
    if batch == 1:  # each tile alone either way: the same bits, the valid half as before, nodata 0
        assert np.array_equal(p, p_all)
    else:  # a tile's batch may hold fewer tiles now: float rounding of the batch size, no more
        np.testing.assert_allclose(p, p_all, rtol=0, atol=1e-6)
        assert np.array_equal(p > 0.5, p_all > 0.5)
    assert valid[:, :VALID_COLS].all() and not valid[:, VALID_COLS:].any()
    assert not p[:, VALID_COLS:].any()
    # Work pixels of a tile: scene pixels / ratio; a tile starting left of the valid edge reaches data.
    ys = tile_starts(int(np.ceil(H / ratio)), 64, 48)
    xs = tile_starts(int(np.ceil(W / ratio)), 64, 48)
    assert every.tiles == len(ys) * len(xs)
    assert run == len(ys) * sum(round(x * ratio) < VALID_COLS for x in xs) < every.tiles


def test_segment_scene_says_how_many_were_skipped_and_the_bar_counts_only_run_tiles(tiny_model, half_nodata,
                                                                                  tmp_path, monkeypatch):
    import rrsis.scene.api as scene_api

    bars = []

    class Bar:
        def __init__(self, total):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            pass

    monkeypatch.setattr(scene_api, "tile_progress", lambda desc: Bar)
    counted = Counting(tiny_model)
    for mode in ("tiles", "object"):
        counted.tiles = 0
        (r,) = segment_scene(counted, half_nodata, "the red building", mode=mode, tile=64, overlap=0.25,
                             pixel_ratio=1, progress=True, out=tmp_path / mode)
        n_tiles = len(tile_starts(H, 64, 48)) * len(tile_starts(W, 64, 48))
        assert r.tiles_skipped > 0 and counted.tiles + r.tiles_skipped == n_tiles
        assert bars[-1].total == bars[-1].n == counted.tiles  # the skipped ones left the total
        assert read_record(r.files["mask"])["result"]["tiles_skipped"] == r.tiles_skipped
        with rasterio.open(r.files["mask"]) as ds:
            assert not ds.read_masks(1)[:, VALID_COLS:].any()  # nodata stays nodata
    (g,) = segment_scene(counted, half_nodata, "the red building", mode="global")
    assert g.tiles_skipped is None


def test_a_scene_all_nodata_gives_an_empty_mask_without_a_model_call(tiny_model, tmp_path):
    from PIL import Image

    rgba = np.full((100, 120, 4), 200, np.uint8)
    rgba[..., 3] = 0  # every pixel transparent: nodata
    path = tmp_path / "clear.png"
    Image.fromarray(rgba).save(path)
    counted = Counting(tiny_model)
    for mode in ("tiles", "object"):
        (r,) = segment_scene(counted, path, "the red building", mode=mode, tile=64)
        assert counted.tiles == 0
        assert r.area_px == 0 and not r.mask.any()
        assert r.tiles_skipped == len(tile_starts(100, 64, 48)) * len(tile_starts(120, 64, 48))
