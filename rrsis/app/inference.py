"""The app's one way to compute results: :func:`run`, a thin call of
:func:`rrsis.scene.segment_scene` — the API behind ``rrsis predict`` — so the page never predicts
by itself. Plain images (PNG, JPEG, plain TIFF) give a mask PNG and an overlay; a georeferenced
raster gives a mask GeoTIFF, GeoJSON polygons, an overlay and areas in m² (the ``geo`` extra).

This module stays light (no torch at import): ``rrsis app --help`` and the page's checks use it
before any model is loaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..scene.georef import is_georeferenced, tiff_tags

__all__ = ["MODES", "STRETCH", "InputError", "Result", "is_georeferenced", "model_modes", "run", "tiff_tags",
           "value_type", "values_note"]

# What the app serves (rrsis.scene.infer and rrsis.scene.rank document each); the first is the
# page's default: auto, as on the command line (global for a small image, object for a large scene).
# "ranked" only with a model that has a scene ranker: the page offers model_modes(model).
MODES = ("auto", "global", "global-local", "tiles", "object", "ranked")

# How the app reads 16-bit or float values when the model records no pixel scale: the percentile
# stretch segment_scene gives such a GeoTIFF by default, given to plain images (PNG) too.
STRETCH = (2.0, 98.0)

# PIL's modes of images with more than 8 bits a value (16-bit PNG: "I;16"), as numpy types.
_WIDE_MODES = {"I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16", "I;16N": "uint16", "I": "int32",
               "F": "float32"}

class InputError(ValueError):
    """A request the app cannot serve, with a message for the person who made it."""


@dataclass(frozen=True)
class Result:
    """What one expression produced.

    Args:
        text: the expression.
        overlay_png: the image with the mask filled and outlined (a quick-look for large scenes).
        mask_png: the mask, 0/255, at the image's size (plain images).
        area_px: mask pixels.
        seconds: time this expression took (model and files).
        mask_tif: the mask as a GeoTIFF with the input's CRS and transform (georeferenced input).
        geojson: the mask's polygons (georeferenced input).
        area_m2: the mask's area in square metres (georeferenced input).
        mode: the mode that ran (``auto`` resolved).
        window: with an area of interest, ``(row0, col0, row1, col1)``: the scene's pixels read
            and written (the outputs cover this window); ``None`` without.
        objects: in mode ``object``, how many objects were kept at most (a whole number, or
            ``"all"``), read from the expression (:func:`rrsis.scene.objects_named`); ``None``
            in other modes.
        reading: in mode ``object``, what was read from the expression, in words
            (``SceneResult.reading``); ``None`` in other modes.
        values: how an image of 16-bit or float values was read (:func:`values_note`); ``None``
            for 8-bit images.
    """

    text: str
    overlay_png: Path
    mask_png: Path | None
    area_px: int
    seconds: float
    mask_tif: Path | None = None
    geojson: Path | None = None
    area_m2: float | None = None
    mode: str = ""
    window: tuple[int, int, int, int] | None = None
    objects: int | str | None = None
    reading: str | None = None
    values: str | None = None


def value_type(path: str | os.PathLike) -> str | None:
    """The type of an image's values from its header (``"uint8"``, ``"uint16"``, ``"float32"``,
    ...), or None when it cannot be read."""
    tags = tiff_tags(path)
    if tags is not None:
        def first(tag: int, default: int) -> int:
            v = tags.get(tag, default)
            return int(v[0] if isinstance(v, tuple) else v)
        bits = first(258, 8)  # BitsPerSample, SampleFormat
        return "uint8" if bits <= 8 else {2: "int", 3: "float"}.get(first(339, 1), "uint") + str(bits)
    from ..data.io import png16_colour  # a 16-bit RGB(A) PNG: PIL's mode says RGB

    try:
        with Image.open(path) as im:
            wide = im.format == "PNG" and im.mode in ("RGB", "RGBA") and png16_colour(os.fspath(path))
            return "uint16" if wide else _WIDE_MODES.get(im.mode, "uint8")
    except (OSError, SyntaxError, ValueError):
        return None


def values_note(model, path: str | os.PathLike) -> str | None:
    """How :func:`run` reads an image of 16-bit or float values, in words (the model's recorded
    pixel scale, else the :data:`STRETCH`, as a GeoTIFF's by default); None for 8-bit images."""
    kind = value_type(path)
    if kind in (None, "uint8"):
        return None
    scale = getattr(model, "pixel_scale", None)
    how = (f"read with the model's recorded pixel scale ({scale!r}, its training images')" if scale is not None
           else f"stretched {STRETCH[0]:g}–{STRETCH[1]:g} % band by band (the model records no pixel scale)")
    return f"{Path(path).name} holds {kind} values: {how}"


def model_modes(model) -> tuple[str, ...]:
    """The modes of :data:`MODES` that ``model`` can serve: ``ranked`` only when it has a scene
    ranker (``model.scene_ranker``, attached by ``from_pretrained`` from the model's folder)."""
    has_ranker = getattr(model, "scene_ranker", None) is not None
    return tuple(m for m in MODES if m != "ranked" or has_ranker)


def _slug(text: str, n: int = 40) -> str:
    """A download's name from its expression: its letters and digits in any script (with their
    combining marks), lower-cased, each run of anything else (spaces, punctuation, the characters
    Windows, macOS or Linux refuse in a file name) one "-", at most ``n`` characters."""
    keep = [c if c.isalnum() or unicodedata.category(c) in ("Mn", "Mc") else "-"
            for c in unicodedata.normalize("NFC", text.lower())]
    return re.sub("-+", "-", "".join(keep)).strip("-")[:n].strip("-") or "expression"


def run(
    model,
    image_path: str | os.PathLike,
    texts: Sequence[str],
    *,
    mode: str = "auto",
    threshold: float = 0.5,
    workdir: str | os.PathLike,
    bands: str | Sequence[int] | None = None,
    crs: str | None = None,
    aoi: Any = None,
    aoi_crs: str | None = None,
) -> list[Result]:
    """Segment what each expression names in one image or scene; write its files into ``workdir``.

    Args:
        model: a loaded rrsis model with a tokenizer.
        image_path: the uploaded file.
        texts: one or more non-empty expressions.
        mode: one of :data:`MODES` that the model serves (:func:`model_modes`).
        threshold: foreground-probability threshold, in (0, 1).
        workdir: an existing folder for this request's files.
        bands: band numbers counted from 1 the model reads, as many as its ``in_chans``
            (``"1,2,3,4"``); ``None`` or ``""``: the default of :func:`rrsis.segment_scene`.
        crs: the CRS of a raster that has a transform but no CRS (``"EPSG:32633"``), or
            ``"none"`` for outputs without georeference: ``segment_scene``'s ``crs=``, which
            ``rrsis predict --crs`` passes too; ``None`` or ``""``: none given.
        aoi: an area of interest, segment_scene's ``aoi=`` (``rrsis predict --aoi``): bounds
            ``"minx,miny,maxx,maxy"``, a GeoJSON mapping, a vector file's path, a shapely
            geometry or an :class:`~rrsis.scene.aoi.AreaOfInterest`; only the scene's window
            that covers it is read, and the results cover that window (``Result.window``).
            ``None`` or ``""``: the whole scene.
        aoi_crs: the CRS of ``aoi`` (segment_scene's ``aoi_crs=``, ``rrsis predict --aoi-crs``);
            ``None`` or ``""``: EPSG:4326 for bounds and mappings, a file's own.

    Returns:
        One :class:`Result` per expression, in order.

    Raises:
        InputError: a file, mode, CRS, area of interest or expression that cannot be served,
            with the reason.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(model_modes(model))}")
    if mode not in model_modes(model):
        raise InputError("mode 'ranked' needs a model with a scene ranker (scene_ranker.json beside the "
                         "model; train one with rrsis.scene.rank_train) and this model has none; choose "
                         f"one of {', '.join(model_modes(model))}")
    crs = str(crs).strip() if crs is not None else ""
    aoi = None if aoi is None or (isinstance(aoi, str) and not aoi.strip()) else aoi
    aoi_crs = str(aoi_crs).strip() if aoi_crs is not None else ""
    if aoi is not None and not all(importlib.util.find_spec(m) for m in ("rasterio", "shapely")):
        raise InputError('an area of interest needs the geo extra (rasterio, shapely, pyogrio): '
                         'pip install "rrsis[geo]"')
    from ..data.expressions import check_expressions  # light: no torch

    try:
        texts = check_expressions(list(texts))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if is_georeferenced(image_path):
        try:
            import rasterio  # noqa: F401
        except ImportError:
            raise InputError('this is a georeferenced GeoTIFF: reading it needs the geo extra, '
                             'pip install "rrsis[geo]"') from None
    # torch and the model code come with the first request, not with the page.
    from ..scene import segment_scene
    from ..scene.read import PLAIN_SUFFIXES

    # A plain image (PNG) of 16-bit values is read as a GeoTIFF of them: the model's recorded pixel
    # scale, else the stretch (read_image's rule would refuse it without a scale the page cannot give).
    plain = str(image_path).lower().endswith(PLAIN_SUFFIXES)
    stretch = STRETCH if plain and getattr(model, "pixel_scale", None) is None else "auto"
    values = values_note(model, image_path)
    t0 = time.perf_counter()
    prefix = Path(workdir) / "result"
    try:
        found = segment_scene(model, str(image_path), texts, mode=mode, threshold=threshold,
                              out=str(prefix), bands=bands or None, crs=crs or None, aoi=aoi,
                              aoi_crs=aoi_crs or None, stretch=stretch)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from None
    per_text = (time.perf_counter() - t0) / len(found)
    results = []
    for i, r in enumerate(found, 1):
        # Downloads named after the expression: "01_the-red-building_mask.png".
        stem = f"{prefix}_{i}" if len(found) > 1 else str(prefix)
        f = {k: str(Path(v).rename(Path(workdir) / f"{i:02d}_{_slug(r.text)}{v[len(stem):]}"))
             for k, v in r.files.items()}
        results.append(Result(
            text=r.text, overlay_png=Path(f["overlay"]), area_px=r.area_px, area_m2=r.area_m2,
            mask_png=Path(f["mask"]) if f["mask"].endswith(".png") else None,
            mask_tif=Path(f["mask"]) if f["mask"].endswith(".tif") else None,
            geojson=Path(f["geojson"]) if "geojson" in f else None,
            seconds=r.seconds or per_text, mode=r.mode, window=r.window, objects=r.objects,
            reading=r.reading, values=values,
        ))
    return results
