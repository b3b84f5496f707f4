"""``model.predict`` on one call mixing paths, PIL images, HWC and CHW arrays and tensors of
different sizes: each input gives the mask its HWC uint8 twin gives."""

import numpy as np
import torch
from PIL import Image


def test_one_call_mixes_every_input_kind(tiny_model, tmp_path):
    rng = np.random.default_rng(3)
    sizes = [(40, 64), (64, 50), (37, 100), (70, 33), (48, 48), (33, 70)]
    hwc = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    Image.fromarray(hwc[0]).save(tmp_path / "a.png")
    inputs = [
        str(tmp_path / "a.png"),
        Image.fromarray(hwc[1]),
        hwc[2],
        hwc[3].transpose(2, 0, 1).astype(np.float32) / 255,   # CHW float
        torch.from_numpy(hwc[4]).permute(2, 0, 1),             # CHW uint8 tensor
        torch.from_numpy(hwc[5]).permute(2, 0, 1).float() / 255,
    ]
    texts = ["the red building"] * len(inputs)
    got = tiny_model.predict(inputs, texts, batch_size=4)
    want = tiny_model.predict(hwc, texts, batch_size=4)
    assert [m.shape for m in got] == sizes
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert any(m.any() for m in want) and not all(m.all() for m in want)  # not a constant answer
