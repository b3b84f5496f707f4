"""What an expression says a whole scene can answer (``rrsis.scene.reading``: how many objects,
where, which extreme), and the object mode applying it (``objects="auto"``, ``read=``)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill, tiles_pass

from rrsis.scene import SceneOptions, segment_scene
from rrsis.scene.reading import (
    EVERY,
    EXTREME_AMONG,
    Reading,
    choose,
    objects_named,
    read_expression,
)

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
    ref, n = flood_fill(p > thr)
    big = [j for j in range(1, n + 1) if (ref == j).sum() >= 16]  # one patch cell (4 x 4) or more
    assert len(big) > 3 and len(big) < n
    (every,) = segment_scene(tiny_model, image, "all tanks", mode="object", threshold=thr, return_mask=True)
    assert every.objects == EVERY
    np.testing.assert_array_equal(every.mask, np.isin(ref, big))  # the tiles' own mask less its specks
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
    assert captions[0].endswith("(every object)")
    assert captions[1].endswith("(2 objects)")
    assert captions[2].endswith("(1 object, the largest)")
    got = run(tiny_model, tmp_path / "large.png", [*texts.splitlines(), "the tank"], mode="object", threshold=0.3,
              workdir=tmp_path)
    assert [x.objects for x in got] == [EVERY, 2, 1, 1]
    assert [x.reading for x in got] == ["every object", "2 objects", "1 object, the largest", "1 object"]
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(), str(tmp_path / "large.png"), "the tank", "object", 0.3)
    assert r.gallery[0][1].endswith(" px")  # one object, nothing else read: no note


PLACES = [
    ("the ship in the north-west", (0, 0)),
    ("the plane at the top", (0, None)),
    ("the building at the bottom left corner", (2, 0)),
    ("the tennis court in the upper right", (0, 2)),
    ("the vehicle in the middle", (1, 1)),
    ("the ship on the left side of the image", (None, 0)),
    ("the top left building", (0, 0)),                 # place words before the head noun
    ("the middle left ship", (1, 0)),
    ("all ships in the south", (2, None)),
    ("the two storage tanks north of the road", None),  # about another object
    ("the building on the right of the road", None),
    ("the ship in the north of the port", None),
    ("the building in the parking area", None),
    ("the white plane", None),
]
EXTREMES = [
    ("the largest storage tank", ("area", 1)),
    ("the biggest building in the north", ("area", 1)),
    ("the smallest ship", ("area", -1)),
    ("the tank that is the largest", ("area", 1)),
    ("the northernmost ship", ("y", -1)),
    ("the leftmost two planes", ("x", -1)),
    ("the easternmost vehicle", ("x", 1)),
    ("the ship next to the largest building", None),    # the superlative is another object's
    ("the white plane", None),
]


@pytest.mark.parametrize(("text", "want"), PLACES)
def test_places_read(text, want):
    assert read_expression(text).place == want


@pytest.mark.parametrize(("text", "want"), EXTREMES)
def test_extremes_read(text, want):
    assert read_expression(text).extreme == want


def test_reading_in_words():
    assert read_expression("the two largest tanks at the top left").describe() == \
        "2 objects, the north-west ninth of the scene, the largest"
    assert read_expression("all ships in the south").describe() == "every object, the southern third of the scene"


def _choose_reference(reading, mean_p, x, y, area, objects=None, among=EXTREME_AMONG):
    """The choice written out component by component (an independent reference)."""
    n = reading.objects if objects is None else objects
    idx = list(range(len(mean_p)))
    if reading.place is not None:
        r, c = reading.place
        idx = [i for i in idx if (r is None or min(int(y[i] * 3), 2) == r) and (c is None or min(int(x[i] * 3), 2) == c)]
    if reading.extreme is not None and idx:
        if among is None:
            med = float(np.median([mean_p[i] for i in idx]))
            idx = [i for i in idx if mean_p[i] >= med]
        elif n != EVERY:
            idx = sorted(idx, key=lambda i: (-mean_p[i], i))[:max(among, n)]
        key, sign = reading.extreme
        vals = {"area": area, "x": x, "y": y}[key]
        idx = sorted(idx, key=lambda i: (-sign * vals[i], i))
    else:
        idx = sorted(idx, key=lambda i: (-mean_p[i], i))
    return idx if n == EVERY else idx[:n]


def test_choose_against_a_reference():
    rng = np.random.default_rng(0)
    texts = [t for t, _ in PLACES + EXTREMES] + ["the two largest ships in the east", "all tanks at the top",
                                                  "the three westernmost buildings"]
    for trial in range(40):
        n = int(rng.integers(0, 12))
        mean_p, x, y, area = rng.uniform(0.5, 1, n), rng.random(n), rng.random(n), rng.integers(5, 500, n)
        for t in texts:
            reading = read_expression(t)
            for among in (EXTREME_AMONG, 2, None):
                got = choose(reading, mean_p, x, y, area, extreme_among=among)
                assert list(got) == _choose_reference(reading, mean_p, x, y, area, among=among), (t, trial, among)
    # A place where no component lies: nothing kept (the named object is not there).
    assert len(choose(Reading(place=(0, 0)), [0.9], [0.9], [0.9], [10])) == 0
    # The extreme among the EXTREME_AMONG surest components: a less sure look-alike is not "the
    # largest"; the first rule took it among every one at least as sure as the median one.
    assert EXTREME_AMONG == 5
    mean_p = 0.99 - 0.01 * np.arange(12)
    area = [10, 20, 30, 40, 35, 500, 1, 1, 1, 1, 1, 999]
    largest = Reading(extreme=("area", 1))
    assert list(choose(largest, mean_p, [0.5] * 12, [0.5] * 12, area)) == [3]
    assert list(choose(largest, mean_p, [0.5] * 12, [0.5] * 12, area, extreme_among=None)) == [5]
    # Naming more than that many: the extreme is taken among as many as it names.
    assert list(choose(Reading(objects=7, extreme=("area", 1)), mean_p, [0.5] * 12, [0.5] * 12, area)) \
        == [5, 3, 4, 2, 1, 0, 6]


def test_component_places_follow_the_map_north():
    from affine import Affine

    from rrsis.scene.components import ComponentBuilder
    from rrsis.scene.rank import component_places

    p = np.zeros((30, 60), np.float32)
    p[2:6, 4:10] = 0.9     # near the top-left of the pixel grid
    p[24:28, 50:56] = 0.9  # near the bottom-right
    b = ComponentBuilder(60, 0, 0.5)
    b.add(0, p, np.zeros((30, 60, 0), np.float32))
    comps = b.finish(30)
    north_up = Affine(10.0, 0, 500000, 0, -10.0, 4000000)
    south_up = Affine(10.0, 0, 500000, 0, 10.0, 3999700)     # row 0 is the southern edge
    x0, y0 = component_places(comps)
    x1, y1 = component_places(comps, north_up)
    _, y2 = component_places(comps, south_up)
    np.testing.assert_allclose(x1, x0)
    np.testing.assert_allclose(y1, y0)
    np.testing.assert_allclose(y0, [4 / 30, 26 / 30])
    np.testing.assert_allclose(y2, 1 - y0)  # the grid's top rows lie in the south
    turned = Affine.translation(500000, 4000000) * Affine.rotation(90) * Affine.scale(10, -10)
    x3, y3 = component_places(comps, turned)  # columns run north, rows run east
    assert y3[0] > y3[1] and x3[0] < x3[1]


def test_object_mode_applies_the_extreme(tiny_model, scene_and_p):
    image, p, _ = scene_and_p
    thr = float(np.quantile(p, 0.9))
    (r,) = segment_scene(tiny_model, image, "the largest tank", mode="object", threshold=thr, return_mask=True)
    q, _ = tiles_pass(tiny_model, image, "the largest tank")
    ref, n = flood_fill(q > thr)
    means = np.array([q[ref == j].mean() for j in range(1, n + 1)])
    areas = np.array([(ref == j).sum() for j in range(1, n + 1)])
    strong = np.argsort(-means, kind="stable")[:EXTREME_AMONG]  # the default: among the 5 surest
    best = 1 + strong[np.argmax(areas[strong])]
    assert n > EXTREME_AMONG and np.sort(areas[strong])[-1] > np.sort(areas[strong])[-2]  # one clear answer
    assert best != 1 + int(np.argmax(means))  # not the surest one
    np.testing.assert_array_equal(r.mask, ref == best)
    assert r.reading == "1 object, the largest"
    # Without the extreme read: the surest component.
    (s,) = segment_scene(tiny_model, image, "the largest tank", mode="object", threshold=thr, return_mask=True,
                         read="place,relation")
    np.testing.assert_array_equal(s.mask, ref == 1 + int(np.argmax(means)))
    assert s.reading == "1 object"


@pytest.mark.parametrize(("value", "want"), [(("place",), ("place",)), ("place,extreme", ("place", "extreme")),
                                             ("none", ()), ((), ()), (["extreme", "extreme"], ("extreme",))])
def test_read_values(tiny_model, value, want):
    assert SceneOptions(read=value).resolved(tiny_model, 200, 200).read == want


@pytest.mark.parametrize("bad", ["first", "place,count", 3, ("place", 1)])
def test_bad_read_values(tiny_model, bad):
    with pytest.raises(ValueError, match="read .*expected some of place, extreme"):
        SceneOptions(read=bad).resolved(tiny_model, 200, 200)


def test_place_read_on_a_scene(tiny_model):
    """``read="place"`` (in the default) keeps the surest component in the named ninth: against
    components found by flood fill of the tiles' own probabilities."""
    image = (np.random.default_rng(5).random((192, 192, 3)) * 255).astype(np.uint8)
    text = "the tank in the south-east"
    q, _ = tiles_pass(tiny_model, image, text)
    thr = float(np.quantile(q, 0.9))
    ref, n = flood_fill(q > thr)
    ys, xs = np.indices(ref.shape)
    cells = {j: (int(ys[ref == j].mean() + 0.5) * 3 // 192, int(xs[ref == j].mean() + 0.5) * 3 // 192)
             for j in range(1, n + 1)}
    there = [j for j, c in cells.items() if c == (2, 2)]
    assert there and len(there) < n  # some components there, some elsewhere
    best = max(there, key=lambda j: q[ref == j].mean())
    (r,) = segment_scene(tiny_model, image, text, mode="object", threshold=thr, return_mask=True)
    assert r.reading == "1 object, the south-east ninth of the scene"
    np.testing.assert_array_equal(r.mask, ref == best)


def test_read_given_as_text_or_tuple_is_one_setting(tiny_model, tmp_path):
    """A region done with ``read="place,relation,extreme,colour"`` (what the command line passes) is done
    for the default ``("place", "relation", "extreme", "colour")`` too: the resumed run recomputes nothing."""
    from PIL import Image

    from rrsis.scene import segment_scenes

    Image.fromarray((np.random.default_rng(6).random((96, 96, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    first = segment_scenes(tiny_model, [str(tmp_path / "a.png")], "the ship", out=str(tmp_path / "r"),
                             read="place,relation,extreme,colour")
    again = segment_scenes(tiny_model, [str(tmp_path / "a.png")], "the ship", out=str(tmp_path / "r"))
    assert first.done == ["a"] and again.skipped == ["a"] and not again.done
    assert SceneOptions(read="place, extreme").read == ("place", "extreme")
