"""Region reruns never reuse a stale answer: another model or other STAC band assets are refused
(naming what differs), an earlier version's record without a model is refused with advice,
--overwrite removes the earlier run's outputs, a broken scene does not stop the merged file,
and the merged file and region.json say where each scene came from."""

import copy
import json
import os

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
from _fixtures import write_small_geotiff
from test_scene import tiny  # noqa: F401  (the sharpened tiny model fixture)

from rrsis.cli import main
from rrsis.scene.outputs import model_fingerprint
from rrsis.scene.region import RECORD, read_record, segment_scenes
from rrsis.scene.region.record import REGION_FILE

KW = {"mode": "global", "threshold": 0.5}


def _two(tmp_path):
    for i in range(2):
        write_small_geotiff(tmp_path / f"t{i}.tif", seed=i, x0=440720.0 + 60 * i)
    return str(tmp_path / "t*.tif")


def _other(model):
    """The same model with one weight changed (a retrained model)."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(p for p in other.parameters() if p.numel() > 1).add_(0.01)
    return other


def test_fingerprint_follows_weights_config_and_tokenizer(tiny):  # noqa: F811
    same = copy.deepcopy(tiny)
    assert model_fingerprint(same) == model_fingerprint(tiny) and len(model_fingerprint(tiny)) == 64
    assert model_fingerprint(_other(tiny)) != model_fingerprint(tiny)
    same.tokenizer = copy.deepcopy(tiny.tokenizer)
    same.tokenizer.max_tokens += 1
    assert model_fingerprint(same) != model_fingerprint(tiny)


def test_another_model_is_refused_naming_it_and_overwrite_redoes(tiny, tmp_path):  # noqa: F811
    scenes, out = _two(tmp_path), tmp_path / "r"
    first = segment_scenes(tiny, scenes, "the red building", out=out, **KW)
    assert first.done == ["t0", "t1"] and read_record(out / "t0")["settings"]["model"] == "sha256:" + model_fingerprint(tiny)
    assert segment_scenes(tiny, scenes, "the red building", out=out, **KW).skipped == ["t0", "t1"]
    other = _other(tiny)
    with pytest.raises(ValueError, match=r"t0: done with other expressions or settings \(done\.json\): the model "
                                         r"\(sha256:.*→ sha256:.*overwrite=True"):
        segment_scenes(other, scenes, "the red building", out=out, **KW)
    again = segment_scenes(other, scenes, "the red building", out=out, overwrite=True, **KW)
    assert again.done == ["t0", "t1"] and read_record(out / "t1")["settings"]["model"] == "sha256:" + model_fingerprint(other)
    # A record of an earlier rrsis (no model in it): refused with advice, never reused.
    rec = read_record(out / "t0")
    del rec["settings"]["model"], rec["read"]
    (out / "t0" / RECORD).write_text(json.dumps({**rec, "rrsis": "0.9.0"}))
    with pytest.raises(ValueError, match=r"t0: done by rrsis 0\.9\.0, whose done\.json does not record the model.*"
                                         r"overwrite=True \(rrsis predict --overwrite\)"):
        segment_scenes(other, scenes, "the red building", out=out, **KW)


def test_other_band_assets_are_refused_before_the_stack_is_rewritten(tiny, tmp_path):  # noqa: F811
    pytest.importorskip("pystac")
    from test_stac_bands import _item, _write

    item, _ = _item(tmp_path, "S2_x", 0)
    path = str(_write(tmp_path / "item.json", item))
    out = tmp_path / "r"
    assert segment_scenes(tiny, path, "the red building", out=out, asset="red,green,blue", **KW).done == ["S2_x"]
    vrt = out / "stacks" / "S2_x.vrt"
    before, mask = vrt.read_bytes(), (out / "S2_x" / "S2_x_mask.tif").read_bytes()
    assert read_record(out / "S2_x")["read"]["assets"] == ["red", "green", "blue"]
    with pytest.raises(ValueError, match=r"S2_x: done with other expressions or settings.*the asset keys read "
                                         r"\(red,green,blue → nir,red,green\)"):
        segment_scenes(tiny, path, "the red building", out=out, asset="nir,red,green", **KW)
    assert vrt.read_bytes() == before and (out / "S2_x" / "S2_x_mask.tif").read_bytes() == mask
    # The same assets again: skipped, its stack untouched.
    assert segment_scenes(tiny, path, "the red building", out=out, asset="red,green,blue", **KW).skipped == ["S2_x"]
    assert vrt.read_bytes() == before
    s = segment_scenes(tiny, path, "the red building", out=out, asset="nir,red,green", overwrite=True, **KW)
    assert s.done == ["S2_x"] and vrt.read_bytes() != before and b"nir.tif" in vrt.read_bytes()


def test_overwrite_removes_the_earlier_runs_outputs_only(tiny, tmp_path):  # noqa: F811
    scenes, out = _two(tmp_path), tmp_path / "r"
    segment_scenes(tiny, scenes, ["the red building", "the ship"], out=out, **KW)
    assert (out / "t0" / "t0_2_mask.tif").is_file()
    (out / "t0" / "notes.txt").write_text("mine")
    (out / "t0" / "t0_mask_edited.tif").write_bytes(b"mine too")
    segment_scenes(tiny, scenes, "the tank", out=out, overwrite=True, **KW)
    listed = {f for o in read_record(out / "t0")["outputs"] for f in o["files"].values()}
    assert sorted(os.listdir(out / "t0")) == sorted([RECORD, "notes.txt", "t0_mask_edited.tif", *listed])
    assert "t0_mask.tif" in listed


def test_a_broken_scene_leaves_the_others_merged_and_a_rerun_finishes(tiny, tmp_path):  # noqa: F811
    write_small_geotiff(tmp_path / "a.tif")
    (tmp_path / "b.tif").write_bytes(b"not a raster")
    out = tmp_path / "r"
    with pytest.warns(UserWarning, match=r"scene b .*failed"):
        s = segment_scenes(tiny, [str(tmp_path / "a.tif"), str(tmp_path / "b.tif")], "the red building", out=out, **KW)
    assert s.done == ["a"] and list(s.failed) == ["b"] and s.merged == str(out / "merged.gpkg")
    meta, _, geoms, fields = pyogrio.raw.read(out / "merged.gpkg")
    names = list(meta["fields"])
    assert len(geoms) == s.n_polygons > 0 and set(fields[names.index("scene")]) == {"a"}
    assert set(fields[names.index("source")]) == {str(tmp_path / "a.tif")}
    region = json.loads((out / REGION_FILE).read_text())
    by_id = {e["id"]: e for e in region["scenes"]}
    assert (by_id["a"]["status"], by_id["b"]["status"]) == ("done", "failed") and "cannot read" in by_id["b"]["error"]
    assert by_id["b"]["source"] == str(tmp_path / "b.tif") and by_id["b"]["outputs"] == []
    assert by_id["a"]["outputs"][0]["files"]["mask"] == "a/a_mask.tif" and (out / "a" / "a_mask.tif").is_file()
    assert region["merged"] == "merged.gpkg" and region["counts"] == {"done": 1, "skipped": 0, "failed": 1}
    write_small_geotiff(tmp_path / "b.tif", seed=3)  # fixed: the rerun does only that scene
    again = segment_scenes(tiny, [str(tmp_path / "a.tif"), str(tmp_path / "b.tif")], "the red building", out=out, **KW)
    assert (again.done, again.skipped, again.failed) == (["b"], ["a"], {})
    _, _, _, fields = pyogrio.raw.read(out / "merged.gpkg")
    assert set(fields[names.index("scene")]) == {"a", "b"}
    assert [e["status"] for e in json.loads((out / REGION_FILE).read_text())["scenes"]] == ["skipped", "done"]


def test_cli_says_which_scenes_failed_and_keeps_a_failing_exit_code(saved_model, tmp_path, capsys):
    write_small_geotiff(tmp_path / "a.tif")
    (tmp_path / "b.tif").write_bytes(b"not a raster")
    (tmp_path / "l.txt").write_text("a.tif\nb.tif\n")
    argv = ["predict", "--model", str(saved_model), "--image", f"@{tmp_path / 'l.txt'}", "--text", "the ship",
            "--out", str(tmp_path / "r"), "--mode", "global", "--quiet"]
    for _ in range(2):  # the rerun retries the broken scene only, and says the same
        assert main(argv) == 1
        got = capsys.readouterr()
        assert got.err.count(f"scene b ({tmp_path / 'b.tif'}) failed:") == 1  # said once, as it happens
        assert f"rrsis predict: warning: scene b ({tmp_path / 'b.tif'}) failed:" in got.err
        assert f"1 scene(s) failed (b) and {tmp_path / 'r' / 'merged.gpkg'} lacks them; fix their files" in got.err
        assert "drop them from the list" in got.err and "from 1 of 2 scenes" in got.out
        assert f"wrote {tmp_path / 'r' / REGION_FILE}" in got.out
    assert "0 segmented, 1 already done, 1 failed" in got.out
    info = pyogrio.read_info(tmp_path / "r" / "merged.gpkg")
    assert list(info["fields"])[-1] == "source"
    np.testing.assert_equal(read_record(tmp_path / "r" / "a")["source"], str(tmp_path / "a.tif"))


def test_another_file_of_the_same_id_is_refused_naming_it(tiny, tmp_path):  # noqa: F811
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write_small_geotiff(tmp_path / d / "x.tif", seed=len(d))
    out = tmp_path / "r"
    segment_scenes(tiny, str(tmp_path / "a" / "x.tif"), "the ship", out=out, **KW)
    with pytest.raises(ValueError, match=rf"x: done with other expressions or settings \(done\.json\): the source read "
                                         rf"\({tmp_path / 'a' / 'x.tif'} → {tmp_path / 'b' / 'x.tif'}\)"):
        segment_scenes(tiny, str(tmp_path / "b" / "x.tif"), "the ship", out=out, **KW)


def test_a_truncated_scene_fails_with_gdals_own_reason(tiny, tmp_path):  # noqa: F811
    """A GeoTIFF cut short opens and fails when read: rasterio's "Read failed. See previous exception
    for details." is said with the exception it points to (GDAL's reason), in the warning and in
    region.json."""
    from rasterio.transform import from_origin

    write_small_geotiff(tmp_path / "a.tif")
    path = tmp_path / "cut.tif"
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 4000000, 1, 1), compress="deflate", tiled=True) as ds:
        ds.write(np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(UserWarning, match=r"scene cut .*failed: .*IReadBlock failed"):
        s = segment_scenes(tiny, [str(tmp_path / "a.tif"), str(path)], "the red building", out=tmp_path / "r", **KW)
    assert "IReadBlock failed" in s.failed["cut"]
    region = json.loads((tmp_path / "r" / REGION_FILE).read_text())
    assert "IReadBlock failed" in {e["id"]: e for e in region["scenes"]}["cut"]["error"]
