"""Issue 30, the app: what the server stores for the page (uploads and served copies) is bounded
in count and bytes, and uploads no request uses are removed."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import serve_app
from PIL import Image

import rrsis
from rrsis.app.limits import Limits
from rrsis.app.session import Workspace, respond


def _store(ws, name, size, age=0.0):
    """A file as Gradio's upload route leaves it: ``uploads/<hash>/<name>``, ``age`` seconds old."""
    folder = ws.uploads / f"h{name}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(b"x" * size)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def _left(ws):
    return sorted(p.name for p in ws.uploads.rglob("*") if p.is_file())


def test_stored_files_are_bounded_in_count_oldest_first():
    with Workspace() as ws:
        for i in range(6):
            _store(ws, f"u{i}.png", 10, age=60 - i)
        removed = ws.prune_uploads(Limits(max_stored_files=3))
        assert _left(ws) == ["u3.png", "u4.png", "u5.png"] and len(removed) == 3
        assert sorted(p.name for p in ws.uploads.iterdir()) == ["hu3.png", "hu4.png", "hu5.png"]  # no empty folders


def test_stored_files_are_bounded_in_bytes():
    mib = 1024 * 1024
    with Workspace() as ws:
        for i in range(5):
            _store(ws, f"u{i}.png", 2 * mib, age=60 - i)
        ws.prune_uploads(Limits(max_upload_mb=2, max_stored_mb=5))
        assert _left(ws) == ["u3.png", "u4.png"]  # 4 MiB <= 5 MiB


def test_unused_uploads_are_removed_and_those_in_use_kept():
    with Workspace() as ws:
        old = _store(ws, "old.png", 10, age=700)
        busy = _store(ws, "busy.png", 10, age=700)
        _store(ws, "new.png", 10, age=5)
        with ws.using(busy):
            ws.prune_uploads(Limits(unused_upload_s=600, max_stored_files=1))
            assert _left(ws) == ["busy.png"]  # the old one went by age, the new one by count
        assert not old.exists()
        ws.prune_uploads(Limits(unused_upload_s=600))
        assert _left(ws) == []


def _result(folder, name, size, age):
    path = folder / name
    path.write_bytes(b"x" * size)
    t = time.time() - age
    os.utime(path, (t, t))
    os.utime(folder, (t, t))
    return path


def test_result_folders_count_in_the_limits_oldest_first_never_a_running_one():
    mib = 1024 * 1024
    with Workspace() as ws:
        for i in range(3):
            _store(ws, f"u{i}.png", 10, age=300 - i)
        old = ws.request_dir()
        _result(old, "a_mask.png", 10, age=1000)
        _result(old, "a.geojson", 10, age=1000)
        fresh = ws.request_dir()  # its response was just sent: the server still copies from it
        _result(fresh, "c_mask.png", 10, age=1)
        with ws.request() as running:
            _result(running, "b_mask.png", 10, age=2000)  # the oldest file, but its request still runs
            removed = ws.prune_uploads(Limits(max_stored_files=4))  # 7 files stored
            assert removed == [old, ws.uploads / "hu0.png" / "u0.png"]
            assert _left(ws) == ["u1.png", "u2.png"] and running.is_dir() and fresh.is_dir()
            _result(running, "b.tif", 3 * mib, age=2000)
            ws.prune_uploads(Limits(max_upload_mb=2, max_stored_mb=2))  # bytes: the uploads go first
            assert _left(ws) == [] and running.is_dir() and fresh.is_dir()
        ws.prune_uploads(Limits(max_upload_mb=2, max_stored_mb=2))
        assert not running.exists() and fresh.is_dir()  # its request is done: over the bound, it goes
        assert sorted((ws.root / "requests").iterdir()) == [fresh]


def test_limits_refuse_bad_storage_bounds():
    with pytest.raises(ValueError, match="max_stored_files must be positive"):
        Limits(max_stored_files=0)
    with pytest.raises(ValueError, match="max_stored_mb .* must be at least max_upload_mb"):
        Limits(max_upload_mb=50, max_stored_mb=10)


def test_a_request_keeps_its_upload_while_it_runs(tiny_tokenizer, tmp_path, monkeypatch):
    from rrsis.app import inference

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    with Workspace() as ws:
        up = _store(ws, "scene.png", 0, age=10_000)
        Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(up)
        os.utime(up, (time.time() - 10_000,) * 2)
        real = inference.run

        def pruning_run(*a, **k):  # the sweeper runs in the middle of the request
            ws.prune_uploads(Limits(unused_upload_s=1))
            return real(*a, **k)

        monkeypatch.setattr(inference, "run", pruning_run)
        r = respond(model, ws, Limits(), str(up), "the red building", "global", 0.5)
        assert r.ok, r.message
        ws.prune_uploads(Limits(unused_upload_s=1))
        assert not up.exists()


def test_uploads_no_request_names_are_bounded_by_the_server(tiny_tokenizer, tmp_path, monkeypatch):
    """Bare uploads to the server's upload route (never followed by a request) stay bounded."""
    pytest.importorskip("gradio")
    httpx = pytest.importorskip("httpx")
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    limits = Limits(max_stored_files=3, max_upload_mb=1, max_stored_mb=1.5)
    app, ws, url = serve_app(model, limits, monkeypatch, tmp_path)
    try:
        rng = np.random.default_rng(0)
        for i in range(8):
            blob = rng.integers(0, 256, 400_000, dtype=np.uint8).tobytes()
            r = httpx.post(f"{url}gradio_api/upload",
                           files={"files": (f"u{i}.bin", blob)}, timeout=30)
            assert r.status_code == 200, r.text
        deadline = time.time() + 20
        while time.time() < deadline:
            files = [p for p in Path(ws.uploads).rglob("*") if p.is_file()]
            if len(files) <= 3 and sum(p.stat().st_size for p in files) <= 1.5 * 1024 * 1024:
                break
            time.sleep(0.5)
        files = [p for p in Path(ws.uploads).rglob("*") if p.is_file()]
        assert len(files) <= 3 and sum(p.stat().st_size for p in files) <= 1.5 * 1024 * 1024
    finally:
        app.close()
        ws.close()
