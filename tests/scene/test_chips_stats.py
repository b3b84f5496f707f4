"""write_chips' band statistics: each band's mean and standard deviation over the train chips'
valid pixels, in the values ``rrsis train`` gives the model, passed on the printed train line.

The references are computed here with numpy over the chips read back with rasterio (or PIL),
scaled as the line says (``"dtype"``: / 65535; ``"max"``: / each chip's maximum; 8-bit: / 255).
"""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pytest.importorskip("pyogrio")

from affine import Affine
from PIL import Image
from pyogrio.raw import write
from shapely.geometry import box

from rrsis.data import read_image
from rrsis.scene import write_chips

UTM = "EPSG:32633"
T = Affine(0.5, 0, 400000.0, 0, -0.5, 4600064.0)


def _write(path, data, **kw):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype, crs=UTM, transform=T, photometric="MINISBLACK", **kw) as ds:
        ds.write(data)
    return str(path)


def _labels(path):
    """A 3 × 3 grid of squares 128 pixels apart in a 384² scene: with 64-pixel chips and block 1,
    nine chips that overlap none of the others, each in a block of its own."""
    boxes = [box(30 + 128 * i, 30 + 128 * j, 46 + 128 * i, 46 + 128 * j) for i in range(3) for j in range(3)]
    geoms = [shapely.affinity.affine_transform(b, [T.a, T.b, T.d, T.e, T.c, T.f]) for b in boxes]
    write(str(path), np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
          [np.array([f"the tank {k}" for k in range(len(boxes))], dtype=object)], ["text"], driver="GPKG", crs=UTM,
          geometry_type="Polygon")
    return str(path)


def _train_chips(out, ext="tif"):
    meta = json.loads((out / "chips.json").read_text())
    ids = [c["id"] for c in meta["chips"] if c["split"] == "train"]
    assert ids and len(ids) < len(meta["chips"])  # some chips are val or test, and left out
    return meta, [out / "images" / f"{i}.{ext}" for i in ids]


def _stats(values):
    """Per-band mean and std of ``[C, N]`` pixel values."""
    v = np.concatenate(values, axis=1).astype(np.float64)
    return v.mean(axis=1), v.std(axis=1)


def _printed(options):
    words = shlex.split(" ".join(options))
    return [json.loads(words[words.index(k) + 1]) for k in ("--model.mean", "--model.std")]


def test_uint16_band_statistics_are_the_train_chips_valid_pixels_over_65535(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(1, 4000, (5, 384, 384)).astype(np.uint16) + np.arange(384, dtype=np.uint16) * 20
    data[:, 150:165, :] = 0  # nodata in every band: left out of the statistics
    tif = _write(tmp_path / "s.tif", data, nodata=0)
    out = tmp_path / "c"
    s = write_chips(tif, _labels(tmp_path / "l.gpkg"), out, size=64, val=0.3, test=0, block=1, bands="4,2,5,1")
    meta, chips = _train_chips(out)
    values = []
    for chip in chips:
        with rasterio.open(chip) as ds:
            px = ds.read().reshape(4, -1)
        values.append(px[:, (px != 0).any(axis=0)] / 65535.0)
    mean, std = _stats(values)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(s.std, std, rtol=1e-6)
    st = meta["statistics"]
    assert (st["split"], st["scale"], st["bands"], st["pixels"]) == ("train", "dtype", [4, 2, 5, 1],
                                                                     sum(v.shape[1] for v in values))
    assert st["pixels"] < len(chips) * 64 * 64  # some train pixels were nodata
    np.testing.assert_allclose(st["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(st["std"], std, rtol=1e-6)
    # The train line passes them, shell-quoted, with the band count and the value scaling.
    assert meta["train_options"] == s.options and any('"scale": "dtype"' in o for o in s.options)
    assert "--model.in_chans 4 " in " ".join(s.options)
    got_mean, got_std = _printed(s.options)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(got_std, std, rtol=1e-5)
    # Every chip's pixels (val included) give other statistics: the split matters.
    every = [rasterio.open(p).read().reshape(4, -1) / 65535.0 for p in sorted((out / "images").glob("*.tif"))]
    assert not np.allclose(_stats(every)[0], mean, rtol=1e-4)


def test_float_chips_are_measured_after_each_chips_max_scaling(tmp_path):
    data = np.random.default_rng(1).uniform(0, 500, (4, 384, 384)).astype(np.float32)
    data[:, :, 200:] *= 3
    out = tmp_path / "c"
    s = write_chips(_write(tmp_path / "f.tif", data), _labels(tmp_path / "l.gpkg"), out, size=64, val=0.3, test=0,
                    block=1)
    assert any('"scale": "max"' in o for o in s.options)
    _, chips = _train_chips(out)
    values = []
    for chip in chips:
        with rasterio.open(chip) as ds:
            px = ds.read().astype(np.float64)
        values.append((px / px.max()).reshape(4, -1))  # "max": the chip's maximum over its bands
    mean, std = _stats(values)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(s.std, std, rtol=1e-6)


def test_three_band_chips_keep_imagenet_on_the_line_and_record_the_order_the_model_reads(tmp_path):
    """Chips of the scene's blue, green, red (declared by descriptions) are read by an RGB model as
    red, green, blue: the statistics follow that order (scene bands 3, 2, 1)."""
    data = np.random.default_rng(2).integers(1, 4000, (4, 384, 384)).astype(np.uint16)
    data[2] += 20000  # red: far from the others
    tif = _write(tmp_path / "bgrn.tif", data)
    with rasterio.open(tif, "r+") as ds:
        ds.descriptions = ("blue", "green", "red", "nir")
    out = tmp_path / "c"
    s = write_chips(tif, _labels(tmp_path / "l.gpkg"), out, size=64, val=0.3, test=0, block=1, bands="1,2,3")
    meta, chips = _train_chips(out)
    assert meta["statistics"]["bands"] == [3, 2, 1]
    assert not any("--model.mean" in o for o in s.options)  # an RGB model: ImageNet's, as before
    mean, std = _stats([read_image(str(p), scale="dtype").reshape(-1, 3).T for p in chips])  # the training reader
    np.testing.assert_allclose(s.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(s.std, std, rtol=1e-6)
    assert s.mean[0] > 0.3 > s.mean[2]  # red first


def test_eight_bit_png_chips_are_measured_over_255(tmp_path):
    data = np.random.default_rng(3).integers(0, 256, (3, 384, 384)).astype(np.uint8)
    out = tmp_path / "c"
    s = write_chips(_write(tmp_path / "rgb.tif", data), _labels(tmp_path / "l.gpkg"), out, size=64, val=0.3,
                    test=0, block=1)
    assert s.image_format == "png" and s.options == []  # unchanged: ImageNet's for pretrained RGB weights
    _, chips = _train_chips(out, "png")
    values = [np.asarray(Image.open(p)).reshape(-1, 3).T / 255.0 for p in chips]
    mean, std = _stats(values)
    np.testing.assert_allclose(s.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(s.std, std, rtol=1e-6)


def test_a_constant_band_is_given_std_1_on_the_line_and_warned_of(tmp_path):
    data = np.random.default_rng(4).integers(1, 4000, (4, 384, 384)).astype(np.uint16)
    data[3] = 1234
    with pytest.warns(UserWarning, match=r"band\(s\) 4 of the scene hold one value"):
        s = write_chips(_write(tmp_path / "k.tif", data), _labels(tmp_path / "l.gpkg"), tmp_path / "c", size=64,
                        val=0, test=0)
    assert s.std[3] == 0 and s.mean[3] == pytest.approx(1234 / 65535)
    assert _printed(s.options)[1][3] == 1.0
