"""``segment_scene``: one call from a model, a scene and expressions to masks and files."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._atomic import json_text
from .._lock import output_lock
from ..data.expressions import check_expressions, expression_problem
from ..data.io import MAX_PIXELS, Scale
from ..models.base import threshold_mask
from .aoi import SceneWindow, area_of_interest, open_aoi_scene
from .colour import recorded_rgb
from .gdal_names import absolute_name, is_gdal_url
from .ground import check_bounds, geojson_target
from .infer import SceneOptions, predict_strips
from .outputs import (
    RESUME,
    check_outputs,
    kept_outputs,
    model_fingerprint,
    output_paths,
    output_prefixes,
    output_record,
    record_tags,
)
from .rank import described, object_strips, ranked_strips
from .read import Scene, open_scene
from .reading import Reading, read_expression
from .tile_rows import tile_progress
from .write import (
    MaskWriter,
    PolygonCollector,
    pixel_area_m2,
    staged_outputs,
    write_overlay,
    writing,
)

__all__ = ["SceneResult", "check_georeference", "check_outputs", "output_paths", "output_prefixes", "segment_scene"]


@dataclass
class SceneResult:
    """What one expression gave on one scene.

    Attributes:
        text: the expression.
        mode: the mode that ran (``auto`` resolved).
        mask: bool ``[H, W]`` when kept in memory (see ``return_mask``), else ``None``.
        area_px: foreground pixels.
        area_m2: foreground ground area in m², ``out=`` or not: pixels × pixel area where the CRS keeps
            planar areas (UTM), else each piece measured on the ellipsoid (EPSG:4326, Web Mercator);
            ``None`` without a CRS, or in a distorting one with neither ``out=`` nor the mask kept.
        n_polygons: polygons in the GeoJSON (``None`` when none was written).
        files: ``kind → path`` of the files written (``mask``, ``geojson``, ``overlay``, and the
            overlay's world file and CRS, ``overlay_world`` and ``overlay_crs``).
        seconds: wall time of this expression.
        write_seconds: of ``seconds``, the time spent writing the files (the mask, polygons and
            overlay); the rest is the prediction's: reading, the model and the mode's choosing.
        shape: ``(H, W)`` of the scene (of the area of interest's window with ``aoi=``).
        window: with ``aoi=``, ``(row0, col0, row1, col1)``: the scene's pixels the outputs
            cover (of the rectified grid for a raster placed by GCPs or RPCs only); ``None`` without.
        objects: in mode ``object``, how many components were asked for (a whole number, or
            ``"all"``), read from the expression under ``objects="auto"``; ``None`` in other modes.
        reading: in mode ``object``, what the choice read from the expression, in words ("2
            objects, the north-west of the scene, largest":
            :meth:`rrsis.scene.reading.Reading.describe`); ``None`` in other modes.
        tiles_skipped: tiles not run because they reach no valid pixel (nodata, masked; their
            probability is background, as the model's would be there); ``None`` in mode ``global``.
        already_done: with ``resume=True``, its files were kept (done before with the same model and
            settings; the numbers are their record's, ``mask`` is ``None``, ``seconds`` 0).
    """

    text: str
    mode: str
    mask: np.ndarray | None
    area_px: int
    area_m2: float | None
    n_polygons: int | None
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    shape: tuple[int, int] = (0, 0)
    window: tuple[int, int, int, int] | None = None
    objects: int | str | None = None
    reading: str | None = None
    write_seconds: float = 0.0
    tiles_skipped: int | None = None
    already_done: bool = False


def segment_scene(
    model,
    scene: Any,
    texts: str | Sequence[str],
    *,
    mode: str = "auto",
    threshold: float = 0.5,
    out: str | os.PathLike | None = None,
    bands: str | Sequence[int] | None = None,
    scale: Scale = None,
    stretch: Any = "auto",
    probabilities: bool = False,
    geojson_crs: str = "EPSG:4326",
    simplify: float = 0.5,
    return_mask: bool | None = None,
    progress: bool = False,
    overwrite: bool = False,
    crs: Any = None,
    aoi: Any = None,
    aoi_crs: Any = None,
    max_pixels: int | None = MAX_PIXELS,
    options: SceneOptions | None = None,
    resume: bool = False,
    on_result: Any = None,
    **option_overrides: Any,
) -> list[SceneResult]:
    """Segment what each expression names in a scene of any size.

    Args:
        model: an rrsis model with a tokenizer.
        scene: a path (GeoTIFF/COG/JP2/... through rasterio; PNG/JPEG without it), a PIL image,
            a numpy array, or an open :class:`~rrsis.scene.read.Scene` (one scene; for a list,
            a glob or STAC items: :func:`~rrsis.scene.region.segment_scenes`).
        texts: one expression or several (each encoded once and reused by every tile).
        mode: ``auto``, ``global``, ``tiles``, ``global-local``, ``object`` or ``ranked`` (:mod:`~rrsis.scene.rank`).
        threshold: foreground-probability threshold.
        out: output prefix. A georeferenced scene gets ``PREFIX_mask.tif`` (a Cloud-Optimized
            GeoTIFF), ``PREFIX.geojson`` and ``PREFIX_overlay.png`` (placed by ``PREFIX_overlay.pgw``
            and ``PREFIX_overlay.png.aux.xml``); any other ``PREFIX_mask.png`` and ``PREFIX_overlay.png``.
            With several expressions, ``PREFIX_1``, ``PREFIX_2``, … . A folder (existing, or
            ending with ``/``) gets ``FOLDER/STEM_mask.tif`` etc., ``STEM`` the scene file's
            (:func:`output_prefixes`). The files of one expression appear together or not at all;
            temporaries a killed run left are removed first. ``.PREFIX.rrsis.lock`` holds the outputs
            for the call: another run on them raises :class:`rrsis._lock.OutputInUseError`.
        bands: band numbers counted from 1 (as in ``model.predict``; :func:`~rrsis.scene.read.open_scene`).
        scale: value scaling for 16-bit or float scenes, as ``model.predict``'s (``"dtype"``, ``"max"``,
            ``"minmax"`` or a divisor); default: the model's ``pixel_scale`` (its training data's,
            recorded by ``rrsis train``) unless ``stretch`` is given.
        stretch: percentile stretch of a raster when no ``scale`` applies (:func:`~rrsis.scene.read.open_scene`).
        probabilities: the mask file holds the probability scaled to 0–255 (``round(255·p)``,
            overviews averaged) instead of 0/255 (overviews by nearest neighbour).
        geojson_crs: ``"EPSG:4326"`` (RFC 7946, default), ``"native"`` or any CRS string.
        simplify: polygon simplification tolerance in pixels (>= 0; 0: exact pixel outlines).
        return_mask: keep each mask in memory (default: only when ``out`` is ``None``).
        progress: a progress bar over tiles.
        overwrite: replace existing output files (default: refuse them, before any computing).
        resume: keep each expression's files that are all there and record the same expression, source,
            model and settings (:mod:`rrsis.scene.outputs`), write the others'; other records are refused.
        on_result: called with each expression's :class:`SceneResult` as soon as its files are in place.
        crs: the CRS of a raster that has a transform but no CRS (e.g. ``"EPSG:32633"``), so
            its outputs are georeferenced; ``"none"`` accepts PNG outputs without georeference.
            Without either, such a raster with ``out`` raises (no silent loss of georeference).
        aoi: an area of interest: only the scene's pixel window that covers it is read and
            segmented, the mode running on that window as on a whole scene. A vector file path
            (GeoJSON, GeoPackage, shapefile: its features unioned, in the file's CRS), a shapely
            geometry, a GeoJSON mapping, bounds ``(minx, miny, maxx, maxy)`` or the string
            ``"minx,miny,maxx,maxy"`` (:func:`~rrsis.scene.aoi.area_of_interest`). The outputs
            cover the window on the scene's own pixel grid (a raster placed by GCPs or RPCs
            only: on its rectified grid, only the window warped); its pixels outside the area are
            nodata in the mask (transparent in the overlay) and polygons are clipped to the
            area. ``scene`` must then be a raster's path. An area that misses the scene raises
            :class:`~rrsis.scene.aoi.AOIOutsideError` with both bounds.
        aoi_crs: the CRS of a geometry, mapping or bounds ``aoi``: default ``EPSG:4326`` (longitude,
            latitude); for a file, only when it has none.
        max_pixels: largest plain image held in memory (see :func:`~rrsis.scene.read.open_scene`).
        options: a :class:`~rrsis.scene.infer.SceneOptions`; ``**option_overrides`` replace its fields
            (``tile=``, ``overlap=``, ``pixel_ratio=``, ``gate_threshold=``, …).

    Returns:
        One :class:`SceneResult` per expression.
    """
    if isinstance(scene, (list, tuple)):
        raise TypeError("segment_scene takes one scene; for a list, a glob or STAC items use rrsis.segment_scenes(model, scenes, texts, out=FOLDER)")
    if aoi is None and aoi_crs is not None:
        raise ValueError("aoi_crs= is the CRS of aoi=; give aoi= too")
    if aoi is not None and isinstance(scene, Scene):
        raise ValueError("aoi= applies when segment_scene opens the scene: give the raster's path, not an open Scene")
    area, kept, held = None if aoi is None else area_of_interest(aoi, aoi_crs), {}, contextlib.ExitStack()  # held: the lock
    texts_list = check_expressions(texts)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if isinstance(simplify, bool) or not isinstance(simplify, (int, float)) or not simplify >= 0:
        raise ValueError(f"simplify must be a tolerance in pixels >= 0 (0: exact outlines), got {simplify!r}")
    if getattr(model, "tokenizer", None) is None:
        raise ValueError("this model has no tokenizer; set model.tokenizer (see model.predict)")
    for i, t in enumerate(texts_list):  # as model.predict warns, before any computing
        problem = expression_problem(model.tokenizer, t, words=True)
        if problem:
            warnings.warn(f"text {i}: {problem}", UserWarning, stacklevel=2)
    opt = replace(options or SceneOptions(), mode=mode, **option_overrides)
    own = not isinstance(scene, Scene)
    if not own and crs is not None:
        raise ValueError("crs= applies when segment_scene opens the scene; give it to open_scene(..., crs=)")
    if scale is None and stretch == "auto":  # the values the model was trained on, when recorded
        scale = getattr(model, "pixel_scale", None)
    read = {"bands": bands, "scale": scale, "stretch": stretch, "max_pixels": max_pixels, "crs": crs,
            "channels": getattr(model, "in_chans", None), "names": getattr(model, "band_names", None)}
    sc, win = open_aoi_scene(scene, area, **read) if area is not None else (open_scene(scene, **read) if own else scene, None)
    recorded_rgb(sc, model)  # an undeclared raster's colours where the model's training images had them
    if getattr(sc, "band_note", None) and getattr(model, "in_chans", 3) == 3 \
            and getattr(sc, "declared", None) is None:  # declared R, G, B are read as a GIS shows them
        warnings.warn(sc.band_note, stacklevel=2)
    if getattr(sc, "rectified", None):  # the outputs' grid is not the file's pixel grid
        warnings.warn(sc.rectified, stacklevel=2)
    try:
        check_bounds(sc)  # with or without out=: no ground area past latitude ±90°
        opt = opt.resolved(model, sc.height, sc.width, sc)
        prefixes = None
        if out is not None:
            check_georeference(sc)
            prefixes = output_prefixes(out, len(texts_list), sc.name)
            held.enter_context(output_lock(output_prefixes(out, 1, sc.name)[0], folder=False, command="rrsis.segment_scene"))
            src = os.fspath(scene) if isinstance(scene, (str, os.PathLike)) else sc.name
            src = absolute_name(src) if os.path.exists(src) or is_gdal_url(src) else src
            digest = model_fingerprint(model)
            settings = {k: v for k, v in read.items() if k != "max_pixels"} | {
                "threshold": threshold, "probabilities": probabilities, "geojson_crs": geojson_crs,
                "simplify": simplify, "aoi": None if area is None else str(area), "options": opt}
            records = [output_record(model, t, src, settings, digest) for t in texts_list]
            kept = kept_outputs(prefixes, sc.georeferenced, records) if resume and not overwrite else {}
            files = [p for i, pre in enumerate(prefixes) if i not in kept
                     for p in output_paths(pre, sc.georeferenced).values()]
            if area is not None and area.path in {os.path.abspath(p) for p in files}:
                raise ValueError(f"{area.path}: an output would replace the area of interest's file; choose "
                                 "another output prefix")
            check_outputs(files, overwrite, resume=RESUME)  # removes a killed run's temporaries first
        written_crs = geojson_target(sc, geojson_crs) if out is not None else geojson_crs  # "native": none to WGS 84
        keep = (out is None) if return_mask is None else bool(return_mask)
        results = []
        for i, text in enumerate(texts_list):
            if prefixes is not None and i in kept and not keep:
                r = SceneResult(text=text, mode=opt.mode, mask=None, already_done=True,
                                files=output_paths(prefixes[i], sc.georeferenced), **_result(kept[i]["result"]))
            else:
                r = _one(model, sc, text, opt, threshold, None if prefixes is None else prefixes[i],
                         probabilities, written_crs, simplify, keep, progress, win,
                         None if prefixes is None else records[i])
            results.append(r)
            if on_result is not None:
                on_result(r)
        return results
    finally:
        held.close()
        if own:
            sc.close()


def check_georeference(sc: Scene) -> None:
    """A raster with a transform but no CRS, or with ground control points that cannot be
    rectified, would lose its place on the map without a word."""
    if sc.gcp_problem and not sc.crs_declined:
        raise ValueError(sc.gcp_problem)
    check_bounds(sc)  # a geographic raster past latitude ±90°
    t = sc.transform
    if sc.crs is None and t is not None and not t.is_identity and not sc.crs_declined:
        raise ValueError(f"{sc.name}: the raster has a transform but no CRS, so its outputs cannot be "
                         "placed on a map; give its CRS with crs= (rrsis predict --crs, e.g. "
                         "EPSG:32633) for a mask GeoTIFF and GeoJSON, or crs='none' (--crs none) for "
                         "PNG outputs without georeference")


def _one(model, sc: Scene, text: str, opt: SceneOptions, threshold: float, prefix: str | None,
         probabilities: bool, geojson_crs: str, simplify: float, keep: bool,
         progress: bool, win: SceneWindow | None = None, record: dict | None = None) -> SceneResult:
    from ..pictures import save_png

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    encoded = _encode(model, text)
    paths = output_paths(prefix, sc.georeferenced) if prefix is not None else {}
    mask = np.zeros((sc.height, sc.width), bool) if keep or (paths and not sc.georeferenced) else None
    area, written = 0, 0.0  # written: seconds spent writing the files
    n_poly = fc = reading = None
    found: dict = {}
    counts: dict = {}  # tiles_skipped
    with staged_outputs(paths, seal="mask" if record is not None else None) as tmp:
        w, writer, strips = time.perf_counter(), None, None
        if paths and sc.georeferenced:
            with writing(paths["mask"]):
                writer = MaskWriter(tmp["mask"], sc, resampling="average" if probabilities else "nearest",
                                    probabilities=probabilities, target=paths["mask"])
        polygons = PolygonCollector(sc, simplify, clip=win and win.pixels) if writer is not None else None
        written += time.perf_counter() - w
        try:
            bar = tile_progress(text[:30]) if progress else None
            if opt.mode == "ranked":
                strips = ranked_strips(sc, model, encoded, opt, bar, inside=win and win.inside, counts=counts)
            elif opt.mode == "object":
                reading, anchor = _reading(model, text, opt)
                opt = replace(opt, objects=reading.objects)
                strips = object_strips(sc, model, encoded, opt, threshold, bar, inside=win and win.inside,
                                       reading=reading, anchor=anchor, report=found, counts=counts)
            else:
                strips = predict_strips(sc, model, encoded, opt, bar, counts)
            for r0, p, valid in strips:
                m = threshold_mask(p, threshold)
                if win is not None:  # the window's pixels outside the area: nodata, never the target
                    inside = win.inside(r0, m.shape)
                    m, valid, p = m & inside, valid & inside, np.where(inside, p, 0.0)
                area += int(m.sum())
                if mask is not None:
                    mask[r0:r0 + m.shape[0]] = m
                if writer is not None:
                    w = time.perf_counter()
                    vals = np.round(p * 255) if probabilities else np.where(m, 255, 0)
                    with writing(paths["mask"]):
                        writer.write(r0, vals, valid)
                    polygons.add(r0, m, p)
                    written += time.perf_counter() - w
        except BaseException:
            if writer is not None:
                writer.discard()
            getattr(strips, "close", lambda: None)()  # its progress bar ends before any message
            raise
        finally:
            model.train(was_training)
        w = time.perf_counter()  # until the files are in place
        if writer is not None:
            fc = polygons.features(geojson_crs, {"expression": text})
            n_poly = len(fc["features"])
        area_m2 = _area_m2(sc, area, fc, mask)
        res = {"area_px": area, "area_m2": area_m2, "n_polygons": n_poly, "shape": [sc.height, sc.width],
               "window": None if win is None else list(win.window),
               "objects": opt.objects if opt.mode == "object" else None, "tiles_skipped": counts.get("tiles_skipped"),
               "reading": None if reading is None else described(reading, found)}
        tags = None if record is None else record_tags({**record, "result": res})
        if writer is not None:
            with writing(paths["mask"]):
                writer.close(tags)
            if record is not None:  # the GeoJSON says what it answers, empty or not
                fc["rrsis"] = {k: record[k] for k in ("expression", "source", "model", "model_sha256")}
            with writing(paths["geojson"]), open(tmp["geojson"], "w", encoding="utf-8") as fh:
                fh.write(json_text(fc))
            with writing(paths["overlay"]):
                write_overlay(tmp["overlay"], sc, str(tmp["mask"]), world_file=tmp["overlay_world"],
                              crs_file=tmp["overlay_crs"], nodata_transparent=win is not None)
        elif paths:
            with writing(paths["mask"]):
                save_png(mask.astype(np.uint8) * 255, tmp["mask"], text=tags)
            with writing(paths["overlay"]):
                write_overlay(tmp["overlay"], sc, mask, max_side=max(sc.height, sc.width))
    written += time.perf_counter() - w
    return SceneResult(text=text, mode=opt.mode, mask=mask if keep else None, files=dict(paths),
                       seconds=time.perf_counter() - t0, write_seconds=written if paths else 0.0, **_result(res))


def _result(res: dict) -> dict:
    """A result record's numbers as :class:`SceneResult` fields."""
    return {**res, "shape": tuple(res["shape"]), "window": None if res["window"] is None else tuple(res["window"])}


def _area_m2(sc: Scene, area: int, fc: dict | None, mask: np.ndarray | None) -> float | None:
    px_m2 = pixel_area_m2(sc)
    if px_m2 is not None:
        return area * px_m2
    if fc is not None and sc.crs is not None:  # None: no metric area (a local grid without a linear unit)
        areas = [f["properties"]["area_m2"] for f in fc["features"]]
        return None if None in areas else sum(areas)
    from .vector import pixels_area_m2

    # no polygons (no out=): the mask's pieces measured as they would be
    return pixels_area_m2(mask, sc.transform, sc.crs) if mask is not None and sc.georeferenced else None


def _encode(model, text: str):
    """``text`` through the model's tokenizer and text encoder, on the model's device."""
    import torch

    tok = model.tokenizer([text])
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.encode_text(tok["input_ids"].to(device), tok["attention_mask"].to(device))


def _reading(model, text: str, opt: SceneOptions):
    """Mode ``object``'s reading of ``text`` under ``opt.read`` / ``opt.objects``, and its
    relation's other object encoded (``None`` without one)."""
    said = read_expression(text)
    reading = Reading(objects=said.objects if opt.objects == "auto" else opt.objects,
                      place=said.place if "place" in opt.read else None,
                      extreme=said.extreme if "extreme" in opt.read else None,
                      relation=said.relation if "relation" in opt.read else None,
                      colour=said.colour if "colour" in opt.read else None)
    return reading, None if reading.relation is None else _encode(model, reading.relation[1])
