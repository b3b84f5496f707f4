"""Training on crops of large scenes: each crop's box reaches the scene-position encoding."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("rasterio")

import rrsis
from rrsis.data import SceneCropDataset
from rrsis.data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale
from rrsis.engine import Trainer


def test_the_trainer_feeds_crop_boxes_to_the_position_encoding(tmp_path):
    st = LargeSceneSettings(size=128, train_size=64, per_kind=1)
    write_scene_at_scale(tmp_path / "data" / "train", st, seed=0, name="a")
    train = SceneCropDataset(tmp_path / "data", "train", size=64, seed=0)
    tok = rrsis.Tokenizer.from_words(
        sorted({w for e in train.entries for _, t in e.sentences for w in t.replace("-", " - ").split()}))
    train.tokenizer = tok
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", position="fourier", text_vocab_size=len(tok))
    cfg = {"model": {"name": "gl-msin-tiny"}, "data": {"image_size": 64, "num_workers": 0},
           "optim": {"lr": 1e-2, "warmup_steps": 0}, "loss": {"ce_weight": 1.0, "dice_weight": 0.0},
           "train": {"max_steps": 2, "batch_size": 4, "seed": 0, "device": "cpu", "amp": "off",
                     "checkpoint_every": 0, "log_every": 1, "eval_every": 0, "progress": False,
                     "output_dir": str(tmp_path / "run")}}
    Trainer(cfg, model=model, tokenizer=tok, train_dataset=train, run_name="crops").fit()
    # The projection starts at zero; only a gradient through the boxes' features can move it.
    moved = [float(layer.position.proj.weight.detach().abs().sum()) for layer in model.backbone.layers]
    assert all(m > 0 for m in moved), moved
    saved = rrsis.from_pretrained(tmp_path / "run" / "final")
    assert saved.uses_position
