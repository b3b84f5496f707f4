"""What the page does with a request, without the page: a temporary workspace, the checks, the one
call to :func:`rrsis.app.inference.run`, and the texts and files shown back."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import inference
from .inference import InputError
from .limits import Limits, check_area_file, check_upload, not_bounds, parse_area, parse_expressions
from .wording import collected_warnings, page_words

__all__ = ["Response", "Workspace", "area_request", "preview", "respond"]

logger = logging.getLogger(__name__)


# Seconds a finished request's result folder is kept whatever the limits: the server copies the
# files it serves from it after the response.
RESULT_GRACE_S = 60.0


def _files(folder: Path) -> list[tuple[float, int, Path]]:
    """``(mtime, size, path)`` of every file (or link) under ``folder``."""
    out = []
    for p in folder.rglob("*"):
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if p.is_file() or p.is_symlink():
            out.append((st.st_mtime, st.st_size, p))
    return out


class Workspace:
    """The one folder the app writes into (uploads, examples, results); removed by :meth:`close`.

    Args:
        keep: result folders kept (older ones are deleted as new requests arrive; the server has
            already copied what it serves).
    """

    def __init__(self, keep: int = 64) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rrsis-app-"))
        self.keep = keep
        self._lock = threading.Lock()
        self._count = 0
        self._in_use: dict[str, int] = {}  # uploads a running request reads: never pruned
        self._running = 0  # requests inside the model (computing())
        self._stop = threading.Event()
        for sub in ("uploads", "examples", "requests"):
            (self.root / sub).mkdir()

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def examples(self) -> Path:
        return self.root / "examples"

    def request_dir(self) -> Path:
        """A new empty folder for one request's files (the oldest beyond :attr:`keep` go, never
        one a running request uses: :meth:`request`)."""
        with self._lock:
            self._count += 1
            path = self.root / "requests" / f"{self._count:06d}-{uuid.uuid4().hex[:6]}"
            path.mkdir()
            old = [p for p in sorted((self.root / "requests").iterdir())[:-self.keep]
                   if str(p.resolve()) not in self._in_use]
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
        return path

    @contextlib.contextmanager
    def request(self) -> Iterator[Path]:
        """:meth:`request_dir`, marked in use (never pruned) while the block runs."""
        path = self.request_dir()  # new: within the grace no prune takes it before it is marked
        with self.using(path):
            yield path

    @contextlib.contextmanager
    def using(self, path) -> Iterator[None]:
        """Mark an upload as read by a running request, so :meth:`prune_uploads` keeps it."""
        key = str(Path(path).resolve()) if path else ""
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """Mark a request as inside the model, for :attr:`running`."""
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    @property
    def running(self) -> int:
        """Requests computing now (their threads cannot be interrupted: see :func:`rrsis.app.serve`)."""
        with self._lock:
            return self._running

    def prune_uploads(self, limits: Limits, now: float | None = None) -> list[Path]:
        """Bound what the server stores: the files under :attr:`uploads` (Gradio's uploads and the
        copies of results it serves) and the result folders under ``requests/`` together. Uploads
        no running request uses are removed when older than ``limits.unused_upload_s``; then,
        oldest first, uploads and whole result folders go while there are more than
        ``limits.max_stored_files`` files or more than ``limits.max_stored_mb`` in all. Never an
        upload or a result folder a running request uses, nor a result folder written in the last
        :data:`RESULT_GRACE_S` seconds (the server copies what it serves from it after the response).

        Returns:
            The files and result folders removed.
        """
        now = time.time() if now is None else now
        units = [(mtime, size, 1, p, False) for mtime, size, p in _files(self.uploads)]
        for d in (self.root / "requests").iterdir():
            inside = _files(d)
            with contextlib.suppress(OSError):
                newest = max([d.stat().st_mtime, *(f[0] for f in inside)])
                units.append((newest, sum(f[1] for f in inside), len(inside), d, True))
        units.sort(key=lambda u: u[0])
        with self._lock:
            busy = set(self._in_use)
        removed = []
        count, total = sum(u[2] for u in units), sum(u[1] for u in units)
        for mtime, size, n, p, folder in units:
            if str(p.resolve()) in busy or (folder and now - mtime < RESULT_GRACE_S):
                continue
            stale = not folder and now - mtime > limits.unused_upload_s
            if stale or count > limits.max_stored_files or total > limits.max_stored_bytes:
                try:
                    shutil.rmtree(p) if folder else p.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                removed.append(p)
                count, total = count - n, total - size
        for d in sorted((d for d in self.uploads.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()  # only empty folders go
        return removed

    def start_pruning(self, limits: Limits, every: float = 5.0) -> threading.Thread:
        """Prune the uploads every ``every`` seconds until :meth:`close` (uploads that no
        request ever names reach the server too, so the pages' events alone cannot bound them)."""
        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.prune_uploads(limits)
                except Exception:  # the sweeper must outlive one odd file
                    logger.exception("pruning uploads failed")

        t = threading.Thread(target=loop, name="rrsis-app-prune", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self._stop.set()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Response:
    """What the page shows after one request.

    Args:
        gallery: ``(overlay path, caption)`` per expression.
        table: markdown table of areas and times (empty on error).
        files: paths offered for download.
        message: one line: the time taken, or what was wrong.
        ok: whether results were produced.
    """

    gallery: list[tuple[str, str]] = field(default_factory=list)
    table: str = ""
    files: list[str] = field(default_factory=list)
    message: str = ""
    ok: bool = False


def _error(text: str) -> Response:
    return Response(message=f"**Cannot run this request:** {text}")


def _area_table(results: list[inference.Result], pixels: int, of: str = "image") -> str:
    geo = any(r.area_m2 is not None for r in results)
    head = f"| # | expression | area (px) | share of {of} |" + (" area (m²) |" if geo else "") + " time (s) |"
    rows = [head, "|---|---|---:|---:|" + ("---:|" if geo else "") + "---:|"]
    for i, r in enumerate(results, 1):
        text = r.text.replace("|", "\\|")
        m2 = (f" {r.area_m2:,.1f} |" if r.area_m2 is not None else " – |") if geo else ""
        rows.append(f"| {i} | {text} | {r.area_px} | {r.area_px / pixels:.1%} |{m2} {r.seconds:.2f} |")
    return "\n".join(rows)


def _reading_note(reading: str | None) -> str:
    """What the object mode read from the expression, when it read more than "one object"."""
    return "" if reading in (None, "1 object") else f" ({reading})"


def area_request(upload, text: str | None, crs: str | None, file, limits: Limits):
    """The page's area-of-interest fields, checked and made into one area.

    ``text`` is bounds ``minx,miny,maxx,maxy`` or GeoJSON text (:func:`~rrsis.app.limits.parse_area`),
    ``file`` an uploaded vector file (:func:`~rrsis.app.limits.check_area_file`), ``crs`` their CRS
    (``rrsis predict --aoi-crs``; empty: EPSG:4326 for text, a file's own). The area is built by
    :func:`rrsis.scene.aoi.area_of_interest`, as ``rrsis predict --aoi`` builds it before loading
    the model, so its checks and messages are the command line's.

    Returns:
        ``(area, notes)``: an :class:`~rrsis.scene.aoi.AreaOfInterest` (``None`` when the
        fields are empty) and the
        warnings its reading gave (a repaired polygon, points left out), one sentence each.

    Raises:
        InputError: what is wrong with the fields, or with the area they give.
    """
    value = parse_area(text, limits)
    path = check_area_file(file, limits)
    crs = str(crs or "").strip()
    if value is not None and path is not None:
        raise InputError("the area of interest is given twice, as text and as a file: keep one and clear "
                         "the other")
    if value is None and path is None:
        if crs:
            raise InputError(f"the area CRS ({crs}) is the CRS of an area of interest, and none is given: "
                             "give the area, or clear the area CRS")
        return None, []
    if not inference.is_georeferenced(upload):
        raise InputError(f"{Path(upload).name} is a plain image without georeference, so an area of "
                         "interest cannot be placed on it: clear the area fields, or upload the scene "
                         "as a GeoTIFF")
    try:
        from ..scene.aoi import area_of_interest

        with collected_warnings() as caught:
            area = area_of_interest(value if value is not None else path, crs or None)
    except ImportError as exc:  # the geo extra, named in the message
        raise InputError(str(exc)) from None
    except FileNotFoundError:  # text that is neither bounds nor an existing file (never a path here)
        raise InputError(not_bounds(str(value))) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return area, caught


def respond(model, workspace: Workspace, limits: Limits, upload, expressions, mode, threshold,
            bands: str = "", crs: str = "", area: str = "", area_crs: str = "", area_file=None) -> Response:
    """Check one request, run it through the adapter, and describe the results.

    ``area``, ``area_crs`` and ``area_file`` are the area-of-interest fields (:func:`area_request`).
    Bad input and failures come back as a :class:`Response` with a message, never as an exception,
    so the page always answers and the server keeps serving.
    """
    t0 = time.perf_counter()

    def words(text) -> str:  # the upload by its own name, the page's fields by theirs
        return page_words(text, workspace.root)

    try:
        texts = parse_expressions(expressions, limits)
        w, h = check_upload(upload, limits)
        threshold = float(threshold)
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
        # The warnings rrsis predict prints (an expression the vocabulary does not know, the bands
        # an undeclared raster is read with) are the page's notes, not only the server log's.
        with workspace.using(upload), workspace.using(area_file), workspace.computing(), \
                workspace.request() as workdir, collected_warnings() as notes:
            aoi, _ = area_request(upload, area, area_crs, area_file, limits)  # its notes: in notes too
            results = inference.run(model, upload, texts, mode=str(mode), threshold=threshold,
                                    workdir=workdir, bands=str(bands or "").strip() or None,
                                    crs=str(crs or "").strip() or None, aoi=aoi)
    except InputError as exc:
        return _error(words(exc))
    except ValueError as exc:  # the model's own input checks
        return _error(words(exc))
    except Exception as exc:  # the page shows a line; the log keeps the traceback
        logger.exception("request failed")
        return _error(words(f"the model failed on this input ({type(exc).__name__}: {exc}); the app is "
                            "still running, try another image or expression"))
    seconds = time.perf_counter() - t0
    files: list[str] = []
    for r in results:
        files += [str(p) for p in (r.mask_png, r.mask_tif, r.geojson) if p is not None]
    gallery = [(str(r.overlay_png), f"{r.text}: {r.area_px} px{_reading_note(r.reading)}") for r in results]
    n = len(results)
    ran = results[0].mode if results else mode  # what auto resolved to
    label = f"{mode} mode" if ran in ("", mode) else f"{mode} mode ({ran})"
    window = results[0].window if results else None
    inside = ""
    pixels, of = w * h, "image"
    if window is not None:
        r0, c0, r1, c1 = window
        inside = (f", inside the area of interest: {c1 - c0}×{r1 - r0} pixels read of {w}×{h} (rows "
                  f"{r0}–{r1}, columns {c0}–{c1})")
        pixels, of = (r1 - r0) * (c1 - c0), "area's window"
    message = (f"{n} expression{'s' if n > 1 else ''} on a {w}×{h} image{inside}, {label}, threshold "
               f"{threshold:g}: {seconds:.2f} s in all")
    notes = ([results[0].values] if results and results[0].values else []) + notes
    message += "".join(f"\n\nNote: {' '.join(words(note).split())}" for note in notes)
    return Response(gallery, _area_table(results, pixels, of), files, message, ok=True)


def preview(upload, limits: Limits, side: int = 512) -> tuple[np.ndarray | None, str]:
    """A small RGB view of an upload and a message (empty when the upload is fine)."""
    if not upload:
        return None, ""
    try:
        w, h = check_upload(upload, limits)
        with Image.open(upload) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            return np.asarray(im), f"{Path(upload).name}: {w}×{h} pixels"
    except InputError as exc:
        return None, f"**Cannot use this file:** {exc}"
    except (OSError, SyntaxError, ValueError) as exc:
        return None, f"**No preview** ({exc}); the file may still run"
