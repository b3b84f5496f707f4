"""Global-to-local inference over a :class:`~rrsis.scene.read.Scene`, strip by strip.

Internally a prediction is the foreground-minus-background logit ``d`` (2-class softmax is
``sigmoid(d)``, and bilinear resampling commutes with the difference), so resampling ``d`` and
then applying the sigmoid gives what ``model.predict`` gives for the whole image.

- *global*: the scene resampled to ``global_size``² (a square, as ``model.predict`` squeezes it),
  one forward pass through the model's ``preprocess``; on a scene held in memory the model's
  ``postprocess`` resizes the logits back (exactly ``model.predict``'s mask), on a raster read
  window by window ``d`` is resampled back strip by strip (``align_corners=False``, as
  ``predict``), in bounded memory.
- *tiles*: a work grid of the scene divided by ``pixel_ratio``; square tiles of ``tile`` work pixels
  at stride ``tile·(1−overlap)``, batched, all with the one encoding of the expression; each
  tile's ``d`` is weighted by a smooth window (``sin²``, floored at ``1e-3`` so scene borders
  covered by one tile edge still count) and the weighted mean is taken, so seams vanish.
- *global-local*: the global pass says *which* object; the tiles delineate it. Rule:
  ``gate = dilate(p_global > gate_threshold, gate_dilation global pixels)``, resampled to the
  scene (soft edges); ``p = gate · (w · p_tiles + (1 − w) · p_global)`` with ``w =
  local_weight`` (``local_rule="mean"``), or ``p = gate · (w · max(p_tiles, p_global) + (1 − w)
  · p_global)`` (``"max"``: the tiles can only add to what the global pass found); tiles whose
  footprint holds no gate pixel are not run. Knobs in :class:`SceneOptions`.

In every tiled pass a tile that reaches no valid scene pixel (all nodata) is not run either: its
output would be masked anyway (:mod:`~rrsis.scene.tile_rows`).

Output comes as strips of full-resolution rows; only the tile rows a strip needs are held."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import InitVar, dataclass
from typing import Any

import numpy as np
import torch

from .._finite import check_finite_logits
from ..data.transforms import smallest_input_side
from .gsd import auto_pixel_ratio
from .read import Scene
from .reading import parse_read
from .tile_rows import TileRows, blend_window, scene_box, tile_starts

__all__ = ["LOCAL_RULES", "MODES", "SceneOptions", "blend_window", "fuse", "global_gate", "global_pass",
           "global_rows", "predict_strips", "resample_rows", "scene_box", "tile_starts"]

MODES = ("auto", "global", "tiles", "global-local", "object", "ranked")
LOCAL_RULES = ("mean", "max")
_EMPTY = -30.0  # logit difference of pixels no tile covered (probability ~1e-13)


@dataclass
class SceneOptions:
    """How a scene is segmented.

    Args:
        mode: ``"auto"`` (global when the longer side is at most ``auto_max_global``; above,
            ``object``: see the README's "Whole scenes and regions" and
            ``benchmarks/results/large-scene-v5-*``), ``"global"``, ``"tiles"``,
            ``"global-local"``, ``"object"`` (the tiles propose components, the ones the tiles
            are surest of are the answer, as many as ``objects``) or ``"ranked"`` (the model's scene ranker picks among
            the same components: :mod:`rrsis.scene.rank`).
        tile: tile side in model pixels (default: the model's ``image_size``).
        overlap: tile overlap fraction in [0, 0.9].
        pixel_ratio: scene pixels per model pixel in the tiled pass (>= 1 downsamples fine GSD), or
            ``"auto"`` (default): the model's training GSD over the scene's, else 1 (:mod:`rrsis.scene.gsd`).
        global_size: input side of the global pass (default: the model's ``image_size``).
        gate_threshold: global probability that marks the named object (global-local).
        gate_dilation: dilation of that mark, in global-pass pixels.
        local_weight: weight of the tiles' probability inside the gate (the rest: global).
        local_rule: ``"mean"`` (the weighted mean above) or ``"max"`` (the tiles' term is
            ``max(p_tiles, p_global)``: tiles add pixels, never remove them).
        auto_max_global: longer side up to which ``auto`` means global (default: 2 × tile).
        objects: how many components the ``object`` mode keeps: ``"auto"`` (default) reads it
            from each expression (:func:`rrsis.scene.reading.objects_named`: "the two storage
            tanks" 2, "all ships" or "the ships" every one, otherwise 1), a whole number keeps
            that many for every expression, ``"all"`` keeps every component.
        read: what else the ``object`` mode reads from each expression (:mod:`~rrsis.scene.reading`),
            some of ``"place"`` ("in the north-west": the components there), ``"relation"``
            ("next to the white plane", "north of the road": a second tiled pass finds the other
            object, and the surest pair of it and components in that relation, the nearer first,
            is kept; :mod:`~rrsis.scene.relation`), ``"extreme"`` ("the largest": the most extreme
            of the few surest) and ``"colour"`` ("the white tank": the nearest colour among the
            surest; :mod:`~rrsis.scene.colour`), all by default (a tuple or a string); ``"none"``: the surest ones.
        batch_size: tiles per forward pass.
        strip_rows: output rows produced at a time (bounds memory with the scene width).
    """

    mode: str = "auto"
    tile: int | None = None
    overlap: float = 0.25
    pixel_ratio: float | str = "auto"
    global_size: int | None = None
    # Chosen on held-out generated scenes by benchmarks/large_scene.py (README, "Large scenes").
    gate_threshold: float = 0.4
    gate_dilation: int = 1
    local_weight: float = 0.75
    local_rule: str = "max"
    auto_max_global: int | None = None
    objects: int | str = "auto"
    read: tuple[str, ...] | str = ("place", "relation", "extreme", "colour")
    batch_size: int = 8
    strip_rows: int = 256
    scale: InitVar[Any] = None  # the old name of pixel_ratio: refused with a pointer to it

    def __post_init__(self, scale: Any) -> None:
        if scale is not None:
            raise TypeError(f"SceneOptions(scale={scale!r}): the scene pixels per model pixel are called pixel_ratio "
                            "now; scale means value scaling only (segment_scene's and model.predict's scale=)")
        self.read = parse_read(self.read)  # one form, so that equal settings compare equal

    def resolved(self, model, height: int, width: int, scene: Any = None) -> SceneOptions:
        """Defaults filled from the model (and ``scene``: ``pixel_ratio="auto"``) and checked; no ``auto`` left."""
        div = int(getattr(model, "size_divisor", 32))
        low = smallest_input_side(div, getattr(model, "feature_stride", None))  # 64 for the zoo's models
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}: expected one of {', '.join(MODES)}")
        # None means the model's image_size; 0 or a negative side is an error, not the default.
        for name, flag, v in (("tile", "--tile", self.tile), ("global_size", "--image-size", self.global_size)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low or v % div):
                raise ValueError(f"{name}={v!r} ({flag}) must be a positive multiple of {div}, at least {low} (the "
                                 f"model's smallest input side; None: its image_size, {model.image_size})")
        tile = int(model.image_size if self.tile is None else self.tile)
        gsize = int(model.image_size if self.global_size is None else self.global_size)
        if not 0 <= self.overlap <= 0.9:
            raise ValueError(f"overlap must be in [0, 0.9], got {self.overlap}")
        mode = self.mode
        if mode == "auto":
            limit = 2 * tile if self.auto_max_global is None else self.auto_max_global
            mode = "global" if max(height, width) <= limit else "object"
        # the choice told only where tiles read the scene: global resizes it whole, as training did
        ratio = auto_pixel_ratio(model, scene, say=mode != "global") if self.pixel_ratio == "auto" else self.pixel_ratio
        if isinstance(ratio, (bool, str)) or not ratio >= 1.0:
            raise ValueError(f"pixel_ratio must be >= 1 (scene pixels per model pixel) or 'auto', got {ratio!r}")
        if not 0 < self.gate_threshold < 1 or self.gate_dilation < 0 or not 0 <= self.local_weight <= 1:
            raise ValueError("gate_threshold must be in (0, 1), gate_dilation >= 0, local_weight in [0, 1]")
        if self.local_rule not in LOCAL_RULES:
            raise ValueError(f"local_rule {self.local_rule!r}: expected one of {', '.join(LOCAL_RULES)}")
        if self.auto_max_global is not None and not self.auto_max_global >= 1:
            raise ValueError(f"auto_max_global must be >= 1 (None: 2 x tile), got {self.auto_max_global}")
        if self.batch_size < 1 or self.strip_rows < 1:
            raise ValueError("batch_size and strip_rows must be >= 1")
        if self.objects not in ("auto", "all") and (isinstance(self.objects, bool) or not isinstance(
                self.objects, (int, np.integer)) or self.objects < 1):
            raise ValueError(f"objects must be a whole number >= 1 (the object mode's components kept), "
                             f"'auto' (read from each expression) or 'all', got {self.objects!r}")
        if mode == "ranked" and getattr(model, "scene_ranker", None) is None:
            raise ValueError("mode 'ranked' needs a model with a scene ranker (model.scene_ranker, saved as "
                             "scene_ranker.json beside the model; train one with rrsis.scene.rank_train)")
        return SceneOptions(**{**self.__dict__, "mode": mode, "tile": tile, "global_size": gsize, "pixel_ratio": ratio})


def resample_rows(src: np.ndarray, offset: int, src_h: int, rows: tuple[int, int], out_w: int,
                  fy: tuple[float, float], fx: tuple[float, float]) -> np.ndarray:
    """Bilinear rows ``rows`` of a map whose source row ``y`` is ``a·r + b`` (``fy = (a, b)``;
    ``fx`` likewise for columns), from ``src`` holding source rows ``offset…``. Coordinates
    outside the source clamp to its edge, so strips computed apart agree with one whole pass."""
    r = np.arange(rows[0], rows[1], dtype=np.float64)
    y = np.clip(fy[0] * r + fy[1], 0, src_h - 1)
    y0 = np.floor(y).astype(np.int64)
    y1 = np.minimum(y0 + 1, src_h - 1)
    wy = (y - y0).astype(np.float32)[:, None]
    if y0.min() < offset or y1.max() >= offset + src.shape[0]:
        raise RuntimeError("resample_rows: source rows not held")  # a bug, not bad input
    col = src[y0 - offset] * (1 - wy) + src[y1 - offset] * wy
    c = np.arange(out_w, dtype=np.float64)
    x = np.clip(fx[0] * c + fx[1], 0, src.shape[1] - 1)
    x0 = np.floor(x).astype(np.int64)
    x1 = np.minimum(x0 + 1, src.shape[1] - 1)
    wx = (x - x0).astype(np.float32)[None, :]
    return col[:, x0] * (1 - wx) + col[:, x1] * wx


def _sigmoid(d: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-d))


class _Net:
    """The model with one encoded expression: read pixels ``[h, w, 3]`` → logits ``[B, 2, h, w]``
    through the model's own :meth:`~rrsis.models.base.RRSISModel.preprocess` (no resize here:
    the windows come at the model's size; the one normalisation). A model with a scene-position
    encoding (``model.uses_position``) is given each window's box in the scene."""

    def __init__(self, model, text) -> None:
        self.model, self.text = model, text
        self.uses_position = bool(getattr(model, "uses_position", False))

    @torch.no_grad()
    def logits(self, images: list[np.ndarray] | list[torch.Tensor],
               boxes: list[tuple[float, float, float, float]] | None = None) -> torch.Tensor:
        read = [im if isinstance(im, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                for im in images]
        pix, _ = self.model.preprocess(read, image_size=int(read[0].shape[-1]))
        where = [torch.tensor(boxes, dtype=torch.float32, device=pix.device)] if boxes is not None and self.uses_position else []
        return check_finite_logits(self.model, self.model.forward_with_text(pix, self.text, *where).logits.float())

    def __call__(self, images: list[np.ndarray], boxes=None) -> np.ndarray:
        """``d = logit_fg − logit_bg`` ``[B, h, w]``; ``boxes``: ``(left, top, right, bottom)``
        of each window in scene fractions."""
        logits = self.logits(images, boxes)
        return (logits[:, 1] - logits[:, 0]).cpu().numpy()


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        p = np.pad(out, 1)
        out = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return out


def global_gate(d_global: np.ndarray, threshold: float, dilation: int) -> np.ndarray:
    """The global-local gate at global-pass resolution: ``p_global > threshold`` dilated by
    ``dilation`` pixels, as float32 (resampled to the scene, its edges are soft)."""
    return _dilate(_sigmoid(d_global) > threshold, dilation).astype(np.float32)


def fuse(p_global: np.ndarray, p_local: np.ndarray, gate: np.ndarray, local_weight: float,
         rule: str = "mean") -> np.ndarray:
    """The global-local rule on scene pixels: ``gate · (w · q + (1 − w) · p_global)`` with
    ``q = p_local`` (``rule="mean"``) or ``q = max(p_local, p_global)`` (``"max"``)."""
    q = p_local if rule == "mean" else np.maximum(p_local, p_global)
    return gate * (local_weight * q + (1 - local_weight) * p_global)


def _global_logits(scene: Scene, model, text, size: int) -> torch.Tensor:
    return _Net(model, text).logits([scene.read_resized((size, size))[0]])


def global_pass(scene: Scene, model, text, size: int) -> np.ndarray:
    """The global pass alone: the foreground-minus-background logit ``d [size, size]`` of the
    whole scene resampled to ``size``² (what *global* and *global-local* start from)."""
    logits = _global_logits(scene, model, text, size)
    return (logits[0, 1] - logits[0, 0]).cpu().numpy()


def global_rows(size: int, height: int, width: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(fy, fx)`` for :func:`resample_rows`: scene pixel centre → global-pass pixel of a
    ``size``² pass over a ``height × width`` scene (``align_corners=False``, as ``predict``)."""
    return (size / height, 0.5 * size / height - 0.5), (size / width, 0.5 * size / width - 0.5)


def predict_strips(scene: Scene, model, text, opt: SceneOptions, progress_factory=None,
                   counts: dict | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(row0, probability [h, W] float32, valid [h, W] bool)`` strips covering the scene.

    Args:
        scene: the scene.
        model: an rrsis model (``encode_text`` / ``forward_with_text``, ``preprocess`` /
            ``postprocess``, ``image_size``).
        text: the expression encoded once (:class:`~rrsis.models.base.TextFeatures`).
        opt: resolved options (:meth:`SceneOptions.resolved`).
        progress_factory: ``total -> bar`` with ``update(n)`` and ``close()``, or ``None``.
        counts: a dict whose ``"tiles_skipped"`` grows by the tiles not run for want of a valid
            pixel (:mod:`~rrsis.scene.tile_rows`), or ``None``.
    """
    net = _Net(model, text)
    H, W = scene.height, scene.width
    mode = opt.mode
    g = opt.global_size
    p_global = gate = None
    p_whole = None
    if mode in ("global", "global-local"):
        logits = _global_logits(scene, model, text, g)
        d_global = (logits[0, 1] - logits[0, 0]).cpu().numpy()
        ac_y, ac_x = global_rows(g, H, W)
        if mode == "global" and scene.in_memory:
            # The scene is in memory already: the model's own postprocessing at the scene's
            # size, so global mode gives exactly model.predict's probabilities.
            (p_whole,) = model.postprocess(logits, [(H, W)], output="probability")
        if mode == "global-local":
            gate = global_gate(d_global, opt.gate_threshold, opt.gate_dilation)
    tiles = None
    if mode in ("tiles", "global-local"):
        s = opt.pixel_ratio

        def needed(y0: int, x0: int) -> bool:
            if gate is None:
                return True
            # The tile's footprint in global pixels, one pixel wider for the soft gate edge.
            r0 = max(math.floor(y0 * s * g / H) - 1, 0)
            r1 = min(math.ceil((y0 + opt.tile) * s * g / H) + 1, g)
            c0 = max(math.floor(x0 * s * g / W) - 1, 0)
            c1 = min(math.ceil((x0 + opt.tile) * s * g / W) + 1, g)
            return bool(gate[r0:r1, c0:c1].any())

        bar = None
        tiles = TileRows(scene, net, opt, needed, None)
        if progress_factory is not None:
            bar = progress_factory(tiles.n_tiles)
            tiles.progress = bar
        ty, tx = (1.0 / s, 0.5 / s - 0.5), (1.0 / s, 0.5 / s - 0.5)
    try:
        for r0 in range(0, H, opt.strip_rows):
            r1 = min(r0 + opt.strip_rows, H)
            valid = scene.read_valid((r0, 0, r1, W))
            if p_whole is not None:
                p_global = p_whole[r0:r1]
            elif mode != "tiles":
                p_global = _sigmoid(resample_rows(d_global, 0, g, (r0, r1), W, ac_y, ac_x))
            if tiles is not None:
                last = min(math.floor(ty[0] * (r1 - 1) + ty[1]) + 2, tiles.h)
                tiles.ensure(last)
                p_local = _sigmoid(resample_rows(tiles.held(_EMPTY), tiles.offset, tiles.h, (r0, r1), W, ty, tx))
                tiles.release(math.floor(ty[0] * r1 + ty[1]) - 1)
            if mode == "global":
                p = p_global
            elif mode == "tiles":
                p = p_local
            else:
                p = fuse(p_global, p_local, resample_rows(gate, 0, g, (r0, r1), W, ac_y, ac_x),
                         opt.local_weight, opt.local_rule)
            p = np.where(valid, p, 0.0).astype(np.float32)
            yield r0, p, valid
    finally:
        if tiles is not None and counts is not None:
            counts["tiles_skipped"] = counts.get("tiles_skipped", 0) + tiles.skipped
        if tiles is not None and tiles.progress is not None:
            tiles.progress.close()
