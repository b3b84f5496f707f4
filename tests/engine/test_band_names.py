"""A model records the descriptions its training images gave the bands it reads
(``backbone.band_names``), and a raster describing those bands, among any others and in any
order, is read with them in the model's order: a 4-band B04, B03, B02, B08 model on a 6-band
Sentinel-2-like stack, by ``model.predict``, ``segment_scene`` and ``rrsis predict``."""

import json

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from _fixtures import fit, four_band_folder, recipe

import rrsis
from rrsis._config import ConfigError
from rrsis.data.band_names import check_names, declared_names, named_bands
from rrsis.data.headers import ImageHeader, read_header
from rrsis.engine.trainer import build_datasets
from rrsis.scene import open_scene, segment_scene

NAMES = ["B04", "B03", "B02", "B08"]
STACK = ["B02", "B03", "B04", "B08", "B11", "B12"]  # the stack's own order: B04 is band 3


def _tif(path, planes, descriptions=None):
    c, h, w = planes.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=planes.dtype, crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(500000, 4000000, 1, 1), photometric="MINISBLACK") as ds:
        ds.write(planes)
        if descriptions is not None:
            ds.descriptions = tuple(descriptions)
    return str(path)


def _stack(tmp_path, names=NAMES):
    """A 6-band stack whose bands differ (each its own level plus a shared pattern), and the bands
    ``names`` as a file of their own, in that order."""
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 2000, (64, 64), dtype=np.uint16)
    planes = np.stack([pattern + 3000 * (i + 1) for i in range(len(STACK))]).astype(np.uint16)
    stack = _tif(tmp_path / "stack.tif", planes, STACK)
    own = _tif(tmp_path / "own.tif", planes[[STACK.index(n) for n in names]], names)
    return stack, own, planes


def _model(tokenizer, in_chans=4, **kw):
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tokenizer), in_chans=in_chans,
                               mean=[0.4] * in_chans, std=[0.2] * in_chans, scale=65535, image_size=64, **kw).eval()
    model.tokenizer = tokenizer
    return model


def test_named_bands_finds_each_name_once_in_the_models_order():
    assert named_bands(STACK, NAMES, 4) == (3, 2, 1, 4)
    assert named_bands([" b02", "B03 ", "b04", None, "B08"], NAMES, 4) == (3, 2, 1, 5)  # case and spaces aside
    assert named_bands(STACK, NAMES[:3], None) == (3, 2, 1)  # an RGB model reads three
    assert named_bands(STACK, NAMES, 3) is None  # four names for a 3-band model: not this model's
    assert named_bands(["B02", "B03", "B04"], NAMES, 4) is None  # B08 missing
    assert named_bands(["B02", "B03", "B04", "B08", "b08"], NAMES, 4) is None  # B08 twice: ambiguous
    assert named_bands((), NAMES, 4) is None and named_bands(STACK, None, 4) is None
    assert named_bands(["B8", "B4", "B3", "B2"], NAMES, 4) is None  # nothing else is guessed


def test_check_names_refuses_what_cannot_name_the_bands():
    assert check_names(("a", "b"), 2) == ["a", "b"]
    for bad, why in [(["a"], "2 non-empty"), (["a", ""], "2 non-empty"), (["a", 3], "2 non-empty"),
                     (["a", "A "], "twice"), ("ab", "list of 2")]:
        with pytest.raises(ValueError, match=why):
            check_names(bad, 2)


def test_declared_names_follow_the_bands_read():
    h = ImageHeader("a.tif", 8, 8, 6, "uint16", descriptions=tuple(STACK))
    assert declared_names([h], "3,2,1,4", 4) == NAMES
    assert declared_names([h], None, 3) == STACK[:3]  # an RGB model reads the first three
    assert declared_names([h, ImageHeader("b.tif", 8, 8, 6, "uint16", descriptions=tuple(STACK))], "3,2,1,4", 4) \
        == NAMES
    other = ImageHeader("c.tif", 8, 8, 6, "uint16", descriptions=("B02", "B03", "B04", "B8A", "B11", "B12"))
    assert declared_names([h, other], "3,2,1,4", 4) is None  # two namings: nothing to record
    assert declared_names([h, ImageHeader("d.tif", 8, 8, 6, "uint16")], "3,2,1,4", 4) is None
    assert declared_names([ImageHeader("e.tif", 8, 8, 6, "uint16", descriptions=("x", None) * 3)], None, 3) is None
    assert declared_names([ImageHeader("g.tif", 8, 8, 1, "uint8", descriptions=("pan",))], None, 3) is None  # grey
    assert declared_names([], None, 4) is None
    numbered = ImageHeader("f.tif", 8, 8, 3, "uint8", descriptions=("Band 1", "Band 2", "Band 3"))
    assert declared_names([numbered], None, 3) is None  # a place in the file, not a name


def test_the_header_reads_the_band_descriptions(tmp_path):
    stack, _, _ = _stack(tmp_path)
    assert read_header(stack).descriptions == tuple(STACK)


def test_band_names_are_a_strict_config_key_saved_with_the_model(tiny_tokenizer, tmp_path):
    model = _model(tiny_tokenizer, band_names=NAMES)
    assert model.band_names == NAMES and model.config["backbone"]["band_names"] == NAMES
    model.save_pretrained(tmp_path / "m")
    assert rrsis.from_pretrained(tmp_path / "m").band_names == NAMES
    for bad, why in [(NAMES[:3], "4 non-empty"), (["B04", "B03", "B02", "b04"], "twice"), ("B04", "list of 4")]:
        with pytest.raises(ConfigError, match=why):
            _model(tiny_tokenizer, band_names=bad)
    assert _model(tiny_tokenizer).band_names is None


def test_training_records_the_band_names(tmp_path):
    root = four_band_folder(tmp_path / "data", n=3, descriptions=["B02", "B03", "B04", "B08"])
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", 'data.options={"scale": "dtype", "bands": [3, 2, 1, 4]}',
                 "model.in_chans=4", f"model.mean={json.dumps([0.4] * 4)}", f"model.std={json.dumps([0.2] * 4)}",
                 max_steps=1, batch_size=2, log_every=1)
    train, _ = build_datasets(cfg["data"], cfg["model"])
    assert train.band_names == NAMES
    out = fit(cfg)["output_dir"]
    assert rrsis.from_pretrained(f"{out}/final").band_names == NAMES


def test_model_predict_reads_the_named_bands_of_a_larger_stack(tiny_tokenizer, tmp_path):
    stack, own, planes = _stack(tmp_path)
    model = _model(tiny_tokenizer, band_names=NAMES)
    seen, _ = model.preprocess([stack, own], image_size=64)
    torch.testing.assert_close(seen[0], seen[1])
    np.testing.assert_array_equal(*model.predict([stack, own], ["the white tank"] * 2, threshold=0.5))
    chosen, _ = model.preprocess([stack], image_size=64, bands="1,2,3,4")  # bands= wins
    assert not torch.allclose(chosen[0], seen[1])
    with pytest.raises(ValueError, match="6 band") as info:  # no record: the band count is refused, as before
        _model(tiny_tokenizer).preprocess([stack], image_size=64)
    assert "band_names" not in str(info.value)
    partial = _tif(tmp_path / "partial.tif", planes[[0, 1, 2, 4, 5]], ["B02", "B03", "B04", "B11", "B12"])
    with pytest.raises(ValueError, match="5 band") as info:  # B08 missing: read by the band rule, which refuses
        model.preprocess([partial], image_size=64)
    assert "described B02, B03, B04, B11, B12, so B08 cannot be found" in str(info.value)
    with pytest.raises(ValueError, match="5 band.*described B02, B03, B04, B11, B12, so B08 cannot be found"):
        open_scene(partial, channels=4, names=NAMES)


def test_a_scene_reads_the_named_bands_and_segments_as_the_models_own_file(tiny_tokenizer, tmp_path):
    stack, own, _ = _stack(tmp_path)
    model = _model(tiny_tokenizer, band_names=NAMES)
    with open_scene(stack, channels=4, names=NAMES) as sc, open_scene(own, channels=4) as ref:
        assert sc.bands == (3, 2, 1, 4)
        np.testing.assert_array_equal(sc.read()[0], ref.read()[0])
    with open_scene(stack, channels=4, names=NAMES, bands="1,2,3,4") as sc:
        assert sc.bands == (1, 2, 3, 4)
    kw = {"mode": "tiles", "tile": 64, "probabilities": True}
    (a,) = segment_scene(model, stack, "the white tank", out=tmp_path / "a", **kw)
    (b,) = segment_scene(model, own, "the white tank", out=tmp_path / "b", **kw)
    with rasterio.open(a.files["mask"]) as pa, rasterio.open(b.files["mask"]) as pb:
        got, want = pa.read(), pb.read()
    assert want[-1].std() > 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [3, 4])
def test_rrsis_predict_reads_the_named_bands_without_bands(tiny_tokenizer, tmp_path, n):
    from rrsis.cli import main

    stack, own, _ = _stack(tmp_path, NAMES[:n])  # an RGB model of B04, B03, B02 would read B02, B03, B04 unnamed
    _model(tiny_tokenizer, n, band_names=NAMES[:n]).save_pretrained(tmp_path / "model")
    for image, out in ((stack, "a"), (own, "b")):  # --scale: the file is read once, as given, unless by name
        assert main(["predict", "--model", str(tmp_path / "model"), "--image", image, "--text", "the white tank",
                     "--out", str(tmp_path / out), "--mode", "tiles", "--tile", "64", "--probabilities",
                     "--scale", "65535", "--quiet"]) == 0
    with rasterio.open(tmp_path / "a_mask.tif") as pa, rasterio.open(tmp_path / "b_mask.tif") as pb:
        np.testing.assert_array_equal(pa.read(), pb.read())


def test_a_raster_of_the_models_count_described_otherwise_is_read_by_position_with_a_warning(tiny_tokenizer,
                                                                                             tmp_path, recwarn, capsys):
    from rrsis.cli import main

    _, _, planes = _stack(tmp_path)
    other = _tif(tmp_path / "other.tif", planes[[0, 1, 2, 3]], ["B02", "B03", "B04", "B05"])
    bare = _tif(tmp_path / "bare.tif", planes[[0, 1, 2, 3]])
    numbered = _tif(tmp_path / "numbered.tif", planes[[0, 1, 2, 3]], [f"Band {i}" for i in range(1, 5)])
    model = _model(tiny_tokenizer, band_names=NAMES)
    model.save_pretrained(tmp_path / "model")

    def notes():
        found = [str(w.message) for w in recwarn if "backbone.band_names" in str(w.message)]
        recwarn.clear()
        return found

    def heard(*paths, cli=False):
        for path in paths:
            if cli:
                assert main(["predict", "--model", str(tmp_path / "model"), "--image", path, "--text",
                             "the white tank", "--out", str(tmp_path / "p"), "--mode", "global", "--quiet",
                             "--overwrite"]) == 0
            else:
                model.predict(path, "the white tank")
                with open_scene(path, channels=4, names=NAMES) as sc:
                    assert sc.bands == (1, 2, 3, 4)  # file order, as before
        return [line for line in capsys.readouterr().err.splitlines() if "backbone.band_names" in line] if cli \
            else notes()

    for cli in (False, True):
        said = heard(other, cli=cli)
        assert len(said) == (1 if cli else 2) and len(set(said)) == 1 and "\n" not in said[0]
        for part in ("other.tif", "described B04, B03, B02, B08", "described B02, B03, B04, B05", "B08 cannot",
                     "bands= (--bands)"):
            assert part in said[0]
        assert heard(bare, numbered, cli=cli) == []  # nothing described: nothing to compare
    with open_scene(other, channels=4, names=NAMES, bands="3,2,1,4"):
        pass
    assert notes() == []  # bands= chosen: nothing to say
