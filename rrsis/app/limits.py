"""The app's bounds on what one request may ask for, checked before any model work.

Every check raises :class:`~rrsis.app.inference.InputError` with a sentence the page shows as it is.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

from PIL import Image

from .._config import check_workers
from .inference import InputError, tiff_tags

__all__ = ["AREA_FILE_TYPES", "Limits", "check_area_file", "check_upload", "image_size", "not_bounds",
           "parse_area", "parse_expressions"]

# Vector files the page takes as an area of interest (a shapefile comes zipped: one upload).
AREA_FILE_TYPES = (".geojson", ".json", ".gpkg", ".zip")


@dataclass(frozen=True)
class Limits:
    """Bounds of one request.

    Args:
        max_upload_mb: largest upload in MiB (also enforced by the server while receiving it).
        max_pixels: largest image, width × height.
        max_expressions: most expressions per request.
        max_expression_chars: longest expression in characters.
        max_area_chars: longest area of interest typed or pasted (bounds or GeoJSON text), in
            characters.
        concurrency: requests computed at once; the rest wait in the queue.
        queue_size: most requests waiting; more are refused with a "queue is full" message.
        max_stored_files: most files the server holds for the page (uploads, the copies of
            results it serves, the requests' result folders); beyond it the oldest not in use by
            a request are removed (:meth:`rrsis.app.session.Workspace.prune_uploads`).
        max_stored_mb: most MiB those files hold together; beyond it, the same.
        unused_upload_s: seconds after which a stored file no running request uses is removed
            (an upload never segmented, a result already downloaded).
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 25_000_000
    max_expressions: int = 8
    max_expression_chars: int = 200
    max_area_chars: int = 50_000
    concurrency: int = 1
    queue_size: int = 32
    max_stored_files: int = 100
    max_stored_mb: float = 512.0
    unused_upload_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_pixels", "max_expressions", "max_expression_chars",
                     "max_area_chars", "concurrency", "queue_size", "max_stored_files", "max_stored_mb", "unused_upload_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

        check_workers("concurrency", self.concurrency, low=1)
        if self.max_stored_mb < self.max_upload_mb:
            raise ValueError(f"max_stored_mb ({self.max_stored_mb:g}) must be at least max_upload_mb "
                             f"({self.max_upload_mb:g}): one upload must fit; raise it (rrsis app --max-stored-mb)")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_stored_bytes(self) -> int:
        return int(self.max_stored_mb * 1024 * 1024)


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header (no pixels decoded)."""
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError:
        raise InputError("the image is too large: its header announces more pixels than PIL "
                         "will decode") from None
    except (OSError, SyntaxError, ValueError):
        pass
    tags = tiff_tags(path)  # a TIFF PIL cannot decode (e.g. 4 bands of 16 bits): its header
    if tags and 256 in tags and 257 in tags:  # ImageWidth, ImageLength
        return int(tags[256]), int(tags[257])
    raise InputError(f"{os.path.basename(path)} is not an image the app can read: upload a PNG, "
                     "JPEG or TIFF")


def check_upload(path: str | os.PathLike | None, limits: Limits) -> tuple[int, int]:
    """Check an uploaded file against ``limits``; returns its ``(width, height)``."""
    if not path:
        raise InputError("no image: upload one (PNG, JPEG or TIFF) or pick an example scene")
    if not os.path.isfile(path):
        raise InputError("the uploaded file is gone from the server; upload it again")
    size = os.path.getsize(path)
    if size > limits.max_upload_bytes:
        raise InputError(f"the file is {_mb(size)}; the limit is {_mb(limits.max_upload_bytes)}")
    w, h = image_size(path)
    if w * h > limits.max_pixels:
        raise InputError(f"the image is too large: {w}×{h} = {w * h:,} pixels; the limit is "
                         f"{limits.max_pixels:,} pixels")
    if w == 0 or h == 0:
        raise InputError(f"the image is empty ({w}×{h} pixels)")
    return w, h


def parse_expressions(text: str | None, limits: Limits) -> list[str]:
    """The expressions typed in the page, one per line (blank lines ignored), checked."""
    lines = [ln.strip() for ln in (text or "").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError("no expression: type what to find, e.g. \"the red building\" (one per line)")
    if len(lines) > limits.max_expressions:
        raise InputError(f"{len(lines)} expressions; the limit is {limits.max_expressions} per request")
    for i, ln in enumerate(lines, 1):
        if len(ln) > limits.max_expression_chars:
            raise InputError(f"expression {i} is {len(ln)} characters long; the limit is "
                             f"{limits.max_expression_chars}")
    return lines


def parse_area(text: str | None, limits: Limits) -> str | dict | None:
    """The area of interest typed or pasted in the page, for :func:`rrsis.segment_scene`'s
    ``aoi=``: GeoJSON text (starting with ``{``) as a mapping, anything else as the bounds text
    ``"minx,miny,maxx,maxy"`` it should be (:func:`rrsis.scene.aoi.area_of_interest` parses and
    checks both); ``None`` when empty. Never a path: the field names no file on the server."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > limits.max_area_chars:
        raise InputError(f"the area of interest is {len(text):,} characters long; the limit is "
                         f"{limits.max_area_chars:,} (a larger area: upload it as a file)")
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"the area of interest is not GeoJSON text: {exc.msg} (line {exc.lineno}, "
                             f"column {exc.colno})") from None
        except RecursionError:
            raise InputError("the area of interest is not GeoJSON text: nested too deeply") from None
    if os.path.lexists(text):  # area_of_interest would read a file of that name
        raise InputError(not_bounds(text))
    return text


def not_bounds(text: str) -> str:
    """The sentence for area text that is neither bounds nor GeoJSON."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return (f"area of interest {shown!r}: not bounds minx,miny,maxx,maxy (four numbers, e.g. "
            "-70.30,43.62,-70.22,43.68) nor GeoJSON text (a geometry, Feature or FeatureCollection, "
            "starting with {); their CRS goes in the Area CRS field")


def check_area_file(path: str | os.PathLike | None, limits: Limits) -> str | None:
    """Check an uploaded vector file (:data:`AREA_FILE_TYPES`); returns its path, or ``None``."""
    if not path:
        return None
    name = os.path.basename(path)
    if not name.lower().endswith(AREA_FILE_TYPES):
        raise InputError(f"{name}: an area of interest file is a GeoJSON (.geojson, .json), a GeoPackage "
                         "(.gpkg) or a zipped shapefile (.zip)")
    if not os.path.isfile(path):
        raise InputError("the uploaded area file is gone from the server; upload it again")
    size = os.path.getsize(path)
    if size > limits.max_upload_bytes:
        raise InputError(f"the area file is {_mb(size)}; the limit is {_mb(limits.max_upload_bytes)}")
    if name.lower().endswith(".zip"):
        # GDAL reads inside the archive: what it holds is bounded like an upload, not just the archive.
        try:
            with zipfile.ZipFile(path) as z:
                inside = sum(i.file_size for i in z.infolist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{name}: not a zip archive ({exc})") from None
        if inside > limits.max_upload_bytes:
            raise InputError(f"{name} holds {_mb(inside)} unzipped; the limit is {_mb(limits.max_upload_bytes)}")
    return os.fspath(path)
