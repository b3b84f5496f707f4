"""``segment_scene``: one call from a model, a scene and expressions to masks and files."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..data.expressions import check_expressions
from ..data.io import Scale
from ..models.base import threshold_mask
from .infer import SceneOptions, predict_strips
from .read import Scene, open_scene
from .write import MaskWriter, PolygonCollector, pixel_area_m2, write_overlay

__all__ = ["SceneResult", "output_paths", "segment_scene"]


@dataclass
class SceneResult:
    """What one expression gave on one scene.

    Attributes:
        text: the expression.
        mode: the mode that ran (``auto`` resolved).
        mask: bool ``[H, W]`` when kept in memory (see ``return_mask``), else ``None``.
        area_px: foreground pixels.
        area_m2: foreground area in m² (``None`` when the scene has no usable CRS).
        n_polygons: polygons in the GeoJSON (``None`` when none was written).
        files: ``kind → path`` of the files written (``mask``, ``geojson``, ``overlay``).
        seconds: wall time of this expression.
        shape: ``(H, W)`` of the scene.
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


def output_paths(prefix: str, georeferenced: bool) -> dict[str, str]:
    """Files written for an output prefix: GIS outputs for a georeferenced scene, PNGs otherwise."""
    if georeferenced:
        return {"mask": f"{prefix}_mask.tif", "geojson": f"{prefix}.geojson",
                "overlay": f"{prefix}_overlay.png"}
    return {"mask": f"{prefix}_mask.png", "overlay": f"{prefix}_overlay.png"}


def _progress(desc: str):
    from tqdm.auto import tqdm

    return lambda total: tqdm(total=total, desc=desc, unit="tile", leave=False, dynamic_ncols=True)


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
    options: SceneOptions | None = None,
    **option_overrides: Any,
) -> list[SceneResult]:
    """Segment what each expression names in a scene of any size.

    Args:
        model: an rrsis model with a tokenizer.
        scene: a path (GeoTIFF/COG/JP2/... through rasterio; PNG/JPEG without it), a PIL image,
            a numpy array, or an open :class:`~rrsis.scene.read.Scene`.
        texts: one expression or several (each encoded once and reused by every tile).
        mode: ``auto``, ``global``, ``tiles`` or ``global-local`` (see :mod:`rrsis.scene.infer`).
        threshold: foreground-probability threshold.
        out: output prefix. A georeferenced scene gets ``PREFIX_mask.tif``, ``PREFIX.geojson``
            and ``PREFIX_overlay.png``; any other ``PREFIX_mask.png`` and ``PREFIX_overlay.png``.
            With several expressions, ``PREFIX_1``, ``PREFIX_2``, … .
        bands: band numbers counted from 1 (as in ``model.predict``), see
            :func:`~rrsis.scene.read.open_scene`.
        scale: value scaling for 16-bit or float scenes, with ``model.predict``'s meaning
            (``"dtype"``, ``"max"``, ``"minmax"`` or a divisor).
        stretch: percentile stretch of a raster when ``scale`` is not given
            (:func:`~rrsis.scene.read.open_scene`).
        probabilities: the mask file holds the probability scaled to 0–255 instead of 0/255.
        geojson_crs: ``"EPSG:4326"`` (RFC 7946, default), ``"native"`` or any CRS string.
        simplify: polygon simplification tolerance in pixels.
        return_mask: keep each mask in memory (default: only when ``out`` is ``None``).
        progress: a progress bar over tiles.
        options: a :class:`~rrsis.scene.infer.SceneOptions`; ``**option_overrides`` replace
            its fields (``tile=``, ``overlap=``, ``pixel_ratio=``, ``gate_threshold=``, …).

    Returns:
        One :class:`SceneResult` per expression.
    """
    texts_list = check_expressions(texts)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if getattr(model, "tokenizer", None) is None:
        raise ValueError("this model has no tokenizer; set model.tokenizer (see model.predict)")
    opt = replace(options or SceneOptions(), mode=mode, **option_overrides)
    own = not isinstance(scene, Scene)
    sc = open_scene(scene, bands=bands, scale=scale, stretch=stretch) if own else scene
    try:
        opt = opt.resolved(model, sc.height, sc.width)
        if out is not None and geojson_crs != "native" and sc.georeferenced:
            from rasterio.crs import CRS
            from rasterio.errors import CRSError

            try:
                CRS.from_user_input(geojson_crs)
            except (CRSError, ValueError) as exc:
                raise ValueError(f"geojson_crs {geojson_crs!r}: {exc}") from None
        keep = (out is None) if return_mask is None else bool(return_mask)
        return [_one(model, sc, text, opt, threshold,
                     None if out is None else (str(out) if len(texts_list) == 1 else f"{out}_{i + 1}"),
                     probabilities, geojson_crs, simplify, keep, progress)
                for i, text in enumerate(texts_list)]
    finally:
        if own:
            sc.close()


def _one(model, sc: Scene, text: str, opt: SceneOptions, threshold: float, prefix: str | None,
         probabilities: bool, geojson_crs: str, simplify: float, keep: bool,
         progress: bool) -> SceneResult:
    import torch

    from ..pictures import save_png

    t0 = time.time()
    tok = model.tokenizer([text])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        encoded = model.encode_text(tok["input_ids"].to(device), tok["attention_mask"].to(device))
    paths = output_paths(prefix, sc.georeferenced) if prefix is not None else {}
    mask = np.zeros((sc.height, sc.width), bool) if keep or (paths and not sc.georeferenced) else None
    writer = MaskWriter(paths["mask"], sc) if paths and sc.georeferenced else None
    polygons = PolygonCollector(sc, simplify) if writer is not None else None
    area = 0
    ok = False
    try:
        bar = _progress(text[:30]) if progress else None
        for r0, p, valid in predict_strips(sc, model, encoded, opt, bar):
            m = threshold_mask(p, threshold)
            area += int(m.sum())
            if mask is not None:
                mask[r0:r0 + m.shape[0]] = m
            if writer is not None:
                vals = np.round(p * 255) if probabilities else np.where(m, 255, 0)
                writer.write(r0, vals, valid)
                polygons.add(r0, m)
        ok = True
    finally:
        model.train(was_training)
        if writer is not None:
            writer.close(ok)
    n_poly = None
    if writer is not None:
        fc = polygons.write(paths["geojson"], geojson_crs, {"expression": text})
        n_poly = len(fc["features"])
        write_overlay(paths["overlay"], sc, paths["mask"])
    elif paths:
        save_png(mask.astype(np.uint8) * 255, paths["mask"])
        write_overlay(paths["overlay"], sc, mask, max_side=max(sc.height, sc.width))
    px_m2 = pixel_area_m2(sc)
    if px_m2 is not None:
        area_m2 = area * px_m2
    elif n_poly is not None and sc.crs is not None:
        area_m2 = sum(f["properties"]["area_m2"] or 0.0 for f in fc["features"])
    else:
        area_m2 = None
    return SceneResult(text=text, mode=opt.mode, mask=mask if keep else None, area_px=area,
                       area_m2=area_m2, n_polygons=n_poly, files=dict(paths),
                       seconds=time.time() - t0, shape=(sc.height, sc.width))
