"""What a pixel value means: band choice (numbers counted from 1) and value scaling.

The steps :func:`rrsis.data.read_image` applies after decoding, shared with the whole-scene
reader so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .band_hint import band_count_problem

__all__ = ["RGB_NAMES", "Bands", "Scale", "band_count_problem", "check_divisor", "colours_at", "declared_rgb", "first_three_note", "model_bands", "nodata_mask", "nodata_pixels", "parse_bands", "raster_bands", "rgb_positions", "scale_values",
           "select_bands", "transparent_pixels", "uint8_to_unit"]

Scale = str | float | None
Bands = str | Sequence[int] | None  # band numbers counted from 1


def parse_bands(bands: str | Sequence[int] | None, where: str = "bands") -> tuple[int, ...] | None:
    """``"4,3,2"`` or ``(4, 3, 2)`` → ``(4, 3, 2)``: band numbers counted from 1, as GDAL and
    rasterio count (the one convention of every ``bands=`` in rrsis); ``None`` stays ``None``.

    Args:
        bands: band numbers, a comma-separated string or a sequence of ints.
        where: what to name in the error message.
    """
    if bands is None:
        return None
    if isinstance(bands, str):
        try:
            bands = [int(b) for b in bands.replace(" ", "").split(",") if b]
        except ValueError:
            raise ValueError(f"{where} {bands!r}: expected band numbers counted from 1, like '4,3,2'") from None
    try:
        out = tuple(int(b) for b in bands)
    except (TypeError, ValueError):
        raise ValueError(f"{where} {bands!r}: expected band numbers counted from 1, like (4, 3, 2)") from None
    if not out:
        raise ValueError(f"{where} must name at least one band")
    low = [b for b in out if b < 1]
    if low:
        raise ValueError(f"{where} {out}: band numbers count from 1 (as GDAL and rasterio count), "
                         f"got {low}; the first band is 1")
    return out


RGB_NAMES = ("red", "green", "blue")


def declared_rgb(colours: Sequence[str | None] | None = None,
                 descriptions: Sequence[str | None] | None = None) -> tuple[int, int, int] | None:
    """The band numbers (counted from 1) a raster declares red, green and blue, in that order,
    or ``None`` when it does not declare all three once each.

    ``colours`` are the bands' colour interpretations (GDAL's, as rasterio's ``colorinterp``
    names them: ``"red"``, ``"green"``, ``"blue"``, ``"gray"``, ``"undefined"`` ...), read first;
    ``descriptions`` the bands' descriptions, read when the colour interpretations do not
    declare the three, where a description that is exactly ``red``, ``green`` or ``blue``
    (any case; the common band names of STAC's ``eo`` extension) declares its band. Nothing
    else is guessed: sensor band numbers ("B4") mean different colours on different sensors.
    """
    for names in (colours, descriptions):
        if not names:
            continue
        names = [str(n).strip().lower() if n is not None else "" for n in names]
        found = [[i + 1 for i, n in enumerate(names) if n == c] for c in RGB_NAMES]
        if all(len(f) == 1 for f in found):
            return found[0][0], found[1][0], found[2][0]
    return None


def first_three_note(name: str, count: int, bands: Sequence[int], stack: bool = False) -> str:
    """What an RGB model reading the first three of a raster's ``count`` bands, none declared red,
    green or blue (or band 1 of 2, as grey), is told: which bands it reads, and the ways to choose
    others. ``stack``: the raster is a stack rrsis wrote (``build_stack``, ``rrsis predict --stack``),
    whose colours are declared when it is built, not by editing the VRT."""
    def declare(names: str) -> str:
        if stack:
            return (f"declare the bands' colours when the stack is built, in its order: --stack-colours {names} "
                    "(colours= of build_stack)")
        return f"declare each band's colour in the file, in its order, e.g. rio edit-info --colorinterp {names} FILE"

    if count == 2:
        return (f"{name}: 2 bands, none declared alpha; an RGB model reads band 1 as grey (bands=(2,) reads "
                f"band 2, a model built with in_chans=2 both; if band 2 is a transparency mask, "
                f"{declare('gray,alpha')})")
    names = ",".join(["red", "green", "blue"] + ["undefined"] * (count - 3))
    return (f"{name}: {count} bands, none declared red, green or blue; an RGB model reads bands "
            f"{tuple(bands)} (bands= chooses others, e.g. (4, 3, 2) for Sentinel-2's R, G, B; or "
            f"{declare(names)})")


def rgb_positions(bands: Sequence[int], declared: tuple[int, int, int] | None,
                  grey: bool = False) -> tuple[int, int, int] | None:
    """Where red, green and blue lie (positions from 0) among the bands read (``bands``, numbers
    counted from 1): the declared ones' (:func:`declared_rgb`), ``None`` unless all three are
    read. With none declared, three bands read are taken as R, G, B (so is one band read as
    three equal ones, ``grey``), and another count has no colour."""
    if declared is not None:
        return tuple(list(bands).index(b) for b in declared) if set(declared) <= set(bands) else None
    return (0, 1, 2) if len(bands) == 3 or (grey and len(bands) == 1) else None


def nodata_pixels(data: np.ndarray, nodata: Sequence[float | None], every: bool = True,
                  axis: int = 0) -> np.ndarray | None:
    """Where pixels are nodata by their bands' declared nodata values (bool, ``data`` without
    ``axis``; ``None`` when no band declares a value its type can hold).

    ``every=True``, a raster's own bands: a pixel is nodata when *every* band holds its value, as
    GDAL's dataset mask and its warper read per-band nodata (an 8-bit RGB orthophoto with nodata
    0 keeps its pixels whose red alone is 0: dark water, shadow). ``every=False``, bands from
    separate files (a stack of one file per band): a pixel is nodata when *any* band holds its
    value, since that band was not observed there. A value is compared in the band's type (GDAL
    does the same); one the type cannot hold (-9999 on bytes) marks nothing. NaN values are
    left to the non-finite rule (NaN in any band is nodata).
    """
    hits = []
    for k, value in enumerate(nodata):
        if value is None or np.isnan(value):
            continue
        typed = np.asarray(value).astype(data.dtype)
        if float(typed) != float(value):
            continue
        hits.append(np.take(data, k, axis=axis) == typed)
    if not hits:
        return None
    if len(hits) < len(nodata) and every:
        return None  # a band without a value is never nodata: neither is the pixel
    return np.logical_and.reduce(hits) if every else np.logical_or.reduce(hits)


def nodata_mask(arr: np.ndarray, nodata: float | None = None) -> np.ndarray | None:
    """Where ``[H, W, C]`` pixels are nodata (bool ``[H, W]``), or ``None`` when none is: a NaN
    or infinite value in any band, or ``nodata`` (the file's declared value, see
    :class:`rrsis.data.tiff.TiffInfo`) in *every* band (:func:`~rrsis.data.bands.nodata_pixels` with
    ``every=True``, GDAL's rule: an 8-bit RGB file with nodata 0 keeps its pixels whose red alone
    is 0). The one nodata rule of rrsis inference."""
    declared = None if nodata is None else nodata_pixels(arr, [nodata] * arr.shape[2], every=True, axis=2)
    if arr.dtype.kind == "f" and not (finite := np.isfinite(arr).all(axis=2)).all():
        return ~finite if declared is None else ~finite | declared
    return declared if declared is None or declared.any() else None


def transparent_pixels(arr: np.ndarray, alpha: bool, bands: Bands, channels: int | None = None,
                       rgb: tuple[int, int, int] | None = None) -> np.ndarray | None:
    """bool ``[H, W]``: where the declared alpha band (the last of ``arr``) is 0, when
    :func:`select_bands` leaves it out of the bands (a scene then reads those pixels as nodata,
    as GDAL's mask of a raster's alpha band has them); ``None`` when it is read as data or absent."""
    c, band_tuple = arr.shape[2], parse_bands(bands)
    if not alpha:
        return None
    if band_tuple is None and rgb is not None and channels in (None, 3):
        band_tuple = rgb
    if band_tuple is not None:
        dropped = c not in band_tuple
    else:
        dropped = c in (2, 4) if channels in (None, 3) else c - 1 == channels
    return (arr[:, :, -1] == 0) if dropped else None


def select_bands(arr: np.ndarray, alpha: bool, bands: Bands, where: str, channels: int | None = None,
                 rgb: tuple[int, int, int] | None = None, names: Sequence[str] | None = None,
                 dataset: bool = False) -> np.ndarray:
    """The band rule of :func:`read_image`, without the value scaling: ``[H, W, C]`` at its own
    depth → ``[H, W, 3]`` (or ``len(bands)``, or ``channels``), a view where possible.

    ``channels`` is the band count the model takes (its ``in_chans``; ``None``: no model, the
    RGB rule). With ``bands=None``: for ``None`` or 3, the RGB rule (a declared alpha band
    dropped, grey repeated to three, other counts raise); for any other count, an image with
    exactly that many bands (after dropping a declared alpha band) is used as it is, anything
    else raises naming both counts. With ``bands`` given and ``channels`` set, exactly
    ``channels`` band numbers (counted from 1) are required (or one, repeated, for 3).
    ``rgb``: the bands the file declares red, green and blue (:func:`declared_rgb`); with
    ``bands=None`` the RGB rule reads those, in that order, whatever the band count. ``names``
    (the model's band names) and ``dataset`` shape the refusal's example (:func:`band_count_problem`).
    """
    c = arr.shape[2]
    band_tuple = parse_bands(bands)
    if band_tuple is None and rgb is not None and channels in (None, 3) and max(rgb) <= c:
        return arr if tuple(rgb) == (1, 2, 3) and c == 3 else arr[:, :, [b - 1 for b in rgb]]
    if band_tuple is None:
        if channels not in (None, 3):
            if c == channels:
                return arr
            if alpha and c - 1 == channels:
                return arr[:, :, :channels]
            raise ValueError(band_count_problem(where, "image", c, channels,
                                                " (the last declared alpha)" if alpha else "", names, dataset))
        if alpha and c in (2, 4):
            arr, c = arr[:, :, : c - 1], c - 1
        if c == 1:
            return np.repeat(arr, 3, axis=2)
        if c == 2:  # as a scene reads a 2-band raster: band 1 as grey, when asked
            raise ValueError(
                f"{where}: 2 channels (bands), none declared alpha: an RGB model reads 3 (R, G, B) or 1 "
                "(grey); pass bands=(1,) to read band 1 as grey, as a scene reads a 2-band raster, or "
                "bands=(2,) (or use a model built with in_chans=2)"
            )
        if c != 3:
            raise ValueError(
                f"{where}: {c} channels (bands), none declared alpha: pass bands=(i, j, k) to "
                "choose the three the model sees, counted from 1, e.g. bands=(1, 2, 3) for the "
                f"R, G, B of an RGBN raster (or use a model built with in_chans={c})"
            )
        return arr
    if channels is not None and len(band_tuple) != channels and not (channels == 3 and len(band_tuple) == 1):
        raise ValueError(
            f"{where}: bands={band_tuple} names {len(band_tuple)} band(s) but the model takes {channels} "
            f"(in_chans={channels})"
        )
    if c == 1 and channels in (None, 3):
        arr = np.repeat(arr, 3, axis=2)
    bad = [b for b in band_tuple if b > arr.shape[2]]
    if bad:
        raise ValueError(
            f"{where}: bands {bad} out of range; the image has {arr.shape[2]} band(s), counted from 1"
        )
    out = arr[:, :, [b - 1 for b in band_tuple]]
    # one band chosen for an RGB model: shown as grey, as a one-band image is
    return np.repeat(out, 3, axis=2) if channels == 3 and out.shape[2] == 1 else out


def raster_bands(alpha: Sequence[bool], bands: Bands, channels: int | None, where: str,
                 rgb: tuple[int, int, int] | None = None,
                 names: Sequence[str] | None = None) -> tuple[tuple[int, ...], list[int]]:
    """:func:`select_bands`' rule for a raster read band by band (the whole-scene reader):
    ``alpha[i]`` says whether band ``i + 1`` is declared alpha. Returns the band numbers to read
    (counted from 1) and those of them declared alpha, which are then data, not a mask.

    With ``bands=None``: for ``channels`` None or 3, the bands the raster declares red, green
    and blue (``rgb``, :func:`declared_rgb`), else the first three that are not alpha (or the
    first one, shown as grey); for another count, a raster of exactly ``channels``
    bands is read whole, alpha or not (as :func:`select_bands` reads it for the datasets and
    ``model.predict``), else its non-alpha bands, which must be ``channels`` of them.
    """
    data = [i + 1 for i, a in enumerate(alpha) if not a] or [1]
    chosen = parse_bands(bands)
    if chosen is None and channels not in (None, 3):
        chosen = tuple(range(1, len(alpha) + 1)) if len(alpha) == channels else tuple(data)
        if len(chosen) != channels:
            raise ValueError(band_count_problem(where, "raster", len(data), channels, " (alpha aside)", names))
    if chosen is None and rgb is not None and channels in (None, 3):
        chosen = tuple(rgb)
    if chosen is None:
        chosen = tuple(data[:3] if len(data) >= 3 else data[:1])
    if bad := [b for b in chosen if not 1 <= b <= len(alpha)]:
        raise ValueError(f"{where}: bands {bad} out of range; the raster has {len(alpha)} band(s) (1-based)")
    return chosen, [b for b in chosen if alpha[b - 1]]


def model_bands(bands: Bands, channels: int | None) -> tuple[int, ...] | None:
    """``bands`` parsed (:func:`parse_bands`), refused unless a model of ``channels`` bands takes
    that many: 3 (R, G, B) or 1 (grey) for an RGB model (``channels`` None or 3), else ``channels``."""
    out = parse_bands(bands)
    if out is not None and len(out) not in ((1, 3) if channels in (None, 3) else (channels,)):
        raise ValueError(f"bands {out}: give 3 bands (R,G,B) or 1 (shown as grey), counted from 1" if channels
                         in (None, 3) else f"bands {out} names {len(out)} band(s) but the model takes {channels}")
    return out


def uint8_to_unit(x: np.ndarray) -> np.ndarray:
    """:func:`rrsis.data.read_image`'s arithmetic for 8-bit data (``/ 255`` in float32), a window at a time."""
    return x.astype(np.float32) / 255.0


def scale_values(arr: np.ndarray, scale: Scale, path: str = "image", nodata: np.ndarray | None = None) -> np.ndarray:
    """The value scaling of :func:`read_image` (``scale`` as documented there) → float32.

    Non-finite values, and every value of the pixels ``nodata`` marks (bool ``[H, W]``, e.g.
    :func:`nodata_mask`), are left out of the statistics and become 0; with no other value left
    it raises."""
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else None
    if finite is not None and not finite.any():
        raise ValueError(f"{path}: every pixel is NaN or infinite (no data)")
    valid = finite
    if nodata is not None:
        keep = np.broadcast_to(~np.asarray(nodata, bool)[:, :, None], arr.shape)
        valid = keep if finite is None else finite & keep
    if valid is not None:
        if not valid.any():
            raise ValueError(f"{path}: every pixel is nodata (the file's declared nodata value, NaN or infinite)")
        if valid.all():
            valid = None
    if scale is None:
        if arr.dtype == np.uint8 or arr.dtype == bool:
            return _zero(arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0), valid)
        if arr.dtype.kind == "f":
            vals = arr if valid is None else arr[valid]
            lo, hi = float(vals.min()), float(vals.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"{path}: float pixels must lie in [0, 1] with scale=None, got "
                    f"[{lo:.3g}, {hi:.3g}]; pass scale='max', 'minmax' or a divisor (rrsis predict: --scale)"
                )
            return _zero(arr.astype(np.float32), valid)
        raise ValueError(
            f"{path}: {arr.dtype} image needs an explicit scale= ('dtype', 'max', 'minmax' or a "
            "divisor; on the rrsis predict command line: --scale)"
        )
    x = arr.astype(np.float64)
    vals = x if valid is None else x[valid]
    if isinstance(scale, str):
        if scale == "dtype":
            if arr.dtype.kind not in "ui":
                raise ValueError(f"{path}: scale='dtype' needs integer data, got {arr.dtype}")
            x = x / float(np.iinfo(arr.dtype).max)
        elif scale == "max":
            top = vals.max() if vals.size else 0.0
            x = x / top if top > 0 else np.zeros_like(x)
        elif scale == "minmax":
            lo, hi = (vals.min(), vals.max()) if vals.size else (0.0, 0.0)
            x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        else:
            raise ValueError(
                f"unknown scale {scale!r}; use None, 'dtype', 'max', 'minmax' or a number"
            )
    else:
        divisor = float(scale)
        if divisor <= 0:
            raise ValueError(f"scale divisor must be positive, got {scale!r}")
        # Every reader comes here (datasets, model.predict, scenes window by window): a divisor
        # made for another bit depth is refused wherever the pixels enter.
        check_divisor(arr.dtype, scale, path)
        x = x / divisor
    return _zero(x, valid).astype(np.float32)


def _zero(x: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``x`` (a fresh array) with its values outside ``valid`` set to 0."""
    if valid is not None:
        x[~valid] = 0.0
    return x


def check_divisor(dtype: np.dtype | str, scale: Scale, where: str = "image") -> None:
    """Refuse a divisor ``scale`` that does not fit integer data of ``dtype``.

    A divisor names the top of the data's range: the bit depth the values were recorded at
    (255 for 8-bit, 4095 for 12-bit, 10000 for reflectance scaled by 10⁴). The data must fit
    the file's type and need that type: the divisor lies at most at the type's largest value
    (uint8 with 4095 reads at most 0.06), and above the largest value of the next smaller type
    of the same kind (uint16 with 255 reads up to 257: an 8-bit setting on 16-bit data; a
    uint16 file holding 8-bit values is saved as uint8). So 12-bit data in uint16 files with
    4095, or 14-bit with 16383, passes. Floats, strings (``"dtype"``, ``"max"``, ``"minmax"``)
    and ``None`` are left to :func:`scale_values`.

    Args:
        dtype: the file's dtype (from its header).
        scale: the ``scale`` option.
        where: the file, for the message.

    Raises:
        ValueError: naming the file, its dtype, the divisor and the settings that fit.
    """
    dtype = np.dtype(dtype)
    if scale is None or isinstance(scale, (str, bool)) or dtype.kind not in "ui":
        return
    divisor, top = float(scale), int(np.iinfo(dtype).max)
    below = int(np.iinfo(np.dtype(f"{dtype.kind}{dtype.itemsize // 2}")).max) if dtype.itemsize > 1 else 0
    if divisor > top:
        raise ValueError(
            f"{where}: scale={divisor:g} is above the largest {dtype} value ({top}), so its pixels "
            f"would read as at most {top / divisor:.3g}, not up to 1; use scale={top} or 'dtype' for "
            f"{dtype} data, or convert the file to the dtype the divisor is for"
        )
    if divisor <= below:
        raise ValueError(
            f"{where}: scale={divisor:g} is for data up to {below} or less, but the file is {dtype} "
            f"(values up to {top}, which would read as up to {top / divisor:.3g}); use the top of the "
            f"data's range (2**bits - 1 for data recorded at that many bits, e.g. 4095 for 12-bit), "
            f"{top} or 'dtype' for full-range {dtype}, or 'max' / 'minmax'; a {dtype} file that holds values up to {below} only is saved as "
            f"{np.dtype(f'{dtype.kind}{dtype.itemsize // 2}')}"
        )


def colours_at(bands: Sequence[int], declared: tuple[int, int, int], positions: Sequence[int]) -> tuple[int, ...]:
    """``bands`` (numbers counted from 1, as read) reordered so that the ``declared`` red, green and
    blue lie at ``positions`` (from 0: a model's recorded ``backbone.rgb``, where its training images
    had them), the other bands after them in their order: a raster of B, G, R, NIR read for a
    model trained on R, G, B, NIR is read 3, 2, 1, 4. ``declared`` must all be among ``bands``."""
    order: list[int | None] = [None] * len(bands)
    for p, b in zip(positions, declared):
        order[p] = b
    rest = iter(b for b in bands if b not in declared)
    return tuple(b if b is not None else next(rest) for b in order)
