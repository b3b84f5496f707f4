"""A recipe's splits on a user's folder: a missing validation split names the recipe key and the
splits that exist, an empty split stops before a model is built."""

import numpy as np
import pytest
from PIL import Image

from rrsis.engine import load_config
from rrsis.engine.trainer import build_datasets


def _folder(root, splits):
    (root / "images").mkdir()
    (root / "masks").mkdir()
    m = np.zeros((16, 16), np.uint8)
    m[4:9, 2:12] = 255
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(root / "images" / "0.png")
    Image.fromarray(m).save(root / "masks" / "0.png")
    for split, text in splits.items():
        (root / f"output_phrase_{split}.txt").write_text(text)
    return str(root)


def _data(root, *overrides):
    return load_config("gl-msin-tiny-synthetic", ["data.dataset=risbench", f"data.root={root}", *overrides])["data"]


def test_a_missing_validation_split_names_the_key_and_the_splits_found(tmp_path):
    root = _folder(tmp_path, {"train": "0 the roof\r\n", "test": "0 the roof\r\n"})
    with pytest.raises(FileNotFoundError, match=r"data.val_split='val' \(null: train without validation\): "
                                                r".*output_phrase_val.txt: phrase file for split 'val' not "
                                                r"found; splits found in .*: test, train$"):
        build_datasets(_data(root))
    train, val = build_datasets(_data(root, "data.val_split=null"))
    assert (len(train), val) == (1, None)
    assert len(build_datasets(_data(root, "data.val_split=test"))[1]) == 1


@pytest.mark.parametrize(("key", "splits"), [
    ("train_split", {"train": "\r\n\n", "val": "0 the roof\n"}),   # blank lines only
    ("val_split", {"train": "0 the roof\n", "val": "\n"}),
])
def test_an_empty_split_stops_before_a_model_is_built(tmp_path, key, splits):
    root = _folder(tmp_path, splits)
    split = "train" if key == "train_split" else "val"
    hint = r" \(null: train without validation\)" if split == "val" else ""
    with pytest.raises(ValueError, match=rf"data.{key}='{split}' holds no sample{hint}$"):
        build_datasets(_data(root))


def test_an_emptied_split_says_how_many_were_skipped(tmp_path):
    root = _folder(tmp_path, {"train": "7 a roof\n8 a road\n", "val": "0 the roof\n"})
    with pytest.raises(ValueError, match=r"data.train_split='train' holds no sample; 2 skipped as malformed"):
        build_datasets(_data(root, 'data.options={"skip_bad": true}'))
