"""``rrsis app`` under load, on loopback only: 20 concurrent requests through the Gradio client all
answer, each with its own result, while no more than the concurrency limit run at once; a full queue
refuses the excess with the client's "queue is full" error instead of losing it.

The app is the page :func:`rrsis.app.page.build_app` builds, served in this process on 127.0.0.1 so
that the adapter can be wrapped with a counter of requests in flight. Latencies (p50/p95) are
printed and written to ``$RRSIS_TEST_ARTEFACTS/app_load.json``; they are not asserted.
"""

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import serve_app
from PIL import Image

from rrsis.app import inference
from rrsis.app.limits import Limits

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("gradio")
# gradio's queue statistics use pandas options that pandas 3 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


class InFlight:
    """Wraps the adapter; counts the calls running at once."""

    def __init__(self, run, delay=0.0):
        self.run, self.delay = run, delay
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0
        self.seconds = []

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        t0 = time.perf_counter()
        try:
            time.sleep(self.delay)
            return self.run(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1
                self.seconds.append(time.perf_counter() - t0)


def _images(tmp_path, n):
    paths = []
    for i in range(n):  # a different size per request: each answer names its own image
        arr = np.random.default_rng(i).integers(0, 256, (40 + i, 48, 3), dtype=np.uint8)
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths


def _client(url):
    return gradio_client.Client(url, verbose=False, download_files=False, analytics_enabled=False)


def test_twenty_concurrent_requests_all_answer_within_the_concurrency_limit(model, monkeypatch, tmp_path):
    n = 20
    counter = InFlight(inference.run)
    monkeypatch.setattr(inference, "run", counter)
    app, ws, url = serve_app(model, Limits(concurrency=2, queue_size=n + 4), monkeypatch, tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        client = _client(url)
        paths = _images(tmp_path, n)

        def one(i):
            t0 = time.perf_counter()
            out = client.predict(gradio_client.handle_file(str(paths[i])), f"the red building {i}",
                                 "global", 0.5, api_name="/segment")
            return out, time.perf_counter() - t0

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(one, range(n)))
    finally:
        app.close()
        ws.close()
    for i, ((gallery, table, files, message), _) in enumerate(answers):
        assert f"1 expression on a 48×{40 + i} image" in message, (i, message)
        assert len(gallery) == 1 and gallery[0]["caption"].startswith(f"the red building {i}: ")
        assert f"| the red building {i} |" in table and len(files) == 1
    assert counter.calls == n  # none lost, none run twice
    assert counter.most == 2  # the limit was reached and held
    lat = np.array([s for _, s in answers])
    stats = {"requests": n, "concurrency": 2, "p50_s": float(np.percentile(lat, 50)),
             "p95_s": float(np.percentile(lat, 95)), "max_s": float(lat.max()),
             "adapter_p50_s": float(np.percentile(counter.seconds, 50)),
             "max_in_flight": counter.most, "threads": torch.get_num_threads()}
    out = Path(os.environ.get("RRSIS_TEST_ARTEFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "app_load.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"\napp load: {stats}")


def test_a_full_queue_refuses_the_excess_and_loses_nothing(model, monkeypatch, tmp_path):
    n, queue_size = 10, 3
    counter = InFlight(inference.run, delay=0.6)  # slow enough that the queue fills
    monkeypatch.setattr(inference, "run", counter)
    app, ws, url = serve_app(model, Limits(concurrency=1, queue_size=queue_size), monkeypatch, tmp_path)
    (path,) = _images(tmp_path, 1)
    try:
        client = _client(url)

        def one(i):
            try:
                out = client.predict(gradio_client.handle_file(str(path)), "the ship", "global", 0.5,
                                     api_name="/segment")
                return "ok" if out[0] else f"no result: {out[3]}"
            except Exception as exc:  # noqa: BLE001  (the client's refusal is the expected answer)
                return f"{type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(one, range(n)))
        # The app still serves once the burst is over.
        assert one(n) == "ok"
    finally:
        app.close()
        ws.close()
    refused = [a for a in answers if a != "ok"]
    assert refused and all(a == "QueueError: Queue is full! Please try again." for a in refused), answers
    assert counter.calls == n - len(refused) + 1  # every accepted request ran exactly once
    assert counter.most == 1
