"""Large scenes at training scale: every whole-scene mode beside naive tiles, per expression kind.

Scenes come from :mod:`rrsis.data.synthetic.at_scale` (``rrsis synth --large --train-size``):
objects at the pixel sizes of the model's training scenes, expressions of seven kinds (colour,
region, extreme, relation, multi-target, no-target, direction). Knobs (tile overlap, the gate of
global-local, the pixel ratio of the whole-scene global pass) are chosen on a TUNING set and
reported on a HELD-OUT set drawn with another seed, density and palette.

Rows: naive tiles (non-overlapping ``train_size`` tiles, each through ``model.predict`` alone),
``global``, ``tiles``, ``global-local`` (defaults, and tuned knobs), ``auto`` (what it resolves to
with the defaults) and the candidate ``global-native`` (one global pass over the whole scene at
``side / pixel_ratio``, the largest size allowed by ``--max-global``, so objects keep their
training scale). Metrics: mIoU over expressions with a target, gIoU (mean IoU, empty on empty
counts 1), cIoU (ΣI/ΣU), N-acc and T-acc (GRES: no-target / target expressions whose prediction is
empty / not empty); per kind; seconds and Mpx/s per expression; peak memory in fresh processes.

    python benchmarks/large_scene.py --model /tmp/bigscene-demo/gl-msin/final   # writes results/large-scene-v2-cpu.*
    python benchmarks/large_scene.py --smoke        # tiny random model, checks the script
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results

KINDS = ("colour", "region", "extreme", "relation", "multi", "none", "direction")
OBJECT_ROWS = ("object", "object (no colour)", "object (the surest anchor)", "object (no relation)",
               "object (no extreme)", "object (extreme, median)", "object (paraphrased)", "object (count)", "object (one)")
# Rows whose choice needs the relation's second tiles pass.
NEEDS_ANCHOR = ("object", "object (no colour)", "object (the surest anchor)", "object (no extreme)", "object (extreme, median)",
                "object (paraphrased)")
TRUE_ANCHOR = "object, the true anchor (not a method)"
# Other words for "next to" and "north of" (none in the generator's grammar), for the relation's
# paraphrased row.
NEAR_WORDS = ("beside", "close to", "near", "adjacent to")
SIDE_WORDS = {"north of": "above", "south of": "below", "west of": "to the left of",
              "east of": "on the right side of"}
SCENE_LEVEL = ("region", "extreme", "relation", "direction")
GRID = {"gate_threshold": (0.3, 0.4, 0.5), "gate_dilation": (1, 2, 4),
        "local_weight": (0.5, 0.75, 1.0), "local_rule": ("mean", "max")}
OVERLAPS = (0.25, 0.5)
NATIVE_RATIOS = (1.0, 2.0)
# Tuning and held-out sets differ in seed, density and palette (and the held-out one has 2048² scenes).
TUNE = {"density": 0.3, "palette": {"white": 3.0, "gray": 2.0}}
HELD_OUT = {"density": 0.45, "palette": {"red": 2.0, "blue": 2.0, "orange": 2.0, "gray": 0.5}}


def random_model(size: int):
    """A gl-msin-tiny with random weights and the generator's vocabulary (tests, smoke runs)."""
    import torch

    from rrsis import create_model
    from rrsis.data.synthetic import vocabulary
    from rrsis.demo.settings import DEMO_MODEL
    from rrsis.text import Tokenizer

    tok = Tokenizer.from_words(vocabulary())
    torch.manual_seed(0)
    model = create_model("gl-msin-tiny", **DEMO_MODEL, image_size=size, text_vocab_size=len(tok)).eval()
    model.tokenizer = tok
    return model


def scores(records: list[dict]) -> dict[str, float | int | None]:
    """Referring metrics of ``records`` (``I``, ``U``, ``pred_empty``, ``target_empty``).

    mIoU over samples with a target; gIoU: mean IoU over all samples, a sample with U = 0 (empty
    prediction on an empty target) counting 1; cIoU = ΣI/ΣU; N-acc: share of no-target samples
    predicted empty; T-acc: share of target samples predicted not empty (GRES's definitions).
    ``None`` where a metric has no sample."""
    def mean(v):
        return float(np.mean(v)) if len(v) else None

    ious = [r["I"] / r["U"] if r["U"] else 1.0 for r in records]
    pos = [iou for iou, r in zip(ious, records) if not r["target_empty"]]
    neg = [r["pred_empty"] for r in records if r["target_empty"]]
    tgt = [not r["pred_empty"] for r in records if not r["target_empty"]]
    total_u = sum(r["U"] for r in records)
    return {"n": len(records), "mIoU": mean(pos), "gIoU": mean(ious),
            "cIoU": sum(r["I"] for r in records) / total_u if total_u else None,
            "N-acc": mean(neg), "T-acc": mean(tgt)}


HAZE = {"transmission": 0.65, "airlight": (0.80, 0.82, 0.86), "gains": (1.0, 0.96, 0.86), "gamma": 1.2}
"""A held-out variant (``--haze``): each held-out scene seen through haze, a warm white balance
and a flatter tone curve, ``x ← (gains · (t · x + (1 − t) · airlight)) ** gamma`` on values in
[0, 1], so that no object has the generator's colours: neither the model nor the colour words
were shaped on such scenes."""


def hazy(path: str, haze: dict = HAZE) -> None:
    """Rewrite the 8-bit scene at ``path`` seen through :data:`HAZE`."""
    import rasterio

    with rasterio.open(path) as ds:
        x, profile = ds.read().astype(np.float64) / 255.0, ds.profile
    t = haze["transmission"]
    x = t * x + (1 - t) * np.asarray(haze["airlight"])[:, None, None]
    x = np.clip(x * np.asarray(haze["gains"])[:, None, None], 0, 1) ** haze["gamma"]
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.round(x * 255).astype(np.uint8))


def make_set(out: Path, sizes: list[int], n_per_size: int | list[int], settings: dict, seed: int,
             train_size: int, per_kind: int) -> list[dict]:
    """Write ``n_per_size`` scenes (one count, or one per size) of each size; returns their
    metadata (``path`` and ``labels_path`` added)."""
    from rrsis.data.synthetic.at_scale import LargeSceneSettings, write_scene_at_scale

    metas = []
    counts = [n_per_size] * len(sizes) if isinstance(n_per_size, int) else list(n_per_size)
    if len(counts) != len(sizes):
        raise ValueError(f"{len(counts)} scene counts for {len(sizes)} sizes")
    for size, k in ((size, k) for size, n in zip(sizes, counts) for k in range(n)):
        st = LargeSceneSettings.from_dict({**settings, "size": size, "train_size": train_size, "per_kind": per_kind})
        name = f"s{size}_{k}"
        meta = write_scene_at_scale(out, st, seed=seed + 1000 * k + size, name=name)
        metas.append({**meta, "path": str(out / meta["image"]), "labels_path": str(out / meta["labels"])})
    return metas


# Other phrasings of the generator's place, extreme and count words (none of them in its grammar),
# for the `object (paraphrased)` row: the same tiles pass, the choice read from the paraphrase.
PARAPHRASES = [
    (r"in the north-west|at the top left", "in the upper left part of the image"),
    (r"in the north-east|at the top right", "in the top-right corner of the scene"),
    (r"in the south-west|at the bottom left", "in the lower left corner of the picture"),
    (r"in the south-east|at the bottom right", "at the lower right of the map"),
    (r"in the north\b|at the top\b", "in the northern part of the image"),
    (r"in the south\b|at the bottom\b", "in the lower part of the image"),
    (r"in the west\b|on the left\b", "on the left side of the picture"),
    (r"in the east\b|on the right\b", "on the right-hand side of the scene"),
    (r"in the center|in the middle", "in the centre of the image"),
    (r"\blargest\b", "biggest"), (r"\bnorthernmost\b", "topmost"), (r"\bsouthernmost\b", "bottommost"),
    (r"\bwesternmost\b", "leftmost"), (r"\beasternmost\b", "rightmost"),
    (r"^all (\w+) (\w+s)$", r"the \1 \2"), (r"^all (\w+s)$", r"the \1"),
    (r"^the (two|three|four|five|six|seven) ", lambda m: f"{['two', 'three', 'four', 'five', 'six', 'seven'].index(m.group(1)) + 2} "),
]


def paraphrase(text: str) -> str:
    """``text`` in words the generator never uses ("in the north-west" → "in the upper left part
    of the image", "the largest" → "the biggest", "all ships" → "the ships", "the three ships"
    → "3 ships")."""
    import re

    for pattern, repl in PARAPHRASES:
        text = re.sub(pattern, repl, text)
    return text


def relation_paraphrase(text: str) -> str:
    """``text`` with "next to" in another word (:data:`NEAR_WORDS`, chosen by the text's length)
    and "north of" ... "west of" in others (:data:`SIDE_WORDS`)."""
    for word, other in SIDE_WORDS.items():
        text = text.replace(word, other)
    return text.replace("next to", NEAR_WORDS[len(text) % len(NEAR_WORDS)])


def _sigmoid(d):
    return 1.0 / (1.0 + np.exp(-d))


def full_paraphrase(text: str) -> str:
    """:func:`paraphrase`, then :func:`relation_paraphrase`: every word the reading reads in other words."""
    return relation_paraphrase(paraphrase(text))


def component_rows(rec: dict, image: np.ndarray, model, text, overlap: float) -> None:
    """The component modes on the tiles pass at ``overlap`` (``rec["p_tiles"][overlap]``,
    computed once; ``image``: the scene as the reader gives it): ``object`` (the components the
    expression's reading chooses, as ``segment_scene`` picks them by default: its count, place,
    extreme, relation and colour, the relation's anchor found on its own tiles pass, ``rec["p_anchor"]``),
    ``object (no colour)`` (``read="place,relation,extreme"``, the default before the colour was read),
    ``object (no relation)`` (``read="place"``, the default before the relation was read),
    ``object (no extreme)`` (``read="place,relation"``, the default before the extreme was read),
    ``object (extreme, median)`` (the default with the extreme's first rule: ``extreme_among=None``),
    ``object (paraphrased)`` (the
    default read from :func:`full_paraphrase`), ``object (count)`` (the surest components, as
    many as it names: ``read="none"``), ``object (one)`` (``objects=1, read="none"``) and, not a
    method, the default with the labelled anchor (:data:`TRUE_ANCHOR`); with
    ``model.scene_ranker``, also ``ranked`` (its components scored by the ranker) and the oracle
    selection (the components at least half inside the target: the ceiling of any choice among
    them)."""
    from rrsis.scene.components import ComponentBuilder
    from rrsis.scene.rank import component_scores, object_scores
    from rrsis.scene.rank_train import component_labels
    from rrsis.scene.reading import EVERY, Reading, read_expression
    from rrsis.scene.relation import relate

    h, w = image.shape[:2]
    p = rec["p_tiles"][overlap]

    def components(threshold):
        b = ComponentBuilder(w, image.shape[2], threshold)
        b.add(0, p, image)
        return b.finish(h)

    def related(r, **rule):
        if r.relation is None or r.relation[1] not in rec["p_anchor"]:
            return None
        return relate_to_anchor(comps, rec["p_anchor"][r.relation[1]], r, image, rec["near"], rec.get("cell", 0.0),
                                **rule)

    def chosen(r, rel=None, **rule):
        return comps.paint(0, h, object_scores(comps, r.objects, r, None, rel, **rule)) > 0.5

    t0 = time.perf_counter()
    comps = components(0.5).without_specks(rec.get("cell", 0.0))  # mode object's candidates
    said = read_expression(rec["text"])
    default = Reading(said.objects, said.place, said.extreme, said.relation, said.colour)
    rel = related(default)
    rec["count"], rec["reading"], rec["related"] = said.objects, default, rel is not None
    rec["object"] = chosen(default, rel)
    # The rule before the anchor and target were chosen together: the surest anchor, the nearest target.
    rec["object (no colour)"] = chosen(Reading(said.objects, said.place, said.extreme, said.relation),
                                       related(default, colour=False))
    rec["object (the surest anchor)"] = chosen(default, related(default, candidates=1, spread=None))
    rec["object (no relation)"] = chosen(Reading(said.objects, said.place))
    rec["object (no extreme)"] = chosen(Reading(said.objects, said.place, relation=said.relation), rel)
    # The extreme's first rule: the most extreme of every component at least as sure as the median one.
    rec["object (extreme, median)"] = chosen(default, rel, extreme_among=None)
    rec["object (count)"] = chosen(Reading(said.objects))
    rec["object (one)"] = comps.paint(0, h, object_scores(comps, 1)) > 0.5
    said_p = read_expression(full_paraphrase(rec["text"]))
    para = Reading(said_p.objects, said_p.place, said_p.extreme, said_p.relation, said_p.colour)
    rec["paraphrase"] = para
    rec["object (paraphrased)"] = chosen(para, related(para))
    rec[TRUE_ANCHOR] = rec["object"]
    if said.relation is not None and rec.get("anchor_truth") is not None:
        # Not a method: the anchor given by the labels, to tell the geometry from finding the anchor.
        b = ComponentBuilder(w, 0, 0.5)
        b.add(0, rec["anchor_truth"].astype(np.float32), np.zeros((h, w, 0), np.float32))
        truth = b.finish(h)
        rec[TRUE_ANCHOR] = chosen(default, relate(comps, truth, np.arange(len(truth)), said.relation[0],
                                                  every=said.objects == EVERY, near=rec["near"]))
    rec["seconds"]["object"] = rec["seconds"][f"tiles@{overlap}"] + time.perf_counter() - t0
    ranker = getattr(model, "scene_ranker", None)
    if ranker is None:
        return
    # The oracle picks among mode object's candidates; the ranker scores every component, specks
    # included, as mode ranked does.
    pos, _ = component_labels(comps, rec["gt"])
    rec["oracle"] = comps.paint(0, h, pos.astype(np.float32)) > 0.5
    t0 = time.perf_counter()
    comps = components(ranker.candidate_threshold)
    scores = component_scores(ranker, comps, text)
    rec["ranked"] = comps.paint(0, h, scores) > 0.5
    rec["seconds"]["ranked"] = rec["seconds"][f"tiles@{overlap}"] + time.perf_counter() - t0
    rec["candidates"] = len(comps)


def relate_to_anchor(comps, p_anchor: np.ndarray, reading, image: np.ndarray, near: float, cell: float = 0.0,
                     **rule):
    """``related`` for :func:`~rrsis.scene.rank.object_scores`, as ``segment_scene`` computes it
    (:func:`~rrsis.scene.rank.related_to_anchor`, its keywords ``rule``) from the anchor's own
    tiles pass (``image``: the scene's pixels, for the anchor's colour; ``cell``: the smallest
    candidate, :func:`~rrsis.scene.rank.candidate_area`)."""
    from rrsis.scene.components import ComponentBuilder
    from rrsis.scene.rank import related_to_anchor

    h, w = p_anchor.shape
    b = ComponentBuilder(w, image.shape[2], 0.5)
    b.add(0, p_anchor, image)
    return related_to_anchor(comps, b.finish(h).without_specks(cell), reading, near=near, **rule)[0]


def anchor_truth(meta: dict, labels: np.ndarray, said) -> np.ndarray | None:
    """The pixels of the object a relation's words name ("the white plane": the scene's one
    white plane; the generator names anchors uniquely), or ``None``."""
    from rrsis.data.synthetic.scene import CATEGORIES

    if said.relation is None:
        return None
    words = said.relation[1].lower().split()
    for key, c in CATEGORIES.items():
        if " ".join(words).endswith(c.name):
            colour = words[1] if len(words) > 1 + len(c.name.split()) else None
            ids = [o["id"] for o in meta["objects"] if o["category"] == key and colour in (None, o["colour"])]
            return np.isin(labels, ids) if len(ids) == 1 else None
    return None


def passes(model, meta: dict, overlaps, native_ratios, max_global: int, d_overlap: float = 0.25,
           kinds=None):
    """For each expression of a scene: every pass the rows need, once (probabilities on scene
    pixels), plus its ground truth. Global-local is then a cheap fusion of these
    (``rrsis.scene.infer.fuse``: the rule ``segment_scene`` applies)."""
    import rasterio
    import torch

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.infer import global_pass, global_rows, predict_strips, resample_rows
    from rrsis.scene.rank import candidate_area
    from rrsis.scene.reading import read_expression

    t = model.image_size
    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    with rasterio.open(meta["path"]) as ds:
        rgb = ds.read().transpose(1, 2, 0)
    H, W = labels.shape
    ys = list(range(0, H - t, t)) + [H - t]
    xs = list(range(0, W - t, t)) + [W - t]
    with open_scene(meta["path"]) as sc:
        # The scene's pixels as the component modes read them, once for all its expressions.
        image = sc.read()[0]
        fy, fx = global_rows(t, H, W)
        anchors, anchor_seconds = {}, {}  # anchor words -> their tiles pass at d_overlap, once per scene
        for e in meta["expressions"]:
            if kinds and e["kind"] not in kinds:
                continue
            rec = {"text": e["text"], "kind": e["kind"], "gt": np.isin(labels, e["targets"]) if e["targets"]
                   else np.zeros((H, W), bool), "seconds": {}}
            tok = model.tokenizer([e["text"]])
            with torch.no_grad():
                text = model.encode_text(tok["input_ids"], tok["attention_mask"])
            t0 = time.perf_counter()
            rec["d_global"] = global_pass(sc, model, text, t)
            rec["p_global"] = _sigmoid(resample_rows(rec["d_global"], 0, t, (0, H), W, fy, fx))
            rec["seconds"]["global"] = time.perf_counter() - t0
            # Naive tiles: each tile alone through model.predict, no overlap, no blending (the
            # last row and column flush with the scene's edge overwrite the overlap).
            t0 = time.perf_counter()
            naive = np.zeros((H, W), bool)
            crops = [(y, x) for y in ys for x in xs]
            masks = model.predict([rgb[y:y + t, x:x + t] for y, x in crops], [e["text"]] * len(crops),
                                  batch_size=8)
            for (y, x), m in zip(crops, masks):
                naive[y:y + t, x:x + t] = m
            rec["naive"] = naive
            rec["seconds"]["naive tiles"] = time.perf_counter() - t0
            rec["p_tiles"] = {}
            for ov in overlaps:
                t0 = time.perf_counter()
                opt = SceneOptions(mode="tiles", overlap=ov).resolved(model, H, W)
                rec["p_tiles"][ov] = np.concatenate([p for _, p, _ in predict_strips(sc, model, text, opt)])
                rec["seconds"][f"tiles@{ov}"] = time.perf_counter() - t0
            if d_overlap in rec["p_tiles"]:
                opt = SceneOptions(mode="tiles", overlap=d_overlap).resolved(model, H, W)
                rec["near"], rec["p_anchor"] = opt.tile * opt.pixel_ratio, {}
                rec["cell"] = candidate_area(model, opt)  # mode object's smallest candidate
                rec["anchor_truth"] = anchor_truth(meta, labels, read_expression(e["text"]))
                for k, said in enumerate((read_expression(e["text"]), read_expression(full_paraphrase(e["text"])))):
                    words = said.relation and said.relation[1]
                    if words and words not in anchors:
                        t0 = time.perf_counter()
                        tok = model.tokenizer([words])
                        with torch.no_grad():
                            a = model.encode_text(tok["input_ids"], tok["attention_mask"])
                        anchors[words] = np.concatenate([p for _, p, _ in predict_strips(sc, model, a, opt)])
                        anchor_seconds[words] = time.perf_counter() - t0
                    if words:
                        rec["p_anchor"][words] = anchors[words]
                        if k == 0:  # segment_scene runs the anchor's pass for every such expression
                            rec["seconds"]["anchor"] = anchor_seconds[words]
                component_rows(rec, image, model, text, d_overlap)
            rec["p_native"] = {}
            for pr in native_ratios:
                g = min(max(int(max(H, W) / pr) // 32 * 32, t), max_global)
                t0 = time.perf_counter()
                d = global_pass(sc, model, text, g)
                gy, gx = global_rows(g, H, W)
                rec["p_native"][pr] = _sigmoid(resample_rows(d, 0, g, (0, H), W, gy, gx))
                rec["seconds"][f"native@{pr}"] = time.perf_counter() - t0
            yield rec


def global_local(rec: dict, overlap: float, knobs: dict) -> np.ndarray:
    from rrsis.scene.infer import fuse, global_gate, global_rows, resample_rows

    H, W = rec["gt"].shape
    g = rec["d_global"].shape[0]
    fy, fx = global_rows(g, H, W)
    gate = resample_rows(global_gate(rec["d_global"], knobs["gate_threshold"], knobs["gate_dilation"]),
                         0, g, (0, H), W, fy, fx)
    return fuse(rec["p_global"], rec["p_tiles"][overlap], gate, knobs["local_weight"], knobs["local_rule"]) > 0.5


def _record(pred: np.ndarray, gt: np.ndarray) -> dict:
    return {"I": int((pred & gt).sum()), "U": int((pred | gt).sum()), "pred_empty": not pred.any(),
            "target_empty": not gt.any()}


def row_masks(rec: dict, cfg: dict) -> dict[str, np.ndarray]:
    """The masks of every row for one expression under the knobs ``cfg``."""
    has = "ranked" in rec
    return {
        "naive tiles": rec["naive"],
        **({k: rec[k] for k in OBJECT_ROWS} if "object" in rec else {}),
        **({TRUE_ANCHOR: rec[TRUE_ANCHOR]} if "object" in rec else {}),
        **({"ranked": rec["ranked"]} if has else {}),
        "global": rec["p_global"] > 0.5,
        "tiles": rec["p_tiles"][cfg["overlap"]] > 0.5,
        "global-local (defaults)": global_local(rec, cfg["default_overlap"], cfg["defaults"]),
        "global-local (tuned)": global_local(rec, cfg["overlap"], cfg["gate"]),
        **({} if cfg["native_ratio"] is None else {"global-native": rec["p_native"][cfg["native_ratio"]] > 0.5}),
        **({"oracle selection (not a method)": rec["oracle"]} if has else {}),
    }


def tune_records(rec: dict) -> dict[tuple, dict]:
    """One tuning expression's scores for every knob value (tiles overlap; the global-local
    gate over ``GRID`` at each overlap; the global-native pixel ratio)."""
    out = {}
    for ov, p in rec["p_tiles"].items():
        out[("tiles", ov)] = _record(p > 0.5, rec["gt"])
        for pt in itertools.product(*GRID.values()):
            out[("gate", ov, pt)] = _record(global_local(rec, ov, dict(zip(GRID, pt))), rec["gt"])
    for pr, p in rec["p_native"].items():
        out[("native", pr)] = _record(p > 0.5, rec["gt"])
    return out


def tune(per_expr: list[dict[tuple, dict]], defaults: dict, default_overlap: float) -> tuple[dict, dict]:
    """Knobs with the best gIoU on the tuning expressions: tiles overlap, then the global-local
    gate over ``GRID`` at that overlap, and the pixel ratio of the global-native pass."""
    def giou(key):
        return scores([r[key] for r in per_expr])["gIoU"]

    keys = per_expr[0]
    by_overlap = {k[1]: giou(k) for k in keys if k[0] == "tiles"}
    overlap = max(by_overlap, key=by_overlap.get)
    grid = [{**dict(zip(GRID, k[2])), "gIoU": giou(k)} for k in keys if k[0] == "gate" and k[1] == overlap]
    best = max(grid, key=lambda r: r["gIoU"])
    by_ratio = {k[1]: giou(k) for k in keys if k[0] == "native"}
    ratio = max(by_ratio, key=by_ratio.get) if by_ratio else None  # no global-native row
    cfg = {"overlap": overlap, "gate": {k: best[k] for k in GRID}, "native_ratio": ratio,
           "defaults": defaults, "default_overlap": default_overlap}
    table = {"tiles_overlap": {str(k): v for k, v in by_overlap.items()},
             "native_ratio": {str(k): v for k, v in by_ratio.items()},
             "grid_top": sorted(grid, key=lambda r: -r["gIoU"])[:8]}
    return cfg, table


def evaluate(per_expr: list[dict[str, dict]], kinds: list[str]) -> dict:
    """Scores of every row (``per_expr``: row -> record, one per expression), overall, per
    kind and on the scene-level kinds together."""
    out = {}
    for name in per_expr[0]:
        recs_ = [r[name] for r in per_expr]
        per = {k: scores([x for x, kk in zip(recs_, kinds) if kk == k]) for k in KINDS if k in kinds}
        out[name] = {"all": scores(recs_), "scene-level": scores([x for x, k in zip(recs_, kinds) if k in SCENE_LEVEL]),
                     "kinds": per}
    return out


def timing(seconds: list[dict], cfg: dict) -> dict[str, float]:
    """Seconds per expression of each row (global-local: global plus its tiles, all tiles run)."""
    def mean(key):
        return float(np.mean([s[key] for s in seconds]))

    return {"naive tiles": mean("naive tiles"), "global": mean("global"), "tiles": mean(f"tiles@{cfg['overlap']}"),
            "global-local (defaults)": mean("global") + mean(f"tiles@{cfg['default_overlap']}"),
            "global-local (tuned)": mean("global") + mean(f"tiles@{cfg['overlap']}"),
            **({} if cfg["native_ratio"] is None else {"global-native": mean(f"native@{cfg['native_ratio']}")}),
            **({k: mean("object") + (k in NEEDS_ANCHOR) * float(np.mean([x.get("anchor", 0.0) for x in seconds]))
                for k in (*OBJECT_ROWS, TRUE_ANCHOR)} if "object" in seconds[0] else {}),
            **({"ranked": mean("ranked"), "oracle selection (not a method)": mean("ranked")}
               if "ranked" in seconds[0] else {})}


_CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads(1)
from rrsis.hub import from_pretrained
from rrsis.scene import segment_scene
model = from_pretrained({model!r}).eval()
t = time.time()
(r,) = segment_scene(model, {image!r}, [{text!r}], return_mask=False, out={out!r}, **{options!r})
dt = time.time() - t
rss = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"seconds": dt, "rss_mib": rss, "mode": r.mode}}))
"""


def peak_memory(model_dir: str, meta: dict, configs: dict[str, dict], work: Path) -> list[dict]:
    """Wall time and peak RSS of ``segment_scene`` (files written), one fresh process per row."""
    rows = []
    for label, options in configs.items():
        code = _CHILD.format(root=str(ROOT), model=model_dir, image=meta["path"], text=meta["expressions"][0]["text"],
                             out=str(work / f"perf-{label.replace(' ', '_')}"), options=options)
        proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{label}: {proc.stderr[-2000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r.update(config=label, size=meta["size"], mpx_per_s=meta["size"] ** 2 / 1e6 / r["seconds"])
        rows.append(r)
        print(f"  {meta['size']}² {label}: {r['seconds']:.1f} s, peak RSS {r['rss_mib']:.0f} MiB", flush=True)
    return rows


def _relations_read(tally: dict) -> str:
    if not tally.get("relation"):
        return ""
    return f"; a relation read in {tally['relation']}, its anchor found in {tally.get('anchor found', 0)}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [f"# Large scenes at training scale ({report['device']})", "",
             f"Run {report['timestamp']} on {report['machine']}; {report['conditions']}", "",
             (f"Model: `{s['model']}` ({report['model_note']}). Tuning: {report['tune_expressions']} expressions on "
             f"{len(s['tune_sizes']) * s['tune_scenes']} scenes ({', '.join(f'{x}²' for x in s['tune_sizes'])}; "
             f"settings {json.dumps(TUNE)}); held-out: {report['held_expressions']} expressions on "
             f"{sum(s['held_scenes'])} scenes ({', '.join(f'{x}²' for x in s['held_sizes'])}; "
             f"settings {json.dumps(HELD_OUT)}, other seeds"
             + (f"; seen through haze: `HAZE` {json.dumps(s['haze'])}" if s.get("haze") else "")
             + "). Objects at the pixel sizes of the "
             f"{s['train_size']}² training scenes."), "",
             (f"Chosen on the tuning set: tiles overlap {report['chosen']['overlap']}, global-local "
             + ", ".join(f"`{k}={v}`" for k, v in report["chosen"]["gate"].items())
             + f", global-native pixel ratio {report['chosen']['native_ratio']}. `auto` (the default "
             f"mode) resolves to `{report['auto_resolves_to']}` with the defaults on these scenes"
             + (", so its row is `tiles` (overlap 0.25 by default)." if report["auto_resolves_to"] == "tiles"
                else ".")), "",
             *([("`object` (the default): the `tiles` pass (overlap 0.25) cut into connected components of "
                 "p > 0.5, and the expression's reading applied (`rrsis.scene.reading`, nothing learned): "
                 "as many as it names (\"the three ships\" 3, \"all ships\" every one, otherwise 1), in the "
                 "place it names (\"in the north-west\": that ninth), the extreme it names (\"the largest\", "
                 "\"the northernmost\": the most extreme of the 5 surest components, `EXTREME_AMONG`), in the "
                 "colour it names (\"the white tank\": among the 5 surest components, those within 10 "
                 "weighted CIELAB ΔE of the nearest to the word's colour, measured on the scene's pixels: "
                 "`rrsis.scene.colour`; the relation's other object's colour too), in the "
                 "relation it names to another "
                 "object (\"next to the white plane\": a second tiles pass over the other object's words; "
                 "each of its 8 surest components may be that object, and the pair of it and a component "
                 "in the relation (\"north of the white plane\": beyond it in that direction) that both "
                 "passes are surest of, the nearer first, is chosen: `rrsis.scene.rank.related_to_anchor`, "
                 "`rrsis.scene.relation`), the surest first. `object (no colour)`: the colour not read "
                 "(`read=\"place,relation,extreme\"`, the default before the colour was read). `object (the surest anchor)`: the relation "
                 "applied to the anchor's surest component alone, the nearest component chosen (the default "
                 "before 2026-12-07). `object (no relation)`: count and place only (`read=\"place\"`, the "
                 "default before the relation was read). `object (no extreme)`: the extreme not read "
                 "(`read=\"place,relation\"`, the default before 2026-12-07). `object (extreme, median)`: the "
                 "extreme taken among every component at least as sure as the median one (its first rule, "
                 "`extreme_among=None`). `object (paraphrased)`: the default, read from the "
                 "expression in other words (`PARAPHRASES`: \"in the upper left part of the image\", \"the "
                 "biggest\", \"the ships\", \"3 ships\"; `NEAR_WORDS`: \"beside\", \"close to\", "
                 "\"near\", \"adjacent to\" for \"next to\"; `SIDE_WORDS`: \"above\" for \"north of\", "
                 "\"to the left of\" for \"west of\" ...; the tiles pass is the original's). "
                 "`object (count)`: only the count read (`read=\"none\"`); `object (one)`: the surest "
                 "component alone (`objects=1, read=\"none\"`, the default before 0.3). "
                 f"`{TRUE_ANCHOR}`: the default with the other object given by the labels (it tells "
                 "finding that object from the geometry). Expressions read "
                 "as naming one / N / every object, a place, an extreme, per kind: "
                 + "; ".join(f"{k} {v['one']} / {v['N']} / {v['every']}, {v['place']}, {v['extreme']} "
                             f"({v['same when paraphrased']} read alike when paraphrased{_relations_read(v)})"
                             for k, v in report.get("count_readings", {}).items()) + ".")]
               if "object" in report["held_out"] else []),
             *([("`ranked`: the same components scored by the model's scene ranker (its calibrated score "
                 "above 0.5). `oracle selection` is not a method: the same components, those at least half "
                 "inside the target picked, the ceiling of any choice among them.")] if "ranked" in report["held_out"] else []),
             "",
             ("Held-out, all expressions (mIoU over expressions with a target; gIoU counts an empty "
              "prediction on an empty target as 1):"), "",
             "| row | mIoU | gIoU | cIoU | scene-level mIoU | N-acc | T-acc | s / expr | Mpx/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    held = report["held_out"]
    px = report["held_mean_px"]
    for name, r in held.items():
        a, sl = r["all"], r["scene-level"]
        sec = report["seconds_per_expression"][name]
        lines.append(f"| {name} | {_pct(a['mIoU'])} | {_pct(a['gIoU'])} | {_pct(a['cIoU'])} | {_pct(sl['mIoU'])} | "
                     f"{_pct(a['N-acc'])} | {_pct(a['T-acc'])} | {sec:.2f} | {px / 1e6 / sec:.2f} |")
    kinds = [k for k in KINDS if k in next(iter(held.values()))["kinds"]]
    lines += ["", "Held-out, per kind (mIoU; multi: mIoU / gIoU; none: N-acc):", "",
              "| row | " + " | ".join(f"{k} (n={next(iter(held.values()))['kinds'][k]['n']})" for k in kinds) + " |",
              "|---|" + "---|" * len(kinds)]
    for name, r in held.items():
        cells = []
        for k in kinds:
            m = r["kinds"][k]
            cells.append(_pct(m["N-acc"]) if k == "none" else
                         f"{_pct(m['mIoU'])} / {_pct(m['gIoU'])}" if k == "multi" else _pct(m["mIoU"]))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Tuning set (gIoU): tiles overlap " + ", ".join(f"{k}: {_pct(v)}" for k, v in
              report["tuning"]["tiles_overlap"].items()) + "; global-native pixel ratio "
              + ", ".join(f"{k}: {_pct(v)}" for k, v in report["tuning"]["native_ratio"].items()) + ".", ""]
    if report["performance"]:
        lines += ["Peak memory (one fresh process per row, `segment_scene` writing mask GeoTIFF, GeoJSON, overlay):",
                  "", "| scene | row | seconds | Mpx/s | peak RSS MiB |", "|---|---|---|---|---|"]
        for r in report["performance"]:
            lines.append(f"| {r['size']}² | {r['config']} | {r['seconds']:.1f} | {r['mpx_per_s']:.2f} | {r['rss_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def run(model, work: Path, args) -> dict:
    """Tune on one set, score on the other; the pieces of :func:`main` without the files."""
    from rrsis.scene import SceneOptions

    t = model.image_size
    d = SceneOptions()
    defaults = {k: getattr(d, k) for k in GRID}
    tune_set = make_set(work / "tune", args.tune_sizes, args.tune_scenes, TUNE, 1, t, args.per_kind)
    held_set = make_set(work / "held", args.held_sizes, args.held_scenes, HELD_OUT, 2, t, args.per_kind)
    for m in held_set if args.haze else ():
        hazy(m["path"])
    t0 = time.time()
    tuned = [tune_records(r) for m in tune_set
             for r in passes(model, m, args.overlaps, args.native_ratios, args.max_global, kinds=args.kinds)]
    cfg, table = tune(tuned, defaults, d.overlap)
    print(f"tuned in {time.time() - t0:.0f} s: {cfg}", flush=True)
    held, kinds, seconds, px, readings, per_expression = [], [], [], [], {}, []
    for m in held_set:
        ratios = () if cfg["native_ratio"] is None else (cfg["native_ratio"],)
        for r in passes(model, m, sorted({cfg["overlap"], d.overlap}), ratios, args.max_global, kinds=args.kinds):
            held.append({name: _record(mask, r["gt"]) for name, mask in row_masks(r, cfg).items()})
            per_expression.append({"scene": m["image"], "size": m["size"], "kind": r["kind"], "text": r["text"],
                                   **{name: round(x["I"] / x["U"], 4) if x["U"] else None
                                      for name, x in held[-1].items() if name.startswith("object")}})
            kinds.append(r["kind"])
            if "count" in r:
                c = "one" if r["count"] == 1 else "every" if r["count"] == "all" else "N"
                tally = readings.setdefault(r["kind"], {"one": 0, "N": 0, "every": 0, "place": 0, "extreme": 0})
                tally[c] += 1
                tally["place"] += r["reading"].place is not None
                tally["extreme"] += r["reading"].extreme is not None
                tally["same when paraphrased"] = tally.get("same when paraphrased", 0) + (r["paraphrase"] == r["reading"])
                tally["relation"] = tally.get("relation", 0) + (r["reading"].relation is not None)
                tally["anchor found"] = tally.get("anchor found", 0) + bool(r.get("related"))
            seconds.append(r["seconds"])
            px.append(r["gt"].size)
        print(f"  scored {m['image']} ({len(held)} expressions so far)", flush=True)
    auto = SceneOptions(mode="auto").resolved(model, args.held_sizes[0], args.held_sizes[0]).mode
    return {"chosen": cfg, "tuning": table, "held_out": evaluate(held, kinds), "per_expression": per_expression,
            "seconds_per_expression": timing(seconds, cfg), "held_mean_px": float(np.mean(px)),
            "tune_expressions": sum(len(m["expressions"]) for m in tune_set),
            "held_expressions": len(held), "auto_resolves_to": auto, "held_set": held_set,
            "count_readings": {k: readings[k] for k in KINDS if k in readings}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a save_pretrained folder (default: random weights, for --smoke)")
    p.add_argument("--model-note", default="", help="how the model was trained, recorded")
    p.add_argument("--smoke", action="store_true", help="tiny scenes and a random model (checks the script)")
    p.add_argument("--tune-sizes", type=int, nargs="+", default=[1024])
    p.add_argument("--tune-scenes", type=int, default=3, help="scenes per tuning size")
    p.add_argument("--held-sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--held-scenes", type=int, nargs="+", default=[7, 7],
                   help="held-out scenes of each held-out size (default 7 and 7: ≥ 150 expressions at 12 each)")
    p.add_argument("--overlaps", type=float, nargs="+", default=list(OVERLAPS), help="tiles overlaps tried on the tuning set")
    p.add_argument("--native-ratios", type=float, nargs="*", default=list(NATIVE_RATIOS),
                   help="global-native pixel ratios tried on the tuning set (none: no global-native row)")
    p.add_argument("--per-kind", type=int, default=2, help="expressions of each kind per scene")
    p.add_argument("--max-global", type=int, default=2048, help="largest global-native pass side")
    p.add_argument("--perf", action="store_true", help="also peak memory per row in fresh processes")
    p.add_argument("--kinds", nargs="+", choices=KINDS, help="only these expression kinds (tuning and held-out; "
                   "default: all)")
    p.add_argument("--haze", action="store_true", help="held-out scenes seen through haze and a warm white "
                   "balance (HAZE): colours unlike the generator's")
    p.add_argument("--conditions", default="", help="free text on machine load, recorded")
    p.add_argument("--out", help="results stem (default: results/large-scene-v2-cpu)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from rrsis.hub import from_pretrained

    if args.smoke:
        args.tune_sizes, args.held_sizes, args.tune_scenes, args.held_scenes = [192], [192], 1, [1]
        args.per_kind = 1
    model = from_pretrained(args.model).eval() if args.model else random_model(96 if not args.smoke else 64)
    with tempfile.TemporaryDirectory(prefix="rrsis-large-") as tmp:
        work = Path(tmp)
        t0 = time.time()
        rep = run(model, work, args)
        total = time.time() - t0
        perf = []
        if args.perf and args.model:
            cfg = rep["chosen"]
            for size in sorted(set(args.held_sizes)):
                meta = next(m for m in rep["held_set"] if m["size"] == size)
                configs = {"tiles": {"mode": "tiles", "overlap": cfg["overlap"]},
                           "global-local (defaults)": {"mode": "global-local"},
                           "global-native": {"mode": "global", "global_size": min(size // int(cfg["native_ratio"]) // 32 * 32,
                                                                                  args.max_global)}}
                perf += peak_memory(args.model, meta, configs, work)
    rep.pop("held_set")
    report = {
        "timestamp": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": "cpu",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread",
        "conditions": args.conditions or "no notes", "model_note": args.model_note or "random weights",
        "settings": {"model": args.model or "random", "train_size": model.image_size, "tune_sizes": args.tune_sizes,
                     "tune_scenes": args.tune_scenes, "held_sizes": args.held_sizes, "held_scenes": args.held_scenes,
                     "per_kind": args.per_kind, "kinds": args.kinds or list(KINDS), "max_global": args.max_global, "native_ratios": args.native_ratios,
                     "overlaps": args.overlaps, "uses_position": bool(getattr(model, "uses_position", False)), "tune_settings": TUNE,
                     "held_settings": HELD_OUT, "haze": HAZE if args.haze else None, "smoke": args.smoke},
        "seconds_total": total, **rep, "performance": perf,
    }
    stem = Path(args.out) if args.out else RESULTS / ("large-scene-smoke" if args.smoke else "large-scene-v2-cpu")
    if args.smoke and not args.out:
        stem = Path(tempfile.gettempdir()) / "large-scene-smoke"
    write_results(str(stem), report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
