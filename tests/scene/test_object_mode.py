"""The object whole-scene mode: tiles propose components, the one they are surest of is kept
(``objects`` of them: "the two storage tanks" keeps two)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill, tiles_pass

from rrsis.scene import SceneOptions, open_scene, segment_scene
from rrsis.scene.components import ComponentBuilder
from rrsis.scene.rank import object_scores, object_strips


@pytest.fixture(scope="module")
def scene_and_p(tiny_model):
    image = (np.random.default_rng(1).random((160, 224, 3)) * 255).astype(np.uint8)
    return image, *tiles_pass(tiny_model, image, "the largest tank")


def test_object_mask_is_the_component_of_highest_mean_probability(tiny_model, scene_and_p):
    image, p, text = scene_and_p
    thr = float(np.quantile(p, 0.9))  # a tenth of the pixels: several components
    # The reference: components by flood fill of the whole map, the one of highest mean p.
    ref, n = flood_fill(p > thr)
    assert n > 3
    means = np.array([p[ref == j].mean() for j in range(1, n + 1)])
    best = 1 + int(np.argmax(means))
    assert np.sort(means)[-1] > np.sort(means)[-2]  # one clear answer
    r, = segment_scene(tiny_model, image, "the largest tank", mode="object", read="none", threshold=thr,
                       return_mask=True)
    assert r.mode == "object"
    np.testing.assert_array_equal(r.mask, ref == best)
    # Its probability in the output (the probabilities COG) is that mean; every other pixel 0.
    with open_scene(image) as sc:
        opt = SceneOptions(mode="object", strip_rows=48, objects=1).resolved(tiny_model, sc.height, sc.width)
        out = np.concatenate([q for _, q, _ in object_strips(sc, tiny_model, text, opt, thr)])
    np.testing.assert_allclose(out[ref == best], means[best - 1], rtol=1e-5)
    assert not out[ref != best].any()


def test_object_scores_on_no_and_several_components(scene_and_p):
    image, p, _ = scene_and_p
    b = ComponentBuilder(p.shape[1], 3, 0.5)  # nothing above 0.5: no component, an empty answer
    b.add(0, np.minimum(p, 0.4), image.astype(np.float32) / 255)
    comps = b.finish(p.shape[0])
    assert len(comps) == 0 and object_scores(comps).shape == (0,)
    b = ComponentBuilder(p.shape[1], 3, float(np.quantile(p, 0.9)))
    b.add(0, p, image.astype(np.float32) / 255)
    comps = b.finish(p.shape[0])
    s = object_scores(comps)
    assert (s > 0).sum() == 1 and s.max() == pytest.approx(comps.mean_probability.max())


def test_auto_uses_object_above_two_tiles_a_side(tiny_model):
    assert SceneOptions().resolved(tiny_model, 1000, 800).mode == "object"
    rng = np.random.default_rng(2)
    image = (rng.random((200, 200, 3)) * 255).astype(np.uint8)
    (r,) = segment_scene(tiny_model, image, "the largest tank", mode="auto", return_mask=True)
    assert r.mode == "object"  # 200 > 2 × 64: above two tiles a side
    assert r.mask.sum() == 0 or len(np.unique(flood_fill(r.mask)[0])) == 2  # none or one object


def test_cli_object_mode_writes_the_object_segment_scene_finds(tiny_model, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from test_scene import write_scene

    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    write_scene(tmp_path / "scene.tif")
    save_pretrained(tiny_model, tmp_path / "model")
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "scene.tif"),
            "--text", "the red building", "--bands", "1,2,3", "--quiet", "--tile", "64"]
    assert main([*argv, "--mode", "object", "--out", str(tmp_path / "o")]) == 0
    (want,) = segment_scene(tiny_model, str(tmp_path / "scene.tif"), "the red building", bands="1,2,3",
                            mode="object", tile=64, return_mask=True)
    assert want.mask.any()
    with rasterio.open(tmp_path / "o_mask.tif") as ds:
        np.testing.assert_array_equal(ds.read(1) > 0, want.mask)
    assert len(np.unique(flood_fill(want.mask)[0])) == 2  # one object


def test_two_objects_are_the_two_components_of_highest_mean_probability(tiny_model, scene_and_p):
    image, p, _ = scene_and_p
    thr = float(np.quantile(p, 0.9))
    ref, n = flood_fill(p > thr)  # the reference components, by flood fill of the whole map
    # Candidates: components of one patch cell (4 x 4 model pixels) or more; the rest are specks.
    big = [j for j in range(1, n + 1) if (ref == j).sum() >= 16]
    means = np.array([p[ref == j].mean() if j in big else -1.0 for j in range(1, n + 1)])
    order = 1 + np.argsort(-means)
    assert len(big) > 3 and len(big) < n and means[order[1] - 1] > means[order[2] - 1]  # a clear top two
    (one,) = segment_scene(tiny_model, image, "the largest tank", mode="object", read="none", threshold=thr,
                           return_mask=True)
    (two,) = segment_scene(tiny_model, image, "the largest tank", mode="object", objects=2, read="none", threshold=thr,
                           return_mask=True)
    np.testing.assert_array_equal(one.mask, ref == order[0])
    np.testing.assert_array_equal(two.mask, np.isin(ref, order[:2]))
    # More objects than components: every candidate, the tiles' mask at the threshold less its specks.
    (every,) = segment_scene(tiny_model, image, "the largest tank", mode="object", objects=n + 5, read="none",
                             threshold=thr, return_mask=True)
    np.testing.assert_array_equal(every.mask, np.isin(ref, big))


def test_object_scores_keep_k_in_order(scene_and_p):
    image, p, _ = scene_and_p
    b = ComponentBuilder(p.shape[1], 3, float(np.quantile(p, 0.9)))
    b.add(0, p, image.astype(np.float32) / 255)
    comps = b.finish(p.shape[0])
    for k in (1, 2, 3):
        s = object_scores(comps, k)
        assert (s > 0).sum() == k
        np.testing.assert_allclose(np.sort(s[s > 0]), np.sort(comps.mean_probability)[-k:])
    np.testing.assert_allclose(object_scores(comps, "all"), comps.mean_probability, rtol=1e-6)


def test_object_strips_need_the_count_resolved(tiny_model, scene_and_p):
    image, _, text = scene_and_p
    with open_scene(image) as sc:
        opt = SceneOptions(mode="object").resolved(tiny_model, sc.height, sc.width)
        with pytest.raises(ValueError, match="objects resolved"):
            next(object_strips(sc, tiny_model, text, opt))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_objects_must_be_a_whole_number_of_at_least_one(tiny_model, bad):
    with pytest.raises(ValueError, match="objects must be a whole number >= 1"):
        SceneOptions(mode="object", objects=bad).resolved(tiny_model, 200, 200)


def test_cli_objects_flag(tiny_model, tmp_path, capsys):
    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    save_pretrained(tiny_model, tmp_path / "model")
    image = (np.random.default_rng(3).random((96, 160, 3)) * 255).astype(np.uint8)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "scene.png")
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "scene.png"),
            "--text", "the largest tank", "--mode", "object", "--threshold", "0.3", "--quiet"]
    assert main([*argv, "--objects", "2", "--out", str(tmp_path / "o")]) == 0
    (want,) = segment_scene(tiny_model, image, "the largest tank", mode="object", objects=2, threshold=0.3,
                            return_mask=True)
    got = np.asarray(Image.open(tmp_path / "o_mask.png")) > 0
    np.testing.assert_array_equal(got, want.mask)
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--objects", "0", "--out", str(tmp_path / "p")])
    assert exit_.value.code == 2 and "--objects" in capsys.readouterr().err
