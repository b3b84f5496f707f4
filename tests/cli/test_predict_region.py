"""``rrsis predict`` over a region: a glob of GeoTIFFs in one command, resumed after a kill,
sharded over two ``torchrun`` CPU ranks (gloo) with one rank killed, and rank 0's clear failure
when another rank dies before the barrier."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rasterio")
pytest.importorskip("pyogrio")
from _fixtures import REPO, merged_against_scenes, write_small_geotiff

import rrsis
from rrsis.cli import main
from rrsis.scene.region import RECORD, read_record
from rrsis.scene.region.run import TEST_EXIT_ENV


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_tokenizer):
    """A saved tiny model and a threshold at which its (nearly constant) probabilities give
    masks with many polygons: the 70th percentile of its probability over a scene."""
    import rasterio

    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("region_cli")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, out / "model")
    write_small_geotiff(out / "probe.tif")
    (r,) = rrsis.segment_scene(model, out / "probe.tif", "the red building", mode="global", probabilities=True,
                               out=out / "probe")
    with rasterio.open(r.files["mask"]) as ds:
        threshold = float(np.percentile(ds.read(1), 70)) / 255
    return out / "model", f"{min(max(threshold, 0.01), 0.99):.4f}"


def _scenes(folder, n, four_band=(1, 4)):
    folder.mkdir()
    for i in range(n):
        write_small_geotiff(folder / f"tile_{i:02d}.tif", count=4 if i in four_band else 3, seed=i,
                            x0=440720.0 + 50 * i)


def _no_temporaries(folder):
    return [p for p in Path(folder).rglob("*") if ".tmp" in p.name]


def test_region_on_the_command_line_resumes_and_merges(saved, tmp_path, capsys):
    model, threshold = saved
    _scenes(tmp_path / "tiles", 2, four_band=(1,))
    out = tmp_path / "region"
    argv = ["predict", "--model", str(model), "--image", str(tmp_path / "tiles" / "*.tif"), "--text",
            "the red building", "--text", "the ship", "--out", str(out), "--mode", "global", "--threshold",
            threshold, "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 scene(s): 2 segmented, 0 already done, 0 failed" in text and f"wrote {out / 'merged.gpkg'}" in text
    rec = read_record(out / "tile_01")
    assert [o["expression"] for o in rec["outputs"]] == ["the red building", "the ship"]
    per_text = ("_mask.tif", ".geojson", "_overlay.png", "_overlay.pgw", "_overlay.png.aux.xml")
    assert sorted(os.listdir(out / "tile_01")) == sorted([RECORD] + [f"tile_01_{k}{s}" for k in (1, 2) for s in per_text])
    import pyogrio

    info = pyogrio.read_info(out / "merged.gpkg")
    n = sum(len(json.loads((out / s / f"{s}_{k}.geojson").read_text())["features"])
            for s in ("tile_00", "tile_01") for k in (1, 2))
    assert info["features"] == n > 0 and list(info["fields"]) == ["scene", "expression", "area_px", "area_m2",
                                                                   "mean_probability", "source"]
    # The same command again: nothing to do, the merged file rewritten from the records.
    assert main([*argv, "--merged", str(tmp_path / "all.gpkg")]) == 0
    assert "0 segmented, 2 already done" in capsys.readouterr().out
    assert pyogrio.read_info(tmp_path / "all.gpkg")["features"] == n and not _no_temporaries(tmp_path)
    # Region flags with one image, and a merged format rrsis does not write: refused at once.
    one = ["predict", "--model", str(model), "--text", "a", "--out", str(tmp_path / "o")]
    assert main([*one, "--image", str(tmp_path / "tiles" / "tile_00.tif"), "--asset", "visual"]) == 2
    assert "--asset applies to a region" in capsys.readouterr().err
    assert main([*one, "--image", str(tmp_path / "tiles" / "*.tif"), "--merged", "x.shp"]) == 2
    assert "end it in .gpkg" in capsys.readouterr().err
    assert main([*one, "--image", str(tmp_path / "tiles" / "*.jp2")]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_predict_help_shows_the_region_workflow(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert exc.value.code == 0 and "A region (several --image values, a quoted glob, @list.txt" in text
    assert "torchrun --nproc_per_node 4 -m rrsis predict" in text and "--merged PATH" in text


def test_predict_help_says_the_mask_marks_nodata_with_a_valid_data_mask(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a valid-data mask" in text and "has no nodata value" in text
    assert "CRS, transform and nodata" not in text


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != TEST_EXIT_ENV}
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def _predict_args(model, threshold, tiles, out):
    return ["-m", "rrsis", "predict", "--model", str(model), "--image", str(tiles / "*.tif"), "--text",
            "the red building", "--text", "the ship", "--out", str(out), "--mode", "global", "--threshold",
            threshold, "--quiet", "--device", "cpu"]


@pytest.mark.slow
def test_torchrun_two_ranks_one_killed_then_rerun_finishes_every_scene_once(saved, tmp_path):
    model, threshold = saved
    tiles, out = tmp_path / "tiles", tmp_path / "region"
    _scenes(tiles, 6)  # tile_01 and tile_04: 4-band 16-bit, read as bands 1,2,3 by default
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), *_predict_args(model, threshold, tiles, out)]
    # Rank 1 dies (os._exit, no cleanup) right after its first scene; torchrun then stops rank 0.
    first = subprocess.run(run, check=False, env=_env(**{TEST_EXIT_ENV: "1:1"}), capture_output=True, text=True, timeout=300)
    assert first.returncode != 0, first.stderr[-2000:]
    before = {p.parent.name: p.read_bytes() for p in out.glob(f"*/{RECORD}")}
    assert "tile_01" in before and "tile_03" not in before and not (out / "merged.gpkg").exists()

    again = subprocess.run(run, check=False, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    ids = [f"tile_{i:02d}" for i in range(6)]
    records = {i: read_record(out / i) for i in ids}
    assert all(records.values()) and sorted(p.parent.name for p in out.glob(f"*/{RECORD}")) == ids
    assert {i: records[i]["rank"] for i in ids} == {i: k % 2 for k, i in enumerate(ids)}  # i % world == rank
    for sid, data in before.items():  # done once: the rerun skipped what the first run finished
        assert (out / sid / RECORD).read_bytes() == data
    assert f"6 scene(s): {6 - len(before)} segmented, {len(before)} already done, 0 failed" in again.stdout
    got, want = merged_against_scenes(out, out / "merged.gpkg")
    assert got == want and {k[0] for k in got} <= set(ids) and sum(got.values()) > 0
    assert not _no_temporaries(tmp_path)


@pytest.mark.slow
def test_rank_0_fails_clearly_when_another_rank_dies_before_the_barrier(saved, tmp_path):
    model, threshold = saved
    tiles, out = tmp_path / "tiles", tmp_path / "region"
    _scenes(tiles, 4, four_band=())
    port = str(_free_port())
    procs = []
    for rank in (0, 1):  # without torchrun's agent, so that rank 0 lives on after rank 1 dies
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, **{TEST_EXIT_ENV: "1:1"})
        procs.append(subprocess.Popen([sys.executable, *_predict_args(model, threshold, tiles, out),
                                       "--barrier-timeout", "20"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    assert procs[1].returncode == 17
    assert procs[0].returncode == 2, outs[0][1][-2000:]
    assert "rank 0: not every rank finished its scenes" in outs[0][1] and "rerun the same command" in outs[0][1]
    assert not (out / "merged.gpkg").exists() and read_record(out / "tile_03") is None
    assert read_record(out / "tile_00") and read_record(out / "tile_02") and read_record(out / "tile_01")
