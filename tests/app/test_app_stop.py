"""``rrsis app`` starting and stopping: a port in use is one line naming it and ``--port``; Ctrl-C
while a request computes exits 0 with the workspace deleted (before: SIGABRT)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _fixtures import REPO
from PIL import Image

from rrsis.cli import main

TEXT = "the largest building"


def test_a_port_in_use_is_one_line_naming_it(saved_model, capsys):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--model", str(saved_model), "--port", str(port), "--examples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rrsis app: error: port {port} is already in use on 127.0.0.1 (another rrsis app or "
                   f"server?): stop it, or choose another port with --port, e.g. --port {port + 1}")


# A request that stays inside torch (the GIL released) until the process ends: what a large scene
# does on a CPU. It tells the test it has started by creating the file named in argv[1].
SERVER = """
import sys, torch
import rrsis.scene

def computing(*args, **kwargs):
    open(sys.argv[1], "w").close()
    x = torch.rand(400, 400)
    while True:
        x = torch.tanh(x @ x)

rrsis.scene.segment_scene = computing
from rrsis.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_ctrl_c_while_a_request_computes_exits_cleanly(saved_model, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    pytest.importorskip("gradio")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = tmp_path / "started"
    Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(tmp_path / "a.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(started), "app", "--model", str(saved_model), "--port", str(port),
             "--examples", "0"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's foreground job
    try:
        deadline = time.time() + 120
        while "Running on" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
        workspace = Path(log.read_text().split("workspace ")[1].split()[0])
        assert workspace.is_dir()
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        threading.Thread(target=lambda: _quietly(client.predict, gradio_client.handle_file(str(tmp_path / "a.png")),
                                                 TEXT, api_name="/segment"), daemon=True).start()
        while not started.exists():
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 0, text  # before: -6 (SIGABRT), "terminate called without an active exception"
    assert "terminate called" not in text and "1 request still computing abandoned" in text
    assert not workspace.exists()


def _quietly(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except Exception:  # noqa: BLE001  (the server went away mid-request: what the test does)
        pass
