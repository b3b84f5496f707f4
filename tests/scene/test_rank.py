"""The ranked whole-scene mode: tiles propose components, the scene ranker picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fixtures import flood_fill, tiles_pass

from rrsis.heads import SceneRanker
from rrsis.hub.ranker import attach_ranker
from rrsis.scene import SceneOptions, segment_scene
from rrsis.scene.components import ComponentBuilder, n_features
from rrsis.scene.rank import component_scores
from rrsis.scene.rank_train import _giou, _probs, component_labels, train_ranker


def make_ranker(text_dim: int, threshold: float, seed: int = 0, bands: int = 3) -> SceneRanker:
    torch.manual_seed(seed)
    r = SceneRanker(features=n_features(bands), text_dim=text_dim, bands=bands, tile=64,
                    candidate_threshold=threshold, dim=16, heads=2, layers=1)
    torch.nn.init.normal_(r.score.weight, std=2.0)  # scores spread on both sides of 0.5
    return r.eval()


@pytest.fixture(scope="module")
def scene_and_p(tiny_model):
    rng = np.random.default_rng(0)
    image = (rng.random((160, 224, 3)) * 255).astype(np.uint8)
    p, text = tiles_pass(tiny_model, image, "the red building")
    return image, p, text


def test_ranked_mask_is_the_components_the_ranker_scores_above_the_threshold(tiny_model, scene_and_p):
    image, p, text = scene_and_p
    thr = float(np.quantile(p, 0.9))  # a tenth of the pixels: several components
    ranker = make_ranker(text.words.shape[-1], thr)
    # The reference: components by flood fill of the whole map, scored by the ranker.
    ref, n = flood_fill(p > thr)
    b = ComponentBuilder(p.shape[1], 3, thr)
    b.add(0, p, image.astype(np.float32) / 255)
    comps = b.finish(p.shape[0])
    assert len(comps) == n > 3
    scores = component_scores(ranker, comps, text)
    with torch.no_grad():  # centre the scores: about half the components selected
        ranker.score.bias -= float(np.median(np.log(scores / (1 - scores))))
    scores = component_scores(ranker, comps, text)
    assert (scores > 0.5).any() and (scores < 0.5).any()
    lab = comps.label_image()
    expected = np.isin(lab, np.nonzero(scores > 0.5)[0] + 1)
    attach_ranker(tiny_model, ranker)
    try:
        (r,) = segment_scene(tiny_model, image, "the red building", mode="ranked")
    finally:
        attach_ranker(tiny_model, None)
    assert r.mode == "ranked"
    np.testing.assert_array_equal(r.mask, expected)
    assert ((ref > 0) == (lab > 0)).all()


def test_auto_picks_object_for_large_scenes_with_or_without_a_ranker(tiny_model):
    assert SceneOptions().resolved(tiny_model, 1000, 800).mode == "object"
    attach_ranker(tiny_model, make_ranker(tiny_model.text_encoder.hidden_size, 0.5))
    try:
        # the ranker is there for mode="ranked"; auto does not use it (it measured below object)
        assert SceneOptions().resolved(tiny_model, 1000, 800).mode == "object"
        assert SceneOptions(mode="ranked").resolved(tiny_model, 1000, 800).mode == "ranked"
        assert SceneOptions().resolved(tiny_model, 100, 120).mode == "global"
    finally:
        attach_ranker(tiny_model, None)
    with pytest.raises(ValueError, match="needs a model with a scene ranker"):
        SceneOptions(mode="ranked").resolved(tiny_model, 1000, 800)
    with pytest.raises(TypeError, match="SceneRanker"):
        attach_ranker(tiny_model, torch.nn.Linear(2, 2))


def test_a_ranker_for_other_bands_is_refused(tiny_model, scene_and_p):
    image, p, text = scene_and_p
    b = ComponentBuilder(p.shape[1], 3, 0.5)
    b.add(0, np.where(p > np.quantile(p, 0.9), 0.9, 0.1), image.astype(np.float32))
    with pytest.raises(ValueError, match="4-band scenes"):
        component_scores(make_ranker(text.words.shape[-1], 0.5, bands=4), b.finish(p.shape[0]), text)


def test_component_labels_need_half_the_pixels_inside():
    p = np.zeros((10, 10), np.float32)
    p[0:2, 0:4] = p[6:9, 6:9] = 0.9
    b = ComponentBuilder(10, 1)
    b.add(0, p, np.zeros((10, 10, 1), np.float32))
    comps = b.finish(10)
    target = np.zeros((10, 10), bool)
    target[0:2, 0:2] = True   # half of the first (4 of 8 px)
    target[6, 6] = True       # one ninth of the second
    pos, inside = component_labels(comps, target)
    assert pos.tolist() == [True, False] and inside.tolist() == [4, 1]
    with pytest.raises(ValueError, match="does not match"):
        component_labels(comps, target[:5])


def _examples(rng, n, words):
    """Scenes of 6–14 components with random features but for their ranks (as
    ``Components.features`` gives them); "largest" (words 0) names the one of largest area,
    "northernmost" (words 1) the one farthest north."""
    out = []
    f = n_features(3)
    for i in range(n):
        k = int(rng.integers(6, 15))
        feats = rng.normal(size=(k, f)).astype(np.float32)
        feats[:, 4] = np.argsort(np.argsort(feats[:, 2])) / (k - 1)  # area rank
        feats[:, 6] = np.argsort(np.argsort(feats[:, 1])) / (k - 1)  # y rank
        which = i % 2
        pick = int(np.argmax(feats[:, 2])) if which == 0 else int(np.argmin(feats[:, 1]))
        labels = np.zeros(k, bool)
        labels[pick] = True
        area = np.full(k, 10.0)
        out.append({"features": feats, "labels": labels, "inside": labels * 10.0, "area": area, "target_px": 10,
                    "words": torch.from_numpy(words[which]), "word_mask": torch.ones(len(words[which])),
                    "bands": 3, "tile": 64, "candidate_threshold": 0.5})
    return out


@pytest.fixture
def one_thread():
    """Two threads on a loaded two-core machine make this small model's steps ~20× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_train_ranker_learns_which_component_the_words_name(one_thread):
    rng = np.random.default_rng(0)
    words = rng.normal(size=(2, 3, 8)).astype(np.float32)
    ranker = train_ranker(_examples(rng, 200, words), steps=200, batch_size=16, lr=3e-3, dim=16, heads=2,
                          layers=1, log=None)
    test = _examples(np.random.default_rng(1), 100, words)
    probs = [_probs(ranker, e) for e in test]
    top1 = np.mean([e["labels"][np.argmax(p)] for e, p in zip(test, probs)])
    assert top1 > 0.6  # chance: about 0.1
    assert _giou(test, probs, 0.5) > 0.5  # the calibrated 0.5 selects it, not the rest (all of them: ~0.1)
    assert ranker.config["text_dim"] == 8 and ranker.config["features"] == n_features(3)


def test_cli_ranked_mode_on_a_geotiff_with_a_saved_ranker(tiny_model, tmp_path, capsys):
    """A folder with a ranker: ``rrsis predict --mode ranked`` writes the components the
    ranker picks; a ranker that picks every component gives the candidates themselves."""
    rasterio = pytest.importorskip("rasterio")
    from test_scene import write_scene

    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    write_scene(tmp_path / "scene.tif")
    ranker = make_ranker(tiny_model.text_encoder.hidden_size, 0.5)
    with torch.no_grad():
        ranker.score.weight.zero_()
        ranker.score.bias.fill_(10.0)  # every component
    attach_ranker(tiny_model, ranker)
    try:
        save_pretrained(tiny_model, tmp_path / "model")
    finally:
        attach_ranker(tiny_model, None)
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "scene.tif"),
            "--text", "the red building", "--bands", "1,2,3", "--quiet", "--tile", "64"]
    assert main([*argv, "--mode", "ranked", "--out", str(tmp_path / "r")]) == 0
    (cand,) = segment_scene(tiny_model, str(tmp_path / "scene.tif"), "the red building", bands="1,2,3",
                            mode="tiles", tile=64, return_mask=True)
    assert cand.mask.any() and not cand.mask.all()
    with rasterio.open(tmp_path / "r_mask.tif") as ds:
        np.testing.assert_array_equal(ds.read(1) > 0, cand.mask)
    capsys.readouterr()
