"""A checkpoint with NaN or infinite weights loads with a warning naming them; a prediction whose
output is not finite is an error naming the cause, never a confident empty mask."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch

from rrsis._finite import check_finite_logits, non_finite


def _poisoned(saved_model, tmp_path, names=None):
    from safetensors.torch import load_file, save_file

    out = tmp_path / "model"
    shutil.copytree(saved_model, out)
    sd = load_file(out / "model.safetensors")
    sd = {k: torch.full_like(v, float("nan")) if v.is_floating_point() and (names is None or k in names) else v
          for k, v in sd.items()}
    save_file(sd, out / "model.safetensors")
    return out, sd


def test_finite_sums_that_overflow_are_not_reported():
    big = torch.full((1000,), 3e38)  # finite values whose float32 sum is inf
    assert not torch.isfinite(big.sum())
    assert non_finite([("big", big), ("ids", torch.tensor([1, 2]))]) == ([], 1)
    big[3] = float("-inf")
    assert non_finite([("big", big)]) == (["big"], 1)


def test_nan_weights_load_with_a_warning_naming_them(saved_model, tmp_path, caplog):
    import rrsis

    path, sd = _poisoned(saved_model, tmp_path)
    floats = sorted(k for k, v in sd.items() if v.is_floating_point())
    with caplog.at_level(logging.WARNING, logger="rrsis"):
        model = rrsis.from_pretrained(path)
    (msg,) = [r.getMessage() for r in caplog.records if "NaN" in r.getMessage()]
    assert f"{len(floats)} of {len(floats)} floating-point tensors hold NaN or infinite values ({floats[0]}," in msg
    assert f"({len(floats) - 5} more)" in msg and "meaningless" in msg
    with pytest.raises(RuntimeError, match="the model's output holds NaN or infinite values: "
                                           rf"{len(floats)} of its weight tensors"):
        model.predict(np.zeros((64, 64, 3), np.uint8), "red")


def test_one_nan_tensor_is_named(saved_model, tmp_path, caplog):
    import rrsis

    name = "backbone.patch_embed.proj.weight"
    path, sd = _poisoned(saved_model, tmp_path, {name})
    assert name in sd
    with caplog.at_level(logging.WARNING, logger="rrsis"):
        rrsis.from_pretrained(path)
    assert any(f"1 of {sum(v.is_floating_point() for v in sd.values())} floating-point tensors hold NaN or infinite "
               f"values ({name})" in r.getMessage() for r in caplog.records)


def test_finite_weights_load_without_a_warning(saved_model, caplog):
    import rrsis

    with caplog.at_level(logging.WARNING, logger="rrsis"):
        rrsis.from_pretrained(saved_model)
    assert not [r for r in caplog.records if "NaN" in r.getMessage()]


def test_overflow_in_finite_model_is_named(tiny_model):
    logits = torch.zeros(1, 2, 4, 4)
    assert check_finite_logits(tiny_model, logits) is logits
    logits[0, 1, 0, 0] = float("inf")
    with pytest.raises(RuntimeError, match="its weights are finite, so a value overflowed inside it"):
        check_finite_logits(tiny_model, logits)


def test_cli_predict_refuses_and_writes_no_mask(saved_model, tmp_path, capsys):
    from PIL import Image

    from rrsis.cli import main

    path, _ = _poisoned(saved_model, tmp_path)
    image = tmp_path / "i.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    assert main(["predict", "--model", str(path), "--image", str(image), "--text", "red", "--out", f"{out}/",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "rrsis predict: error: the model's output holds NaN or infinite values" in err
    assert not [p for p in out.rglob("*") if p.is_file()]
