"""How many objects an expression names (``rrsis.scene.count``), and the object mode keeping
that many under ``objects="auto"``, the default."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill, tiles_pass

from rrsis.scene import SceneOptions, segment_scene
from rrsis.scene.count import EVERY, objects_named

# Phrasings of RRSIS-D / RefSegRS kind, most of them outside the synthetic generator's grammar.
READINGS = [
    ("the two storage tanks north of the road", 2),
    ("both bridges", 2),
    ("a pair of baseball fields", 2),
    ("the left two ships", 2),
    ("the 3 ships", 3),
    ("the three white storage tanks at the bottom", 3),
    ("all white ships", EVERY),
    ("every vehicle", EVERY),
    ("each of the ships", EVERY),
    ("several planes", EVERY),
    ("a few ships", EVERY),
    ("Ships", EVERY),
    ("the buses", EVERY),
    ("vehicles along the road", EVERY),
    ("the ships north of the road", EVERY),
    ("The storage tanks are located at the bottom", EVERY),
    ("the largest building", 1),
    ("The vehicle is parked on the road", 1),
    ("the ship between the two bridges", 1),    # a count in a modifier does not count
    ("the house next to the trees", 1),         # nor a plural
    ("the leftmost of the three ships", 1),
    ("one of the ships", 1),
    ("the sports court", 1),                    # a plural-looking modifier before the head
    ("the tennis court at the bottom", 1),
    ("the bus in the parking lot", 1),
    ("the gas station", 1),
    ("the grass field", 1),
    ("the 747 plane", 1),                       # a numeral before a singular: a name, not a count
    ("the two-storey building", 1),
    ("the aircraft on the apron", 1),           # singular or plural: one, the safe reading
    ("the red building in the north-west", 1),
    ("", 1),
]


@pytest.mark.parametrize(("text", "want"), READINGS)
def test_objects_named(text, want):
    assert objects_named(text) == want


def test_objects_named_takes_a_string():
    with pytest.raises(TypeError, match="str"):
        objects_named(["the two ships"])


@pytest.fixture(scope="module")
def scene_and_p(tiny_model):
    image = (np.random.default_rng(1).random((160, 224, 3)) * 255).astype(np.uint8)
    return image, *tiles_pass(tiny_model, image, "the two tanks")


def test_auto_keeps_as_many_objects_as_the_expression_names(tiny_model, scene_and_p):
    image, p, _ = scene_and_p
    thr = float(np.quantile(p, 0.9))
    ref, n = flood_fill(p > thr)  # the reference components, by flood fill of the whole map
    means = np.array([p[ref == j].mean() for j in range(1, n + 1)])
    order = 1 + np.argsort(-means)
    assert n > 3 and means[order[1] - 1] > means[order[2] - 1]  # a clear top two
    (two,) = segment_scene(tiny_model, image, "the two tanks", mode="object", threshold=thr, return_mask=True)
    assert two.objects == 2
    np.testing.assert_array_equal(two.mask, np.isin(ref, order[:2]))
    # A number set by hand wins over the expression.
    (one,) = segment_scene(tiny_model, image, "the two tanks", mode="object", objects=1, threshold=thr,
                           return_mask=True)
    assert one.objects == 1
    np.testing.assert_array_equal(one.mask, ref == order[0])


def test_every_object_is_every_component(tiny_model):
    image = (np.random.default_rng(1).random((160, 224, 3)) * 255).astype(np.uint8)
    p, _ = tiles_pass(tiny_model, image, "all tanks")
    thr = float(np.quantile(p, 0.9))
    assert flood_fill(p > thr)[1] > 3
    (every,) = segment_scene(tiny_model, image, "all tanks", mode="object", threshold=thr, return_mask=True)
    assert every.objects == EVERY
    np.testing.assert_array_equal(every.mask, p > thr)  # the tiles' own mask at the threshold
    (same,) = segment_scene(tiny_model, image, "the largest tank", mode="object", objects="all",
                            threshold=thr, return_mask=True)
    assert same.objects == EVERY


def test_objects_recorded_only_in_object_mode(tiny_model):
    image = (np.random.default_rng(4).random((64, 64, 3)) * 255).astype(np.uint8)
    (r,) = segment_scene(tiny_model, image, "the two tanks", mode="global", return_mask=True)
    assert r.objects is None
    assert SceneOptions().objects == "auto"


@pytest.mark.parametrize("bad", ["some", "ALL", 0, 2.0, None])
def test_bad_objects_values(tiny_model, bad):
    with pytest.raises(ValueError, match="'auto' .* or 'all'"):
        SceneOptions(mode="object", objects=bad).resolved(tiny_model, 200, 200)


def test_cli_objects_auto_and_all(tiny_model, tmp_path, capsys):
    from PIL import Image

    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    save_pretrained(tiny_model, tmp_path / "model")
    image = (np.random.default_rng(3).random((96, 160, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "scene.png")
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "scene.png"),
            "--text", "all tanks", "--mode", "object", "--threshold", "0.3", "--quiet"]
    for flag, name in ((["--objects", "all"], "a"), ([], "d")):
        assert main([*argv, *flag, "--out", str(tmp_path / name)]) == 0
    (want,) = segment_scene(tiny_model, image, "all tanks", mode="tiles", threshold=0.3, return_mask=True)
    for name in "ad":
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{name}_mask.png")) > 0, want.mask)
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--objects", "some", "--out", str(tmp_path / "p")])
    assert exit_.value.code == 2 and "auto or all" in capsys.readouterr().err


def test_app_names_the_objects_kept(tiny_model, tmp_path):
    from PIL import Image

    from rrsis.app import Limits, run
    from rrsis.app.session import Workspace, respond

    image = (np.random.default_rng(3).integers(0, 256, (200, 260, 3))).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "large.png")
    texts = "all tanks\nthe two tanks\nthe largest tank"
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(), str(tmp_path / "large.png"), texts, "object", 0.3)
    assert r.ok, r.message
    captions = [c for _, c in r.gallery]
    assert captions[0].endswith("(every object the tiles found)")
    assert captions[1].endswith("(the 2 surest objects)")
    assert captions[2].endswith(" px")
    got = run(tiny_model, tmp_path / "large.png", texts.splitlines(), mode="object", threshold=0.3,
              workdir=tmp_path)
    assert [x.objects for x in got] == [EVERY, 2, 1]
