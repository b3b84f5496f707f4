"""Relations to another object in mode ``object``: "the vehicle next to the white plane", "the two
storage tanks north of the road". The words are read by :mod:`rrsis.scene.reading`, the geometry
is :mod:`rrsis.scene.relation`'s; both are checked against plain references (pixel by pixel
distances and directions over flood-filled components)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill, tiles_pass

from rrsis.scene import segment_scene
from rrsis.scene.components import ComponentBuilder
from rrsis.scene.reading import EVERY, Reading, choose, read_expression
from rrsis.scene.relation import DIRECTIONS, relate


@pytest.mark.parametrize(("text", "want"), [
    ("the two storage tanks north of the road", ("north", "the road")),
    ("the vehicle next to the white plane", ("near", "the white plane")),
    ("a car parked close to the gas station", ("near", "the gas station")),
    ("the ship beside the dock", ("near", "the dock")),
    ("the vehicle that is adjacent to the large hangar", ("near", "the large hangar")),
    ("the ship nearest the bridge", ("near", "the bridge")),
    ("all ships near the port", ("near", "the port")),
    ("the house on the left side of the bridge", ("west", "the bridge")),
    ("the building on the left-hand side of the road", ("west", "the road")),
    ("the car to the right of the building that is red", ("east", "the building")),
    ("the tank above the river", ("north", "the river")),
    ("the pond below the farm", ("south", "the farm")),
    ("the storage tanks north-west of the road", ("north-west", "the road")),
    ("the court on the eastern side of the stadium", ("east", "the stadium")),
    ("The Ship beside the Dock", ("near", "the Dock")),  # the anchor as written
    # Not relations: places of the whole image, other words, nothing after the word.
    ("the plane on the left of the image", None),
    ("the ship in the north-west", None),
    ("the nearest ship", None),
    ("the ship between the two bridges", None),
    ("the bridge over the river", None),
    ("the largest building", None),
    ("the ship next to", None),
])
def test_relations_read(text, want):
    assert read_expression(text).relation == want


def test_a_place_after_a_relation_is_the_other_objects():
    # "in the north" is where the dock is, not the ship.
    assert read_expression("the ship beside the dock in the north").place is None
    assert read_expression("the ship beside the dock in the north").relation == ("near", "the dock in the north")
    assert read_expression("the ship in the north beside the dock").place == (0, None)
    # A trailing compass word with a hyphen does not end the count's noun.
    said = read_expression("the storage tanks north-west of the road")
    assert said.objects == EVERY and said.place is None
    assert read_expression("the two storage tanks north of the road").objects == 2


def test_relations_in_words():
    assert read_expression("the two tanks north of the road").describe() == '2 objects, north of "the road"'
    assert read_expression("the car next to the white plane").describe() == '1 object, near "the white plane"'


def _components(labels: np.ndarray):
    h, w = labels.shape
    b = ComponentBuilder(w, 0, 0.5)
    b.add(0, (labels > 0).astype(np.float32), np.zeros((h, w, 0), np.float32))
    comps = b.finish(h)
    image = comps.label_image()
    # The flood-fill label of each component, so references can be indexed alike.
    order = [int(np.bincount(labels[image == k + 1]).argmax()) for k in range(len(comps))]
    return comps, order


def _random_blobs(rng, shape, n, r_max=6):
    labels = np.zeros(shape, int)
    yy, xx = np.indices(shape)
    for _ in range(n):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        ry, rx = rng.integers(1, r_max, size=2)
        labels[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    return flood_fill(labels > 0)


def _gap_reference(labels, t, anchor_labels):
    """Least distance between pixel centres of component ``t`` and the anchor, less one."""
    p = np.argwhere(labels == t).astype(float)
    q = np.argwhere(np.isin(labels, anchor_labels)).astype(float)
    d = np.sqrt(((p[:, None] - q[None]) ** 2).sum(-1)).min()
    return max(d - 1.0, 0.0)


def test_gaps_against_pixel_distances():
    rng = np.random.default_rng(0)
    labels, _ = _random_blobs(rng, (60, 80), 14)
    comps, order = _components(labels)
    anchor = [0, 3]  # two components as the anchor; the targets are the same components
    allowed, gap = relate(comps, comps, np.array(anchor), "near")
    for k in range(len(comps)):
        want = _gap_reference(labels, order[k], [order[a] for a in anchor])
        assert gap[k] == pytest.approx(want, abs=1e-9)
    assert not allowed[anchor].any() and allowed[[k for k in range(len(comps)) if k not in anchor]].all()
    # A plural "near" keeps only those within `near` pixels.
    allowed, _ = relate(comps, comps, np.array(anchor), "near", every=True, near=5.0)
    np.testing.assert_array_equal(allowed, (gap <= 5.0) & ~np.isin(np.arange(len(comps)), anchor))


def _side_reference(labels, t, anchor_labels, direction):
    """North-up grid: the anchor's pixels across from the target (their across position within
    the target's span, half a pixel either side), their mean position along the direction."""
    ue, us = DIRECTIONS[direction]
    rows, cols = np.indices(labels.shape)
    along = (cols + 0.5) * ue + (rows + 0.5) * us
    across = (cols + 0.5) * us - (rows + 0.5) * ue
    mine = labels == t
    a = np.isin(labels, anchor_labels)
    lo, hi = across[mine].min() - 0.5, across[mine].max() + 0.5
    under = a & (across >= lo) & (across <= hi)
    if not under.any():
        return None
    return along[mine].mean() - along[under].mean()


@pytest.mark.parametrize("direction", ["north", "south", "east", "west", "north-east", "south-west"])
def test_directions_against_pixels(direction):
    rng = np.random.default_rng(list(DIRECTIONS).index(direction))
    checked = 0
    for _ in range(8):
        labels, _ = _random_blobs(rng, (70, 90), 16, r_max=12)
        comps, order = _components(labels)
        anchor = [int(np.argmax(comps.area))]
        allowed, _ = relate(comps, comps, np.array(anchor), direction)
        for k in range(len(comps)):
            if k in anchor:
                assert not allowed[k]
                continue
            margin = _side_reference(labels, order[k], [order[a] for a in anchor], direction)
            if margin is not None and abs(margin) > 1.5:  # clear cases: segments against pixels
                assert allowed[k] == (margin > 0), (direction, k, margin)
                checked += 1
    assert checked >= 10


def test_north_of_a_long_road_is_judged_against_the_road_below():
    """A diagonal road: tanks north of it at both ends lie south of the road's centre, and the
    ones south of it at both ends north of it; each is judged against the stretch under it."""
    h, w = 100, 100
    labels = np.zeros((h, w), int)
    for x in range(w):  # the road: rows 20-80 from west to east, 5 pixels thick
        y = 20 + int(0.6 * x)
        labels[y:y + 5, x] = 1
    tanks = {(8, 5): "north", (35, 5): "south", (62, 92): "north", (95, 92): "south"}
    for y, x in tanks:
        labels[y:y + 3, x:x + 3] = 2
    ref, _ = flood_fill(labels > 0)
    comps, order = _components(ref)
    road = next(k for k in range(len(comps)) if comps.area[k] > 100)
    north, _ = relate(comps, comps, np.array([road]), "north")
    south, _ = relate(comps, comps, np.array([road]), "south")
    for (y, x), side in tanks.items():
        k = order.index(ref[y, x])
        assert north[k] == (side == "north") and south[k] == (side == "south"), (y, x)


def test_directions_follow_the_map():
    affine = pytest.importorskip("affine")
    labels = np.zeros((40, 40), int)
    labels[18:22, :] = 1  # a road across the grid
    labels[5:8, 10:13] = 2  # above it on the grid
    labels[32:35, 25:28] = 3  # below it
    comps, order = _components(labels)
    road = order.index(1)
    up, down = order.index(2), order.index(3)
    north_up = affine.Affine(10, 0, 500000, 0, -10, 4000000)
    south_up = affine.Affine(-10, 0, 500400, 0, 10, 3999600)  # the grid turned 180°
    turned = affine.Affine(0, 10, 500000, 10, 0, 4000000)  # rows run east, columns north
    assert relate(comps, comps, [road], "north", transform=north_up)[0][[up, down]].tolist() == [True, False]
    assert relate(comps, comps, [road], "north", transform=south_up)[0][[up, down]].tolist() == [False, True]
    assert relate(comps, comps, [road], "west", transform=turned)[0][[up, down]].tolist() == [True, False]


def test_choose_keeps_the_nearest_related_ones():
    reading = Reading(objects=2, relation=("near", "the road"))
    allowed = np.array([True, True, False, True, True])
    gap = np.array([9.0, 3.0, 0.0, 3.0, 1.0])
    mean_p = np.array([0.99, 0.6, 0.99, 0.9, 0.55])
    kept = choose(reading, mean_p, np.zeros(5), np.zeros(5), np.ones(5), related=(allowed, gap))
    assert kept.tolist() == [4, 3]  # the nearest, then the surer of two at equal distance
    every = choose(Reading(objects=EVERY), mean_p, np.zeros(5), np.zeros(5), np.ones(5), related=(allowed, gap))
    assert sorted(every.tolist()) == [0, 1, 3, 4]


def test_bad_relation():
    with pytest.raises(ValueError, match="relation 'up'"):
        relate(*(_components(np.eye(5, dtype=int))[0],) * 2, [0], "up")


def test_object_mode_reads_the_relation(tiny_model):
    """End to end: a second tiles pass over the anchor's words finds its components; each of the
    surest few may be the anchor, and the pair of anchor and component (not the anchor itself)
    both passes are surest of, the nearer first, is kept (:mod:`rrsis.scene.rank`'s constants);
    against flood fills of both passes and pixel distances."""
    import math

    from rrsis.scene import SceneOptions
    from rrsis.scene.rank import ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD

    image = (np.random.default_rng(7).random((160, 192, 3)) * 255).astype(np.uint8)
    text, anchor = "the tank next to the white plane", "the white plane"
    p, _ = tiles_pass(tiny_model, image, text)
    q, _ = tiles_pass(tiny_model, image, anchor)
    opt = SceneOptions(mode="tiles").resolved(tiny_model, *image.shape[:2])
    near = opt.tile * opt.pixel_ratio
    thr = float(np.quantile(p, 0.9))
    ref, n = flood_fill(p > thr)
    aref, m = flood_fill(q > thr)
    q_mean = {j: q[aref == j].mean() for j in range(1, m + 1)}
    pairs = []  # (cost, target)
    for a in sorted(q_mean, key=lambda j: -q_mean[j])[:ANCHOR_CANDIDATES]:
        qa = np.argwhere(aref == a).astype(float)
        for j in range(1, n + 1):
            pts = np.argwhere(ref == j).astype(float)
            if ((aref == a)[ref == j]).sum() >= 0.5 * len(pts):
                continue  # the anchor itself
            gap = max(np.sqrt(((pts[:, None] - qa[None]) ** 2).sum(-1)).min() - 1, 0.0)
            pairs.append((gap / (SPREAD * near) - math.log(p[ref == j].mean()) - ANCHOR_WEIGHT * math.log(q_mean[a]), j))
    pairs.sort()
    assert pairs[0][0] < pairs[1][0] - 1e-6  # one clear best pair
    (r,) = segment_scene(tiny_model, image, text, mode="object", threshold=thr, return_mask=True)
    assert r.reading == '1 object, near "the white plane"'  # read by default
    np.testing.assert_array_equal(r.mask, ref == pairs[0][1])
    # Without "relation" in read, the surest component, as before.
    (s,) = segment_scene(tiny_model, image, text, mode="object", threshold=thr, return_mask=True, read="place")
    np.testing.assert_array_equal(s.mask, ref == 1 + int(np.argmax([p[ref == j].mean() for j in range(1, n + 1)])))
    assert s.reading == "1 object"


def test_cli_reads_the_relation(tiny_model, tmp_path, capsys):
    from PIL import Image

    from rrsis.cli import main
    from rrsis.hub import save_pretrained

    save_pretrained(tiny_model, tmp_path / "model")
    image = (np.random.default_rng(7).random((160, 192, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "scene.png")
    text = "the tank next to the white plane"
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", str(tmp_path / "scene.png"), "--text", text,
            "--mode", "object", "--threshold", "0.5"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0  # the default reads it
    assert 'near "the white plane"' in capsys.readouterr().out
    assert main([*argv, "--read", "place", "--out", str(tmp_path / "p")]) == 0
    assert 'near "the white plane"' not in capsys.readouterr().out
    (want,) = segment_scene(tiny_model, image, text, mode="object", threshold=0.5, return_mask=True,
                            read=("place", "relation"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "r_mask.png")) > 0, want.mask)
    assert main([*argv, "--read", "place,relations", "--out", str(tmp_path / "bad")]) == 2
    assert "read 'relations': expected some of place, extreme, relation" in capsys.readouterr().err
