"""Which whole-scene mode, and which model, answers a user's own scene best: ``evaluate_scene``.

The ground truth is a vector file of polygons drawn over a georeferenced scene, each with the
expression that names it: the input :func:`~rrsis.scene.chips.write_chips` takes, read by the same
code (:mod:`~rrsis.scene.labelled`). Every distinct expression (spaces collapsed, case
ignored) is one query whose target is the union of its polygons. Each mode runs through
:func:`~rrsis.scene.api.segment_scene`, the path ``rrsis predict`` takes, into a temporary folder;
its mask GeoTIFFs are read back strip by strip and the truth is rasterised onto the same grid
(pixel centres, ``rasterio.features.rasterize``), so intersection and union are counted in
bounded memory whatever the scene's size. Pixels the mask marks as nodata (the scene's nodata, and
outside an area of interest) count for neither.

Several scenes (a list, a glob, a list file, STAC JSON: what
:func:`~rrsis.scene.region.segment_scenes` takes) are scored one after another with the same
model and pooled (:mod:`~rrsis.scene.evaluate_record`); their labels are one vector file over all
of them or one file per scene (:mod:`~rrsis.scene.evaluate_labels`).

``naive`` is the baseline that always stands beside the modes asked for: non-overlapping tiles of
the model's ``image_size``, each predicted alone, which is ``mode="tiles"`` with ``overlap=0`` and
the default tile (the last row and column of tiles, flush with the scene's edge, overlap their
neighbours and are blended with them as the tiles mode blends).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .aoi import area_of_interest
from .api import check_outputs, output_paths, output_prefixes, segment_scene
from .evaluate_labels import Truth, check_one, is_many, labels_for, read_truths
from .evaluate_record import ExpressionScore, ModeScore, SceneEvaluation, SceneScore, pool, score
from .infer import MODES, SceneOptions
from .outputs import model_fingerprint, read_record
from .read import GDAL_ENV, require_geo
from .region.entries import one_asset
from .region.sources import SceneSource, is_gdal_url, resolve_scenes, scene_id

__all__ = ["DEFAULT_EVAL_MODES", "EVAL_MODES", "ExpressionScore", "ModeScore", "SceneEvaluation", "SceneScore",
           "evaluate_scene"]

EVAL_MODES = (*MODES, "naive")
DEFAULT_EVAL_MODES = ("auto", "naive")
_STRIP_PIXELS = 1 << 22  # pixels of a strip read back at a time (a few such arrays are held)


def check_modes(modes: str | Sequence[str]) -> list[str]:
    """The modes asked for, in order without repeats, with ``naive`` added when missing."""
    if isinstance(modes, str):
        modes = [modes]
    modes = list(modes)
    if not modes:
        raise ValueError(f"modes is empty: give some of {', '.join(EVAL_MODES)}")
    for m in modes:
        if m not in EVAL_MODES:
            close = difflib.get_close_matches(str(m), EVAL_MODES, n=1)
            raise ValueError(f"mode {m!r}: expected one of {', '.join(EVAL_MODES)}"
                             + (f"; did you mean {close[0]!r}?" if close else ""))
    out = list(dict.fromkeys(modes))
    return out if "naive" in out else [*out, "naive"]


def need_geo() -> None:
    """Raise an ``ImportError`` naming the ``geo`` extra unless rasterio, shapely and pyogrio import."""
    require_geo("evaluating on a scene")
    try:
        import pyogrio  # noqa: F401
        import shapely  # noqa: F401
    except ImportError:
        raise ImportError('evaluating on a scene needs shapely and pyogrio: pip install "rrsis[geo]"') from None


def evaluate_scene(model: Any, scene: Any, labels: str | os.PathLike, *, text_field: str = "text",
                   layer: str | None = None, modes: str | Sequence[str] = DEFAULT_EVAL_MODES,
                   threshold: float = 0.5, aoi: Any = None, aoi_crs: Any = None,
                   keep_predictions: str | os.PathLike | None = None, overwrite: bool = False,
                   bands: Any = None, scale: Any = None, stretch: Any = "auto", crs: Any = None,
                   progress: bool = False, load: dict[str, Any] | None = None, asset: str | None = None,
                   **options: Any) -> SceneEvaluation:
    """Score whole-scene modes on georeferenced scenes against their labelled polygons.

    Args:
        model: an rrsis model with a tokenizer, or a saved directory / Hub id, loaded with
            :func:`rrsis.from_pretrained` once the labels are read (a bad labels file fails first).
        scene: a georeferenced raster (GeoTIFF, COG, VRT) with a CRS and a transform; or several,
            as :func:`~rrsis.scene.region.segment_scenes` takes them: a list of paths, a quoted
            glob (``"tiles/*.tif"``), a ``@list.txt`` / ``.txt`` list, STAC item or
            item-collection JSON, or :class:`~rrsis.scene.region.SceneSource` s.
        labels: a vector file (GeoPackage, GeoJSON, shapefile) of polygons, each with its
            expression in ``text_field``; in any CRS (reprojected to the scene's); features
            without text or without a polygonal geometry are skipped and counted. With several
            scenes: one file over all of them (each feature counted on every scene its polygon
            overlaps, clipped to it; an expression is a query on each scene where it has a
            target), or a template naming each scene's own file: ``{stem}`` the stem the scene's
            outputs take, its file name without extension (``area`` for ``/vsigzip/d/area.tif.gz``,
            ``two_second`` for ``GPKG:d/two.gpkg:second``), ``{id}`` its id (``"labels/{stem}.gpkg"``).
        text_field, layer: the attribute holding the expressions, and the layer (needed when
            the file has several).
        modes: some of :data:`EVAL_MODES`; ``naive`` (non-overlapping tiles of the model's
            ``image_size``, each alone: ``mode="tiles"``, ``overlap=0``) is always added.
        threshold, aoi, aoi_crs, bands, scale, stretch, crs, progress: as
            :func:`~rrsis.scene.api.segment_scene`'s, the same for every mode. With ``aoi`` only
            its pixels count, and expressions whose target lies outside it are skipped (several
            scenes: so are the scenes it misses).
        keep_predictions: a folder for each mode's outputs (``DIR/MODE/STEM_N_mask.tif``, as
            ``rrsis predict`` names them; several scenes: ``DIR/MODE/<scene id>/``); default: a
            temporary folder, removed.
        overwrite: replace existing outputs in ``keep_predictions``.
        load: keyword arguments of :func:`rrsis.from_pretrained` for a ``model`` given by name
            (``map_location=``, ``revision=``, ``max_params=``, ...).
        asset: several scenes from STAC: the asset key to read (default: the item's ``data`` asset);
            one key (several band assets: segment_scenes' stacks in ``OUT/stacks/`` are scenes here).
        **options: :class:`~rrsis.scene.infer.SceneOptions` fields (``pixel_ratio=``, ``tile=``,
            ``overlap=``, ``global_size=``, ``batch_size=``, ...), the same for every mode but
            ``naive``, which keeps its tile and overlap.

    Returns:
        A :class:`SceneEvaluation`; with several scenes, its modes pooled over every (scene,
        expression) query and :attr:`~SceneEvaluation.scenes` the per-scene breakdown. The scenes
        run one after another, each as one scene runs, with the model loaded once.

    Raises:
        ValueError: an unknown mode (with the closest), a scene without georeference, labels
            without a CRS, a missing text field (naming the fields there are), no expression
            found, features entirely outside the scene (how many; several scenes with one labels
            file: outside every scene), an unknown template field.
        FileNotFoundError: a scene or labels file missing, a glob matching nothing.
        ImportError: the ``geo`` extra is missing.
    """
    asked = check_modes(modes)
    if load and not isinstance(model, (str, os.PathLike)):
        raise ValueError("load= applies to a model given by its path or Hub id, not to a model object")
    known = [f.name for f in dataclasses.fields(SceneOptions) if f.name not in ("mode", "scale")]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ValueError(f"{key}=: not an option of the modes; expected some of {', '.join(known)}"
                             + (f"; did you mean {close[0]!r}?" if close else ""))
    need_geo()
    many = is_many(scene)
    if many:
        sources = (sorted(scene, key=lambda s: s.id) if isinstance(scene, (list, tuple)) and scene
                   and all(isinstance(s, SceneSource) for s in scene)
                   else resolve_scenes(scene, one_asset(asset, "evaluate_scene's asset=")))
        files = labels_for(sources, labels)
    else:
        if asset is not None:
            raise ValueError("asset= chooses a STAC item's asset; this scene is one file")
        sources = [SceneSource("", os.fspath(scene))]  # no id: the record keeps one scene's form
        if not is_gdal_url(sources[0].uri) and not os.path.isfile(sources[0].uri):  # a URL: GDAL's error
            raise FileNotFoundError(f"scene {sources[0].uri}: file not found")
        files = labels_for([SceneSource(scene_id(sources[0].uri), sources[0].uri)], labels)
    model_name = model if isinstance(model, (str, os.PathLike)) else getattr(model, "arch", type(model).__name__)
    area = None if aoi is None else area_of_interest(aoi, aoi_crs)
    truths = read_truths(sources, files, text_field, layer, crs, area)  # every scene's, before any computing
    if many:
        skipped = _check_many(truths, len(sources), labels)
    else:
        check_one(truths[0])
        skipped = truths[0].skipped
    if isinstance(model, (str, os.PathLike)):
        from ..hub import from_pretrained

        model = from_pretrained(model, **(load or {}))
    run = {"threshold": threshold, "bands": bands, "scale": scale, "stretch": stretch, "crs": crs,
           "aoi": area, "progress": progress}
    asking = [(s, t) for s, t in zip(sources, truths, strict=True) if t.targets]
    with tempfile.TemporaryDirectory(prefix="rrsis-evaluate-") as tmp:
        root = tmp if keep_predictions is None else os.fspath(keep_predictions)
        folders = [{m: os.path.join(root, m, s.id) + os.sep if many else os.path.join(root, m) + os.sep
                    for m in asked} for s, _ in asking]
        if keep_predictions is not None:  # before any computing, as rrsis predict checks
            check_outputs([p for (s, t), fs in zip(asking, folders, strict=True) for m in asked
                           for pre in output_prefixes(fs[m], len(t.targets), s.uri)
                           for p in output_paths(pre, True).values()], overwrite,
                          replace="overwrite=True (rrsis evaluate --overwrite)",
                          instead="another keep_predictions folder (--keep-predictions)")
        scores = []
        for (s, t), fs in zip(asking, folders, strict=True):  # one scene after another
            ran = [_run_mode(model, s, m, t, fs[m], run, options, overwrite, keep_predictions is not None)
                   for m in asked]
            per, t.skipped["no_pixel"] = _drop_unseen([r[0] for r in ran])
            scores.append(SceneScore(id=s.id, scene=s.uri, labels=os.path.abspath(t.labels), area_unit=_unit(t.px_area),
                                     modes=per, skipped=t.skipped, pixel_ratio=ran[0][1]))
    skipped["no_pixel"] = sum(s.skipped["no_pixel"] for s in scores)
    if not any(s.modes[0].expressions for s in scores):
        where = f"any of the {len(sources)} scenes" if many else sources[0].uri
        raise ValueError(f"{labels}: no expression's target covers a valid pixel of {where} (skipped: "
                         + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
    if many:  # a scene whose every target lies on its nodata has nothing left to ask
        skipped["scenes"] += sum(not s.modes[0].expressions for s in scores)
        scores = [s for s in scores if s.modes[0].expressions]
    opts = {"threshold": threshold, "aoi": None if area is None else str(area), "bands": bands, "scale": scale,
            "stretch": stretch, "crs": None if crs is None else str(crs),
            **options}
    ratios = {s.pixel_ratio for s in scores}
    if options.get("pixel_ratio", "auto") == "auto":  # the number auto was, where every scene agrees
        opts["pixel_ratio"] = ratios.pop() if len(ratios) == 1 and None not in ratios else "auto"
    units = {s.area_unit for s in scores}
    common = {"labels": os.path.abspath(labels), "text_field": text_field, "layer": layer,
              "model": os.fspath(model_name), "area_unit": units.pop() if len(units) == 1 else "mixed",
              "options": _jsonable(opts), "skipped": skipped, "model_sha256": model_fingerprint(model)}
    if not many:
        return SceneEvaluation(scene=os.path.abspath(sources[0].uri), modes=scores[0].modes, **common)
    given = [os.fspath(scene)] if isinstance(scene, (str, os.PathLike)) else [
        s.uri if isinstance(s, SceneSource) else os.fspath(s) for s in scene]
    return SceneEvaluation(scene=" ".join(given), modes=pool(scores), scenes=scores, **common)


def _check_many(truths: list[Truth], n: int, labels: Any) -> dict[str, int]:
    """The skips of several scenes, summed; the errors: features on no scene (one labels file),
    a scene's own file's errors (a template), no expression on any scene."""
    one_file = len({t.labels for t in truths}) == 1
    if one_file:
        if not any(t.found for t in truths) and not truths[0].outside:
            check_one(truths[0])  # no expression in the file
        eligible = truths[0].found + truths[0].outside  # on each scene, a feature is either on it or off it
        missed = eligible - len(set().union(*(t.placed for t in truths)))
        if missed:
            raise ValueError(f"{labels}: {missed} feature(s) lie entirely outside every scene ({n} scenes); "
                             "remove them from the labels (or clip the file to the scenes) so that every "
                             "expression is asked where its target is")
    else:
        for t in truths:
            if t.outside or not t.found:
                check_one(t)
    skipped = {k: sum(t.skipped[k] for t in truths) for k in truths[0].skipped}
    if one_file:  # the file's features without text or area, once (not once per scene)
        skipped.update(no_text=truths[0].skipped["no_text"], no_area=truths[0].skipped["no_area"])
    skipped["scenes"] = sum(not t.targets for t in truths)
    if skipped["scenes"] == n:
        raise ValueError(f"{labels}: no expression's target lies inside the area of interest on any of the {n} "
                         "scenes")
    return skipped


def _unit(px_area: float | None) -> str:
    return "m²"  # a planar pixel area, or (px_area None) each piece measured on the ellipsoid


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v if v is None or isinstance(v, (bool, int, float, str, list))
                else str(v)) for k, v in d.items()}


def _run_mode(model, source: SceneSource, mode: str, truth: Truth, folder: str, run: dict, options: dict,
              overwrite: bool, keep: bool) -> tuple[ModeScore, float | None]:
    """The mode's score on the scene, and the pixel_ratio it ran at (its masks' record)."""
    opts = dict(options)
    if mode == "naive":
        opts.update(tile=None, overlap=0.0)
    targets = truth.targets
    t0 = time.perf_counter()
    results = segment_scene(model, source.uri, [t["text"] for t in targets], mode="tiles" if mode == "naive" else mode,
                            out=folder, overwrite=overwrite, return_mask=False, **run, **opts)
    # The time to the answer: reading, the model, the mode's choosing; not writing the files.
    seconds = time.perf_counter() - t0 - sum(r.write_seconds for r in results)
    ground = truth.px_area is None  # no one pixel area: each piece on the ellipsoid, as segment_scene measures
    rows = []
    for r, t in zip(results, targets, strict=True):
        i, u, p, g, p_m2, g_m2 = _count(r.files["mask"], t["geometry"], ground)
        if not ground:
            p_m2, g_m2 = p * truth.px_area, g * truth.px_area
        rows.append(ExpressionScore(text=t["text"], iou=i / u if u else 0.0, intersection_px=i, union_px=u,
                                    predicted_px=p, true_px=g, predicted_area=p_m2, true_area=g_m2,
                                    features=t["features"], files=dict(r.files) if keep else {},
                                    scene=source.id or None))
    ratio = ((read_record(results[0].files["mask"]) or {}).get("settings") or {}).get("options", {}).get("pixel_ratio")
    return score(mode, results[0].mode, seconds, rows), ratio if isinstance(ratio, (int, float)) else None


def _drop_unseen(scores: list[ModeScore]) -> tuple[list[ModeScore], int]:
    """Expressions whose truth covers no valid pixel (the same on every mode's grid) left out."""
    seen = [r.true_px > 0 for r in scores[0].expressions]
    return [score(s.mode, s.ran, s.seconds, [r for r, k in zip(s.expressions, seen, strict=True) if k])
            for s in scores], seen.count(False)


def _count(mask_path: str, geometry: Any, ground: bool = False) -> tuple[int, int, int, int, float, float]:
    """``(intersection, union, predicted, true)`` pixels of a mask GeoTIFF against a geometry in
    its pixel coordinates, strip by strip; the mask's nodata pixels count for neither. Then the
    predicted and true areas in m² measured on the ellipsoid with ``ground`` (strip by strip, as
    :func:`~rrsis.scene.vector.pixels_area_m2` adds them up), else 0.0."""
    import rasterio
    from affine import Affine
    from rasterio.features import rasterize
    from rasterio.windows import Window

    from .vector import pixels_area_m2

    inter = union = pred = true = 0
    pred_m2 = true_m2 = 0.0
    with rasterio.Env(**GDAL_ENV), rasterio.open(mask_path) as ds:
        block = ds.block_shapes[0][0]  # whole rows of blocks: each block decoded once
        rows = max(1, _STRIP_PIXELS // ds.width)
        rows = rows // block * block if rows >= block else rows
        for r0 in range(0, ds.height, rows):
            h = min(rows, ds.height - r0)
            win = Window(0, r0, ds.width, h)
            valid = ds.read_masks(1, window=win) > 0
            p = (ds.read(1, window=win) > 0) & valid
            g = rasterize([(geometry, 1)], out_shape=(h, ds.width), transform=Affine.translation(0, r0), fill=0,
                          dtype="uint8").astype(bool) & valid
            inter += int(np.count_nonzero(p & g))
            union += int(np.count_nonzero(p | g))
            pred += int(np.count_nonzero(p))
            true += int(np.count_nonzero(g))
            if ground:
                strip = ds.transform * Affine.translation(0, r0)
                pred_m2 += pixels_area_m2(p, strip, ds.crs)
                true_m2 += pixels_area_m2(g, strip, ds.crs)
    return inter, union, pred, true, pred_m2, true_m2
