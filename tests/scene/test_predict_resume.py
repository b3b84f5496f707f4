"""``rrsis predict`` on one scene with several expressions: result lines printed as each
expression's files are in place, ``--resume`` after an interruption (only files recorded with the
same model and settings kept), the record in the mask's tags and the GeoJSON, ``--text @FILE``."""

import json
import os

import pytest
import torch

import rrsis
from rrsis.cli import main

rasterio = pytest.importorskip("rasterio")
from test_scene import write_scene


def _save(folder, tokenizer, seed):
    from rrsis.hub import save_pretrained

    torch.manual_seed(seed)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tokenizer))
    model.tokenizer = tokenizer
    save_pretrained(model, folder)
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tokenizer):
    out = tmp_path_factory.mktemp("predict_resume")
    _save(out / "model", tiny_tokenizer, 0)
    _save(out / "other", tiny_tokenizer, 1)
    write_scene(out / "scene.tif")
    return out


def _argv(saved, out, *texts, model="model"):
    return ["predict", "--model", str(saved / model), "--image", str(saved / "scene.tif"), "--mode", "global",
            "--out", str(out), *[a for t in texts for a in ("--text", t)]]


def _interrupt_in_expression(monkeypatch, n):
    """KeyboardInterrupt while expression ``n`` (from 1) is being computed, in the strips' loop."""
    from rrsis.scene import api

    calls, add = [], api.PolygonCollector.add

    def interrupted(self, *a, **k):
        if id(self) not in calls:
            calls.append(id(self))
        if len(calls) >= n:
            raise KeyboardInterrupt
        return add(self, *a, **k)

    monkeypatch.setattr(api.PolygonCollector, "add", interrupted)


def test_interrupted_run_printed_the_finished_expression_and_resume_finishes_the_rest(saved, tmp_path, capsys,
                                                                                       monkeypatch):
    argv = [*_argv(saved, tmp_path / "p", "the red building", "the largest tank"), "--mode", "tiles"]
    _interrupt_in_expression(monkeypatch, 2)
    assert main(argv) == 130
    out, err = capsys.readouterr()
    # expression 1's lines came as soon as its files were in place
    assert "'the red building' (tiles):" in out and f"wrote {tmp_path / 'p_1_mask.tif'}" in out
    assert "the largest tank" not in out and not (tmp_path / "p_2_mask.tif").exists()
    # the progress bar's line is ended before the message (stderr is no terminal here)
    assert "the largest tank:" in err and "\nrrsis predict: interrupted\n" in err
    monkeypatch.undo()
    first = (tmp_path / "p_1_mask.tif").stat().st_mtime_ns
    assert main([*argv, "--quiet"]) == 2  # refused, the advice naming --resume
    assert "(rrsis predict --resume) to keep the expressions done" in capsys.readouterr().err
    assert main([*argv, "--quiet", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "'the red building' (tiles):" in out and "done before (same model and settings)" in out
    assert f"kept {tmp_path / 'p_1_mask.tif'}" in out and f"wrote {tmp_path / 'p_2_mask.tif'}" in out
    assert (tmp_path / "p_1_mask.tif").stat().st_mtime_ns == first
    assert json.loads((tmp_path / "p_2.geojson").read_text())["rrsis"]["expression"] == "the largest tank"
    assert main([*argv, "--quiet", "--resume", "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_resume_keeps_only_files_recorded_with_the_same_model_and_settings(saved, tmp_path, capsys):
    argv = [*_argv(saved, tmp_path / "q", "the red building"), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume", "--threshold", "0.7"]) == 2
    err = capsys.readouterr().err
    assert "'the red building'" in err and "made with other settings (threshold)" in err and "--overwrite" in err
    other = [*_argv(saved, tmp_path / "q", "the red building", model="other"), "--quiet", "--resume"]
    assert main(other) == 2
    assert f"made for another model ({saved / 'model'})" in capsys.readouterr().err
    os.unlink(tmp_path / "q_overlay.pgw")
    assert main([*argv, "--resume"]) == 2
    assert f"incomplete ({tmp_path / 'q_overlay.pgw'} missing)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    with rasterio.open(tmp_path / "q_mask.tif") as ds:  # as written before records existed: no tags
        data, profile = ds.read(), ds.profile
    with rasterio.open(tmp_path / "q_mask.tif", "w", **profile) as ds:
        ds.write(data)
    assert main([*argv, "--resume"]) == 2
    assert "its mask records nothing of what it answers" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_each_file_says_what_it_answers(saved, tmp_path):
    """The mask's tags and the GeoJSON's ``rrsis`` member name the expression, the scene's
    source and the model, even for an empty answer (no features)."""
    assert main([*_argv(saved, tmp_path / "r", "the red building", "the largest tank"), "--quiet",
                 "--threshold", "0.999999"]) == 0
    for i, text in enumerate(["the red building", "the largest tank"], 1):
        with rasterio.open(tmp_path / f"r_{i}_mask.tif") as ds:
            tags = ds.tags()
        assert tags["RRSIS_EXPRESSION"] == text and tags["RRSIS_SOURCE"] == str(saved / "scene.tif")
        assert tags["RRSIS_MODEL"] == str(saved / "model") and len(tags["RRSIS_MODEL_SHA256"]) == 64
        assert json.loads(tags["RRSIS_SETTINGS"])["threshold"] == 0.999999
        fc = json.loads((tmp_path / f"r_{i}.geojson").read_text())
        assert fc["rrsis"] == {"expression": text, "source": str(saved / "scene.tif"), "model": str(saved / "model"),
                               "model_sha256": tags["RRSIS_MODEL_SHA256"]}
        assert json.loads(tags["RRSIS_RESULT"])["n_polygons"] == len(fc["features"])


def test_a_plain_image_mask_png_carries_the_record(saved, tmp_path):
    import numpy as np
    from PIL import Image

    from rrsis.scene.outputs import read_record

    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "plain.png")
    argv = ["predict", "--model", str(saved / "model"), "--image", str(tmp_path / "plain.png"), "--text", "a tank",
            "--out", str(tmp_path / "s"), "--quiet"]
    assert main(argv) == 0
    rec = read_record(tmp_path / "s_mask.png")
    assert rec["expression"] == "a tank" and rec["source"] == str(tmp_path / "plain.png")
    assert main([*argv, "--resume"]) == 0


def test_text_at_file_reads_one_expression_a_line(saved, tmp_path, capsys):
    exprs = tmp_path / "exprs.txt"
    exprs.write_text("# tanks first\nthe storage tank\n\n  the silo  \n", encoding="utf-8")
    argv = ["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"), "--mode", "global",
            "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "t"), "--text", f"@{exprs}", "--text", "@@home"]) == 0
    found = [json.loads((tmp_path / f"t_{i}.geojson").read_text())["rrsis"]["expression"] for i in (1, 2, 3)]
    assert found == ["the storage tank", "the silo", "@home"]
    assert not (tmp_path / "t_4.geojson").exists()
    capsys.readouterr()
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the tank\n\xff\xfe silo\n")
    assert main([*argv, str(tmp_path / "u"), "--text", f"@{bad}"]) == 2
    assert f"--text @{bad}: line 2 is not UTF-8" in capsys.readouterr().err
    assert main([*argv, str(tmp_path / "u"), "--text", f"@{tmp_path / 'none.txt'}"]) == 2
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    assert main([*argv, str(tmp_path / "u"), "--text", f"@{tmp_path / 'empty.txt'}"]) == 2
    assert "no expressions in it" in capsys.readouterr().err


def test_text_at_json_and_csv_files_give_their_expressions(saved, tmp_path, capsys):
    """Not their lines: a JSON list's brackets and a CSV's header and ids are no expressions."""
    (tmp_path / "e.json").write_text('[\n  "the storage tank",\n  "the silo"\n]\n', encoding="utf-8")
    (tmp_path / "e.csv").write_text('id,expression\n1,the road\n2,"the tank, north"\n', encoding="utf-8")
    argv = ["predict", "--model", str(saved / "model"), "--image", str(saved / "scene.tif"), "--mode", "global",
            "--quiet", "--out", str(tmp_path / "t"), "--text", f"@{tmp_path / 'e.json'}", "--text",
            f"@{tmp_path / 'e.csv'}"]
    assert main(argv) == 0
    found = [json.loads((tmp_path / f"t_{i}.geojson").read_text())["rrsis"]["expression"] for i in (1, 2, 3, 4)]
    assert found == ["the storage tank", "the silo", "the road", "the tank, north"]
    assert not (tmp_path / "t_5.geojson").exists()
    (tmp_path / "o.json").write_text('{"texts": ["the road"]}', encoding="utf-8")
    capsys.readouterr()
    assert main([*argv[:-4], "--text", f"@{tmp_path / 'o.json'}"]) == 2
    assert "a JSON object; a .json file of expressions is a JSON list of strings" in capsys.readouterr().err


def test_model_fingerprint_follows_the_weights(saved):
    """The same weights loaded twice: one digest; a weight changed in place: another (the kept
    digest is not reused)."""
    from rrsis.hub import from_pretrained
    from rrsis.scene.outputs import model_fingerprint

    a, b = from_pretrained(str(saved / "model")), from_pretrained(str(saved / "model"))
    digest = model_fingerprint(a)
    assert model_fingerprint(b) == digest != model_fingerprint(from_pretrained(str(saved / "other")))
    assert a.name_or_path == str(saved / "model")
    with torch.no_grad():
        next(a.parameters())[0].add_(1.0)
    assert model_fingerprint(a) != digest
    # An edit through .data (as EMA code makes) leaves no version count behind: still seen.
    edited = model_fingerprint(a)
    next(a.parameters()).data.mul_(0.5)
    assert model_fingerprint(a) != edited
    # Held for a region's run: hashed once on entry, the same digest inside, fresh again after.
    from rrsis.scene.outputs import fingerprint_held

    with fingerprint_held(b) as held:
        assert held == digest and model_fingerprint(b) == digest and model_fingerprint(a) != digest
    assert model_fingerprint(b) == digest


def test_resume_of_a_stack_built_otherwise_is_refused_and_the_vrt_kept(saved, tmp_path, capsys):
    """--stack --resume with the band files in another order: refused before any work, and the VRT
    the kept outputs were made from is left as it was (not rewritten)."""
    import numpy as np
    from rasterio.transform import from_origin

    bands = []
    for i, name in enumerate(("B02", "B03", "B04")):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8", crs="EPSG:32633",
                           transform=from_origin(500000, 4000000, 1, 1)) as ds:
            ds.write(np.full((1, 64, 64), 40 * (i + 1), np.uint8))
        bands.append(str(path))
    base = ["predict", "--model", str(saved / "model"), "--stack", "--mode", "global", "--text", "the red building",
            "--out", str(tmp_path / "s"), "--quiet"]
    assert main([*base[:3], "--image", *bands, *base[3:]]) == 0
    vrt = tmp_path / "s_stack.vrt"
    before = vrt.read_bytes()
    capsys.readouterr()
    assert main([*base[:3], "--image", *bands, *base[3:]]) == 2  # existing: --resume offered first
    assert "--resume" in capsys.readouterr().err
    assert main([*base[:3], "--image", *bands, *base[3:], "--resume"]) == 0  # the same files: kept
    assert main([*base[:3], "--image", *bands[::-1], *base[3:], "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume keeps the outputs made from it" in err and "the VRT is as it was" in err
    assert vrt.read_bytes() == before
