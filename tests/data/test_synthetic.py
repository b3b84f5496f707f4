"""Tests for the synthetic scene generator: both on-disk layouts, exactness, determinism, stats."""

from __future__ import annotations

import json
import os
import pickle
import re

import numpy as np
import pytest
import torch

from rrsis.cli import main as cli_main
from rrsis.data import RefSegRSDataset, RRSISDDataset, read_image
from rrsis.data.coco import have_pycocotools
from rrsis.data.synthetic import assign_splits, generate, generate_scene, vocabulary

SEED, SIZE, N = 3, 96, 12
OPTS = {"no_target_frac": 0.2}
BACKENDS = ["numpy", pytest.param("pycocotools", marks=pytest.mark.skipif(
    not have_pycocotools(), reason="pycocotools not installed"))]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    stats = generate(str(root), N, seed=SEED, size=SIZE, **OPTS)
    return str(root), stats


def _load_refer(root):
    with open(os.path.join(root, "rrsisd", "refs(unc).p"), "rb") as f:
        refs = pickle.load(f)
    with open(os.path.join(root, "rrsisd", "instances.json")) as f:
        coco = json.load(f)
    return refs, coco


def _scene_of_rrsisd(sample):
    return int(sample["image_id"]) - 1


def _scene_of_refsegrs(sample):
    return int(sample["image_id"].split("_")[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_layouts_give_identical_samples(synth, backend):
    root, stats = synth
    total = 0
    for split in ("train", "val", "test"):
        a = RRSISDDataset(os.path.join(root, "rrsisd"), split, mode="eval", size=48,
                          coco_backend=backend, return_native_mask=True)
        b = RefSegRSDataset(os.path.join(root, "refsegrs"), split, size=48,
                            return_native_mask=True)
        sa = {(_scene_of_rrsisd(s), s["text"]): s for s in a}
        sb = {(_scene_of_refsegrs(s), s["text"]): s for s in b}
        assert sa.keys() == sb.keys() and len(sa) == len(a) == len(b)
        for k in sa:
            assert torch.equal(sa[k]["pixel_values"], sb[k]["pixel_values"]), k
            assert torch.equal(sa[k]["mask"], sb[k]["mask"]), k
            assert torch.equal(sa[k]["native_mask"], sb[k]["native_mask"]), k
        total += len(a)
    assert total == stats["n_expressions"]


def test_masks_and_images_are_exact(synth):
    root, _ = synth
    scenes = {}
    n_empty = n_multi = 0
    for split in ("train", "val", "test"):
        ds = RefSegRSDataset(os.path.join(root, "refsegrs"), split, size=32,
                             return_native_mask=True)
        for i, entry in enumerate(ds.entries):
            scene_idx, group = (int(v) for v in entry.image_id.split("_"))
            if scene_idx not in scenes:
                scenes[scene_idx] = generate_scene(scene_idx, SEED, SIZE, split, 4, **OPTS)
            gs = scenes[scene_idx]
            targets, exprs = gs.groups()[group]
            assert entry.sentences[0][1] in [e.text for e in exprs]
            sample = ds[i]  # one line per entry
            assert sample["sample_id"] == entry.name
            expect = gs.target_mask(targets)
            np.testing.assert_array_equal(sample["native_mask"].numpy(), expect)
            n_empty += not targets
            n_multi += len(targets) > 1
            pixels = np.rint(read_image(entry.image_path) * 255).astype(np.uint8)
            np.testing.assert_array_equal(pixels, gs.image)
    assert n_empty > 0 and n_multi > 0  # the fixture holds both kinds


def test_rrsisd_annotation_encodings(synth):
    root, _ = synth
    refs, coco = _load_refer(root)
    kinds = set()
    for ann in coco["annotations"]:
        seg = ann["segmentation"]
        if isinstance(seg, list):
            kinds.add("polygon")
        elif isinstance(seg["counts"], str):
            kinds.add("rle")
        else:
            kinds.add("rle-list")
    assert kinds == {"polygon", "rle", "rle-list"}
    ann_ids = [r["ann_id"] for r in refs]
    assert any(isinstance(a, list) and len(a) > 1 for a in ann_ids)  # multi-target
    assert -1 in ann_ids  # no-target
    assert {r["split"] for r in refs} == {"train", "val", "test"}
    for r in refs:
        for s in r["sentences"]:
            assert s["raw"] == s["sent"] and s["tokens"] == s["raw"].split()


def _non_unique_share(root):
    """Recompute the statistic from the written files alone."""
    refs, coco = _load_refer(root)
    cat_of = {a["id"]: a["category_id"] for a in coco["annotations"]}
    per_image: dict[int, list[int]] = {}
    for a in coco["annotations"]:
        per_image.setdefault(a["image_id"], []).append(a["id"])
    hits = total = 0
    for r in refs:
        ids = r["ann_id"] if isinstance(r["ann_id"], list) else [r["ann_id"]]
        ids = [i for i in ids if i != -1]
        distractor = any(cat_of[a] == r["category_id"] and a not in ids
                         for a in per_image.get(r["image_id"], []))
        n = len(r["sentences"])
        total += n
        hits += n if ids and distractor else 0
    return hits / total


def test_non_unique_target_share_default(tmp_path, capsys):
    out = tmp_path / "share"
    code = cli_main(["synth", str(out), "--n-scenes", "40", "--size", "96", "--seed", "0",
                     "--layout", "rrsisd", "--quiet", "--workers", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    with open(out / "stats.json") as f:
        stats = json.load(f)
    share = stats["non_unique_target_share"]
    assert share >= 0.6
    assert share == pytest.approx(_non_unique_share(str(out)), abs=1e-4)
    assert printed.count("\n") == 1 and "stats.json" in printed  # --quiet: one line naming the statistics
    assert stats["no_target"] == 0 and stats["n_scenes"] == 40
    assert sorted(os.listdir(out)) == ["rrsisd", "stats.json"]


def test_stats_json_matches_return_value(synth):
    root, stats = synth
    with open(os.path.join(root, "stats.json")) as f:
        assert json.load(f) == stats
    assert stats["no_target"] > 0 and stats["multi_target"] > 0
    assert sum(v["expressions"] for v in stats["splits"].values()) == stats["n_expressions"]


def test_deterministic_per_seed(tmp_path):
    def files(root):
        out = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, root)] = f.read()
        return out

    generate(str(tmp_path / "a"), 3, seed=7, size=64)
    generate(str(tmp_path / "b"), 3, seed=7, size=64)
    generate(str(tmp_path / "c"), 3, seed=8, size=64)
    # Scenes made in two worker processes: the same bytes (pickled refs included).
    generate(str(tmp_path / "w"), 3, seed=7, size=64, workers=2)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b == files(tmp_path / "w")
    assert a != c


def test_vocabulary_covers_every_expression(synth):
    root, _ = synth
    refs, _ = _load_refer(root)
    vocab = set(vocabulary())
    words = set(vocabulary(split_punctuation=False))
    for r in refs:
        for s in r["sentences"]:
            assert set(s["raw"].split()) <= words
            assert set(re.findall(r"\w+|[^\w\s]", s["raw"])) <= vocab
    assert "-" in vocab and "north-west" in words and len(vocab) < 80


def test_objects_are_large_enough(tmp_path):
    size, frac = 128, 0.12
    generate(str(tmp_path), 6, seed=1, size=size, layout="rrsisd", min_object_frac=frac)
    _, coco = _load_refer(str(tmp_path))
    for ann in coco["annotations"]:
        w, h = ann["bbox"][2:]
        # a rotated box keeps at least 1/sqrt(2) of its long side along one axis
        assert max(w, h) >= frac * size / np.sqrt(2) - 1


def test_assign_splits_and_argument_errors(tmp_path):
    labels = assign_splits(10, (0.8, 0.1, 0.1), seed=0)
    assert sorted(labels).count("train") == 8 and labels.count("val") == labels.count("test") == 1
    assert assign_splits(10, (0.8, 0.1, 0.1), seed=0) == labels
    assert assign_splits(3, (0.9, 0.05, 0.05), seed=0).count("test") == 1
    with pytest.raises(ValueError, match="layout"):
        generate(str(tmp_path), 2, layout="coco")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            generate(str(tmp_path), 2, workers=bad)
    with pytest.raises(ValueError, match="splits"):
        assign_splits(5, (1.0, -0.1, 0.1), seed=0)
