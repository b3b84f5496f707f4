"""The object's colour read from an expression and measured on the scene's pixels
(:mod:`rrsis.scene.colour`, ``Reading.colour``, ``read="colour"``)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill, tiles_pass

from rrsis.scene import SceneOptions, segment_scene
from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN, PROTOTYPES, colour_cost, to_lab
from rrsis.scene.components import ComponentBuilder
from rrsis.scene.rank import object_scores
from rrsis.scene.reading import EVERY, Reading, choose, read_expression

COLOURS = [
    ("the white storage tank", "white"),
    ("the grey plane in the north", "gray"),
    ("all red buildings", "red"),
    ("the dark-blue car", "blue"),
    ("the red-roofed building", "red"),
    ("the building with a red roof", "red"),
    ("the ship with the white deck", "white"),
    ("the tank that is white", "white"),
    ("the storage tanks which are orange", "orange"),
    ("the largest Orange tank", "orange"),
    ("a violet sports court", "purple"),
    ("the teal roof", "cyan"),
    ("the whitish storage tanks", "white"),
    ("a bluish-grey ship", "blue"),
    # The other object's colour is not the target's.
    ("the ship next to the white plane", None),
    ("the vehicle north of the red building", None),
    ("the building with a swimming pool", None),
    ("the storage tank", None),
]


@pytest.mark.parametrize(("text", "want"), COLOURS)
def test_colours_read(text, want):
    assert read_expression(text).colour == want


def test_the_anchor_keeps_its_own_colour():
    reading = read_expression("the ship next to the white plane")
    assert reading.relation == ("near", "the white plane")
    assert read_expression(reading.relation[1]).colour == "white"


def test_describe_names_the_colour():
    assert read_expression("the two white tanks in the north").describe() == \
        "2 objects, the northern third of the scene, white"


def test_lab_against_published_values():
    # CIE L*a*b* (D65) of sRGB white, black, red, green and blue, as colour-science tables give them.
    want = {(1, 1, 1): (100.0, 0.0, 0.0), (0, 0, 0): (0.0, 0.0, 0.0), (1, 0, 0): (53.24, 80.09, 67.20),
            (0, 1, 0): (87.73, -86.18, 83.18), (0, 0, 1): (32.30, 79.19, -107.86)}
    got = to_lab(np.array(list(want), np.float64))
    np.testing.assert_allclose(got, np.array(list(want.values())), atol=0.05)


def test_cost_is_relative_lightness_for_white_and_hue_for_red():
    # A dim, hazy scene: no roof is the prototype's white, the lightest gray one is the whitest.
    rgb = np.array([[0.62, 0.63, 0.66], [0.42, 0.42, 0.45], [0.60, 0.35, 0.30]])
    assert np.argmin(colour_cost("white", rgb)) == 0
    assert np.argmin(colour_cost("gray", rgb)) == 1
    # A dark red roof is nearer red than a bright orange one: lightness counts half for a hue.
    rgb = np.array([[0.45, 0.08, 0.08], [0.92, 0.55, 0.10], [0.30, 0.30, 0.32]])
    assert np.argmin(colour_cost("red", rgb)) == 0
    assert np.argmin(colour_cost("orange", rgb)) == 1
    assert colour_cost("white", np.array(PROTOTYPES["white"])[None] / 255.0)[0] == pytest.approx(0.0, abs=1e-9)
    # A colour that could not be measured (a NaN mean) is never the nearest, and never keeps all out.
    cost = colour_cost("white", np.array([[np.nan, 0.5, 0.5], [0.4, 0.4, 0.4]]))
    assert np.isinf(cost[0]) and np.isfinite(cost[1])
    xy = np.zeros(2)
    assert choose(Reading(colour="white"), np.array([0.9, 0.8]), xy, xy, np.ones(2), colour_cost=cost).tolist() == [1]
    inf = np.full(2, np.inf)
    assert choose(Reading(colour="white"), np.array([0.9, 0.8]), xy, xy, np.ones(2), colour_cost=inf).tolist() == [0]
    with pytest.raises(ValueError, match="unknown colour 'mauve'"):
        colour_cost("mauve", rgb)


def test_choose_takes_the_colour_among_the_surest():
    mean_p = np.array([0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7])
    cost = np.array([40.0, 30.0, 5.0, 12.0, 50.0, 60.0, 0.0])  # the nearest (6) is the least sure
    xy, ones = np.full(7, 0.5), np.ones(7)
    white = Reading(colour="white")
    kept = choose(white, mean_p, xy, xy, ones, colour_cost=cost, colour_among=5, colour_margin=10.0)
    assert kept.tolist() == [2]  # 6 is not among the 5 surest; 3 is beyond the margin of 2
    # 2 and 3 are both within a margin of 10: the surer of them first.
    assert choose(Reading(2, colour="white"), mean_p, xy, xy, ones, colour_cost=cost, colour_among=5,
                  colour_margin=10.0).tolist() == [2, 3]
    # Among all 7: 6 and 2 are within the margin of 6, and 2 is the surer.
    assert choose(white, mean_p, xy, xy, ones, colour_cost=cost, colour_among=7, colour_margin=10.0).tolist() == [2]
    assert choose(white, mean_p, xy, xy, ones, colour_cost=cost, colour_among=7, colour_margin=0.0).tolist() == [6]
    # The shipped constants: 7 components are all among COLOUR_AMONG; 2 within COLOUR_MARGIN of 6.
    assert COLOUR_AMONG >= 7 and 5.0 <= COLOUR_MARGIN < 12.0
    assert choose(white, mean_p, xy, xy, ones, colour_cost=cost).tolist() == [2]
    # Every one: among every component, those within the margin of the nearest.
    assert choose(Reading(EVERY, colour="white"), mean_p, xy, xy, ones, colour_cost=cost,
                  colour_margin=10.0).tolist() == [2, 6]
    # No colour read, or no costs: the surest.
    assert choose(Reading(), mean_p, xy, xy, ones, colour_cost=cost).tolist() == [0]
    assert choose(white, mean_p, xy, xy, ones).tolist() == [0]


def _components(shape, boxes, bands: bool):
    """Components of ``(y0, y1, x0, x1, p, rgb)`` boxes, with the image's three bands or none."""
    prob = np.zeros(shape, np.float32)
    image = np.zeros((*shape, 3), np.float32)
    for y0, y1, x0, x1, p, rgb in boxes:
        prob[y0:y1, x0:x1] = p
        image[y0:y1, x0:x1] = rgb
    b = ComponentBuilder(shape[1], 3 if bands else 0, 0.5)
    b.add(0, prob, image if bands else image[..., :0])
    return b.finish(shape[0])


def test_object_scores_measure_the_colour_on_the_bands():
    boxes = [(5, 15, 5, 15, 0.95, (0.5, 0.5, 0.52)), (5, 15, 40, 50, 0.8, (0.93, 0.93, 0.9)),
             (30, 40, 5, 15, 0.9, (0.7, 0.2, 0.15))]
    comps = _components((50, 60), boxes, bands=True)
    np.testing.assert_allclose(comps.band_means[1], [0.93, 0.93, 0.9], atol=1e-6)
    for text, want in (("the white tank", 1), ("the red tank", 2), ("the gray tank", 0)):
        reading = read_expression(text)
        assert np.flatnonzero(object_scores(comps, 1, reading)).tolist() == [want], text
    # Built without bands (or from another band count), the colour is not measured: the surest.
    plain = _components((50, 60), boxes, bands=False)
    assert np.flatnonzero(object_scores(plain, 1, read_expression("the white tank"))).tolist() == [0]


def test_read_accepts_colour(tiny_model):
    assert SceneOptions(read="place,colour").resolved(tiny_model, 200, 200).read == ("place", "colour")


def test_object_mode_reads_the_colour_on_a_scene(tiny_model):
    """``read`` with ``"colour"`` keeps the component whose mean colour is nearest the named one
    among the surest: against components found by flood fill of the tiles' own probabilities and
    their mean colours on the image."""
    rng = np.random.default_rng(3)
    palette = np.array([PROTOTYPES[c] for c in ("white", "gray", "red", "green", "blue", "black")], np.uint8)
    image = np.kron(palette[rng.integers(len(palette), size=(12, 12))], np.ones((16, 16, 1), np.uint8))
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    text = "the white tank"
    q, _ = tiles_pass(tiny_model, image, text)
    thr = float(np.quantile(q, 0.85))
    ref, n = flood_fill(q > thr)
    means = np.array([q[ref == j].mean() for j in range(1, n + 1)])
    rgb = np.array([image[ref == j].mean(axis=0) / 255.0 for j in range(1, n + 1)])
    surest = np.argsort(-means, kind="stable")[:COLOUR_AMONG]
    cost = colour_cost("white", rgb)
    near = surest[cost[surest] <= cost[surest].min() + COLOUR_MARGIN]
    best = 1 + near[np.argmax(means[near])]
    assert n > COLOUR_AMONG and best != 1 + int(np.argmax(means))  # the colour changes the answer
    (r,) = segment_scene(tiny_model, image, text, mode="object", threshold=thr, return_mask=True,
                         read="place,relation,extreme,colour")
    assert r.reading == "1 object, white"
    np.testing.assert_array_equal(r.mask, ref == best)
    (s,) = segment_scene(tiny_model, image, text, mode="object", threshold=thr, return_mask=True,
                         read="place,relation,extreme")
    assert s.reading == "1 object"
    np.testing.assert_array_equal(s.mask, ref == 1 + int(np.argmax(means)))


def test_a_scene_not_read_as_rgb_says_its_colour_was_not_applied(tiny_tokenizer, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    import torch

    import rrsis

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer), in_chans=4,
                               mean=[0.4] * 4, std=[0.2] * 4).eval()
    model.tokenizer = tiny_tokenizer
    image = (np.random.default_rng(0).random((4, 128, 128)) * 255).astype(np.uint8)
    path = tmp_path / "four.tif"
    # No band declared red, green or blue (GDAL's default for a 4-band uint8 GeoTIFF declares R, G,
    # B and alpha; MINISBLACK declares grey and nothing): four bands, which is which unknown.
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=4, dtype="uint8",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(500000, 4000000, 1, 1),
                       photometric="MINISBLACK") as ds:
        ds.write(image)
    (r,) = segment_scene(model, str(path), "the white tank", mode="object", threshold=0.3, read="colour")
    assert r.reading == "1 object, white (no colour: the scene's red, green and blue are not read)"


def test_a_16_bit_scene_is_judged_over_its_brightest_candidate(tmp_path):
    """16-bit values read with a value scaling (``scale="dtype"``: a bright roof near 0.05), or
    stretched band by band by the reader (no scaling), are measured in the source's values over the
    brightest band of the brightest candidate, one value for the three bands; a cloud brighter than
    every object changes nothing; the same colours at 8 bits are measured as they are."""
    rasterio = pytest.importorskip("rasterio")
    from rrsis.data.synthetic.scene import COLOURS
    from rrsis.scene import open_scene
    from rrsis.scene.colour import component_colours, display_range

    names = list(COLOURS)
    image = np.full((80, 20 * len(names), 3), 110, np.uint8)  # a mid-grey ground
    prob = np.zeros(image.shape[:2], np.float32)
    for i, name in enumerate(names):
        image[20:40, 20 * i + 4:20 * i + 16] = COLOURS[name]
        prob[20:40, 20 * i + 4:20 * i + 16] = 0.9 - 0.01 * i
    dark = image.astype(np.uint16) * 12  # reflectance-like: at most 2904 of 65535
    cloudy = dark.copy()
    cloudy[50:80] = 9000  # a cloud bank over 3/8 of the scene, three times as bright as any roof

    def picked(sc):
        values = sc.read()[0]
        builder = ComponentBuilder(image.shape[1], 3, 0.5)
        builder.add(0, prob, values)
        comps = builder.finish(image.shape[0])
        as_is = [int(np.flatnonzero(object_scores(comps, 1, read_expression(f"the {n} tank")))[0]) for n in names]
        comps.rgb_range = display_range(sc, sc.rgb)
        return as_is, [int(np.flatnonzero(object_scores(comps, 1, read_expression(f"the {n} tank")))[0])
                       for n in names], comps.rgb_range, component_colours(comps)

    order = list(range(len(names)))
    with open_scene(dark, scale="dtype") as sc:
        as_is, over_white, span, scaled = picked(sc)
    np.testing.assert_allclose(span, [[0.0, 1.0]] * 3)  # the reader's values are the source's
    source = np.array([COLOURS[n] for n in names], np.float64) * 12
    np.testing.assert_allclose(scaled, source / source.max(), atol=1e-6)  # an independent computation
    assert as_is != order and over_white == order  # as they are, several colours taken for others
    for i, planes in enumerate((dark, cloudy)):
        path = str(tmp_path / f"dark{i}.tif")
        with rasterio.open(path, "w", driver="GTiff", width=dark.shape[1], height=dark.shape[0], count=3,
                           dtype="uint16", photometric="MINISBLACK") as ds:
            ds.write(np.moveaxis(planes, 2, 0))
        with open_scene(path, scale="dtype") as sc:
            _, over_white, _, colours = picked(sc)
        assert over_white == order
        np.testing.assert_allclose(colours, scaled, atol=1e-6)  # the cloud is no candidate: no change
    with open_scene(str(tmp_path / "dark0.tif")) as sc:  # no scaling: the reader stretches each band (2-98 %)
        assert sc.stretch_range[0] != sc.stretch_range[2]
        _, over_white, _, unstretched = picked(sc)
        lo, hi = np.array(sc.stretch_range, np.float64).T
    assert over_white == order
    # The band-by-band stretch undone: the source's values, saturated where the stretch saturates.
    seen = np.clip(source, lo, hi)
    np.testing.assert_allclose(unstretched, seen / seen.max(), atol=1e-3)
    with open_scene(image) as sc:
        assert display_range(sc, sc.rgb) is None  # 8-bit: as it is


def test_a_16_bit_grey_raster_reads_a_colour_word_on_its_one_band(tiny_model, tmp_path):
    """One 16-bit band, read as grey by an RGB model: its one stretch range serves its three equal
    channels (the white point of the grey values), and "white" picks the brightest of the surest."""
    rasterio = pytest.importorskip("rasterio")
    from rrsis.scene import open_scene
    from rrsis.scene.colour import display_range

    rng = np.random.default_rng(0)
    grey = np.kron(rng.integers(200, 3000, (8, 8)), np.ones((16, 16))).astype(np.uint16)
    path = tmp_path / "grey16.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=1, dtype="uint16", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 4000000, 1, 1)) as ds:
        ds.write(grey[None])
    with open_scene(str(path)) as sc:
        assert sc.bands == (1,) and sc.rgb == (0, 1, 2)
        span = display_range(sc, sc.rgb)
    assert span.shape == (3, 2) and np.allclose(span, span[0])
    (r,) = segment_scene(tiny_model, str(path), "the white tank", mode="object", threshold=0.3)
    assert r.reading == "1 object, white"
