"""``rrsis evaluate`` reads a dataset with the model's band count and statistics: a 4-band model
is scored on 4-band images without repeating its mean/std, with the numbers of the API given
them explicitly; a 1-band model reads one-band images whole."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import rrsis
from rrsis.cli import main
from rrsis.data import FolderDataset
from rrsis.engine.evaluation import evaluate

MEAN, STD = [0.485, 0.456, 0.406, 0.5], [0.229, 0.224, 0.225, 0.25]


def _folder(root, bands, n=2, size=64):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    for i in range(n):
        image = rng.integers(0, 256, (size, size, bands), dtype=np.uint8)
        if bands == 1:
            Image.fromarray(image[..., 0]).save(root / "images" / f"{i}.png")
        else:
            import rasterio

            with rasterio.open(root / "images" / f"{i}.tif", "w", driver="GTiff", height=size, width=size,
                               count=bands, dtype="uint8", photometric="MINISBLACK") as ds:
                ds.write(np.moveaxis(image, 2, 0))
        mask = np.zeros((size, size), np.uint8)
        mask[4:20, 6:18] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    (root / "output_phrase_test.txt").write_text("".join(f"{i} the plot\n" for i in range(n)))
    return root


def test_evaluate_scores_a_4_band_model_with_its_own_statistics(tmp_path, tiny_tokenizer):
    pytest.importorskip("rasterio")
    root = _folder(tmp_path / "data", 4)
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=MEAN, std=STD, image_size=64,
                               text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    model.save_pretrained(tmp_path / "m")
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(root), "--dataset", "risbench",
                 "--num-workers", "0", "--out", str(out)]) == 0
    got = json.loads(out.read_text())["metrics"]
    ds = FolderDataset(str(root), split="test", size=64, tokenizer=tiny_tokenizer, mean=MEAN, std=STD)
    want = evaluate(rrsis.from_pretrained(tmp_path / "m"), ds, batch_size=8, num_workers=0)
    assert got["oIoU"] == pytest.approx(want["oIoU"]) and got["mIoU"] == pytest.approx(want["mIoU"])
    # statistics other than the model's are refused, naming both
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(root), "--dataset", "risbench",
                 "--num-workers", "0", "--out", str(out), "--overwrite", "--data-option", "mean=[0.5,0.5,0.5,0.5]",
                 "--data-option", "std=[0.2,0.2,0.2,0.2]"]) == 2


def test_a_one_band_dataset_reads_one_band_images_whole(tmp_path):
    root = _folder(tmp_path / "data", 1)
    ds = FolderDataset(str(root), split="test", size=64, mean=[0.5], std=[0.25])
    x = ds[0]["pixel_values"]
    raw = np.asarray(Image.open(root / "images" / "0.png"), dtype=np.float64) / 255.0
    assert x.shape == (1, 64, 64)
    np.testing.assert_allclose(x[0].numpy(), (raw - 0.5) / 0.25, atol=1e-5)
    with pytest.raises(ValueError, match=r"1 band\(s\) but the model takes 4"):
        FolderDataset(str(root), split="test", size=32, mean=MEAN, std=STD)
