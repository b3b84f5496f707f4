"""A local HTTP server for the remote-raster tests: a folder served on 127.0.0.1 (a free port) with
byte ranges, as GDAL's ``/vsicurl/`` reads a file from a web server.

It runs in a child process (this file run as a script), not in a thread of the test's process:
rasterio holds the GIL while GDAL opens a dataset, so a server thread in the same interpreter never
answers and ``rasterio.open(url)`` waits for ever (seen: a deadlock in ``rasterio.open``).

Python's ``SimpleHTTPRequestHandler`` answers a ``Range`` header with the whole file (200), which
GDAL refuses to read piecewise; this handler answers ``bytes=a-b`` with 206 Partial Content, a
``Content-Range`` and ``Accept-Ranges: bytes``, and HEAD with the length. It counts the requests
and the body bytes it sends, so that a test can tell a windowed read from a download (``GET /__stats__``, not counted).
``ranges=False`` serves like a server without range support (the whole file, no ``Accept-Ranges``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["RangeServer"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # quiet: pytest shows stderr of failing tests
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        srv = self.server
        if self.path in ("/__stats__", "/__reset__"):
            self._stats(reset=self.path == "/__reset__")
            return
        with srv.lock:
            srv.requests.append((self.command, self.path, self.headers.get("Range")))
        path = srv.root / self.path.split("?", 1)[0].lstrip("/")
        if ".." in Path(self.path).parts or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        size, start, end = len(data), 0, len(data) - 1
        wanted = _RANGE.match(self.headers.get("Range", "").strip()) if srv.ranges else None
        if wanted:
            a, b = wanted.groups()
            start, end = (int(a), min(int(b or size - 1), size - 1)) if a else (max(size - int(b), 0), size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        if srv.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if body:
            self.wfile.write(data[start:end + 1])
            with srv.lock:
                srv.sent[path.name] = srv.sent.get(path.name, 0) + end - start + 1


    def _stats(self, reset: bool) -> None:
        srv = self.server
        with srv.lock:
            data = json.dumps({"requests": srv.requests, "sent": srv.sent}).encode()
            if reset:
                srv.requests, srv.sent = [], {}
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, ranges: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.ranges = Path(root), ranges
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str | None]] = []
        self.sent: dict[str, int] = {}


class RangeServer:
    """``with RangeServer(folder) as srv``: ``srv.url("a.tif")`` is ``http://127.0.0.1:<port>/a.tif``;
    ``srv.sent()[name]``: the body bytes sent of that file, ``srv.requests()``: (method, path, Range)."""

    def __init__(self, root: str | os.PathLike, ranges: bool = True) -> None:
        self.root, self.ranges = Path(root), ranges
        self._proc: subprocess.Popen | None = None
        self._base = ""

    def url(self, name: str = "") -> str:
        return f"{self._base}/{name}"

    def _get(self, path: str) -> dict:
        from urllib.request import urlopen

        with urlopen(self._base + path, timeout=10) as r:
            return json.loads(r.read())

    def requests(self) -> list[tuple[str, str, str | None]]:
        return [tuple(r) for r in self._get("/__stats__")["requests"]]

    def sent(self) -> dict[str, int]:
        return self._get("/__stats__")["sent"]

    def reset(self) -> None:
        self._get("/__reset__")

    def __enter__(self) -> RangeServer:
        args = [sys.executable, "-u", __file__, str(self.root)] + ([] if self.ranges else ["--no-ranges"])
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self._base = f"http://127.0.0.1:{int(self._proc.stdout.readline())}"
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.wait(10)
        self._proc.stdout.close()


def _serve(root: str, ranges: bool) -> None:
    server = _Server(Path(root), ranges)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1], "--no-ranges" not in sys.argv[2:])
