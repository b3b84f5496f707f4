"""Large scenes at training scale (rrsis/data/synthetic/at_scale.py): every expression's ground
truth checked against the label raster, independently of the generator's own bookkeeping."""

import json

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.data.synthetic.at_scale import LargeSceneSettings, make_scene_at_scale
from rrsis.data.synthetic.scene import CATEGORIES

T = 64


def _props(labels, n):
    """Area and centroid (pixel centres) of every object id from the raster."""
    ys, xs = np.nonzero(labels)
    ids = labels[ys, xs]
    area = np.bincount(ids, minlength=n + 1)
    cy = np.bincount(ids, weights=ys + 0.5, minlength=n + 1) / np.maximum(area, 1)
    cx = np.bincount(ids, weights=xs + 0.5, minlength=n + 1) / np.maximum(area, 1)
    return area, cx, cy


@pytest.fixture(scope="module")
def scenes():
    out = []
    for seed in range(3):
        st = LargeSceneSettings(size=512, train_size=T, density=0.4, per_kind=3)
        out.append(make_scene_at_scale(st, seed))
    return out


def test_objects_are_at_training_scale(scenes):
    for image, labels, meta in scenes:
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and labels.dtype == np.uint16
        for o in meta["objects"]:
            ys, xs = np.nonzero(labels == o["id"])
            assert len(ys) == o["area_px"] > 0
            extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
            lo, hi = (v * T for v in CATEGORIES[o["category"]].length)
            # a rotated outline's bounding box: between length / sqrt(2) and its diagonal
            assert max(lo, 0.10 * T) / 2**0.5 - 1 <= extent <= hi * 2**0.5 + 2, (o, extent)


def test_every_expression_matches_its_words(scenes):
    seen = set()
    for _, labels, meta in scenes:
        objs = {o["id"]: o for o in meta["objects"]}
        area, cx, cy = _props(labels, max(objs))
        for e in meta["expressions"]:
            seen.add(e["kind"])
            tg, kind, text = e["targets"], e["kind"], e["text"]
            head = text.split(" next to ")[0].split(" of ")[0]
            cat = next(c for c in CATEGORIES.values() if f" {c.name}" in f" {head}" or c.plural in head)
            same = [i for i, o in objs.items() if o["category"] == cat.name]
            if kind == "none":
                assert tg == []
                colour = text.split()[1] if len(text.split()) > 2 else None
                assert not [i for i in same if colour is None or objs[i]["colour"] == colour]
                continue
            assert tg and all(objs[i]["category"] == cat.name for i in tg), e
            if kind == "colour":
                colour = text.split()[1]
                assert [i for i in same if objs[i]["colour"] == colour] == tg
            elif kind == "multi":
                words = text.split()
                colour = words[1] if words[1] in {o["colour"] for o in objs.values()} else None
                assert len(tg) >= 2 and tg == sorted(i for i in same if colour is None or objs[i]["colour"] == colour)
            elif kind == "extreme":
                others = [i for i in same if i != tg[0]]
                if "largest" in text:
                    assert all(area[tg[0]] >= 1.35 * area[i] for i in others)
                elif "smallest" in text:
                    assert all(1.35 * area[tg[0]] <= area[i] for i in others)
                else:
                    key = {"northernmost": cy, "southernmost": -cy, "westernmost": cx, "easternmost": -cx}[text.split()[1]]
                    assert all(key[tg[0]] < key[i] for i in others)
            elif kind == "region":
                third = 512 / 3
                row = 0 if ("north" in text or "top" in text) else 2 if ("south" in text or "bottom" in text) else 1
                col = 0 if ("west" in text or "left" in text) else 2 if ("east" in text or "right" in text) else 1
                assert (int(cy[tg[0]] // third), int(cx[tg[0]] // third)) == (row, col), (e, cx[tg[0]], cy[tg[0]])
                inside = [i for i in same if (int(cy[i] // third), int(cx[i] // third)) == (row, col)]
                assert inside == tg
            elif kind == "relation":
                ref_words = text.split(" next to ")[1].split()
                ref_cat = next(c.name for c in CATEGORIES.values() if " ".join(ref_words[1:]).endswith(c.name))
                colour = ref_words[1] if len(ref_words) > 2 and not ref_cat.startswith(ref_words[1]) else None
                (ref,) = [i for i, o in objs.items() if o["category"] == ref_cat
                          and (colour is None or o["colour"] == colour)]
                ry, rx = np.nonzero(labels == ref)

                def gap(i, ry=ry, rx=rx, labels=labels):
                    ys, xs = np.nonzero(labels == i)
                    return np.sqrt((ys[:, None] - ry[None]) ** 2 + (xs[:, None] - rx[None]) ** 2).min()

                assert len(tg) == 1
                assert all(gap(i) >= 1.5 * T - 1 for i in same if i != tg[0])
                assert gap(tg[0]) < 1.5 * T - 1
            elif kind == "direction":
                word, ref_text = text.split(" of ", 1)[0].split()[-1], text.split(" of ", 1)[1]
                ref_words = ref_text.split()
                ref_cat = next(c.name for c in CATEGORIES.values() if " ".join(ref_words[1:]).endswith(c.name))
                colour = ref_words[1] if len(ref_words) > 2 and not ref_cat.startswith(ref_words[1]) else None
                (ref,) = [i for i, o in objs.items() if o["category"] == ref_cat
                          and (colour is None or o["colour"] == colour)]
                ux, uy = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}[word]

                def cone(i, ref=ref, ux=ux, uy=uy, cx=cx, cy=cy):  # within 45° of the direction (raster centres)
                    dx, dy = cx[i] - cx[ref], cy[i] - cy[ref]
                    return dx * ux + dy * uy > abs(dx * uy - dy * ux) - 2

                def dist(i, ref=ref, cx=cx, cy=cy):
                    return np.hypot(cx[i] - cx[ref], cy[i] - cy[ref])

                assert len(tg) == 1 and cone(tg[0]) and dist(tg[0]) < 3 * T, (e, cx[tg[0]], cy[tg[0]])
                # Another of its kind as near, elsewhere: the direction decides.
                assert any(not cone(i) and dist(i) < 4 * T for i in same if i != tg[0]), e
    assert seen == {"colour", "region", "extreme", "relation", "multi", "none", "direction"}


def test_same_seed_same_scene_and_settings_change_it():
    st = LargeSceneSettings(size=256, train_size=T)
    a, b = make_scene_at_scale(st, 4), make_scene_at_scale(st, 4)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all() and a[2] == b[2]
    dense = make_scene_at_scale(LargeSceneSettings(size=256, train_size=T, density=1.0), 4)
    assert len(dense[2]["objects"]) > len(a[2]["objects"])
    red = make_scene_at_scale(LargeSceneSettings(size=512, train_size=T, palette={"red": 50.0}), 4)
    share = np.mean([o["colour"] == "red" for o in red[2]["objects"] if "red" in CATEGORIES[o["category"]].colours])
    assert share > 0.6


def test_settings_are_strict():
    with pytest.raises(ValueError, match="did you mean 'density'"):
        LargeSceneSettings.from_dict({"densty": 0.3})
    with pytest.raises(ValueError, match="did you mean 'red'"):
        LargeSceneSettings(palette={"rde": 1.0})
    with pytest.raises(ValueError, match="density"):
        LargeSceneSettings(density=0)
    with pytest.raises(ValueError, match="size"):
        LargeSceneSettings(size=100, train_size=96)


def test_synth_cli_at_scale(tmp_path, capsys):
    rasterio = pytest.importorskip("rasterio")
    assert main(["synth", str(tmp_path), "--large", "--size", "256", "--train-size", "64", "--palette", "red=2"]) == 0
    assert "training scale" in capsys.readouterr().out
    meta = json.loads((tmp_path / "scene0.json").read_text())
    with rasterio.open(tmp_path / meta["image"]) as ds, rasterio.open(tmp_path / meta["labels"]) as dl:
        assert (ds.count, ds.dtypes[0], ds.crs.to_epsg()) == (3, "uint8", 32633)
        labels = dl.read(1)
    for e in meta["expressions"]:
        assert all((labels == i).any() for i in e["targets"])
    assert main(["synth", str(tmp_path), "--large", "--size", "256", "--train-size", "64", "--palette", "red"]) == 2
    assert "COLOUR=WEIGHT" in capsys.readouterr().err
