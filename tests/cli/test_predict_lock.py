"""One run at a time per output: ``OUT/.rrsis.lock`` for a region, ``.PREFIX.rrsis.lock`` for one
scene (``rrsis predict`` and the Python API), taken over from a dead run; SIGTERM cleaned up as
Ctrl-C is, exit 143."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("rasterio")
from _fixtures import write_small_geotiff

import rrsis
from rrsis._lock import LOCK_NAME, OutputInUseError, lock_path, output_lock, run_lock
from rrsis.cli import main


def _hold(lock, pid, host=None):
    """A lock file as another run writes it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "host": host or socket.gethostname(), "command": "rrsis predict",
            "started": "2026-01-02T03:04:05Z"}
    lock.write_text(json.dumps(info))
    return info


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _refusal(out, lock, pid, host=None):
    return (f"{out} is in use by rrsis predict (pid {pid} on {host or socket.gethostname()} since "
            f"2026-01-02T03:04:05Z); wait for it, or remove {lock} if that process is gone")


def test_a_live_holder_is_refused_a_dead_one_taken_over_and_the_lock_always_removed(tmp_path):
    out = tmp_path / "region"
    lock = lock_path(out, folder=True)
    assert lock == out / LOCK_NAME and lock_path(tmp_path / "a" / "tank", folder=False) == tmp_path / "a" / ".tank.rrsis.lock"
    live = os.getppid()  # a running process that is not this one
    _hold(lock, live)
    with pytest.raises(OutputInUseError) as err, output_lock(out, folder=True):
        pass
    assert str(err.value) == _refusal(out, lock, live)
    assert json.loads(lock.read_text())["pid"] == live  # another run's lock is never removed
    dead = _dead_pid()
    _hold(lock, dead, host="elsewhere")  # another host's process cannot be asked: refused
    with pytest.raises(OutputInUseError, match="on elsewhere since"), output_lock(out, folder=True):
        pass
    _hold(lock, dead)
    with pytest.warns(UserWarning, match=rf"took over {lock}: left by rrsis predict \(pid {dead} since "), \
            output_lock(out, folder=True, command="rrsis test") as held:
        info = json.loads(held.read_text())
        assert (info["pid"], info["host"], info["command"]) == (os.getpid(), socket.gethostname(), "rrsis test")
        with output_lock(out, folder=True):  # the same process again (the CLI, then the API): shared
            pass
        assert held.exists()
    assert not lock.exists() and not list(out.iterdir())
    with pytest.raises(ZeroDivisionError), output_lock(out, folder=True):
        raise ZeroDivisionError
    assert not lock.exists()
    with run_lock(out, 0, 1):
        assert lock.exists()
    assert not lock.exists()


def test_another_thread_of_the_same_process_is_refused(tmp_path):
    out = tmp_path / "region"
    errors = []

    def second():
        try:
            with output_lock(out, folder=True):
                errors.append(None)
        except OutputInUseError as exc:
            errors.append(str(exc))

    with output_lock(out, folder=True, command="rrsis first") as held:
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
        assert held.exists() and json.loads(held.read_text())["command"] == "rrsis first"
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].startswith(f"{out} is in use by rrsis first (pid {os.getpid()} on {socket.gethostname()} since ")
    assert not lock_path(out, folder=True).exists()


@pytest.mark.parametrize("region", [True, False])
def test_predict_is_refused_at_once_while_another_run_uses_the_outputs(saved_model, tmp_path, capsys, region):
    (tmp_path / "tiles").mkdir()
    write_small_geotiff(tmp_path / "tiles" / "a.tif")
    write_small_geotiff(tmp_path / "tiles" / "b.tif", seed=1)
    out = tmp_path / ("region" if region else "tank")
    image = str(tmp_path / "tiles" / ("*.tif" if region else "a.tif"))
    lock = lock_path(out, folder=region)
    live = os.getppid()
    _hold(lock, live)
    argv = ["predict", "--model", str(saved_model), "--image", image, "--text", "the ship", "--out", str(out),
            "--mode", "global", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"rrsis predict: error: {_refusal(out, lock, live)}"
    # refused before the model loads: nothing written beside the other run's lock
    assert sorted(p.name for p in lock.parent.iterdir()) == ([LOCK_NAME] if region else [lock.name, "tiles"])
    _hold(lock, _dead_pid())  # its run was killed: this one takes over, says so, and finishes
    assert main(argv) == 0
    assert f"rrsis predict: note: took over {lock}" in capsys.readouterr().err
    assert not lock.exists()
    assert (out / "a" / "done.json").is_file() if region else (tmp_path / "tank_mask.tif").is_file()


def test_the_python_api_holds_the_same_locks(tiny_model, tmp_path):
    write_small_geotiff(tmp_path / "a.tif")
    live = os.getppid()
    _hold(lock_path(tmp_path / "r", folder=True), live)
    with pytest.raises(OutputInUseError, match=r"r is in use by rrsis predict \(pid"):
        rrsis.segment_scenes(tiny_model, [str(tmp_path / "a.tif")], "the ship", out=tmp_path / "r", mode="global")
    assert not (tmp_path / "r" / "a").exists()
    _hold(lock_path(tmp_path / "t", folder=False), live)
    with pytest.raises(OutputInUseError, match=r"t is in use by rrsis predict"):
        rrsis.segment_scene(tiny_model, tmp_path / "a.tif", "the ship", out=tmp_path / "t", mode="global")
    assert not (tmp_path / "t_mask.tif").exists()
    s = rrsis.segment_scenes(tiny_model, [str(tmp_path / "a.tif")], "the ship", out=tmp_path / "r2", mode="global")
    assert s.done == ["a"] and LOCK_NAME not in os.listdir(tmp_path / "r2")
    assert not [p for p in tmp_path.rglob("*.rrsis.lock") if p.parent.name in ("r2", "a")]


def test_sigterm_is_cleaned_up_as_ctrl_c_and_exits_143(monkeypatch, tmp_path, capsys):
    import rrsis.cli.predict as predict

    seen = {}

    def fake_run(args):
        with output_lock(tmp_path / "region", folder=True):
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # what Slurm, Airflow or systemd send
                time.sleep(30)
            finally:
                seen["cleaned"] = (tmp_path / "region" / LOCK_NAME).exists()
        return 0

    monkeypatch.setattr(predict, "run", fake_run)
    monkeypatch.setattr(predict, "check_early", lambda args: None)
    before = signal.getsignal(signal.SIGTERM)
    argv = ["predict", "--model", "m", "--image", "x.tif", "--text", "a", "--out", "o"]
    assert main(argv) == 143  # 128 + SIGTERM
    assert capsys.readouterr().err == "rrsis predict: terminated\n"
    assert seen == {"cleaned": True} and not (tmp_path / "region" / LOCK_NAME).exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the CLI's only while it runs
