"""A model records which of its input bands its training images declared red, green and blue
(``backbone.rgb``), and the whole-scene object mode reads colour words on those bands of a raster
that declares none: a 4-band R, G, B, NIR model on an undeclared 4-band file."""

import json

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from _fixtures import fit, recipe
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


def _folder(root, colours, n=3, size=64):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        _tif(root / "images" / f"{i}.tif", rng.integers(0, 65535, (4, size, size), dtype=np.uint16),
             colours[i] if isinstance(colours, list) and isinstance(colours[0], list) else colours)
        mask = np.zeros((size, size), np.uint8)
        mask[8:24, 4 * i:4 * i + 20] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        lines.append(f"{i} the wet plot")
    for split in ("train", "val"):
        (root / f"output_phrase_{split}.txt").write_text("\n".join(lines) + "\n")
    return str(root)


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
    root = _folder(tmp_path / "data", colours)
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
    # the same model on the same pixels declared R, G, B, NIR in another order: the file's own colours win
    declared = _tif(tmp_path / "rgbn.tif", np.concatenate([rgb, rgb[:1]]), [CI.red, CI.green, CI.blue, CI.undefined])
    with open_scene(declared, channels=4) as sc:
        recorded_rgb(sc, recorded)
        assert sc.rgb == (0, 1, 2)
    with open_scene(path, channels=4) as sc:
        recorded_rgb(sc, recorded)
        assert sc.rgb == (2, 1, 0)
