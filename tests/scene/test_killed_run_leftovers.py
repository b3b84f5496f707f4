"""What a killed (``kill -9``) run leaves beside one scene's outputs: a plain rerun removes the
temporaries and the lock of the dead process before it refuses the finished expression's files (all
of which it names), ``--overwrite`` removes them too, and a temporary has one ``.tmp`` suffix."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from rrsis.cli import main
from rrsis.scene.outputs import check_outputs, output_paths

rasterio = pytest.importorskip("rasterio")
from test_scene import write_scene


@pytest.fixture(scope="module")
def dead_pid():
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftovers(folder, pid):
    """What `rrsis predict --text A --text B --out folder/run`, killed in expression 2, leaves."""
    done = list(output_paths(str(folder / "run_1"), True).values())
    for p in done:
        with open(p, "w") as fh:
            fh.write("done")
    temps = [folder / f".run_2_mask.tif.{pid}-3c501d20.tmp.tif",  # the staged mask
             folder / f"..run_2_mask.tif.{pid}-3c501d20.tmp.tif.{pid}-7945d6cc.tmp.tif"]  # rrsis < 0.3's strips
    for t in temps:
        t.write_bytes(b"partial")
    lock = folder / ".run.rrsis.lock"
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "rrsis predict",
                                "started": "2026-12-08T00:34:00Z"}))
    return done, temps, lock


def test_a_plain_rerun_removes_a_killed_runs_leftovers_and_names_every_file_it_refuses(tmp_path, capsys, dead_pid):
    out = tmp_path / "o"
    out.mkdir()
    done, temps, lock = _leftovers(out, dead_pid)
    live = out / f".run_2.geojson.{os.getpid()}-0badcafe.tmp"  # a live run's: kept
    live.write_bytes(b"writing")
    write_scene(tmp_path / "scene.tif")
    rc = main(["predict", "--model", str(tmp_path / "no-model"), "--image", str(tmp_path / "scene.tif"),
               "--text", "a", "--text", "b", "--out", str(out / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "already exist(s)" in err
    assert all(p in err for p in done)  # the five files of expression 1, not only its overlay
    assert not any(t.exists() for t in temps) and not lock.exists()
    assert live.exists()


def test_overwrite_and_a_refusal_remove_dead_temporaries(tmp_path, dead_pid):
    done, temps, _ = _leftovers(tmp_path, dead_pid)
    paths = [*done, *output_paths(str(tmp_path / "run_2"), True).values()]
    with pytest.raises(FileExistsError, match="run_1_overlay.png.aux.xml"):
        check_outputs(paths)
    assert not any(t.exists() for t in temps)
    _leftovers(tmp_path, dead_pid)
    check_outputs(paths, overwrite=True)
    assert not any(t.exists() for t in temps)


def test_a_temporary_has_one_tmp_suffix(tiny_model, tmp_path, monkeypatch):
    import rrsis.scene.api as scene_api

    seen, real = [], scene_api.predict_strips

    def listing(*a, **k):
        for strip in real(*a, **k):
            seen.extend(os.listdir(tmp_path))  # while the mask's strips are being written
            yield strip

    monkeypatch.setattr(scene_api, "predict_strips", listing)
    write_scene(tmp_path / "scene.tif")
    scene_api.segment_scene(tiny_model, tmp_path / "scene.tif", "the red building", mode="tiles", tile=64,
                            out=tmp_path / "x")
    hidden = sorted({n for n in seen if n.startswith(".") and ".tmp" in n})
    assert hidden and all(re.fullmatch(r"\.x_mask\.tif\.\d+-[0-9a-f]{8}\.tmp\.tif", n) for n in hidden), hidden

