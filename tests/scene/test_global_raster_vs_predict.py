"""docs/guides/geotiff.md: ``segment_scene(mode="global")`` gives ``model.predict``'s mask pixel for
pixel on a plain image (PNG), an array and a GeoTIFF of the same pixels up to ``EXACT_FACTOR``
times the global pass's pixels (read whole, resized as ``model.preprocess`` resizes); on a larger
GeoTIFF GDAL's averaging read replaces that resize, so the masks agree except near the threshold."""

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine
from PIL import Image

import rrsis
from rrsis.scene import segment_scene


def test_png_and_array_agree_exactly_a_geotiff_near_the_threshold(tiny_tokenizer, tmp_path, monkeypatch):
    import torch

    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    yy, xx = np.mgrid[0:150, 0:200]
    smooth = 128 + 100 * np.sin(xx / 17.0)[..., None] * np.cos(yy / 23.0)[..., None] * np.array([1.0, 0.6, -0.8])
    img = np.clip(smooth + np.random.default_rng(0).normal(0, 8, (150, 200, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "s.png")
    with rasterio.open(tmp_path / "s.tif", "w", driver="GTiff", height=150, width=200, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(1, 0, 500000, 0, -1, 4600000)) as ds:
        ds.write(np.moveaxis(img, -1, 0))
    text = "the red building"
    tok = tiny_tokenizer([text])
    pix, sizes = m.preprocess(str(tmp_path / "s.png"), image_size=64)
    with torch.no_grad():
        logits = m(pix, tok["input_ids"], tok["attention_mask"]).logits
    (prob,) = m.postprocess(logits, sizes, output="probability")
    prob = np.asarray(prob)
    thr = float(np.median(prob))  # a mask with structure to compare
    ref = m.predict(str(tmp_path / "s.png"), text, threshold=thr, image_size=64)[0]
    assert 0.05 < ref.mean() < 0.95
    for source in (img, str(tmp_path / "s.png")):  # plain image and array: the same path
        (res,) = segment_scene(m, source, text, mode="global", threshold=thr, global_size=64)
        np.testing.assert_array_equal(res.mask, ref)
    (tif,) = segment_scene(m, str(tmp_path / "s.tif"), text, mode="global", threshold=thr, global_size=64)
    np.testing.assert_array_equal(tif.mask, ref)  # 150 x 200 <= 16 x 64²: read whole, the same resize
    from rrsis.scene import read as scene_read

    monkeypatch.setattr(scene_read, "EXACT_FACTOR", 4)  # as if the raster were larger than 16 x the pass
    (tif,) = segment_scene(m, str(tmp_path / "s.tif"), text, mode="global", threshold=thr, global_size=64)
    differ = tif.mask != ref
    near = np.abs(prob - thr)
    assert differ.any() and differ.mean() < 0.1  # not pixel for pixel, but most pixels agree
    # only where the probability is near the threshold: the objects' boundaries
    assert near[differ].max() < np.percentile(near, 50)
