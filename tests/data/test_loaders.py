"""Loader correctness: annotation/image consistency, mask thresholds, NaN, BOM, skip_bad, empty eval."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import _make_folder, _make_refer

import rrsis
from rrsis.cli import main
from rrsis.data import RefSegRSDataset, RRSISDDataset, read_image, read_mask
from rrsis.engine.evaluation import evaluate
from rrsis.metrics import ReferringMetrics


def test_rrsisd_annotation_of_another_image_is_refused(tmp_path):
    _make_refer(tmp_path)
    refs = pickle.loads((tmp_path / "refs(unc).p").read_bytes())
    refs[0]["ann_id"] = 13  # annotation 13 belongs to image 2, the ref to image 1
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(ValueError, match=r"ref 1.*annotation 13 belongs to image 2.*image 1"):
        RRSISDDataset(str(tmp_path), "train", mode="eval")
    ds = RRSISDDataset(str(tmp_path), "train", mode="eval", skip_bad=True)
    assert "annotation 13 belongs to image 2" in dict(ds.skipped)["ref1/sent0"]


def test_01_masks_under_threshold_50_are_detected(tmp_path):
    m = np.zeros((6, 6), np.uint8)
    m[:3] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"m.png.*values 0\.\.1.*mask_threshold=0"):
        read_mask(str(tmp_path / "m.png"), threshold=50)
    np.testing.assert_array_equal(read_mask(str(tmp_path / "m.png"), threshold=0), m > 0)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "empty.png")
    assert not read_mask(str(tmp_path / "empty.png"), threshold=50).any()  # an empty target is fine


def test_nan_pixels_are_nodata(tmp_path):
    arr = np.array([[[np.nan], [2.0]], [[4.0], [1.0]]], np.float32)
    Image.fromarray(arr[..., 0], mode="F").save(tmp_path / "n.tif")
    got = read_image(str(tmp_path / "n.tif"), scale="max")[..., 0]
    np.testing.assert_allclose(got, [[0.0, 0.5], [1.0, 0.25]])
    got = read_image(str(tmp_path / "n.tif"), scale="minmax")[..., 0]
    np.testing.assert_allclose(got, [[0.0, 1 / 3], [1.0, 0.0]])
    small = np.array([[[np.nan], [0.2]]], np.float32)
    Image.fromarray(small[..., 0], mode="F").save(tmp_path / "s.tif")
    np.testing.assert_allclose(read_image(str(tmp_path / "s.tif"))[..., 0], [[0.0, 0.2]], rtol=1e-6)
    Image.fromarray(np.full((2, 2), np.nan, np.float32), mode="F").save(tmp_path / "all.tif")
    with pytest.raises(ValueError, match=r"all.tif.*every pixel is NaN"):
        read_image(str(tmp_path / "all.tif"), scale="max")


def test_bom_is_stripped_from_phrase_files(tmp_path):
    _make_folder(tmp_path)
    text = (tmp_path / "output_phrase_train.txt").read_text()
    (tmp_path / "output_phrase_train.txt").write_bytes("\ufeff".encode() + text.encode())
    ds = RefSegRSDataset(str(tmp_path), "train")
    assert ds[0]["image_id"] == "0" and ds[0]["text"] == "the red building"


def test_bom_is_stripped_from_coco_json(tmp_path):
    _make_refer(tmp_path)
    raw = (tmp_path / "instances.json").read_bytes()
    (tmp_path / "instances.json").write_bytes(b"\xef\xbb\xbf" + raw)
    assert len(RRSISDDataset(str(tmp_path), "train", mode="eval")) == 4


def test_skip_bad_decodes_every_image(tmp_path, caplog):
    _make_folder(tmp_path)
    good = (tmp_path / "images" / "1.tif").read_bytes()
    (tmp_path / "images" / "1.tif").write_bytes(good[: len(good) // 2])  # header intact, body cut
    ds = RefSegRSDataset(str(tmp_path), "train", skip_bad=True, size=8)
    assert [sid for sid, _ in ds.skipped] == ["1:2"]
    assert [ds[i]["sample_id"] for i in range(len(ds))] == ["0:1", "2:3", "0:4"]


def test_empty_evaluation_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        ReferringMetrics().compute()
    model = rrsis.create_model("gl-msin-tiny")
    with pytest.raises(ValueError, match="no samples"):
        evaluate(model, [], batch_size=2, progress=False)


def test_evaluate_command_with_every_sample_skipped_fails_and_writes_no_nan(tmp_path, tiny_tokenizer):
    data = tmp_path / "data"
    _make_folder(data, split="test")
    for p in (data / "images").iterdir():
        p.unlink()  # every sample is skipped at construction
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer), image_size=32)
    model.tokenizer = tiny_tokenizer
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "eval.json"
    rc = main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--dataset", "refsegrs",
               "--num-workers", "0", "--data-option", "skip_bad=true", "--out", str(out)])
    assert rc != 0
    assert not out.exists() or "NaN" not in out.read_text()


def test_metrics_json_never_holds_nan():
    m = ReferringMetrics()
    m.update(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4))
    assert "NaN" not in json.dumps(m.compute(), allow_nan=False)


def test_dataset_warns_once_about_truncated_expressions(tmp_path, caplog, tiny_tokenizer):
    _make_folder(tmp_path, lines=["0 " + " ".join(["the red building"] * 8), "1 the ship"])
    ds = RefSegRSDataset(str(tmp_path), "train", size=8, tokenizer=tiny_tokenizer)
    with caplog.at_level("WARNING"):
        ds[0], ds[0], ds[1]
    assert caplog.text.count("truncated") == 1 and "0:1" in caplog.text
