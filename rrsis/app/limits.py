"""The app's bounds on what one request may ask for, checked before any model work.

Every check raises :class:`~rrsis.app.inference.InputError` with a sentence the page shows as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PIL import Image

from .inference import InputError, tiff_tags

__all__ = ["Limits", "check_upload", "image_size", "parse_expressions"]


@dataclass(frozen=True)
class Limits:
    """Bounds of one request.

    Args:
        max_upload_mb: largest upload in MiB (also enforced by the server while receiving it).
        max_pixels: largest image, width × height.
        max_expressions: most expressions per request.
        max_expression_chars: longest expression in characters.
        concurrency: requests computed at once; the rest wait in the queue.
        queue_size: most requests waiting; more are refused with a "queue is full" message.
        max_stored_files: most files the server holds for the page (uploads, and the copies of
            results it serves); beyond it the oldest not in use by a request are removed.
        max_stored_mb: most MiB those files hold together; beyond it, the same.
        unused_upload_s: seconds after which a stored file no running request uses is removed
            (an upload never segmented, a result already downloaded).
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 25_000_000
    max_expressions: int = 8
    max_expression_chars: int = 200
    concurrency: int = 1
    queue_size: int = 32
    max_stored_files: int = 100
    max_stored_mb: float = 512.0
    unused_upload_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_pixels", "max_expressions", "max_expression_chars",
                     "concurrency", "queue_size", "max_stored_files", "max_stored_mb", "unused_upload_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

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
