"""A model that records its band names (``backbone.band_names``) is evaluated on a dataset of
images describing their bands as ``model.predict`` reads a raster: by name, in the model's order
(``band_names=`` of the datasets, passed by ``rrsis evaluate --data``). Where the names cannot be
found, the refusal names the option that works for a dataset and an example from those names."""

import json

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from _fixtures import four_band_folder

import rrsis
from rrsis.data import build_dataset

DESCRIBED = ["B02", "B03", "B04", "B08"]


def _dataset(root, **kw):
    return build_dataset("risbench", root, "val", size=64, scale="dtype", mean=[0.4, 0.4], std=[0.2, 0.2], **kw)


def test_a_dataset_reads_a_models_bands_by_their_descriptions(tmp_path):
    root = four_band_folder(tmp_path / "d", n=3, descriptions=DESCRIBED)
    named = _dataset(root, band_names=["B08", "B04"])
    assert named.bands == (4, 3) and named.band_names == ["B08", "B04"]
    chosen = _dataset(root, bands=(4, 3))
    for k in range(len(chosen)):
        torch.testing.assert_close(named[k]["pixel_values"], chosen[k]["pixel_values"], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"4 band\(s\) but the model takes 2"):
        _dataset(root)  # no names: the band rule, as before
    assert _dataset(root, band_names=["B08", "B04"], bands=(1, 2)).bands == (1, 2)  # bands= wins


def test_a_dataset_without_descriptions_is_told_the_dataset_option_with_the_models_names(tmp_path):
    root = four_band_folder(tmp_path / "d", n=2)
    with pytest.raises(ValueError) as info:
        _dataset(root, band_names=["B03", "B02"])
    said = str(info.value)
    assert "e.g. --data-option 'bands=[3,2]'" in said and "if its bands 3, 2 hold B03, B02" in said
    assert "its bands have no descriptions" in said and "(--bands)" not in said and "bands=(1, 2)" not in said
    with pytest.raises(ValueError, match="the numbers of the bands that hold B08, B04, in that order"):
        _dataset(root, band_names=["B08", "B04"])  # band 8 of a 4-band file: no example to give


def test_predict_on_an_undescribed_raster_gives_an_example_from_the_models_names(tiny_tokenizer):
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer), in_chans=4, mean=[0.4] * 4,
                               std=[0.2] * 4, scale=10000, band_names=["B04", "B03", "B02", "B08"], image_size=64)
    with pytest.raises(ValueError) as info:
        model.preprocess([np.zeros((64, 64, 13), np.uint16)], image_size=64)
    assert "e.g. bands=(4, 3, 2, 8) if its bands 4, 3, 2, 8 hold B04, B03, B02, B08" in str(info.value)


def test_rrsis_evaluate_data_reads_the_models_bands_by_name(tiny_tokenizer, tmp_path):
    from rrsis.cli import main

    root = four_band_folder(tmp_path / "d", n=3, descriptions=DESCRIBED)
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer), in_chans=2, mean=[0.4] * 2,
                               std=[0.2] * 2, scale="dtype", band_names=["B08", "B04"], image_size=64)
    model.tokenizer = tiny_tokenizer
    model.save_pretrained(tmp_path / "m")
    base = ["evaluate", "--model", str(tmp_path / "m"), "--data", root, "--dataset", "risbench", "--split", "val",
            "--num-workers", "0", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "named.json")]) == 0
    assert main([*base, "--data-option", "bands=[4,3]", "--out", str(tmp_path / "chosen.json")]) == 0
    named, chosen = (json.loads((tmp_path / f"{n}.json").read_text())["metrics"] for n in ("named", "chosen"))
    assert named == chosen and named["n"] == 3
