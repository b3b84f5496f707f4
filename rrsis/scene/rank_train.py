"""Training the scene ranker of the *ranked* mode (:mod:`rrsis.scene.rank`).

Examples come from large scenes with expressions and their target masks (``rrsis synth --large``
writes them): the model's tiled pass gives the components, a component is a positive when at
least half of its pixels are the expression's target. The model stays frozen; only the ranker
learns (binary cross-entropy per component). The decision threshold is then calibrated on a
held-back share of the examples (the one maximising gIoU over components, folded into the
score's bias so that 0.5 is the operating point, as ``segment_scene``'s ``threshold`` expects).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ..heads.scene_ranker import SceneRanker
from .components import Components
from .infer import SceneOptions
from .rank import scene_components
from .read import open_scene

__all__ = ["component_labels", "component_objects", "ranker_examples", "relabel", "train_ranker"]


def component_labels(components: Components, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positive [n] bool, target pixels [n])``: a component is positive when at least half
    of its pixels lie in ``target [H, W]``."""
    if target.shape != (components.height, components.width):
        raise ValueError(f"target {target.shape} does not match the scene {(components.height, components.width)}")
    n = len(components)
    lab = components.label_image()
    inside = np.bincount(lab[target], minlength=n + 1)[1:].astype(np.float64)
    return inside >= 0.5 * components.area, inside


def component_objects(components: Components, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(object [n], pixels [n])``: the object id (``labels [H, W]``, 0 background) covering at
    least half of each component and how many of its pixels it covers (0, 0 where none does)."""
    n = len(components)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    lab = components.label_image()
    fg = lab > 0
    k = int(labels.max()) + 1
    counts = np.bincount((lab[fg] - 1).astype(np.int64) * k + labels[fg].astype(np.int64),
                         minlength=n * k).reshape(n, k)
    counts[:, 0] = 0
    obj, px = counts.argmax(1), counts.max(1).astype(np.float64)
    keep = px >= 0.5 * components.area
    return np.where(keep, obj, 0), np.where(keep, px, 0.0)


def relabel(example: dict[str, Any], text: str, words: torch.Tensor, word_mask: torch.Tensor,
            targets: Sequence[int], target_px: int) -> dict[str, Any]:
    """Another expression over an example's components (its ``objects`` known): the labels of
    the components whose object is one of ``targets``. Cheap data for the ranker: the tiled pass
    is not run again (its probabilities stay those of the example's own expression)."""
    hit = np.isin(example["objects"], list(targets)) & (example["objects"] > 0)
    return {**example, "text": text, "words": words, "word_mask": word_mask, "labels": hit,
            "inside": np.where(hit, example["object_px"], 0.0), "target_px": int(target_px)}


def ranker_examples(model, scenes: Iterable[tuple[Any, Sequence[tuple[str, np.ndarray | None]]]],
                    options: SceneOptions | None = None, candidate_threshold: float = 0.5,
                    log=print) -> list[dict[str, Any]]:
    """One example per (scene, expression): components' features, labels, the word features.

    Args:
        model: the frozen rrsis model (with its tokenizer).
        scenes: ``(scene, [(text, target bool [H, W] or None), ...])``, optionally a third item,
            the scene's object ids ``[H, W]`` (then each example knows its components' objects,
            for :func:`relabel`); ``scene`` as :func:`~rrsis.scene.read.open_scene` takes it.
        options: the tiled pass (default :class:`SceneOptions`, mode tiles).
        candidate_threshold: the tiled pass's probability that makes a candidate pixel.
    """
    opt = options or SceneOptions(mode="tiles")
    out = []
    model.eval()
    t0 = time.time()
    for source, exprs, *more in scenes:
        objects = more[0] if more else None
        with open_scene(source, channels=getattr(model, "in_chans", None)) as sc:
            o = opt.resolved(model, sc.height, sc.width, sc)
            for text, target in exprs:
                tok = model.tokenizer([text])
                with torch.no_grad():
                    enc = model.encode_text(tok["input_ids"], tok["attention_mask"])
                comps = scene_components(sc, model, enc, o, candidate_threshold)
                tgt = np.zeros((sc.height, sc.width), bool) if target is None else np.asarray(target, bool)
                pos, inside = component_labels(comps, tgt)
                out.append({"features": comps.features(o.tile * o.pixel_ratio), "labels": pos, "inside": inside,
                            "area": comps.area.copy(), "target_px": int(tgt.sum()), "text": text,
                            "words": enc.words[0].float().cpu(), "word_mask": enc.mask[0].float().cpu(),
                            "bands": comps.bands, "tile": o.tile, "candidate_threshold": candidate_threshold})
                if objects is not None:
                    out[-1]["objects"], out[-1]["object_px"] = component_objects(comps, objects)
        if log is not None:
            log(f"ranker examples: {len(out)} ({time.time() - t0:.0f} s)")
    return out


def _batch(examples: list[dict], idx: Sequence[int]) -> tuple[torch.Tensor, ...]:
    n = max(max(len(examples[i]["features"]) for i in idx), 1)
    L = max(len(examples[i]["word_mask"]) for i in idx)
    F = examples[idx[0]]["features"].shape[1]
    D = examples[idx[0]]["words"].shape[1]
    feats, present, labels = torch.zeros(len(idx), n, F), torch.zeros(len(idx), n, dtype=torch.bool), torch.zeros(len(idx), n)
    words, wmask = torch.zeros(len(idx), L, D), torch.zeros(len(idx), L)
    for b, i in enumerate(idx):
        e = examples[i]
        k, m = len(e["features"]), len(e["word_mask"])
        feats[b, :k] = torch.from_numpy(e["features"])
        present[b, :k] = True
        labels[b, :k] = torch.from_numpy(e["labels"].astype(np.float32))
        words[b, :m], wmask[b, :m] = e["words"], e["word_mask"]
    return feats, present, labels, words, wmask


def _giou(examples: list[dict], probs: list[np.ndarray], threshold: float) -> float:
    """Mean IoU of the selected components' pixels against the target (empty on empty: 1)."""
    out = []
    for e, p in zip(examples, probs):
        sel = p > threshold
        inter = float(e["inside"][sel].sum())
        union = float(e["area"][sel].sum()) + e["target_px"] - inter
        out.append(inter / union if union else 1.0)
    return float(np.mean(out)) if out else 0.0


def train_ranker(examples: list[dict], *, steps: int = 1500, batch_size: int = 16, lr: float = 1e-3,
                 seed: int = 0, calibrate_fraction: float = 0.2, log=print, **config: Any) -> SceneRanker:
    """Train a :class:`SceneRanker` on :func:`ranker_examples` (the model frozen, already run).

    Args:
        examples: the examples (features, labels, word features).
        steps, batch_size, lr, seed: AdamW with a cosine schedule.
        calibrate_fraction: share of examples held back to choose the decision threshold.
        config: :class:`SceneRanker` arguments (``dim``, ``heads``, ``layers``; ``bands``,
            ``tile``, ``text_dim`` and ``candidate_threshold`` default to the examples').
    """
    if not examples:
        raise ValueError("no ranker examples")
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    n_cal = round(calibrate_fraction * len(examples)) if len(examples) >= 10 else 0
    cal, train = [examples[i] for i in order[:n_cal]], [examples[i] for i in order[n_cal:]]
    e0 = examples[0]
    config = {"bands": e0["bands"], "tile": e0["tile"], "text_dim": e0["words"].shape[1],
              "features": e0["features"].shape[1], "candidate_threshold": e0.get("candidate_threshold", 0.5),
              **config}
    torch.manual_seed(seed)
    ranker = SceneRanker(**config)
    allf = np.concatenate([e["features"] for e in train if len(e["features"])] or [np.zeros((1, len(ranker.feature_mean)))])
    ranker.feature_mean.copy_(torch.from_numpy(allf.mean(0)).float())
    ranker.feature_std.copy_(torch.from_numpy(allf.std(0) + 1e-3).float())
    n_pos = sum(int(e["labels"].sum()) for e in train)
    n_all = sum(len(e["labels"]) for e in train)
    pos_weight = torch.tensor(min(max((n_all - n_pos) / max(n_pos, 1), 1.0), 10.0))
    opt = torch.optim.AdamW(ranker.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    ranker.train()
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(len(train), (min(batch_size, len(train)),), generator=g).tolist()
        feats, present, labels, words, wmask = _batch(train, idx)
        logits = ranker(feats, present, words, wmask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits[present], labels[present], pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ranker.parameters(), 1.0)
        opt.step()
        sched.step()
        if log is not None and (step + 1) % max(steps // 5, 1) == 0:
            log(f"ranker step {step + 1}/{steps}: loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    ranker.eval()
    if cal:
        probs = [_probs(ranker, e) for e in cal]
        grid = np.linspace(0.05, 0.95, 19)
        best = max(grid, key=lambda t: _giou(cal, probs, t))
        with torch.no_grad():  # shift the score so that the chosen threshold reads as 0.5
            ranker.score.bias -= float(np.log(best / (1 - best)))
        if log is not None:
            log(f"ranker threshold {best:.2f} on {len(cal)} held-back examples: gIoU {_giou(cal, probs, best):.3f}")
    return ranker


@torch.no_grad()
def _probs(ranker: SceneRanker, e: dict) -> np.ndarray:
    if not len(e["features"]):
        return np.zeros(0)
    feats, present, _, words, wmask = _batch([e], [0])
    return torch.sigmoid(ranker(feats, present, words, wmask))[0].numpy()
