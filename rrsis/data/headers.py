"""What an image file's header says about the array rrsis would read from it, without decoding
a pixel; and the checks a dataset runs on every file's header at construction.

A folder of 2,000 PNGs with one 16-bit (or 4-band) file among them used to
stop at that file's batch, possibly hours into a run. The header alone tells the file apart:
its dtype, its band count as read, a declared alpha band and a palette. The checks here compare
each file with the options (``bands``, ``scale``, the model's band count) through the readers'
own rules, run on a one-pixel stand-in of the file's dtype and bands, and with the other files
of the dataset.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageMode

from . import bands as _bands
from .band_names import names_note
from .bands import Bands, Scale, check_divisor, scale_values, select_bands
from .io import _PIL_MODES_TO_RGB, _SWAPPING_ORIENTATIONS, _open_pil, exif_orientation, png16_colour
from .tiff import _tiff_header

__all__ = ["ImageHeader", "declared_channels", "header_problems", "odd_headers", "option_problem", "read_header"]

_ALPHA_MODES = ("LA", "RGBA", "La", "RGBa", "PA")


@dataclass(frozen=True)
class ImageHeader:
    """The array :func:`~rrsis.data.read_image` (or ``read_mask``) reads from a file, as its
    header tells it.

    Args:
        path: the file.
        height, width: size, upright (EXIF orientation applied, as the readers apply it).
        bands: band count as read (a palette expanded to RGB for images), alpha included.
        dtype: numpy dtype name of the array as read (``"uint8"``, ``"uint16"``, ``"float32"``).
        alpha: the last band is declared alpha.
        palette: the file stores palette indices (a "P" PNG, a palette TIFF).
        rgb: the bands (counted from 1) a TIFF declares red, green and blue
            (:attr:`rrsis.data.tiff.TiffInfo.rgb`), read with ``bands=None``; ``None``: none declared.
        descriptions: a TIFF's band descriptions (``None`` where unset; empty: none, or not a TIFF).
    """

    path: str
    height: int
    width: int
    bands: int
    dtype: str
    alpha: bool = False
    palette: bool = False
    rgb: tuple[int, int, int] | None = None
    descriptions: tuple[str | None, ...] = ()

    @property
    def hw(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def kind(self) -> tuple[str, int, bool]:
        """What two files of one dataset must share: dtype, data bands (alpha aside), palette."""
        return self.dtype, self.bands - int(self.alpha), self.palette

    def bands_read(self, bands: Bands = None, channels: int | None = None) -> tuple[int, ...] | None:
        """The band numbers (from 1) :func:`~rrsis.data.read_image` reads from this file with
        ``bands`` for a model of ``channels`` bands, or ``None`` when the options do not fit it."""
        alpha = [False] * (self.bands - 1) + [self.alpha]
        try:
            return _bands.raster_bands(alpha, bands, channels, self.path, rgb=self.rgb)[0]
        except ValueError:  # a file the options do not fit: the header checks say so
            return None

    def describe(self) -> str:
        """``"uint16, 1 band (grey)"``, ``"uint8, 3 bands (RGB) + alpha"``, ..."""
        n = self.bands - int(self.alpha)
        what = "paletted" if self.palette else {1: "grey", 3: "RGB"}.get(n, "")
        text = f"{self.dtype}, {n} band{'s' if n != 1 else ''}" + (f" ({what})" if what else "")
        return text + (" + alpha" if self.alpha else "")


def read_header(path: str | os.PathLike, palette_to_rgb: bool = True) -> ImageHeader:
    """The :class:`ImageHeader` of an image file, from its header alone (no pixel is decoded).

    Args:
        path: image file.
        palette_to_rgb: as the readers take it: images expand a palette to RGB, masks keep
            the indices.

    Raises:
        FileNotFoundError: the file is missing. ValueError: its header cannot be read.
    """
    path = os.fspath(path)
    info = _tiff_header(path)
    if info is not None:
        # The TIFF readers (numpy, PIL, rasterio) all return the file's own bands and depth; a
        # palette TIFF's indices included (rasterio reads them as one band).
        kind = {1: "u", 2: "i", 3: "f"}.get(info.sample_format, "u")
        size = 1 if info.bits <= 8 else 2 if info.bits <= 16 else 4 if info.bits <= 32 else 8
        return ImageHeader(path, info.height, info.width, info.samples, np.dtype(f"{kind}{size}").name,
                           info.alpha_last, info.photometric == 3, info.rgb,
                           tuple(info.descriptions))
    with _open_pil(path) as im:
        mode, transparency = im.mode, "transparency" in im.info
        turned = exif_orientation(im) in _SWAPPING_ORIENTATIONS
        h, w = (im.width, im.height) if turned else (im.height, im.width)
    palette = mode in ("P", "PA")
    # The conversions the readers make (rrsis.data.io._from_pil), on the mode name only.
    if palette and palette_to_rgb:
        mode = "RGBA" if mode == "PA" or transparency else "RGB"
    elif mode in _PIL_MODES_TO_RGB:
        mode = "RGB"
    elif mode == "1":
        mode = "L"
    try:
        base = ImageMode.getmode(mode)
    except KeyError:
        raise ValueError(f"{path}: cannot read image (PIL mode {mode!r} is not supported)") from None
    dtype = "uint16" if mode in ("RGB", "RGBA") and png16_colour(path) else np.dtype(base.typestr).name  # as io reads it
    return ImageHeader(path, h, w, len(base.bands), dtype, mode in _ALPHA_MODES, palette)


def declared_channels(headers: Sequence[ImageHeader], bands: Bands = None,
                      channels: int | None = None) -> tuple[int, int, int] | None:
    """Which of the channels a model reads from these images (positions from 0) the images
    declare red, green and blue (:attr:`ImageHeader.rgb`), read with ``bands`` for a model of
    ``channels`` bands as :func:`~rrsis.data.read_image` reads them: the same for every image,
    else ``None`` (an image declaring none, two declaring differently, a colour not read)."""
    found = None
    for h in headers:
        read = None if h.rgb is None else h.bands_read(bands, channels)
        if read is None:
            return None
        here = _bands.rgb_positions(read, h.rgb)
        if here is None or (found is not None and here != found):
            return None
        found = here
    return found


def option_problem(header: ImageHeader, bands: Bands, scale: Scale, channels: int | None,
                   names: Sequence[str] | None = None, dataset: bool = False) -> str | None:
    """What :func:`~rrsis.data.read_image` would refuse in this file under these options (the
    band rule, the scale's rule, and a divisor ``scale`` that does not fit the file's dtype,
    see :func:`~rrsis.data.bands.check_divisor`), or ``None``. The readers' own rules run on a
    one-pixel stand-in of the file's dtype and bands, so the message is theirs. ``names``: the
    model's band names, not found on this file (the refusal says what it describes);
    ``dataset``: the bands are a dataset's option (the refusal spells it so)."""
    stand_in = np.zeros((1, 1, header.bands), dtype=header.dtype)
    try:
        chosen = select_bands(stand_in, header.alpha, bands, header.path, channels, header.rgb, names, dataset)
    except ValueError as exc:
        wanted = names is not None and bands is None and len(names) == (channels or 3)
        return f"{exc}; {names_note(header.descriptions, names)}" if wanted else str(exc)
    try:
        scale_values(chosen, scale, header.path)
        check_divisor(header.dtype, scale, header.path)
    except ValueError as exc:
        return str(exc)
    return None


def odd_headers(headers: Mapping[str, ImageHeader],
                kind: Callable[[ImageHeader], Hashable] = lambda h: h.kind,
                ) -> dict[str, tuple[ImageHeader, int]]:
    """The files whose ``kind`` (default :attr:`ImageHeader.kind`) differs from the most common
    one, each mapped to a file of that common kind and how many files share it (the first kind
    seen wins a tie).

    Args:
        headers: path → header, one entry per file.
        kind: what files of one role must share.
    """
    counts = Counter(kind(h) for h in headers.values())
    if len(counts) < 2:
        return {}
    common, n = counts.most_common(1)[0]
    example = next(h for h in headers.values() if kind(h) == common)
    return {path: (example, n) for path, h in headers.items() if kind(h) != common}


def _image_kind(header: ImageHeader) -> Hashable:
    # Images are compared by dtype only: a grey or paletted image among RGB ones reaches the
    # model as RGB (grey repeated, palette expanded), as PIL's convert("RGB") reads it in the
    # official code; a band count the options cannot read is the reader's own error
    # (option_problem). A 16-bit file among 8-bit ones is odd: the same scale reads them apart.
    return header.dtype


def mixed_note(headers: Mapping[str, ImageHeader]) -> str | None:
    """A one-line note when images of one dtype differ in band count or palette (read alike, but
    worth knowing: a panchromatic image in an RGB dataset), else ``None``."""
    odd = odd_headers(headers)
    if not odd:
        return None
    path, (common, _) = next(iter(odd.items()))
    return (f"{len(odd)} of {len(headers)} images differ from the others ({common.describe()}, "
            f"e.g. {common.path}) and are read as they are, e.g. {path} "
            f"({headers[path].describe()})")


def header_problems(files: Sequence[Mapping[str, ImageHeader]], bands: Bands, scale: Scale,
                    channels: int | None, names: Sequence[str] | None = None) -> list[tuple[str, bool] | None]:
    """For each sample's files (role → header: ``"image"``, ``"mask"``), ``None`` when they pass,
    else ``(message, about the options)``: an image the options cannot read (the message is
    the reader's, the options are to change), or a file whose kind differs from the most common
    one of its role (named beside a file of that kind, with what to do).

    Args:
        files: one mapping per sample; a file shared by samples is counted once.
        bands, scale, channels: the dataset's reading options (``channels``: the model's band
            count, ``None`` for RGB); ``names``: the model's band names the dataset looks for.
    """
    by_role: dict[str, dict[str, ImageHeader]] = {}
    for found in files:
        for role, header in found.items():
            by_role.setdefault(role, {})[header.path] = header
    odd = {role: odd_headers(headers, _image_kind if role == "image" else lambda h: h.kind)
           for role, headers in by_role.items()}
    out: list[tuple[str, bool] | None] = []
    for found in files:
        result = None
        for role, header in found.items():
            problem = option_problem(header, bands, scale, channels, names, True) if role == "image" else None
            common = odd[role].get(header.path)
            if common is not None:
                result = (_odd_message(role, header, *common, len(by_role[role]), problem), False)
                break
            if problem:
                result = (problem, True)
                break
        out.append(result)
    return out


def _odd_message(role: str, header: ImageHeader, common: ImageHeader, n: int, total: int,
                 problem: str | None) -> str:
    others = f"the other {n}" if n == total - 1 else f"{n} of the {total}"
    return (
        f"{role} {header.path} is {header.describe()}, unlike {others} {role}s of this dataset, "
        f"which are {common.describe()} (e.g. {common.path})" + (f": {problem}" if problem else "")
        + "; convert it like the others or remove its line; skip_bad=True skips it (listed in "
        ".skipped)" + ("" if problem else "; check_headers=False reads it as it is (a deliberate mix)")
    )
