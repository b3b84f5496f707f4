"""Connected components found strip by strip, against a flood fill over the whole mask."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures import flood_fill

from rrsis.scene.components import FEATURE_NAMES, ComponentBuilder, n_features


def build(p, image, threshold, rng):
    b = ComponentBuilder(p.shape[1], image.shape[2], threshold)
    r = 0
    while r < p.shape[0]:  # strips of random heights, as a scene is read
        h = int(rng.integers(1, 9))
        b.add(r, p[r:r + h], image[r:r + h])
        r += h
    return b.finish(p.shape[0])


@pytest.mark.parametrize("seed", range(6))
def test_components_and_statistics_match_a_flood_fill(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(6, 48, 2))
    p = rng.random((h, w)).astype(np.float32)
    image = rng.random((h, w, 2)).astype(np.float32)
    comps = build(p, image, 0.6, rng)
    ref, n = flood_fill(p > 0.6)
    lab = comps.label_image()
    assert len(comps) == n
    fg = p > 0.6
    assert ((lab > 0) == fg).all()
    assert len(set(zip(lab[fg], ref[fg]))) == n  # the same partition, labels aside
    for k in range(n):
        m = lab == k + 1
        ys, xs = np.nonzero(m)
        s = comps.stats[k]
        assert s[0] == m.sum() and s[1] == ys.sum() and s[2] == xs.sum()
        assert (s[3], s[4], s[5], s[6]) == (ys.min(), ys.max(), xs.min(), xs.max())
        np.testing.assert_allclose(s[7], p[m].sum(), rtol=1e-5)
        assert s[8] == p[m].max()
        np.testing.assert_allclose(s[9:11], image[m].sum(0), rtol=1e-5)
        np.testing.assert_allclose(s[11:13], (image[m] ** 2).sum(0), rtol=1e-5)


def test_features_read_place_size_and_bands():
    p = np.zeros((40, 60), np.float32)
    p[2:6, 50:58] = 0.9      # small, north-east
    p[20:36, 4:24] = 0.7     # large, south-west
    image = np.zeros((40, 60, 3), np.float32)
    image[20:36, 4:24] = (1.0, 0.5, 0.0)
    comps = build(p, image, 0.5, np.random.default_rng(0))
    f = comps.features(tile=16)
    assert f.shape == (2, n_features(3)) == (2, len(FEATURE_NAMES) + 6)
    col = {name: f[:, i] for i, name in enumerate(FEATURE_NAMES)}
    small, large = (0, 1) if comps.area[0] < comps.area[1] else (1, 0)
    np.testing.assert_allclose(col["cx"][large], 14 / 60)
    np.testing.assert_allclose(col["cy"][small], 4 / 40)
    np.testing.assert_allclose(col["log_area"][large], np.log(320 / 256), rtol=1e-6)
    assert col["area_rank"][large] == 1 and col["area_rank"][small] == 0
    assert col["y_rank"][large] == 1 and col["x_rank"][small] == 1
    np.testing.assert_allclose(col["mean_p"][[small, large]], [0.9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(f[large, len(FEATURE_NAMES):len(FEATURE_NAMES) + 3], (1.0, 0.5, 0.0))
    np.testing.assert_allclose(f[large, len(FEATURE_NAMES) + 3:], 0.0, atol=1e-3)  # one colour: no spread


def test_paint_puts_values_on_component_pixels_strip_by_strip():
    rng = np.random.default_rng(3)
    p = rng.random((30, 20)).astype(np.float32)
    comps = build(p, np.zeros((30, 20, 1), np.float32), 0.7, rng)
    values = rng.random(len(comps)).astype(np.float32)
    whole = comps.paint(0, 30, values)
    parts = np.concatenate([comps.paint(r, min(r + 7, 30), values) for r in range(0, 30, 7)])
    np.testing.assert_array_equal(whole, parts)
    lab = comps.label_image()
    np.testing.assert_array_equal(whole, np.where(lab > 0, values[np.maximum(lab - 1, 0)], 0))


def test_empty_foreground_and_bad_strips():
    comps = build(np.zeros((8, 8), np.float32), np.zeros((8, 8, 3), np.float32), 0.5, np.random.default_rng(0))
    assert len(comps) == 0 and comps.features(16).shape == (0, n_features(3))
    assert not comps.paint(0, 8, np.zeros(0)).any()
    b = ComponentBuilder(8, 3)
    with pytest.raises(ValueError, match="expected rows 0"):
        b.add(4, np.zeros((4, 8)), np.zeros((4, 8, 3)))
    with pytest.raises(ValueError, match="3 bands"):
        b.add(0, np.zeros((4, 8)), np.zeros((4, 8, 1)))
    b.add(0, np.zeros((4, 8)), np.zeros((4, 8, 3)))
    with pytest.raises(ValueError, match="rows 0…4 added"):
        b.finish(8)
    with pytest.raises(ValueError, match="threshold"):
        ComponentBuilder(8, 3, threshold=1.0)


def test_components_without_bands_have_the_same_geometry_and_probabilities():
    """Mode ``object`` builds components without the scene's pixels (no second full read)."""
    from rrsis.scene.components import ComponentBuilder

    rng = np.random.default_rng(4)
    p, image = rng.random((40, 50)), rng.random((40, 50, 3))
    with_bands = ComponentBuilder(50, 3, 0.8)
    with_bands.add(0, p, image)
    a = with_bands.finish(40)
    without = ComponentBuilder(50, 0, 0.8)
    without.add(0, p[:17], np.zeros((17, 50, 0)))
    without.add(17, p[17:], np.zeros((23, 50, 0)))
    b = without.finish(40)
    assert len(a) == len(b) > 10
    np.testing.assert_array_equal(a.label_image(), b.label_image())
    np.testing.assert_allclose(b.mean_probability, a.mean_probability)
    np.testing.assert_array_equal(b.area, a.area)


def test_without_specks_keeps_the_components_of_one_patch_cell_or_more():
    rng = np.random.default_rng(7)
    p = (rng.random((60, 80)) > 0.8).astype(np.float32)  # many specks
    p[5:15, 5:20] = p[30:34, 40:44] = p[50:52, 60:62] = 1.0  # 150, 16 and 4 pixels at least
    b = ComponentBuilder(80, 0, 0.5)
    b.add(0, p, np.zeros((60, 80, 0), np.float32))
    comps = b.finish(60)
    ref, n = flood_fill(p > 0.5)
    big = [j for j in range(1, n + 1) if (ref == j).sum() >= 16]
    kept = comps.without_specks(16)
    assert 0 < len(big) == len(kept) < len(comps)
    assert sorted(kept.area.tolist()) == sorted(float((ref == j).sum()) for j in big)
    np.testing.assert_array_equal(kept.label_image() > 0, np.isin(ref, big))
    np.testing.assert_array_equal(kept.paint(0, 60, np.arange(1, len(kept) + 1, dtype=np.float32)), kept.label_image())
    assert comps.without_specks(10**6) is comps  # none that large: every one
