"""SceneCropDataset: crops of large scenes with the scene's expressions and the crop's box."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("rasterio")

from rrsis.data import DATASETS, SceneCropDataset, collate_fn
from rrsis.data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale
from rrsis.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    st = LargeSceneSettings(size=192, train_size=48, per_kind=2)
    metas = [write_scene_at_scale(root / "train", st, seed=k, name=f"s{k}") for k in range(2)]
    return root, metas


def _scene(root, meta):
    import rasterio

    with rasterio.open(root / "train" / meta["labels"]) as ds:
        labels = ds.read(1)
    with rasterio.open(root / "train" / meta["image"]) as ds:
        image = ds.read().transpose(1, 2, 0)
    return image, labels


def test_training_crops_hold_their_part_of_the_answer_and_their_box(scenes):
    root, metas = scenes
    ds = DATASETS.build("scene-crops", root=str(root), split="train", size=48, train=True, seed=3)
    assert isinstance(ds, SceneCropDataset) and ds.crop == 48
    assert len(ds) == sum(len(m["expressions"]) for m in metas)
    by_name = {f"s{k}": _scene(root, m) for k, m in enumerate(metas)}
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    around = 0
    for i in range(len(ds)):
        s = ds[i]
        image, labels = by_name[s["image_id"]]
        left, top, right, bottom = s["position"].tolist()
        h, w = labels.shape
        y0, x0 = round(top * h), round(left * w)
        assert (round(right * w) - x0, round(bottom * h) - y0) == (48, 48)
        targets = ds.entries[i].target
        want = np.isin(labels[y0:y0 + 48, x0:x0 + 48], targets)
        assert torch.equal(s["mask"], torch.from_numpy(want.astype(np.int64)))
        pix = (image[y0:y0 + 48, x0:x0 + 48] / 255.0 - mean) / std
        np.testing.assert_allclose(s["pixel_values"].numpy(), pix.transpose(2, 0, 1), atol=1e-5)
        around += bool(want.any())
        if not targets:
            assert not want.any()
    # Most expressions with a target get a crop showing it (60 % are drawn around one).
    with_target = sum(bool(e.target) for e in ds.entries)
    assert around >= 0.4 * with_target
    # Each epoch draws new crops; the same epoch draws the same ones.
    first = [ds[i]["position"] for i in range(5)]
    assert all(torch.equal(a, ds[i]["position"]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[i]["position"]) for i, a in enumerate(first))


def test_evaluation_crops_are_fixed_and_one_holds_the_target(scenes):
    root, _ = scenes
    a = SceneCropDataset(root, "train", size=48, train=False)
    b = SceneCropDataset(root, "train", size=48, train=False)
    assert len(a) == 2 * len(a.entries)
    for i in range(len(a)):
        assert torch.equal(a[i]["position"], b[i]["position"])
        ei, draw = a.samples[i]
        if draw == 0 and a.entries[ei].target:
            assert a[i]["mask"].any()
    batch = collate_fn([a[0], a[1], a[2]])
    assert batch["position"].shape == (3, 4)


def test_bad_folders_and_descriptions_are_named(tmp_path, scenes):
    with pytest.raises(FileNotFoundError, match="no scene .json"):
        SceneCropDataset(tmp_path, "train")
    root, _ = scenes
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.json").write_text(json.dumps({"image": "x.tif"}))
    with pytest.raises(ValueError, match="not a large-scene description"):
        SceneCropDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="larger than the scene"):
        SceneCropDataset(root, "train", crop=400)
