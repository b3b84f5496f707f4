"""The truth :func:`~rrsis.scene.evaluate.evaluate_scene` scores against: labelled polygons placed
on each scene's pixel grid.

The polygons are read by the code :func:`~rrsis.scene.chips.write_chips` reads them with
(:mod:`~rrsis.scene.labelled`): reprojected to the scene's CRS, clipped to it. Every
distinct expression (spaces collapsed, case ignored) is one query per scene whose target is the
union of its polygons there. Several scenes take one vector file over all of them (each feature
counted on every scene its polygon overlaps, clipped to that scene) or one file per scene, named by
a template (``labels/{stem}.gpkg``: ``{stem}`` the stem the scene's outputs are named by, its file
name without extension (:func:`~rrsis.scene.gdal_names.name_stem`: ``area`` for
``/vsigzip/d/area.tif.gz``, ``two_second`` for ``GPKG:d/two.gpkg:second``), ``{id}`` its id). Each distinct labels file is read once, however many scenes it covers
(:func:`read_truths`).
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass, field
from typing import Any

from .aoi import AOIOutsideError, open_aoi_scene
from .gdal_names import name_stem
from .labelled import LabelledFeatures, read_labels
from .read import open_scene
from .region.sources import SceneSource, is_gdal_url
from .write import pixel_area_m2

__all__ = ["SKIPS", "Truth", "check_one", "is_many", "labels_for", "read_truth", "read_truths"]

SKIPS = ("no_text", "no_area", "outside", "outside_aoi", "no_pixel")
TEMPLATE_FIELDS = ("stem", "id")
_GLOB = re.compile(r"[*?\[]")


@dataclass
class Truth:
    """One scene's targets: ``[{"text", "geometry" (pixels of the masks' grid), "features"}]``.

    ``outside`` counts the features with text and a polygon that miss the scene, ``placed`` holds
    the ids of those that do not; ``aoi_error`` is set when the area of interest misses the scene.
    """

    scene: str
    labels: str
    text_field: str
    targets: list[dict[str, Any]]
    skipped: dict[str, int]
    px_area: float | None
    size: tuple[int, int]
    found: int = 0
    outside: int = 0
    placed: set = field(default_factory=set)
    aoi_error: AOIOutsideError | None = None


def is_many(scene: Any) -> bool:
    """Whether ``scene`` names several scenes (or may): a list, a glob, a list file, STAC JSON;
    a single path (or URL) is one scene."""
    if not isinstance(scene, (str, os.PathLike)):
        return True
    text = os.fspath(scene)
    if is_gdal_url(text):
        return False
    low = text.lower()
    return text.startswith("@") or low.endswith((".txt", ".json")) or (
        not os.path.exists(text) and bool(_GLOB.search(text)))


def labels_for(sources: list[SceneSource], labels: str | os.PathLike) -> list[str]:
    """Each scene's labels file: ``labels`` itself, or the template filled with the scene's
    ``{stem}`` / ``{id}``; every file checked to exist (before any computing)."""
    labels = os.fspath(labels)
    fields = [f for _, f, _, _ in string.Formatter().parse(labels) if f is not None]
    if not fields:
        if not is_gdal_url(labels) and not os.path.isfile(labels):
            raise FileNotFoundError(f"labels {labels}: file not found")
        return [labels] * len(sources)
    wrong = [f for f in fields if f not in TEMPLATE_FIELDS]
    if wrong:
        raise ValueError(f"labels template {labels}: unknown field {{{wrong[0]}}}; a template names each scene's "
                         "labels file with {stem} (the stem of the scene's outputs: its file name without extension) "
                         "or {id} (its id)")
    out = []
    for s in sources:
        path = labels.format(stem=name_stem(s.uri), id=s.id)  # the stem its outputs take
        if not is_gdal_url(path) and not os.path.isfile(path):
            raise FileNotFoundError(f"labels {path} (for scene {s.uri}, from the template {labels}): file not found")
        out.append(path)
    return out


def read_truths(sources: list[SceneSource], files: list[str], text_field: str, layer: str | None, crs: Any,
                area: Any) -> list[Truth]:
    """Each scene's :class:`Truth`, each distinct labels file read once (a file over many scenes
    costs one read plus, per scene, the features near it: :class:`~rrsis.scene.labelled.LabelledFeatures`)."""
    read: dict[str, LabelledFeatures] = {}
    out = []
    for s, f in zip(sources, files, strict=True):  # a loop, not a comprehension: one frame to the caller
        out.append(read_truth(s.uri, f, text_field, layer, crs, area, stacklevel=4, read=read))
    return out


def read_truth(scene: str, labels: str, text_field: str, layer: str | None, crs: Any, area: Any,
               stacklevel: int = 3, read: dict[str, LabelledFeatures] | None = None) -> Truth:
    """The scene's targets from ``labels``, each expression's union of polygons in the pixel
    coordinates of the grid the masks cover (the area of interest's window with one). Raises
    only on what no scene could have (no georeference, no CRS, a missing field); what a scene
    may lack (features outside it, no expression on it) is counted in the :class:`Truth`.
    ``read``: the labels files read so far, by path (:func:`~rrsis.scene.labelled.read_labels`),
    ``labels`` added when missing; default: the file is read for this scene alone."""
    from shapely import union_all
    from shapely.affinity import translate

    from .vector import polygonal_part

    skipped = dict.fromkeys(SKIPS, 0)
    with open_scene(scene, stretch=None, crs=crs) as sc:
        if sc.in_memory or not sc.georeferenced:
            raise ValueError(f"{scene}: evaluating needs a georeferenced raster read by rasterio (a GeoTIFF, COG "
                             "or VRT with a CRS and a transform) to place the labels on")
        px_area = pixel_area_m2(sc)  # None: no one pixel area, each piece measured on the ellipsoid
        read = {} if read is None else read
        if labels not in read:  # after the scene's own checks, as one scene's reading always came
            read[labels] = read_labels(labels, text_field, layer)
        found = read[labels].place(sc, skipped)
        size = (sc.height, sc.width)
    truth = Truth(scene, labels, text_field, [], skipped, px_area, size, found=len(found), outside=skipped.pop("outside"),
                  placed={fid for fid, *_ in found})
    groups: dict[str, dict[str, Any]] = {}
    for _fid, text, key, pix in found:
        g = groups.setdefault(key, {"text": text, "parts": []})
        g["parts"].append(pix)
    window = None
    if area is not None and groups:  # the grid the masks cover: the area's window
        try:
            sc, window = open_aoi_scene(scene, area, crs=crs, stretch=None)
        except AOIOutsideError as exc:
            truth.aoi_error = exc
            skipped["outside_aoi"] = len(groups)
            return truth
        sc.close()
    for g in groups.values():
        parts = g["parts"]
        if window is not None:  # each feature's part inside the area, on the window's grid
            r0, c0 = window.window[:2]
            parts = [polygonal_part(translate(p, -c0, -r0).intersection(window.pixels)) for p in parts]
            parts = [p for p in parts if not p.is_empty and p.area > 0]
            if not parts:
                skipped["outside_aoi"] += 1
                continue
        truth.targets.append({"text": g["text"], "geometry": union_all(parts), "features": len(parts)})
    return truth


def check_one(truth: Truth) -> None:
    """The errors of a scene whose labels file is its own: features outside it, no expression,
    no target inside the area of interest."""
    scene, labels, skipped = truth.scene, truth.labels, truth.skipped
    if truth.outside:  # an error, not a count: no mode can find a target off the scene
        raise ValueError(f"{labels}: {truth.outside} feature(s) lie entirely outside {scene} "
                         f"({truth.size[1]} x {truth.size[0]} pixels); remove them from the labels (or clip the file "
                         f"to the scene) so that every expression is asked where its target is")
    if not truth.found:
        raise ValueError(f"{labels}: no expression found: no feature with text in field {truth.text_field!r} and a "
                         "polygon (skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
    if truth.aoi_error is not None:
        raise truth.aoi_error
    if not truth.targets:
        raise ValueError(f"{labels}: no expression's target lies inside the area of interest")

