"""Reading images, masks, JSON and plain-data pickles, with errors that name the file."""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Sequence
from struct import error as struct_error
from typing import Any

import numpy as np
from PIL import Image

from .tiff import read_tiff_info, read_uncompressed_tiff

__all__ = [
    "Scale",
    "image_size",
    "load_json",
    "load_plain_pickle",
    "load_raster",
    "read_image",
    "read_mask",
]

Scale = str | float | None

_TIFF_SUFFIXES = (".tif", ".tiff")


def _open_pil(path: str) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL raises these for unreadable files
        raise ValueError(f"{path}: cannot read image ({exc})") from exc


def load_raster(path: str, palette_to_rgb: bool = True) -> np.ndarray:
    """Read all bands of an image at its own bit depth.

    Uncompressed TIFFs go through a numpy reader (exact for any band count and depth); everything
    else through PIL, and a TIFF that PIL would decode with fewer bands or bits raises.

    Args:
        path: image file.
        palette_to_rgb: expand palette ("P") images to RGB; masks keep their palette indices.

    Returns:
        array ``[H, W, C]`` with the file's dtype (uint8, uint16, int16, float32, ...).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    info = None
    if path.lower().endswith(_TIFF_SUFFIXES):
        try:
            info = read_tiff_info(path)
        except (OSError, ValueError, struct_error) as exc:
            raise ValueError(f"{path}: cannot read TIFF header ({exc})") from exc
        if info is not None and info.numpy_readable:
            return read_uncompressed_tiff(path, info)
    with _open_pil(path) as im:
        try:
            if im.mode == "P" and palette_to_rgb:
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode == "CMYK" or im.mode.startswith("YCbCr"):
                im = im.convert("RGB")
            arr = np.asarray(im)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot decode image ({exc})") from exc
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if info is not None and (arr.shape[2] != info.samples or arr.dtype.itemsize * 8 < info.bits):
        raise ValueError(
            f"{path}: compressed {info.samples}-band {info.bits}-bit TIFF that PIL decodes as "
            f"{arr.shape[2]}-band {arr.dtype}; save it uncompressed (or as separate 8-bit files)"
        )
    return arr


def read_image(path: str, bands: Sequence[int] = (0, 1, 2), scale: Scale = None) -> np.ndarray:
    """Read an image as float32 in [0, 1] (for 8-bit data), with explicit band choice and scaling.

    Args:
        path: image file (8/16-bit, any band count; see :func:`load_raster`).
        bands: band indices to keep, in order. A one-band image is first repeated to three
            bands, so grayscale works with the default.
        scale: how to map values to floats. ``None``: uint8 / 255, floats unchanged, other
            integer types raise (16-bit data has no single right answer). ``"dtype"``: divide by
            the dtype's maximum. ``"max"``: divide by the image maximum. ``"minmax"``: map the
            image's [min, max] to [0, 1]. A number: divide by it. Statistics are taken over
            the selected bands together, so colour ratios survive.

    Returns:
        array ``[H, W, len(bands)]``, float32.
    """
    arr = load_raster(path)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    bands = tuple(int(b) for b in bands)
    if not bands:
        raise ValueError(f"{path}: bands must name at least one band")
    bad = [b for b in bands if not -arr.shape[2] <= b < arr.shape[2]]
    if bad:
        raise ValueError(
            f"{path}: bands {bad} out of range; the image has {arr.shape[2]} band(s)"
        )
    arr = arr[:, :, list(bands)]
    return _scale(arr, scale, path)


def _scale(arr: np.ndarray, scale: Scale, path: str) -> np.ndarray:
    if scale is None:
        if arr.dtype == np.uint8:
            return arr.astype(np.float32) / 255.0
        if arr.dtype.kind == "f":
            return arr.astype(np.float32)
        raise ValueError(
            f"{path}: {arr.dtype} image needs an explicit scale= "
            "('dtype', 'max', 'minmax' or a divisor)"
        )
    x = arr.astype(np.float64)
    if isinstance(scale, str):
        if scale == "dtype":
            if arr.dtype.kind not in "ui":
                raise ValueError(f"{path}: scale='dtype' needs integer data, got {arr.dtype}")
            x = x / float(np.iinfo(arr.dtype).max)
        elif scale == "max":
            top = x.max() if x.size else 0.0
            x = x / top if top > 0 else np.zeros_like(x)
        elif scale == "minmax":
            lo, hi = (x.min(), x.max()) if x.size else (0.0, 0.0)
            x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        else:
            raise ValueError(
                f"unknown scale {scale!r}; use None, 'dtype', 'max', 'minmax' or a number"
            )
    else:
        divisor = float(scale)
        if divisor <= 0:
            raise ValueError(f"scale divisor must be positive, got {scale!r}")
        x = x / divisor
    return x.astype(np.float32)


def read_mask(path: str, threshold: float = 50) -> np.ndarray:
    """Read a mask file as foreground = first band ``> threshold``.

    Args:
        path: mask image (any depth; palette images keep their indices).
        threshold: values above it are foreground (RefSegRS: 50).

    Returns:
        bool array ``[H, W]``.
    """
    arr = load_raster(path, palette_to_rgb=False)
    return arr[:, :, 0] > threshold


def image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image, from its header only.

    Args:
        path: image file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    if path.lower().endswith(_TIFF_SUFFIXES):
        try:
            info = read_tiff_info(path)
        except (OSError, ValueError, struct_error) as exc:
            raise ValueError(f"{path}: cannot read TIFF header ({exc})") from exc
        if info is not None:
            return info.height, info.width
    with _open_pil(path) as im:
        return im.height, im.width


def load_json(path: str) -> Any:
    """Load a JSON file; malformed JSON raises ``ValueError`` naming the file and position.

    Args:
        path: the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that builds only containers, numbers, strings and bytes.

    Every class or function lookup is refused, so a pickle cannot run code or build objects.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_plain_pickle(path: str, encoding: str = "utf-8") -> Any:
    """Load a pickle that must hold only plain data (dict, list, tuple, str, bytes, numbers).

    Every class or function reference is refused, which also refuses sets and Python 3
    ``bytes`` in protocols 0-2 (both are stored as calls).

    Args:
        path: the file (e.g. ``refs(unc).p``).
        encoding: how Python 2 ``str`` objects are decoded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _PlainDataUnpickler(io.BytesIO(data), encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path}: the pickle holds more than plain data ({exc}); only dicts, lists, tuples, "
            "strings, bytes and numbers are accepted"
        ) from exc
    except (EOFError, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed pickle ({type(exc).__name__}: {exc})") from exc

