"""`rrsis evaluate` on an RRSIS-D folder with a malformed or hostile annotation: one line, exit 2,
before any batch is evaluated (issue 30)."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch

import rrsis
from rrsis.cli import main


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory):
    from rrsis.data.synthetic import generate, vocabulary

    out = tmp_path_factory.mktemp("cli_annotations")
    generate(str(out), 6, seed=1, size=64, layout="rrsisd")
    torch.manual_seed(0)
    tok = rrsis.Tokenizer.from_words(vocabulary())
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tok))
    model.tokenizer = tok
    model.save_pretrained(out / "model")
    return out


# NaN and 1e308 coordinates are tested under the memory limit (test_data_annotations.py): in this
# process a regression could exhaust the machine.
@pytest.mark.parametrize("segmentation, why", [
    ([[1.0, 2.0, 30.0, 2.0, 30.0]], "odd number of coordinates"),
    (["1 2 30 2 30 40"], "flat list of numbers"),
    ([[1.0, 2.0, 30.0, 40.0]], "2 point"),
    ({"size": [64, 64], "counts": [10**10]}, "RLE runs cover"),
])
def test_evaluate_stops_at_construction_with_one_line(scene_set, tmp_path, capsys, monkeypatch,
                                                       segmentation, why):
    root = tmp_path / "rrsisd"
    shutil.copytree(scene_set / "rrsisd", root)
    refs = pickle.loads((root / "refs(unc).p").read_bytes())
    target = next(r for r in refs if r["split"] == "val" and r["ann_id"] not in (-1, None, []))
    ann_id = target["ann_id"][0] if isinstance(target["ann_id"], list) else target["ann_id"]
    coco = json.loads((root / "instances.json").read_text())
    for ann in coco["annotations"]:
        if ann["id"] == ann_id:
            ann["segmentation"] = segmentation
    (root / "instances.json").write_text(json.dumps(coco))
    # No batch may be evaluated: the malformed annotation must stop construction.
    from rrsis.data import coco as coco_mod

    def no_decode(*args, **kwargs):
        raise AssertionError("a mask was decoded before the dataset was checked")

    monkeypatch.setattr(coco_mod, "polygon_to_mask", no_decode)
    assert main(["evaluate", "--model", str(scene_set / "model"), "--data", str(root), "--dataset", "rrsisd",
                 "--split", "val", "--num-workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"annotation {ann_id}" in err[0] and why in err[0], err
