"""Reading images and masks, with errors that name the file (JSON and pickles: :mod:`.files`)."""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps

from .band_names import named_bands, names_note, unnamed_read_note
from .bands import Bands, Scale, colours_at, nodata_mask, parse_bands, scale_values, select_bands
from .files import load_json, load_plain_pickle
from .tiff import _tiff_header, read_tiff_rasterio, read_uncompressed_tiff

__all__ = [
    "MAX_PIXELS", "Bands", "ImageSource", "Scale", "check_pixels", "exif_orientation", "image_size",
    "load_json", "load_plain_pickle", "load_raster", "nodata_mask", "parse_bands", "read_bands",
    "read_image", "read_mask", "scale_values", "select_bands",
]

ImageSource = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor

# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_PIL_MODES_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")
# Band counts of an image array in either layout: [C, H, W] (torch's and torchvision's) is
# recognised by a first axis of one of these and a last axis of none of them.
_CHANNEL_COUNTS = (1, 3, 4)
# Largest image read whole into memory by model.predict and a plain-image scene (about 0.5 GB
# as float32 RGB, a few times that at the peak of reading and resizing). Rasters read through
# rasterio are read window by window and are not bounded by it.
MAX_PIXELS = 40_000_000


def check_pixels(height: int, width: int, max_pixels: int | None, where: str = "image") -> None:
    """Refuse an image of more than ``max_pixels`` pixels (``None``: no bound), before decoding.

    Raises:
        ValueError: naming the size, the bound, the override and the windowed path.
    """
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    n = int(height) * int(width)
    if n > max_pixels:
        raise ValueError(
            f"{where}: {width}x{height} = {n:,} pixels is over max_pixels={max_pixels:,} (the whole "
            f"image is decoded into memory, about {n * 12 / 1e9:.1f} GB as float); raise it with "
            "max_pixels= (rrsis predict --max-pixels) if the machine has the memory, or segment it "
            "as a scene read window by window (a GeoTIFF through rrsis.segment_scene or rrsis "
            "predict, memory bounded by the windows)"
        )


class LoadedImage(NamedTuple):
    """An image source as :func:`_load` reads it: ``arr`` ``[H, W, C]`` at its own depth, whether
    its last band is ``alpha``, its ``name``, the bands a TIFF declares red, green and blue
    (``rgb``), its declared ``nodata`` value (``TiffInfo.nodata``; ``None``: not a TIFF) and its
    band ``descriptions`` (empty: none, or not a TIFF)."""

    arr: np.ndarray
    alpha: bool
    name: str
    rgb: tuple[int, int, int] | None
    nodata: float | None = None
    descriptions: tuple[str | None, ...] = ()


def _open_pil(path: str, max_pixels: int | None = None) -> Image.Image:
    try:
        if max_pixels is None:
            return Image.open(path)
        with warnings.catch_warnings():
            # The header's size is checked against max_pixels at once, below PIL's own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"{path}: refused as a possible decompression bomb ({exc}); if the file is trusted, "
            "raise PIL.Image.MAX_IMAGE_PIXELS (None disables the check) or read the scene window "
            "by window"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL raises these for unreadable files
        raise ValueError(f"{path}: cannot read image ({exc})") from exc


def _from_pil(im: Image.Image, where: str, palette_to_rgb: bool) -> tuple[np.ndarray, bool]:
    """A PIL image → ``([H, W, C] array, last band is alpha)``, upright (EXIF orientation applied)."""
    try:
        upright = ImageOps.exif_transpose(im)
        im = upright if upright is not None else im
        alpha = False
        if im.mode == "P" and palette_to_rgb:
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode == "PA" and palette_to_rgb:
            im = im.convert("RGBA")
        elif im.mode in _PIL_MODES_TO_RGB:
            im = im.convert("RGB")
        elif im.mode == "1":
            im = im.convert("L")
        alpha = im.mode in ("LA", "RGBA", "La", "RGBa", "PA")
        arr = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{where}: refused as a possible decompression bomb ({exc}); raise "
                         "PIL.Image.MAX_IMAGE_PIXELS if the file is trusted") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot decode image ({exc})") from exc
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, alpha


def png16_colour(path: str) -> bool:
    """Whether ``path`` is a 16-bit RGB or RGBA PNG (its header: bit depth 16, colour type 2 or 6),
    which PIL reads as 8-bit, keeping each value's high byte (a 16-bit grey PNG it reads whole)."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" \
        and head[24] == 16 and head[25] in (2, 6)


def _read_png16(path: str) -> tuple[np.ndarray, bool]:
    """A 16-bit RGB(A) PNG's own values (uint16 ``[H, W, 3 or 4]``, alpha last), through GDAL's PNG
    driver (the ``geo`` extra); refused without it rather than read as 8-bit."""
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning
    except ImportError:
        raise ValueError(f"{path}: a 16-bit RGB PNG, which PIL reads as 8-bit (its high bytes only); rasterio "
                         'reads its values: pip install "rrsis[geo]", or convert it to a 16-bit TIFF') from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a plain picture has no CRS
        with rasterio.open(path) as src:
            arr = np.moveaxis(src.read(), 0, 2)
    return arr, arr.shape[2] == 4


def _load(source: ImageSource, palette_to_rgb: bool = True, max_pixels: int | None = None) -> LoadedImage:
    """Any image source → :class:`LoadedImage`; ``max_pixels`` is checked on the header, before
    any pixel is decoded."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        info = _tiff_header(path)
        if info is not None:
            check_pixels(info.height, info.width, max_pixels, path)
            if info.numpy_readable:
                return LoadedImage(read_uncompressed_tiff(path, info), info.alpha_last, path, info.rgb, info.nodata,
                                   info.descriptions)
        if info is None:
            with _open_pil(path, max_pixels) as im:
                check_pixels(im.height, im.width, max_pixels, path)
                wide = im.format == "PNG" and png16_colour(path)  # PIL would keep each value's high byte
                arr, alpha = _read_png16(path) if wide else _from_pil(im, path, palette_to_rgb)
            return LoadedImage(arr, alpha, path, None)
        what = f"compressed {info.samples}-band {info.bits}-bit TIFF"
        try:
            with _open_pil(path, max_pixels) as im:
                arr, alpha = _from_pil(im, path, palette_to_rgb)
        except ValueError as exc:
            why = f"{what} that PIL cannot decode ({exc})"
            return LoadedImage(read_tiff_rasterio(path, info, why, palette_to_rgb), info.alpha_last, path,
                               info.rgb, info.nodata, info.descriptions)
        expanded = palette_to_rgb and info.photometric == 3 and arr.shape[2] in (3, 4)  # PIL applied the palette
        if (arr.shape[2] != info.samples and not expanded) or arr.dtype.itemsize * 8 < info.bits:
            why = f"{what} that PIL decodes as {arr.shape[2]}-band {arr.dtype}"
            return LoadedImage(read_tiff_rasterio(path, info, why, palette_to_rgb), info.alpha_last, path,
                               info.rgb, info.nodata, info.descriptions)
        same = arr.shape[2] == info.samples  # else PIL expanded a palette: its bands are not the file's
        return LoadedImage(arr, alpha or info.alpha_last, path, info.rgb if same else None, info.nodata,
                           info.descriptions if same else ())
    if isinstance(source, Image.Image):
        if source.width == 0 or source.height == 0:
            raise ValueError("zero-size image")
        check_pixels(source.height, source.width, max_pixels, "image")
        arr, alpha = _from_pil(source, "image", palette_to_rgb)
        return LoadedImage(arr, alpha, "image", None)
    where = "array"
    if isinstance(source, torch.Tensor):
        where, tensor = "tensor", source.detach().cpu()
        source = (tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor).numpy()
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"expected an [H, W], [H, W, C] or [C, H, W] {where}, got shape "
                             f"{tuple(source.shape)}")
        if arr.shape[0] in _CHANNEL_COUNTS and arr.shape[2] not in _CHANNEL_COUNTS:
            arr = np.moveaxis(arr, 0, 2)  # channels first, as torch lays images out
        if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
            raise ValueError(f"zero-size image {tuple(source.shape)}")
        check_pixels(arr.shape[0], arr.shape[1], max_pixels, where)
        if arr.dtype.kind not in "buif":
            raise ValueError(f"unsupported dtype {arr.dtype}; expected uint8, another integer type "
                             "with scale=, or float")
        # A 4-channel array is RGBA by convention (as PIL and matplotlib treat it).
        return LoadedImage(arr, arr.shape[2] == 4, where, None)
    raise ValueError(f"expected a path, PIL image, numpy array or tensor, got {type(source).__name__}")


def load_raster(path: ImageSource, palette_to_rgb: bool = True) -> np.ndarray:
    """Read all bands of an image at its own bit depth, upright.

    Uncompressed TIFFs go through a numpy reader (exact for any band count and depth); everything
    else through PIL (EXIF orientation applied, CMYK/YCbCr converted to RGB, palettes expanded).
    A compressed TIFF that PIL cannot open, or would decode with fewer bands or bits (a deflate
    16-bit RGB or a multi-band raster), or a 16-bit RGB(A) PNG (PIL keeps its high bytes), is read
    by rasterio (the ``geo`` extra), and raises naming ``pip install "rrsis[geo]"`` without it. Images beyond PIL's
    decompression-bomb limit raise ``ValueError``.

    Args:
        path: image file (or a PIL image / numpy array, returned as ``[H, W, C]``).
        palette_to_rgb: expand palette ("P") images to RGB; masks keep their palette indices.

    Returns:
        array ``[H, W, C]`` with the file's dtype (uint8, uint16, int16, float32, ...).
    """
    arr = _load(path, palette_to_rgb)[0]
    return arr.astype(np.uint8) if arr.dtype == bool else arr


def read_bands(path: ImageSource, bands: Bands = None, *,
               max_pixels: int | None = None, channels: int | None = None) -> tuple[np.ndarray, str]:
    """:func:`read_image` before the value scaling: ``([H, W, 3] (or ``len(bands)``) at the
    file's own depth, name for messages)``; a view of an array source where the band rule allows.

    Args:
        path: as for :func:`read_image`.
        bands: as for :func:`read_image` (counted from 1).
        max_pixels, channels: as for :func:`read_image`.
    """
    arr, alpha, where, rgb = _load(path, max_pixels=max_pixels)[:4]
    return select_bands(arr, alpha, bands, where, channels, rgb), where


def _read_masked(path: ImageSource, bands: Bands = None, scale: Scale = None, max_pixels: int | None = None,
                 channels: int | None = None, colours=None, names=None) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`read_image` and where its pixels are nodata (bool ``[H, W]``, ``None`` where none is):
    :func:`nodata_mask` of the bands read, with the file's declared nodata value. With no ``bands``:
    the bands described as a model's ``names`` (``backbone.band_names``), in that order, when the file
    describes them all (:func:`~rrsis.data.band_names.named_bands`); else its declared colours read
    where the model's ``colours`` (``backbone.rgb``) has them (:func:`~rrsis.data.bands.colours_at`)."""
    arr, alpha, where, rgb, nodata, described = _load(path, max_pixels=max_pixels)
    note = None
    if bands is None:
        bands = named_bands(described, names, channels)
        flags = [False] * (arr.shape[2] - alpha) + [True] * alpha  # which bands are declared alpha
        note = None if bands else unnamed_read_note(described, names, flags, channels, where, rgb is not None)
    if None not in (colours, rgb) and bands is None and channels not in (None, 3) and arr.shape[2] - alpha == channels:
        bands = colours_at(tuple(range(1, channels + 1)), rgb, colours) if max(rgb) <= channels else None
    try:
        arr = select_bands(arr, alpha, bands, where, channels, rgb, names)
    except ValueError as exc:
        if bands is None and names is not None and len(names) == (channels or 3):
            raise ValueError(f"{exc}; {names_note(described, names)}") from None
        raise
    if note:  # the model's names not found on a raster of its band count: read by position
        warnings.warn(note, UserWarning, stacklevel=4)  # as the scene reader warns (model.predict's caller)
    mask = nodata_mask(arr, nodata)
    return scale_values(arr, scale, where, mask), mask


def read_image(path: ImageSource, bands: Bands = None, scale: Scale = None, *,
               max_pixels: int | None = None, channels: int | None = None) -> np.ndarray:
    """Read an image as float32, with explicit band choice and scaling: the one reader of rrsis
    (datasets, ``model.predict``, ``segment_scene`` on plain images, the demo).

    Band rule with ``bands=None``: the bands a TIFF declares red, green and blue (GDAL's colour
    interpretation or band descriptions, as a GIS shows the file) are read, in that order, at any
    band count. Else a declared alpha band (PNG/TIFF RGBA or LA, a 4-channel array) is dropped;
    one band is repeated to three (grey); three bands are used as they are; any other count (an
    undeclared RGBN or multispectral raster) raises and asks for ``bands=``.

    Pixels with a non-finite value (NaN, ±inf) in any band, and pixels holding a TIFF's declared
    nodata value (GDAL's tag 42113 or its ``.aux.xml`` sidecar) in *every* band read, are
    *nodata* (:func:`nodata_mask`): they are left out of the ``"max"``/``"minmax"`` statistics and
    become 0 after scaling; an image with no valid pixel raises.

    Args:
        path: image file (8/16/32-bit, any band count; see :func:`load_raster`), a PIL image or
            an ``[H, W]`` / ``[H, W, C]`` numpy array or tensor; ``[C, H, W]`` (torch's layout) is
            read channels-first when C is 1, 3 or 4 and the last axis is none of these.
        bands: band numbers to keep, in order, **counted from 1** as GDAL and rasterio count
            (``(1, 2, 3)`` for the R, G, B of an RGBN raster, ``"4,3,2"`` also accepted), or
            ``None`` for the rule above. A one-band image is first repeated to three bands, so
            grayscale works with any choice of three. A 0 raises.
        scale: how to map values to floats. ``None``: uint8 / 255, floats used as they are
            (they must lie in [0, 1]), other integer types raise (16-bit data has no single
            right answer). ``"dtype"``: divide by the dtype's maximum. ``"max"``: divide by the
            image maximum. ``"minmax"``: map the image's [min, max] to [0, 1]. A number: divide
            by it. Statistics are taken over the selected bands together, so colour ratios
            survive.
        max_pixels: refuse an image of more pixels (checked on the file's header, before
            decoding); ``None`` (the default here; ``model.predict`` passes :data:`MAX_PIXELS`)
            leaves only PIL's decompression-bomb limit.
        channels: the band count the model takes (its ``in_chans``); ``None`` (no model) or 3:
            the rule above. Another count: ``bands`` must name that many, and with
            ``bands=None`` an image of exactly that many bands (a declared alpha band aside)
            is read whole; anything else raises naming both counts.

    Returns:
        array ``[H, W, len(bands)]`` (three bands by default, ``channels`` when set), float32.
    """
    return _read_masked(path, bands, scale, max_pixels, channels)[0]


def read_mask(path: str, threshold: float = 50) -> np.ndarray:
    """Read a mask file as foreground = first band ``> threshold``.

    A mask whose nonzero values all lie at or below ``threshold`` (a 0/1 mask read with the
    RefSegRS threshold 50) would become empty: that raises and names ``mask_threshold``. So
    does a mask whose first band is empty while another band draws a shape (a green
    foreground on black, or a shape drawn only in the alpha band).

    Args:
        path: mask image (any depth; palette images keep their indices).
        threshold: values above it are foreground (RefSegRS: 50).

    Returns:
        bool array ``[H, W]``.
    """
    bands, alpha = _load(path, palette_to_rgb=False)[:2]
    arr = bands[:, :, 0]
    fg = arr > threshold
    if not fg.any():
        top = arr.max() if arr.size else 0
        if np.isfinite(top) and top > 0:
            top_text = f"{top:g}" if arr.dtype.kind == "f" else str(int(top))
            raise ValueError(
                f"{path}: mask values 0..{top_text} are all <= mask_threshold {threshold:g}, so "
                "every pixel would be background; for 0/1 masks pass mask_threshold=0"
            )
        _check_other_bands(bands, alpha, threshold, path)
    return fg


def _check_other_bands(bands: np.ndarray, alpha: bool, threshold: float, path: str) -> None:
    """Refuse a mask whose first band is empty while another band draws a shape (a green or
    blue foreground, or one drawn in the alpha band): read as band 1 it would train on an
    empty target without a word."""
    for k in range(1, bands.shape[2]):
        band = bands[:, :, k]
        is_alpha = alpha and k == bands.shape[2] - 1
        # An alpha band marks a shape when it varies; an opaque one says nothing.
        marks = band.min() != band.max() if is_alpha else (band > threshold).any()
        if marks:
            what = "the alpha band" if is_alpha else f"band {k + 1}"
            raise ValueError(
                f"{path}: band 1 of this {bands.shape[2]}-band mask is all background but "
                f"{what} draws a shape; rrsis reads a mask's first band (> mask_threshold is "
                "foreground): save the mask as one band, foreground 255 and background 0"
            )


def image_size(path: str, upright: bool = True) -> tuple[int, int]:
    """``(height, width)`` of an image as :func:`read_image` returns it (EXIF orientation
    applied), from its header only.

    Args:
        path: image file.
        upright: ``False``: the size as stored, before the EXIF orientation.
    """
    path = os.fspath(path)
    info = _tiff_header(path)
    if info is not None:
        return info.height, info.width
    with _open_pil(path) as im:
        if upright and exif_orientation(im) in _SWAPPING_ORIENTATIONS:
            return im.width, im.height
        return im.height, im.width


def exif_orientation(im: Image.Image) -> int | None:
    """An opened image's EXIF orientation tag (``None`` without one), from its header. A PNG
    whose eXIf chunk follows the pixel data counts as unrotated: PIL finds that chunk only by
    decoding the whole image, which a header read must not do."""
    if im.format == "PNG" and "exif" not in im.info:
        return None
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001  (a broken EXIF block leaves the stored orientation)
        return None
