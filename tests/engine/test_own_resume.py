"""``--resume`` refuses a checkpoint that cannot continue this run (another model, or another
whole-word vocabulary after the training split was edited) with a message, and leaves the run's
``config.json`` as it was; the same recipe and data still continue."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import fit, recipe
from PIL import Image


def _folder(root):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        m = np.zeros((32, 32), np.uint8)
        m[4 * i:4 * i + 12, 6:20] = 255
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(m).save(root / "masks" / f"{i}.png")
    (root / "output_phrase_train.txt").write_text("0 the red roof\n1 the blue tank\n2 a road\n3 the ship\n")
    return str(root)


def _cfg(root, out, *overrides, **train):
    return recipe(root, out, "data.dataset=risbench", "data.val_split=null", *overrides,
                  **{"max_steps": 4, "checkpoint_every": 2, "log_every": 1, **train})


def test_resume_refuses_another_model_or_vocabulary_and_continues_the_same(tmp_path):
    root, out = _folder(tmp_path / "data"), tmp_path / "run"
    fit(_cfg(root, out))
    config = (out / "config.json").read_bytes()
    with pytest.raises(ValueError, match=r"cannot resume: the recipe differs from the one the run started "
                                         r"with: model.embed_dim=None \(now 48\)"):
        fit(_cfg(root, out, "model.embed_dim=48"), resume="auto")
    assert (out / "config.json").read_bytes() == config
    with open(f"{root}/output_phrase_train.txt", "a") as f:
        f.write("0 the largest hangar\n")  # two new words: the whole-word vocabulary grows
    with pytest.raises(ValueError, match=r"cannot resume: the checkpoint's tokenizer has \d+ tokens and "
                                         r"this run's \d+, not the same"):
        fit(_cfg(root, out), resume="auto")
    assert (out / "config.json").read_bytes() == config
    with open(f"{root}/output_phrase_train.txt", "w") as f:
        f.write("0 the red roof\n1 the blue tank\n2 a road\n3 the ship\n")
    (out / "checkpoints" / "step-00000004.pt").unlink()  # as if killed after step 2
    assert fit(_cfg(root, out), resume="auto")["steps"] == 4
