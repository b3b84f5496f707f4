"""Which whole-scene mode, and which model, answers a user's own scene best: ``evaluate_scene``.

The ground truth is a vector file of polygons drawn over a georeferenced scene, each with the
expression that names it: the input :func:`~rrsis.scene.chips.write_chips` takes, read by the same
code (:func:`~rrsis.scene.chips.place_labels`). Every distinct expression (spaces collapsed, case
ignored) is one query whose target is the union of its polygons. Each mode runs through
:func:`~rrsis.scene.api.segment_scene`, the path ``rrsis predict`` takes, into a temporary folder;
its mask GeoTIFFs are read back strip by strip and the truth is rasterised onto the same grid
(pixel centres, ``rasterio.features.rasterize``), so intersection and union are counted in
bounded memory whatever the scene's size. Pixels the mask marks as nodata (the scene's nodata, and
outside an area of interest) count for neither.

``naive`` is the baseline that always stands beside the modes asked for: non-overlapping tiles of
the model's ``image_size``, each predicted alone, which is ``mode="tiles"`` with ``overlap=0`` and
the default tile (the last row and column of tiles, flush with the scene's edge, overlap their
neighbours and are blended with them as the tiles mode blends).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._atomic import atomic_open
from .._version import __version__
from .aoi import area_of_interest, open_aoi_scene
from .api import check_outputs, output_paths, output_prefixes, segment_scene
from .chips import place_labels
from .infer import MODES, SceneOptions
from .read import GDAL_ENV, open_scene, require_geo
from .write import pixel_area_m2

__all__ = ["DEFAULT_EVAL_MODES", "EVAL_MODES", "ExpressionScore", "ModeScore", "SceneEvaluation", "evaluate_scene"]

EVAL_MODES = (*MODES, "naive")
DEFAULT_EVAL_MODES = ("auto", "naive")
_STRIP_PIXELS = 1 << 22  # pixels of a strip read back at a time (a few such arrays are held)
_SKIPS = ("no_text", "no_area", "outside", "outside_aoi", "no_pixel")


@dataclass(frozen=True)
class ExpressionScore:
    """One expression under one mode.

    Attributes:
        text: the expression (its first spelling in the labels file).
        iou: ``intersection_px / union_px``.
        intersection_px, union_px, predicted_px, true_px: pixel counts on the mask's grid.
        predicted_area, true_area: the same areas in :attr:`SceneEvaluation.area_unit`.
        features: the labelled features whose union is the target (with an area of interest: those
            with a part inside it).
        files: with ``keep_predictions``, the files ``segment_scene`` wrote for it (else empty).
    """

    text: str
    iou: float
    intersection_px: int
    union_px: int
    predicted_px: int
    true_px: int
    predicted_area: float
    true_area: float
    features: int
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModeScore:
    """One mode over every expression.

    Attributes:
        mode: the mode asked for (``auto``, ``naive``, ...).
        ran: what ran (``auto`` resolved; ``naive``: ``tiles``).
        miou: mean IoU over the expressions.
        oiou: cumulative intersection over cumulative union.
        precision_at_05: share of expressions with IoU >= 0.5.
        seconds: wall time of the mode's ``segment_scene`` call (every expression).
        expressions: one :class:`ExpressionScore` per expression.
    """

    mode: str
    ran: str
    miou: float
    oiou: float
    precision_at_05: float
    seconds: float
    expressions: list[ExpressionScore]


@dataclass(frozen=True)
class SceneEvaluation:
    """What :func:`evaluate_scene` measured; :meth:`write_json` / :meth:`read_json` round-trip it.

    Attributes:
        scene, labels: the files scored.
        text_field, layer: where the expressions were read.
        model: the model (its path or Hub id when given as one, else its architecture).
        area_unit: ``"m²"`` for a projected CRS, else ``"px"`` (areas in scene pixels).
        modes: one :class:`ModeScore` per mode, in the order run.
        options: the options every mode ran with (threshold, pixel_ratio, aoi, ...).
        skipped: features or expressions left out, by reason: ``no_text``, ``no_area`` (no
            polygonal geometry), ``outside_aoi`` (expressions whose target lies outside the area
            of interest), ``no_pixel`` (expressions whose target covers no valid pixel centre).
        rrsis_version: the version that measured it.
    """

    scene: str
    labels: str
    text_field: str
    layer: str | None
    model: str
    area_unit: str
    modes: list[ModeScore]
    options: dict[str, Any]
    skipped: dict[str, int]
    rrsis_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneEvaluation:
        modes = [ModeScore(**{**m, "expressions": [ExpressionScore(**e) for e in m["expressions"]]})
                 for m in d["modes"]]
        return cls(**{**d, "modes": modes})

    def write_json(self, path: str | os.PathLike) -> None:
        """Write the record atomically (complete or not at all)."""
        with atomic_open(path) as fh:
            json.dump(self.to_dict(), fh, indent=1, allow_nan=False, ensure_ascii=False)
            fh.write("\n")

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> SceneEvaluation:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def table(self) -> str:
        """One row per mode: mIoU, oIoU, P@0.5 (percent), expressions and seconds."""
        rows = [("mode", "ran", "mIoU", "oIoU", "P@0.5", "expressions", "seconds")]
        rows += [(m.mode, m.ran, f"{100 * m.miou:.2f}", f"{100 * m.oiou:.2f}", f"{100 * m.precision_at_05:.2f}",
                  str(len(m.expressions)), f"{m.seconds:.1f}") for m in self.modes]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                         for r in rows)


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


def evaluate_scene(model: Any, scene: str | os.PathLike, labels: str | os.PathLike, *, text_field: str = "text",
                   layer: str | None = None, modes: str | Sequence[str] = DEFAULT_EVAL_MODES,
                   threshold: float = 0.5, aoi: Any = None, aoi_crs: Any = None,
                   keep_predictions: str | os.PathLike | None = None, overwrite: bool = False,
                   bands: Any = None, scale: Any = None, stretch: Any = "auto", crs: Any = None,
                   progress: bool = False, load: dict[str, Any] | None = None, **options: Any) -> SceneEvaluation:
    """Score whole-scene modes on a georeferenced scene against its labelled polygons.

    Args:
        model: an rrsis model with a tokenizer, or a saved directory / Hub id, loaded with
            :func:`rrsis.from_pretrained` once the labels are read (a bad labels file fails first).
        scene: a georeferenced raster (GeoTIFF, COG, VRT) with a CRS and a transform.
        labels: a vector file (GeoPackage, GeoJSON, shapefile) of polygons, each with its
            expression in ``text_field``; in any CRS (reprojected to the scene's); features
            without text or without a polygonal geometry are skipped and counted.
        text_field, layer: the attribute holding the expressions, and the layer (needed when
            the file has several).
        modes: some of :data:`EVAL_MODES`; ``naive`` (non-overlapping tiles of the model's
            ``image_size``, each alone: ``mode="tiles"``, ``overlap=0``) is always added.
        threshold, aoi, aoi_crs, bands, scale, stretch, crs, progress: as
            :func:`~rrsis.scene.api.segment_scene`'s, the same for every mode. With ``aoi`` only
            its pixels count, and expressions whose target lies outside it are skipped.
        keep_predictions: a folder for each mode's outputs (``DIR/MODE/STEM_N_mask.tif``, as
            ``rrsis predict`` names them); default: a temporary folder, removed.
        overwrite: replace existing outputs in ``keep_predictions``.
        load: keyword arguments of :func:`rrsis.from_pretrained` for a ``model`` given by name
            (``map_location=``, ``revision=``, ``max_params=``, ...).
        **options: :class:`~rrsis.scene.infer.SceneOptions` fields (``pixel_ratio=``, ``tile=``,
            ``overlap=``, ``global_size=``, ``batch_size=``, ...), the same for every mode but
            ``naive``, which keeps its tile and overlap.

    Returns:
        A :class:`SceneEvaluation`.

    Raises:
        ValueError: an unknown mode (with the closest), a scene without georeference, labels
            without a CRS, a missing text field (naming the fields there are), no expression
            found, or features entirely outside the scene (how many).
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
    scene, labels = os.fspath(scene), os.fspath(labels)
    for what, path in (("scene", scene), ("labels", labels)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{what} {path}: file not found")
    model_name = model if isinstance(model, (str, os.PathLike)) else getattr(model, "arch", type(model).__name__)
    area = None if aoi is None else area_of_interest(aoi, aoi_crs)
    targets, skipped, px_area = _targets(scene, labels, text_field, layer, crs, area)
    if isinstance(model, (str, os.PathLike)):
        from ..hub import from_pretrained

        model = from_pretrained(model, **(load or {}))
    run = {"threshold": threshold, "bands": bands, "scale": scale, "stretch": stretch, "crs": crs,
           "aoi": area, "progress": progress}
    texts = [t["text"] for t in targets]
    with tempfile.TemporaryDirectory(prefix="rrsis-evaluate-") as tmp:
        root = tmp if keep_predictions is None else os.fspath(keep_predictions)
        folders = {m: os.path.join(root, m) + os.sep for m in asked}
        if keep_predictions is not None:  # before any computing, as rrsis predict checks
            check_outputs([p for m in asked for pre in output_prefixes(folders[m], len(texts), scene)
                           for p in output_paths(pre, True).values()], overwrite)
        scores = [_run_mode(model, scene, m, texts, targets, folders[m], px_area, run, options,
                            overwrite, keep_predictions is not None) for m in asked]
    scores, skipped["no_pixel"] = _drop_unseen(scores)
    if not scores[0].expressions:
        raise ValueError(f"{labels}: no expression's target covers a valid pixel of {scene} (skipped: "
                         + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
    opts = {"threshold": threshold, "aoi": None if area is None else str(area), "bands": bands, "scale": scale,
            "stretch": stretch, "crs": None if crs is None else str(crs),
            **options}
    return SceneEvaluation(scene=os.path.abspath(scene), labels=os.path.abspath(labels), text_field=text_field,
                           layer=layer, model=os.fspath(model_name), area_unit="px" if px_area is None else "m²",
                           modes=scores, options=_jsonable(opts), skipped=skipped)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v if v is None or isinstance(v, (bool, int, float, str, list))
                else str(v)) for k, v in d.items()}


def _targets(scene: str, labels: str, text_field: str, layer: str | None, crs: Any, area: Any):
    """``(targets, skipped, m² per pixel)``: each expression's union of polygons in the
    pixel coordinates of the grid the masks cover (the area of interest's window with one)."""
    from shapely import union_all
    from shapely.affinity import translate

    from .vector import polygonal_part

    skipped = dict.fromkeys(_SKIPS, 0)
    with open_scene(scene, stretch=None, crs=crs) as sc:
        if sc.in_memory or not sc.georeferenced:
            raise ValueError(f"{scene}: evaluating needs a georeferenced raster read by rasterio (a GeoTIFF, COG "
                             "or VRT with a CRS and a transform) to place the labels on")
        px_area = pixel_area_m2(sc)
        if px_area is None:
            warnings.warn(f"{scene}: its pixels have no one ground area in {sc.crs.to_string()} (a geographic "
                          "or area-distorting CRS): areas are given in scene pixels", UserWarning, stacklevel=3)
        found = place_labels(labels, text_field, layer, sc, skipped)
        size = (sc.height, sc.width)
    outside = skipped.pop("outside")  # an error, not a count: no mode can find a target off the scene
    if outside:
        raise ValueError(f"{labels}: {outside} feature(s) lie entirely outside {scene} "
                         f"({size[1]} x {size[0]} pixels); remove them from the labels (or clip the file to the "
                         "scene) so that every expression is asked where its target is")
    if not found:
        raise ValueError(f"{labels}: no expression found: no feature with text in field {text_field!r} and a "
                         "polygon (skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
    groups: dict[str, dict[str, Any]] = {}
    for _fid, text, key, pix in found:
        g = groups.setdefault(key, {"text": text, "parts": []})
        g["parts"].append(pix)
    window = None
    if area is not None:  # the grid the masks cover: the area's window
        sc, window = open_aoi_scene(scene, area, crs=crs, stretch=None)
        sc.close()
    targets = []
    for g in groups.values():
        parts = g["parts"]
        if window is not None:  # each feature's part inside the area, on the window's grid
            r0, c0 = window.window[:2]
            parts = [polygonal_part(translate(p, -c0, -r0).intersection(window.pixels)) for p in parts]
            parts = [p for p in parts if not p.is_empty and p.area > 0]
            if not parts:
                skipped["outside_aoi"] += 1
                continue
        targets.append({"text": g["text"], "geometry": union_all(parts), "features": len(parts)})
    if not targets:
        raise ValueError(f"{labels}: no expression's target lies inside the area of interest")
    return targets, skipped, px_area


def _run_mode(model, scene: str, mode: str, texts: list[str], targets: list[dict], folder: str,
              px_area: float | None, run: dict, options: dict, overwrite: bool, keep: bool) -> ModeScore:
    opts = dict(options)
    if mode == "naive":
        opts.update(tile=None, overlap=0.0)
    t0 = time.perf_counter()
    results = segment_scene(model, scene, texts, mode="tiles" if mode == "naive" else mode, out=folder,
                            overwrite=overwrite, return_mask=False, **run, **opts)
    seconds = time.perf_counter() - t0
    unit = 1.0 if px_area is None else px_area
    rows = []
    for r, t in zip(results, targets, strict=True):
        i, u, p, g = _count(r.files["mask"], t["geometry"])
        rows.append(ExpressionScore(text=t["text"], iou=i / u if u else 0.0, intersection_px=i, union_px=u,
                                    predicted_px=p, true_px=g, predicted_area=p * unit, true_area=g * unit,
                                    features=t["features"], files=dict(r.files) if keep else {}))
    return _score(mode, results[0].mode, seconds, rows)


def _score(mode: str, ran: str, seconds: float, rows: list[ExpressionScore]) -> ModeScore:
    n = len(rows)
    union = sum(r.union_px for r in rows)
    return ModeScore(mode=mode, ran=ran, miou=sum(r.iou for r in rows) / n if n else 0.0,
                     oiou=sum(r.intersection_px for r in rows) / union if union else 0.0,
                     precision_at_05=sum(r.iou >= 0.5 for r in rows) / n if n else 0.0, seconds=seconds,
                     expressions=rows)


def _drop_unseen(scores: list[ModeScore]) -> tuple[list[ModeScore], int]:
    """Expressions whose truth covers no valid pixel (the same on every mode's grid) left out."""
    seen = [r.true_px > 0 for r in scores[0].expressions]
    return [_score(s.mode, s.ran, s.seconds, [r for r, k in zip(s.expressions, seen, strict=True) if k])
            for s in scores], seen.count(False)


def _count(mask_path: str, geometry: Any) -> tuple[int, int, int, int]:
    """``(intersection, union, predicted, true)`` pixels of a mask GeoTIFF against a geometry in
    its pixel coordinates, strip by strip; the mask's nodata pixels count for neither."""
    import rasterio
    from affine import Affine
    from rasterio.features import rasterize
    from rasterio.windows import Window

    inter = union = pred = true = 0
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
    return inter, union, pred, true
