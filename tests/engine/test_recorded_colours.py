"""A model records which of its input bands its training images declared red, green and blue
(``backbone.rgb``), and the whole-scene object mode reads colour words on those bands of a raster
that declares none: a 4-band R, G, B, NIR model on an undeclared 4-band file."""

import json

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from _fixtures import fit, four_band_folder, recipe
from rasterio.enums import ColorInterp as CI

import rrsis
from rrsis.data.headers import ImageHeader, declared_channels
from rrsis.engine.trainer import build_datasets
from rrsis.scene import open_scene, segment_scene
from rrsis.scene.colour import PROTOTYPES, recorded_rgb

MEAN, STD = [0.485, 0.456, 0.406, 0.5], [0.229, 0.224, 0.225, 0.25]
MODEL = ["model.in_chans=4", f"model.mean={json.dumps(MEAN)}", f"model.std={json.dumps(STD)}"]
BGRN = [CI.blue, CI.green, CI.red, CI.undefined]


def _tif(path, planes, colours=None):
    c, h, w = planes.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=planes.dtype, crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 4000000, 1, 1), photometric="MINISBLACK") as ds:
        ds.write(planes)
        if colours is not None:
            ds.colorinterp = colours
    return str(path)


def test_declared_channels_follow_the_bands_read():
    h = ImageHeader("a.tif", 8, 8, 4, "uint16", rgb=(3, 2, 1))  # B, G, R, NIR declared
    assert declared_channels([h], None, 4) == (2, 1, 0)
    assert declared_channels([h], "3,2,1,4", 4) == (0, 1, 2)
    assert declared_channels([h], None, 3) == (0, 1, 2)  # an RGB model reads the declared bands in order
    assert declared_channels([h], "4,2,3,3", 4) is None  # blue not read
    other = ImageHeader("b.tif", 8, 8, 4, "uint16", rgb=(1, 2, 3))
    assert declared_channels([h, other], None, 4) is None  # two layouts: nothing to record
    assert declared_channels([h, ImageHeader("c.tif", 8, 8, 4, "uint16")], None, 4) is None
    assert declared_channels([], None, 4) is None


@pytest.mark.parametrize("colours, expected", [(BGRN, [2, 1, 0]), (None, None),
                                               ([BGRN, BGRN, [CI.red, CI.green, CI.blue, CI.undefined]], None)])
def test_training_records_the_declared_colours(tmp_path, colours, expected):
    root = four_band_folder(tmp_path / "data", n=3, colours=colours)
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype"}', *MODEL,
                 max_steps=1, batch_size=2, log_every=1)
    train, _ = build_datasets(cfg["data"], cfg["model"])
    assert train.rgb == (None if expected is None else tuple(expected))
    out = fit(cfg)["output_dir"]
    model = rrsis.from_pretrained(f"{out}/final")
    assert model.config["backbone"].get("rgb") == expected


def _scene_rgb(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    palette = np.array([PROTOTYPES[c] for c in ("white", "gray", "red", "green", "blue", "black")], np.uint8)
    image = np.kron(palette[rng.integers(len(palette), size=(8, 8))], np.ones((16, 16, 1), np.uint8))
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def test_an_undeclared_raster_is_read_in_the_models_recorded_colours(tiny_tokenizer, tmp_path):
    rgb = np.moveaxis(_scene_rgb(), 2, 0)
    planes = np.concatenate([rgb[::-1], rgb[:1]])  # B, G, R, NIR, nothing declared
    path = _tif(tmp_path / "bgrn.tif", planes)
    kw = {"text_vocab_size": len(tiny_tokenizer), "in_chans": 4, "mean": [0.4] * 4, "std": [0.2] * 4}
    torch.manual_seed(0)
    plain = rrsis.create_model("gl-msin-tiny", **kw).eval()
    plain.tokenizer = tiny_tokenizer
    (r,) = segment_scene(plain, path, "the white tank", mode="object", threshold=0.3, read="colour")
    assert r.reading.endswith("(no colour: the scene's red, green and blue are not read)")
    recorded = rrsis.create_model("gl-msin-tiny", rgb=[2, 1, 0], **kw).eval()
    recorded.load_state_dict(plain.state_dict())
    recorded.tokenizer = tiny_tokenizer
    (r,) = segment_scene(recorded, path, "the white tank", mode="object", threshold=0.3, read="colour")
    assert r.reading == "1 object, white"
    # a file declaring R, G, B, NIR is read in the model's order: B, G, R, NIR
    declared = _tif(tmp_path / "rgbn.tif", np.concatenate([rgb, rgb[:1]]), [CI.red, CI.green, CI.blue, CI.undefined])
    with open_scene(declared, channels=4) as sc:
        recorded_rgb(sc, recorded)
        assert sc.bands == (3, 2, 1, 4) and sc.rgb == (2, 1, 0)
    with open_scene(path, channels=4) as sc:
        recorded_rgb(sc, recorded)
        assert sc.rgb == (2, 1, 0)


def test_a_raster_declaring_its_colours_elsewhere_is_read_in_the_models_order(tiny_tokenizer, tmp_path):
    from rrsis.data.bands import colours_at

    assert colours_at((1, 2, 3, 4), (3, 2, 1), (0, 1, 2)) == (3, 2, 1, 4)
    assert colours_at((1, 2, 3, 4, 5), (4, 3, 2), (1, 2, 3)) == (1, 4, 3, 2, 5)
    rgb = np.moveaxis(_scene_rgb(), 2, 0).astype(np.uint16) * 40
    nir = (rgb[1] // 2 + 300)[None]
    rgbn = _tif(tmp_path / "rgbn.tif", np.concatenate([rgb, nir]), [CI.red, CI.green, CI.blue, CI.undefined])
    bgrn = _tif(tmp_path / "bgrn.tif", np.concatenate([rgb[::-1], nir]), BGRN)
    kw = {"text_vocab_size": len(tiny_tokenizer), "in_chans": 4, "mean": [0.4] * 4, "std": [0.2] * 4}
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", rgb=[0, 1, 2], **kw).eval()  # trained on R, G, B, NIR
    model.tokenizer = tiny_tokenizer
    with open_scene(bgrn, channels=4) as sc, open_scene(rgbn, channels=4) as ref:
        assert sc.bands == (1, 2, 3, 4) and sc.rgb == (2, 1, 0)
        recorded_rgb(sc, model)
        assert sc.bands == (3, 2, 1, 4) and sc.rgb == (0, 1, 2)
        assert sc.stretch_range == ref.stretch_range  # each band's stretch moved with it
        np.testing.assert_array_equal(sc.read()[0], ref.read()[0])
    kw = {"mode": "tiles", "tile": 64, "probabilities": True}
    (a,) = segment_scene(model, bgrn, "the white tank", out=tmp_path / "a", **kw)
    (b,) = segment_scene(model, rgbn, "the white tank", out=tmp_path / "b", **kw)
    with rasterio.open(a.files["mask"]) as pa, rasterio.open(b.files["mask"]) as pb:
        got, want = pa.read(), pb.read()  # the mask and, with probabilities=True, the probability
    assert want[-1].std() > 0
    np.testing.assert_array_equal(got, want)
    with open_scene(bgrn, channels=4, bands="1,2,3,4") as sc:  # bands chosen: never reordered
        recorded_rgb(sc, model)
        assert sc.bands == (1, 2, 3, 4)


def test_model_predict_reads_a_file_declaring_its_colours_elsewhere_in_the_models_order(tiny_tokenizer, tmp_path):
    rgb = np.moveaxis(_scene_rgb(), 2, 0).astype(np.uint16) * 40
    nir = (rgb[1] // 2 + 300)[None]
    rgbn = _tif(tmp_path / "rgbn.tif", np.concatenate([rgb, nir]), [CI.red, CI.green, CI.blue, CI.undefined])
    bgrn = _tif(tmp_path / "bgrn.tif", np.concatenate([rgb[::-1], nir]), BGRN)
    kw = {"text_vocab_size": len(tiny_tokenizer), "in_chans": 4, "mean": [0.4] * 4, "std": [0.2] * 4,
          "scale": "dtype", "image_size": 64}
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", rgb=[0, 1, 2], **kw).eval()
    model.tokenizer = tiny_tokenizer
    assert model.colours == [0, 1, 2]
    seen, _ = model.preprocess([bgrn, rgbn], image_size=64)
    torch.testing.assert_close(seen[0], seen[1])  # the B, G, R, NIR file read 3, 2, 1, 4
    plain = rrsis.create_model("gl-msin-tiny", **kw).eval()  # no record: file order, as before
    seen, _ = plain.preprocess([bgrn, rgbn], image_size=64)
    assert not torch.allclose(seen[0], seen[1])
    np.testing.assert_array_equal(*model.predict([bgrn, rgbn], ["the white tank"] * 2, threshold=0.5))
