"""rrsis.scene.chips: a scene and its labelled polygons become a training folder.

The references are independent of the chip writer: the generator's label raster (a window of
it is what a chip's mask must be), the scene read with rasterio directly, and shapely/rasterio
geometry made here.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _fixtures import dead_pid

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pyogrio = pytest.importorskip("pyogrio")

from affine import Affine
from PIL import Image
from rasterio.features import shapes
from shapely.geometry import Point, Polygon, box, mapping, shape

from rrsis.scene import write_chips

UTM = "EPSG:32633"
GSD = 0.5
ORIGIN = (400000.0, 4600128.0)


def _transform(gsd: float = GSD) -> Affine:
    return Affine(gsd, 0, ORIGIN[0], 0, -gsd, ORIGIN[1])


def _write_tif(path, data: np.ndarray, *, nodata=None) -> str:
    """``data`` [C, H, W] as a GeoTIFF in UTM 33N."""
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=c, dtype=data.dtype.name, crs=UTM,
                       transform=_transform(), nodata=nodata, photometric="MINISBLACK" if c != 3 else "RGB") as ds:
        ds.write(data)
    return str(path)


def _labels(path, geoms, texts, crs=UTM, field="text"):
    """A vector file of ``geoms`` with ``field`` = ``texts`` (pyogrio's array writer)."""
    from pyogrio.raw import write

    wkb = np.array([shapely.to_wkb(g) for g in geoms], dtype=object)
    driver = "GeoJSON" if str(path).endswith(".geojson") else "GPKG"
    write(str(path), wkb, [np.array(texts, dtype=object)], [field], driver=driver, crs=crs,
          geometry_type="Unknown")
    return str(path)


def _world(geom_pix):
    """Pixel (column, row) geometry → UTM coordinates of the test scene."""
    t = _transform()
    return shapely.affinity.affine_transform(geom_pix, [t.a, t.b, t.d, t.e, t.c, t.f])


def _read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A 256² generated scene (RGB uint8 GeoTIFF) and its objects polygonised into a GeoPackage."""
    from rrsis.data.synthetic.at_scale import LargeSceneSettings, make_scene_at_scale

    folder = tmp_path_factory.mktemp("gen")
    image, labels, _ = make_scene_at_scale(LargeSceneSettings(size=256, train_size=32), 0)
    tif = _write_tif(folder / "scene.tif", np.ascontiguousarray(image.transpose(2, 0, 1)))
    geoms, texts, ids = [], [], []
    for geom, value in shapes(labels.astype(np.int32), mask=labels > 0, transform=_transform()):
        geoms.append(shape(geom))
        texts.append(f"object {int(value)}")
        ids.append(int(value))
    gpkg = _labels(folder / "labels.gpkg", geoms, texts)
    return {"tif": tif, "gpkg": gpkg, "image": image, "labels": labels, "ids": ids, "folder": folder}


def _chips(out):
    return json.loads((out / "chips.json").read_text())["chips"]


def test_round_trip_against_the_generator(generated, tmp_path):
    out = tmp_path / "chips"
    s = write_chips(generated["tif"], generated["gpkg"], out, size=64, val=0.25, test=0.25, block=1)
    chips = _chips(out)
    assert s.image_format == "png" and sum(s.counts.values()) == len(chips) > 5
    assert s.skipped["border"] + len(chips) == len(generated["ids"])  # nothing else left out
    image, labels = generated["image"], generated["labels"]
    for c in chips:
        r0, c0, r1, c1 = c["window"]
        assert (r1 - r0, c1 - c0) == (64, 64) and 0 <= r0 and r1 <= 256 and 0 <= c0 and c1 <= 256
        obj = int(c["expression"].split()[1])
        np.testing.assert_array_equal(_read_png(out / "masks" / f"{c['id']}.png"),
                                      np.where(labels[r0:r1, c0:c1] == obj, 255, 0))
        np.testing.assert_array_equal(_read_png(out / "images" / f"{c['id']}.png"), image[r0:r1, c0:c1])
        t = _transform() @ Affine.translation(c0, r0)
        assert c["transform"] == pytest.approx(list(t)[:6])
        assert c["bounds"] == pytest.approx([t.c, t.f - 64 * GSD, t.c + 64 * GSD, t.f])
    lines = {s: (out / f"output_phrase_{s}.txt").read_text().splitlines() for s in ("train", "val", "test")
             if (out / f"output_phrase_{s}.txt").exists()}
    assert sorted(ln for v in lines.values() for ln in v) == sorted(f"{c['id']} {c['expression']}" for c in chips)
    # The same seed places the chips the same; another seed moves some (offsets are drawn, not centred).
    again = write_chips(generated["tif"], generated["gpkg"], tmp_path / "again", size=64, val=0.25, test=0.25, block=1)
    assert _chips(tmp_path / "again") == chips and again.counts == s.counts
    write_chips(generated["tif"], generated["gpkg"], tmp_path / "other", size=64, seed=1)
    assert [c["window"] for c in _chips(tmp_path / "other")] != [c["window"] for c in chips]


def test_spatial_split_has_no_overlap_between_splits(generated, tmp_path):
    s = write_chips(generated["tif"], generated["gpkg"], tmp_path / "c", size=48, val=0.3, test=0.3, block=1, seed=3)
    chips = _chips(tmp_path / "c")
    assert s.counts["val"] > 0 and s.counts["train"] > 0
    by = {k: [box(*c["window"]) for c in chips if c["split"] == k] for k in ("train", "val", "test")}
    for a, b in (("val", "train"), ("test", "train"), ("test", "val")):
        assert not any(x.intersection(y).area > 0 for x in by[a] for y in by[b]), (a, b)
    # A chip goes with the block (48 px) that holds its centre: one split per block.
    block = {}
    for c in chips:
        r0, c0, r1, c1 = c["window"]
        key = (int((r0 + r1) / 2 // 48), int((c0 + c1) / 2 // 48))
        assert block.setdefault(key, c["split"]) == c["split"]
    # A share too small for any block to draw it still gives val one block (of the four here), and
    # val loses no chip to the border rule.
    def block_of(c):
        return int((c["window"][0] + c["window"][2]) / 2 // 128), int((c["window"][1] + c["window"][3]) / 2 // 128)

    for seed in range(3):
        write_chips(generated["tif"], generated["gpkg"], tmp_path / f"all{seed}", size=64, val=0, test=0, seed=seed)
        every = _chips(tmp_path / f"all{seed}")  # the same placements, no split: nothing dropped
        low = write_chips(generated["tif"], generated["gpkg"], tmp_path / f"low{seed}", size=64, val=0.01, test=0,
                          block=2, seed=seed)
        kept = _chips(tmp_path / f"low{seed}")
        assert low.counts["val"] >= 1 and low.counts["train"] >= 1
        val_blocks = {block_of(c) for c in kept if c["split"] == "val"}
        assert len(val_blocks) == 1
        assert sorted(c["window"] for c in kept if c["split"] == "val") == sorted(
            c["window"] for c in every if block_of(c) in val_blocks)


def test_pixel_ratio_averages_the_scene(generated, tmp_path):
    out = tmp_path / "r2"
    write_chips(generated["tif"], generated["gpkg"], out, size=32, pixel_ratio=2, val=0, test=0)
    c = _chips(out)[0]
    r0, c0, r1, c1 = c["window"]
    assert (r1 - r0, c1 - c0) == (64, 64)
    window = generated["image"][r0:r1, c0:c1].astype(np.float64)
    mean = window.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(_read_png(out / "images" / f"{c['id']}.png") - mean).max() <= 1.0
    assert c["transform"][0] == pytest.approx(2 * GSD)


def test_labels_in_wgs84_geojson_give_the_same_chips(generated, tmp_path):
    from pyogrio.raw import read
    from rasterio.warp import transform_geom

    _, _, wkb, fields = read(generated["gpkg"], columns=["text"])
    geoms = [shape(transform_geom(UTM, "EPSG:4326", mapping(shapely.from_wkb(b)))) for b in wkb]
    geojson = _labels(tmp_path / "labels.geojson", geoms, list(fields[0]), crs="EPSG:4326")
    a = write_chips(generated["tif"], generated["gpkg"], tmp_path / "utm", size=64)
    b = write_chips(generated["tif"], geojson, tmp_path / "wgs", size=64)
    ca, cb = _chips(tmp_path / "utm"), _chips(tmp_path / "wgs")
    assert a.counts == b.counts and [c["expression"] for c in ca] == [c["expression"] for c in cb]
    assert sum(x["window"] == y["window"] for x, y in zip(ca, cb, strict=True)) >= len(ca) * 3 // 4
    for x, y in zip(ca, cb, strict=True):
        assert max(abs(u - v) for u, v in zip(x["window"], y["window"], strict=True)) <= 1
        if x["window"] == y["window"]:
            ma = _read_png(tmp_path / "utm" / "masks" / f"{x['id']}.png") > 0
            mb = _read_png(tmp_path / "wgs" / "masks" / f"{y['id']}.png") > 0
            diff = ma ^ mb  # only at edges: every differing pixel borders the other mask's edge
            grown = ma | np.pad(ma, 1)[2:, 1:-1] | np.pad(ma, 1)[:-2, 1:-1] | np.pad(ma, 1)[1:-1, 2:] | np.pad(ma, 1)[1:-1, :-2]
            shrunk = ma & np.pad(ma, 1)[2:, 1:-1] & np.pad(ma, 1)[:-2, 1:-1] & np.pad(ma, 1)[1:-1, 2:] & np.pad(ma, 1)[1:-1, :-2]
            assert not (diff & ~(grown & ~shrunk)).any()


@pytest.fixture
def flat(tmp_path):
    """A plain 128² RGB uint8 scene."""
    data = np.zeros((3, 128, 128), np.uint8)
    data[0] = np.arange(128)[None, :]
    data[1] = np.arange(128)[:, None]
    return _write_tif(tmp_path / "flat.tif", data)


def test_same_text_in_one_chip_is_the_union_and_a_donut_keeps_its_hole(flat, tmp_path):
    a, b = box(10, 10, 20, 20), box(30, 12, 40, 22)
    donut = Polygon([(80, 80), (110, 80), (110, 110), (80, 110)], [[(90, 90), (100, 90), (100, 100), (90, 100)]])
    labels = _labels(tmp_path / "l.gpkg", [_world(a), _world(b), _world(donut)],
                     ["the grey tank", "The  grey tank", "the ring"])
    out = tmp_path / "c"
    write_chips(flat, labels, out, size=64, val=0, test=0)
    chips = _chips(out)
    assert [c["expression"] for c in chips] == ["the grey tank", "The grey tank", "the ring"]
    rows, cols = np.mgrid[0:128, 0:128] + 0.5
    for c in chips:
        r0, c0, r1, c1 = c["window"]
        want = np.zeros((128, 128), bool)
        for g in ([a, b] if "tank" in c["expression"] else [donut]):
            want |= shapely.contains_xy(g, cols, rows)
        got = _read_png(out / "masks" / f"{c['id']}.png") > 0
        np.testing.assert_array_equal(got, want[r0:r1, c0:c1])
    ring = _read_png(out / "masks" / f"{chips[2]['id']}.png")
    r0, c0 = chips[2]["window"][:2]
    assert ring[95 - r0, 95 - c0] == 0 and ring[85 - r0, 85 - c0] == 255


def test_a_0_1_byte_scene_is_warned_about_in_the_chips_words(tmp_path, capsys):
    import warnings

    from rrsis.cli import main

    data = np.zeros((3, 128, 128), np.uint8)
    data[:, 20:60, 20:60] = 1
    scene = _write_tif(tmp_path / "binary.tif", data)
    labels = _labels(tmp_path / "l.gpkg", [_world(box(20, 20, 60, 60))], ["the square"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        write_chips(scene, labels, tmp_path / "c", size=64, val=0, test=0)
    (msg,) = [str(w.message) for w in record if "0-1 of 0-255" in str(w.message)]
    assert msg.startswith(f"{scene}: its 8-bit values span only 0-1 of 0-255: the chips keep them as they are")
    assert "--data.options.scale max on the rrsis train line" in msg
    assert "--scale max" not in msg and "--stretch" not in msg  # predict's flags: chips has neither
    assert _read_png(tmp_path / "c" / "images" / "00000.png").max() == 1  # kept as they are
    capsys.readouterr()
    assert main(["chips", "--image", scene, "--labels", labels, "--out", str(tmp_path / "cli"), "--size", "64",
                 "--val", "0", "--test", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("0-1 of 0-255") == 1 and f"warning: {msg}" in out  # once, the reader's advice not besides


def test_skipped_features_are_counted_and_a_missing_field_is_named(flat, tmp_path):
    inside = _world(box(10, 10, 30, 30))
    labels = _labels(tmp_path / "l.gpkg",
                     [inside, _world(box(500, 500, 520, 520)), _world(box(40, 40, 60, 60)), _world(Point(70, 70)),
                      _world(box(60, 60, 260, 70))],
                     ["the tank", "the far tank", "  ", "a point", "the long road"], field="expression")
    with pytest.warns(UserWarning, match="1 feature.* larger than a chip"):
        s = write_chips(flat, labels, tmp_path / "c", text_field="expression", size=64, val=0, test=0)
    assert s.counts == {"train": 2, "val": 0, "test": 0} and s.larger == 1
    assert {k: v for k, v in s.skipped.items() if v} == {"outside": 1, "no_text": 1, "no_area": 1}
    with pytest.raises(ValueError, match=r"no field 'expresion'.*expression.*did you mean 'expression'"):
        write_chips(flat, labels, tmp_path / "d", text_field="expresion")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_chips(flat, labels, tmp_path / "c", text_field="expression", size=64)
    with pytest.raises(ValueError, match="val \\+ test"):
        write_chips(flat, labels, tmp_path / "e", val=0.6, test=0.5)
    # A file of several layers needs one named; a misspelt one is named with the closest.
    from pyogrio.raw import write

    write(labels, np.array([shapely.to_wkb(inside)], dtype=object), [np.array(["the roof"], dtype=object)],
          ["expression"], driver="GPKG", crs=UTM, layer="roofs", geometry_type="Polygon", append=True)
    with pytest.raises(ValueError, match=r"2 layers \(l, roofs\); name one"):
        write_chips(flat, labels, tmp_path / "f", text_field="expression")
    with pytest.raises(ValueError, match="no layer 'roof'.*did you mean 'roofs'"):
        write_chips(flat, labels, tmp_path / "f", text_field="expression", layer="roof")
    s = write_chips(flat, labels, tmp_path / "f", text_field="expression", layer="roofs", size=64)
    assert s.counts["train"] == 1


def test_nodata_only_features_are_skipped(tmp_path):
    data = np.full((3, 128, 128), 90, np.uint8)
    data[:, :, :64] = 0
    tif = _write_tif(tmp_path / "nd.tif", data, nodata=0)
    labels = _labels(tmp_path / "l.gpkg", [_world(box(10, 10, 30, 30)), _world(box(80, 80, 100, 100))], ["a", "b"])
    s = write_chips(tif, labels, tmp_path / "c", size=64, val=0, test=0)
    assert s.skipped["nodata"] == 1 and s.counts["train"] == 1


def test_16_bit_four_band_scene_gives_tiff_chips_the_folder_reads(tmp_path, tiny_tokenizer):
    from rrsis.data import FolderDataset

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (4, 128, 128), dtype=np.uint16)
    tif = _write_tif(tmp_path / "ms.tif", data)
    labels = _labels(tmp_path / "l.gpkg", [_world(box(10, 10, 30, 30)), _world(box(70, 70, 90, 100))],
                     ["the tank", "the roof"])
    s = write_chips(tif, labels, tmp_path / "c", size=64, val=0, test=0)
    assert s.image_format == "tif" and any('"scale": "dtype"' in o for o in s.options)
    assert any("--model.in_chans 4" in o for o in s.options)
    c = _chips(tmp_path / "c")[0]
    r0, c0, r1, c1 = c["window"]
    with rasterio.open(tmp_path / "c" / "images" / f"{c['id']}.tif") as ds:
        assert (ds.count, ds.dtypes[0], ds.crs.to_string()) == (4, "uint16", UTM)
        np.testing.assert_array_equal(ds.read(), data[:, r0:r1, c0:c1])
        assert ds.transform.almost_equals(_transform() @ Affine.translation(c0, r0))
    ds = FolderDataset(tmp_path / "c", split="train", size=64, tokenizer=tiny_tokenizer, scale="dtype",
                       mean=[0.5] * 4, std=[0.25] * 4)
    assert len(ds) == 2
    sample = ds[0]
    assert sample["pixel_values"].shape == (4, 64, 64)


def test_nothing_is_left_behind_when_a_write_fails(flat, tmp_path, monkeypatch):
    import PIL.Image

    labels = _labels(tmp_path / "l.gpkg", [_world(box(10, 10, 30, 30)), _world(box(70, 70, 90, 100))], ["a", "b"])
    out = tmp_path / "c"
    saved = []
    real = PIL.Image.Image.save

    def failing(self, fp, *args, **kwargs):
        if len(saved) == 3:
            raise OSError(28, "No space left on device")
        saved.append(fp)
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(PIL.Image.Image, "save", failing)
    with pytest.raises(OSError, match="No space"):
        write_chips(flat, labels, out, size=64)
    assert sorted(os.listdir(tmp_path)) == ["flat.tif", "l.gpkg"]
    # An existing folder survives a failed --overwrite whole.
    monkeypatch.setattr(PIL.Image.Image, "save", real)
    write_chips(flat, labels, out, size=64, val=0, test=0)
    before = sorted(os.listdir(out))
    saved.clear()
    monkeypatch.setattr(PIL.Image.Image, "save", failing)
    with pytest.raises(OSError):
        write_chips(flat, labels, out, size=64, overwrite=True)
    assert sorted(os.listdir(out)) == before and sorted(os.listdir(tmp_path)) == ["c", "flat.tif", "l.gpkg"]


def test_labels_without_crs_and_a_missing_pyogrio_are_named(flat, tmp_path, monkeypatch):
    import sys

    with pytest.warns(UserWarning, match="'crs' was not provided"):  # pyogrio's own
        labels = _labels(tmp_path / "l.gpkg", [_world(box(10, 10, 30, 30))], ["a"], crs=None)
    with pytest.raises(ValueError, match="has no CRS.*EPSG:32633"):
        write_chips(flat, labels, tmp_path / "c")
    assert not (tmp_path / "c").exists()
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    with pytest.raises(ImportError, match=r'pip install "rrsis\[geo\]"'):
        write_chips(flat, labels, tmp_path / "c")


def test_a_killed_runs_folder_is_removed_by_the_next_run(flat, tmp_path):
    """A killed run leaves its temporary folder beside ``out`` (atomic_folder's rename never
    came); the next run removes it when its process is gone, and leaves a live one's alone."""
    labels = _labels(tmp_path / "l.gpkg", [_world(box(10, 10, 30, 30)), _world(box(70, 70, 90, 100))], ["a", "b"])
    dead = dead_pid()
    stale = tmp_path / f".c.{dead}-0123abcd.tmp"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "0.png").write_bytes(b"half")
    live = tmp_path / f".c.{os.getpid()}-89abcdef.tmp"
    live.mkdir()
    write_chips(flat, labels, tmp_path / "c", size=64, val=0, test=0)
    assert not stale.exists() and live.is_dir()
    assert sorted(os.listdir(tmp_path / "c" / "images")) == [f"0000{i}{ext}" for i in (0, 1)
                                                              for ext in (".pgw", ".png", ".png.aux.xml")]
