"""A trained model records the scale it saw its training images at (``backbone.image_ratio``,
and ``backbone.gsd`` for images georeferenced in metres), and whole-scene inference reads a
metric scene at that ground resolution by default (``pixel_ratio="auto"``)."""

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from _fixtures import fit, recipe
from PIL import Image
from rasterio.transform import from_origin

import rrsis
from rrsis.cli import main
from rrsis.data.headers import read_header
from rrsis.data.training_scale import training_scale
from rrsis.engine.trainer import build_datasets
from rrsis.hub import save_pretrained
from rrsis.scene import SceneOptions, open_scene, segment_scene
from rrsis.scene.outputs import read_record

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "saved-0.2"


def _geotiff(path, size=96, pixel=0.5, crs="EPSG:32633", seed=0):
    data = np.random.default_rng(seed).integers(0, 255, (3, size, size), dtype=np.uint8)
    geo = {} if crs is None else {"crs": crs, "transform": from_origin(500000, 4000000, pixel, pixel)}
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=3, dtype="uint8", **geo) as ds:
        ds.write(data)
    return str(path)


def _folder(root, pixels=(0.5, 0.5, 0.5), size=96, crs="EPSG:32633"):
    """A RefSegRS-style folder of georeferenced 3-band chips, one per pixel size."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    lines = []
    for i, px in enumerate(pixels):
        _geotiff(root / "images" / f"{i}.tif", size, px, crs, seed=i)
        mask = np.zeros((size, size), np.uint8)
        mask[8:40, 8:40] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        lines.append(f"{i} the wet plot")
    for split in ("train", "val"):
        (root / f"output_phrase_{split}.txt").write_text("\n".join(lines) + "\n")
    return str(root)


def _model(tokenizer, **kw):
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tokenizer), image_size=64, **kw).eval()
    model.tokenizer = tokenizer
    return model


def test_training_records_the_image_ratio_and_gsd_read_from_the_headers(tmp_path):
    root = _folder(tmp_path / "data")
    cfg = recipe(root, tmp_path / "run", "data.dataset=risbench", max_steps=1, batch_size=2, log_every=1)
    train, _ = build_datasets(cfg["data"], cfg["model"])
    side = read_header(f"{root}/images/0.tif").width
    ratio = side / cfg["data"]["image_size"]  # 96 px chips at image_size 64: 1.5
    assert train.training_scale == {"image_ratio": pytest.approx(ratio), "gsd": pytest.approx(0.5 * ratio)}
    out = fit(cfg)["output_dir"]
    saved = json.loads(Path(f"{out}/final/config.json").read_text())
    assert json.dumps(saved).count('"gsd"') == 1
    model = rrsis.from_pretrained(f"{out}/final")
    assert model.config["backbone"]["image_ratio"] == pytest.approx(ratio)
    assert model.config["backbone"]["gsd"] == pytest.approx(0.5 * ratio)
    card = Path(f"{out}/final/README.md").read_text()
    assert f"{0.5 * ratio:g} m on the ground per model pixel" in card


def test_png_chips_of_an_rgb_scene_carry_their_georeference_and_train_records_the_gsd(tmp_path):
    """``rrsis chips`` on a 3-band 8-bit scene writes PNG chips; a world file and ``.aux.xml``
    beside each place it (rasterio reads chips.json's transform and the scene's CRS), the
    dataset reads the PNGs alone, and training records the chips' ground resolution."""
    pytest.importorskip("pyogrio")
    shapely = pytest.importorskip("shapely")
    from pyogrio.raw import write

    from rrsis.scene import write_chips

    scene = _geotiff(tmp_path / "scene.tif", size=256, pixel=0.5)
    with rasterio.open(scene) as ds:
        t = ds.transform
    boxes = [shapely.geometry.box(*(t @ (c, r + 16)), *(t @ (c + 16, r))) for r in (20, 150) for c in (20, 150)]
    labels = str(tmp_path / "labels.gpkg")
    write(labels, np.array([shapely.to_wkb(b) for b in boxes], dtype=object), [np.array(["the wet plot"] * 4,
          dtype=object)], ["text"], driver="GPKG", crs="EPSG:32633", geometry_type="Unknown")
    root = tmp_path / "chips"
    summary = write_chips(scene, labels, root, size=64, val=0, test=0)
    assert summary.image_format == "png"
    for chip in json.loads((root / "chips.json").read_text())["chips"]:
        with rasterio.open(root / "images" / f"{chip['id']}.png") as ds:
            assert list(ds.transform)[:6] == pytest.approx(chip["transform"])
            assert ds.crs == rasterio.crs.CRS.from_string("EPSG:32633")
    cfg = recipe(str(root), tmp_path / "run", "data.dataset=risbench", "data.val_split=null", max_steps=1)
    train, _ = build_datasets(cfg["data"], cfg["model"])
    assert len(train) == summary.counts["train"]  # the sidecars are no samples
    ratio = 64 / cfg["data"]["image_size"]
    assert train.training_scale == {"image_ratio": pytest.approx(ratio), "gsd": pytest.approx(0.5 * ratio)}


def test_scales_are_recorded_only_when_the_images_agree(tmp_path, caplog):
    mixed = _folder(tmp_path / "mixed", pixels=(0.5, 0.5, 1.0))
    headers = [read_header(f"{mixed}/images/{i}.tif") for i in range(3)]
    with caplog.at_level(logging.INFO, logger="rrsis.data.training_scale"):
        assert training_scale(headers, 64) == {"image_ratio": 1.5, "gsd": None}
    assert "0.75 to 1.5 m" in caplog.text and "none is recorded" in caplog.text
    close = _folder(tmp_path / "close", pixels=(0.5, 0.52, 0.5))  # within 10 %: the median
    assert training_scale([read_header(f"{close}/images/{i}.tif") for i in range(3)], 64)["gsd"] == 0.75
    plain = _folder(tmp_path / "plain", crs=None)  # not georeferenced: the ratio alone
    assert training_scale([read_header(f"{plain}/images/{i}.tif") for i in range(3)], (48, 48)) == \
        {"image_ratio": 2.0, "gsd": None}
    sizes = [read_header(_geotiff(tmp_path / f"s{n}.tif", size=n)) for n in (64, 128)]
    assert training_scale(sizes, 64) == {"image_ratio": None, "gsd": None}
    assert training_scale([read_header(_geotiff(tmp_path / "deg.tif", crs="EPSG:4326", pixel=1e-5))], 48) == \
        {"image_ratio": 2.0, "gsd": None}  # degrees are no ground resolution


def test_auto_pixel_ratio_is_the_models_gsd_over_the_scenes(tiny_tokenizer, tmp_path, caplog):
    model = _model(tiny_tokenizer, gsd=0.5, image_ratio=1.0)
    fine = _geotiff(tmp_path / "fine.tif", size=256, pixel=0.25)
    with open_scene(fine) as sc, caplog.at_level(logging.INFO, logger="rrsis.scene.gsd"):
        assert SceneOptions().resolved(model, sc.height, sc.width, sc).pixel_ratio == 2.0
        assert SceneOptions(pixel_ratio=1.5).resolved(model, sc.height, sc.width, sc).pixel_ratio == 1.5
    assert "0.25 m scene, model trained at 0.5 m per model pixel: pixel_ratio 2" in caplog.text
    (r,) = segment_scene(model, fine, "the wet plot", mode="tiles", out=str(tmp_path / "out"))
    used = read_record(r.files["mask"])["settings"]["options"]
    assert used["pixel_ratio"] == 2.0  # the SceneOptions the tiles ran with, recorded
    (again,) = segment_scene(model, fine, "the wet plot", mode="tiles", out=str(tmp_path / "out"), resume=True,
                             pixel_ratio=2)  # the same number given: the same settings
    assert again.already_done


def test_without_a_metric_scene_or_a_record_the_ratio_stays_1(tiny_tokenizer, tmp_path, caplog):
    model = _model(tiny_tokenizer, gsd=0.5)
    plain = _geotiff(tmp_path / "plain.tif", size=128, crs=None)
    coarse = _geotiff(tmp_path / "coarse.tif", size=128, pixel=1.0)
    with open_scene(plain) as sc:
        assert SceneOptions(mode="tiles").resolved(model, sc.height, sc.width, sc).pixel_ratio == 1.0
    with open_scene(coarse) as sc, pytest.warns(UserWarning, match="coarser than the model's training data"):
        assert SceneOptions(mode="tiles").resolved(model, sc.height, sc.width, sc).pixel_ratio == 1.0
    resized = _model(tiny_tokenizer, image_ratio=1.5)
    with open_scene(coarse) as sc, caplog.at_level(logging.INFO, logger="rrsis.scene.gsd"):
        assert SceneOptions(mode="tiles").resolved(resized, sc.height, sc.width, sc).pixel_ratio == 1.0
    assert "saw its training images at 1.5 image pixels per model pixel" in caplog.text
    assert "pass --pixel-ratio 1.5" in caplog.text
    caplog.clear()
    enlarged = _model(tiny_tokenizer, image_ratio=0.25)  # 128-px chips trained at image_size 512
    with open_scene(coarse) as sc, caplog.at_level(logging.INFO, logger="rrsis.scene.gsd"):
        assert SceneOptions(mode="tiles").resolved(enlarged, sc.height, sc.width, sc).pixel_ratio == 1.0
    assert "--pixel-ratio" not in caplog.text  # below 1 is refused: never advised
    assert "saw its training images enlarged 4x (0.25 image pixels per model pixel)" in caplog.text
    assert "objects 4x smaller than it learnt them" in caplog.text
    caplog.clear()  # global (and auto choosing it) resizes the scene whole, as training did: nothing to tell
    with open_scene(coarse) as sc, caplog.at_level(logging.INFO, logger="rrsis.scene.gsd"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in ("global", "auto"):
            assert SceneOptions(mode=mode).resolved(enlarged, sc.height, sc.width, sc).mode == "global"
            assert SceneOptions(mode=mode).resolved(model, sc.height, sc.width, sc).pixel_ratio == 1.0
    assert caplog.text == ""
    old = rrsis.from_pretrained(ASSETS / "gl-msin-tiny")  # saved before the record: unchanged
    assert old.config["backbone"].get("gsd") is None
    with open_scene(_geotiff(tmp_path / "fine.tif", size=128, pixel=0.25)) as sc:
        assert SceneOptions(mode="tiles").resolved(old, sc.height, sc.width, sc).pixel_ratio == 1.0


def test_predict_prints_the_chosen_ratio(tiny_tokenizer, tmp_path, capsys):
    save_pretrained(_model(tiny_tokenizer, gsd=0.5), tmp_path / "model")
    fine = _geotiff(tmp_path / "fine.tif", size=128, pixel=0.25)
    argv = ["predict", "--model", str(tmp_path / "model"), "--image", fine, "--mode", "tiles", "--text",
            "the wet plot", "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    assert "model trained at 0.5 m per model pixel: pixel_ratio 2" in capsys.readouterr().err
    assert read_record(next((tmp_path).glob("out*mask.tif")))["settings"]["options"]["pixel_ratio"] == 2.0
    assert main([*argv, "--pixel-ratio", "1", "--overwrite"]) == 0
    assert read_record(next((tmp_path).glob("out*mask.tif")))["settings"]["options"]["pixel_ratio"] == 1.0


def test_a_region_done_at_ratio_1_is_done_under_auto_for_a_model_without_a_gsd(tiny_tokenizer, tmp_path):
    from rrsis.scene import segment_scenes

    scene = _geotiff(tmp_path / "s.tif", size=128, pixel=0.25)
    kw = {"out": str(tmp_path / "region"), "mode": "tiles"}
    first = segment_scenes(_model(tiny_tokenizer), [scene], ["the wet plot"], pixel_ratio=1, **kw)
    assert first.done and not first.skipped
    again = segment_scenes(_model(tiny_tokenizer), [scene], ["the wet plot"], **kw)  # auto: 1 for this model
    assert again.skipped == first.done
    with pytest.raises(ValueError, match="pixel_ratio"):  # a model that records a GSD reads it at 2: not done
        segment_scenes(_model(tiny_tokenizer, gsd=0.5), [scene], ["the wet plot"], **kw)


def test_a_region_done_under_auto_is_done_for_the_same_number_given_and_back(tiny_tokenizer, tmp_path):
    from rrsis.scene import segment_scenes

    scenes = [_geotiff(tmp_path / f"s{i}.tif", size=128, pixel=0.25, seed=i) for i in (0, 1)]
    model = _model(tiny_tokenizer, gsd=0.5)
    kw = {"out": str(tmp_path / "auto"), "mode": "tiles"}
    first = segment_scenes(model, scenes, ["the wet plot"], **kw)
    assert sorted(first.done) == ["s0", "s1"]
    for sid in first.done:  # each scene's record holds the number auto was on it
        assert json.loads((tmp_path / "auto" / sid / "done.json").read_text())["settings"]["options"][
            "pixel_ratio"] == 2.0
    assert sorted(segment_scenes(model, scenes, ["the wet plot"], pixel_ratio=2, **kw).skipped) == first.done
    with pytest.raises(ValueError, match=r"pixel_ratio \(2\.0 → 3\)"):
        segment_scenes(model, scenes, ["the wet plot"], pixel_ratio=3, **kw)
    given = {"out": str(tmp_path / "given"), "mode": "tiles"}
    assert segment_scenes(model, scenes, ["the wet plot"], pixel_ratio=2, **given).done
    assert sorted(segment_scenes(model, scenes, ["the wet plot"], **given).skipped) == first.done  # auto: 2
    record = tmp_path / "auto" / "s0" / "done.json"  # written before the number was recorded: "auto"
    old = json.loads(record.read_text())
    old["settings"]["options"]["pixel_ratio"] = "auto"
    record.write_text(json.dumps(old))
    assert "s0" in segment_scenes(model, scenes, ["the wet plot"], pixel_ratio=2, **kw).skipped


def test_evaluate_records_the_pixel_ratio_each_scene_ran_at(tiny_tokenizer, tmp_path):
    pytest.importorskip("pyogrio")
    shapely = pytest.importorskip("shapely")
    from pyogrio.raw import write

    from rrsis.scene import SceneEvaluation, evaluate_scene

    fine = _geotiff(tmp_path / "fine.tif", size=128, pixel=0.25)  # 2 under a model trained at 0.5 m
    plain = _geotiff(tmp_path / "plain.tif", size=128, pixel=0.5, seed=1)  # 1
    labels = str(tmp_path / "labels.gpkg")  # the same corner of both scenes
    write(labels, np.array([shapely.to_wkb(shapely.geometry.box(500004, 3999988, 500012, 3999996))], dtype=object),
          [np.array(["the wet plot"], dtype=object)], ["text"], driver="GPKG", crs="EPSG:32633",
          geometry_type="Unknown")
    model = _model(tiny_tokenizer, gsd=0.5)
    one = evaluate_scene(model, fine, labels, modes="tiles")
    assert one.options["pixel_ratio"] == 2.0
    assert evaluate_scene(model, fine, labels, modes="tiles", pixel_ratio=1.5).options["pixel_ratio"] == 1.5
    many = evaluate_scene(model, [fine, plain], labels, modes="tiles")
    assert {s.id: s.pixel_ratio for s in many.scenes} == {"fine": 2.0, "plain": 1.0}
    assert many.options["pixel_ratio"] == "auto"  # the scenes disagree: each one's number is in scenes
    many.write_json(tmp_path / "e.json")
    assert [s["pixel_ratio"] for s in json.loads((tmp_path / "e.json").read_text())["scenes"]] == [2.0, 1.0]
    assert SceneEvaluation.read_json(tmp_path / "e.json") == many
    twin = _geotiff(tmp_path / "twin.tif", size=128, pixel=0.25, seed=2)
    assert evaluate_scene(model, [fine, twin], labels, modes="tiles").options["pixel_ratio"] == 2.0  # they agree
