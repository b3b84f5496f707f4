"""Bands chosen by name: the descriptions a model's training images gave the bands it reads.

A model trained on chips of Sentinel-2's B04, B03, B02 and B08 (``rrsis chips --bands 4,3,2,8``
writes each band's description into the chips) records those names (``backbone.band_names``,
:func:`declared_names`). A raster whose bands carry the same descriptions, in any order and among
any others (a 12-band stack), is then read with those bands in the model's order
(:func:`named_bands`), as ``bands=`` would read them; a raster that does not carry them all, once
each, is read by the band rule as before. Names are compared with case and surrounding spaces
ignored; nothing else is guessed ("B8" is not "B08", "nir" not "B08").
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

from . import bands as _bands

__all__ = ["bands_by_name", "check_names", "common_named_bands", "declared_names", "named_bands", "names_note",
           "unnamed_read_note"]


def _key(name: object) -> str:
    return str(name).strip().lower() if name is not None else ""


# Descriptions that number a band rather than name it ("Band 1", as some tools write by default):
# they say where a band lies in its file, not what it holds, so they are never recorded.
_NUMBERED = re.compile(r"band[ _-]?\d+")


def check_names(names: Sequence[object], count: int, where: str = "band_names") -> list[str]:
    """``names`` as a list of strings, refused (``ValueError``) unless it holds ``count`` names,
    none empty and no two alike (case and surrounding spaces ignored)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ValueError(f"{where} must be a list of {count} band names, got {names!r}")
    out = list(names)
    if len(out) != count or any(not isinstance(n, str) or not n.strip() for n in out):
        raise ValueError(f"{where} must be {count} non-empty band names (one per input band, in the order "
                         f"the model reads them), got {list(out)!r}")
    keys = [_key(n) for n in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{where} {out!r} names a band twice")
    return out


def named_bands(descriptions: Sequence[str | None] | None, names: Sequence[str] | None,
                channels: int | None = None) -> tuple[int, ...] | None:
    """The band numbers (counted from 1) whose ``descriptions`` are ``names``, in the order of
    ``names`` (a model's ``backbone.band_names``); ``None`` unless every name is found on exactly
    one band, and there are as many names as the model of ``channels`` bands reads (3 for ``None``)."""
    if not names or not descriptions or len(names) != (channels or 3):
        return None
    keys = [_key(d) for d in descriptions]
    out = []
    for name in names:
        hits = [i + 1 for i, k in enumerate(keys) if k and k == _key(name)]
        if len(hits) != 1:
            return None
        out.append(hits[0])
    return tuple(out)


def common_named_bands(headers: Sequence[object], names: Sequence[str] | None,
                       channels: int | None = None) -> tuple[int, ...] | None:
    """The bands (counted from 1) a dataset reads by a model's band ``names``: those
    :func:`named_bands` finds in every image's descriptions, when they lie at the same numbers in
    all of them; else ``None`` (the band rule then reads, or refuses, each image).
    ``headers``: :class:`~rrsis.data.headers.ImageHeader`."""
    found = {named_bands(getattr(h, "descriptions", ()), names, channels) for h in headers}
    return found.pop() if len(found) == 1 and None not in found else None


def declared_names(headers: Sequence[object], bands: _bands.Bands = None,
                   channels: int | None = None) -> list[str] | None:
    """The descriptions of the bands a model reads from these images (``bands``, ``channels`` as
    :func:`~rrsis.data.read_image` reads them), when every image describes them alike, each band
    with a name of its own; else ``None``. ``headers``: :class:`~rrsis.data.headers.ImageHeader`."""
    found = None
    for h in headers:
        described = getattr(h, "descriptions", ())
        read = h.bands_read(bands, channels) if described and not h.palette else None
        if read is None:
            return None
        if h.bands == 1 and channels in (None, 3):
            return None  # grey repeated to three bands: no band has a name of its own
        here = [described[b - 1] if b <= len(described) else None for b in read]
        try:
            here = check_names(here, len(read))
        except ValueError:
            return None
        if any(_NUMBERED.fullmatch(_key(n)) for n in here):
            return None
        if found is not None and [_key(n) for n in here] != [_key(n) for n in found]:
            return None
        found = found or here
    return found


def names_note(descriptions: Sequence[str | None] | None, names: Sequence[str]) -> str:
    """Why a raster was not read by a model's band ``names``: what it describes, and which names
    it lacks or holds twice (appended to the band rule's refusal)."""
    keys = [_key(d) for d in descriptions or ()]
    described = [d.strip() for d in descriptions or () if d and d.strip()]
    lacking = [n for n in names if keys.count(_key(n)) != 1]
    found = f"its bands are described {', '.join(described)}" if described else "its bands have no descriptions"
    return (f"the model reads bands described {', '.join(names)} (backbone.band_names, from its training "
            f"images); {found}, so {', '.join(lacking)} cannot be found by name (once each)")


def unnamed_read_note(descriptions: Sequence[str | None] | None, names: Sequence[str] | None,
                      alpha: Sequence[bool], channels: int | None, where: str, declared: bool = False) -> str | None:
    """What the readers warn (one line) when a model recording band ``names`` is given a raster of
    its band count (``alpha``: which bands are declared alpha) that describes its bands otherwise:
    it is read by the band rule (file order), not by name. ``None`` when the names are found, the
    count differs (the band rule refuses), the raster describes nothing (numbered bands aside), or
    an RGB model reads the red, green and blue it ``declared``."""
    if (declared and channels in (None, 3)) or not names or len(names) != (channels or 3) \
            or named_bands(descriptions, names, channels) is not None:
        return None
    read = [d for d, a in zip(descriptions or (), alpha) if not a]
    if len(read) != (channels or 3) or not any(_key(d) and not _NUMBERED.fullmatch(_key(d)) for d in read):
        return None
    return (f"{where}: {names_note(descriptions, names)}: its bands are read by position (file order, declared "
            "colours aside), which may not be the model's; choose them with bands= (--bands) in the model's order")


def bands_by_name(descriptions: Sequence, colorinterp: Sequence[str], bands: tuple | None, names: Sequence | None,
                  channels: int | None, where: str) -> tuple | None:
    """The bands a raster file is read with: ``bands`` when given, else those its ``descriptions`` give
    the model's ``names`` (:func:`named_bands`), in the model's order. A raster of another band count
    than the model's is refused, naming what its bands are called; one of the right count described
    otherwise is read by position (``None``), with a warning. ``colorinterp``: GDAL's colour
    interpretation name of each band (``"alpha"``, ``"red"``, ...)."""
    if bands is not None or names is None or len(names) != (channels or 3):
        return bands
    bands = named_bands(descriptions, names, channels)
    alpha = [c == "alpha" for c in colorinterp]
    if bands is None and channels not in (None, 3):
        try:  # the band rule's refusal of the file's band count, with what its bands are called
            _bands.raster_bands(alpha, None, channels, where, names=names)
        except ValueError as exc:
            raise ValueError(f"{exc}; {names_note(descriptions, names)}") from None
    declared = _bands.declared_rgb(list(colorinterp), descriptions) is not None
    if note := unnamed_read_note(descriptions, names, alpha, channels, where, declared):
        warnings.warn(note, UserWarning, stacklevel=3)  # same count, other names: read by position
    return bands
