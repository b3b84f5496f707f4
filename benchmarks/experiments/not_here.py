"""Can mode ``object`` say "not here" from what it already measures? Features per expression.

Mode ``object`` answers every expression with the components the tiles are surest of, so an
expression whose object is absent still gets one (README, "Whole scenes"). This experiment asks
whether a cheap rule could refuse such answers: for each expression of the large-scene benchmark's
tuning and held-out scenes (``benchmarks/large_scene.py``'s generator settings and seeds), it runs
the tiles pass and mode ``object`` as that benchmark does (its ``component_rows``), and records
what a rule could read: the chosen components' mean probability, the share of the scene above
0.5 and 0.9, and, for an expression naming a colour, the CIELAB distance of the chosen and of the
nearest component to that colour (:func:`rrsis.scene.rank.colour_costs`). ``none`` expressions
(nothing in the scene matches) against those with a target, answered right (IoU >= 0.5) or not.

    python benchmarks/experiments/not_here.py --model SCENE_MODEL --seed 0 --work /tmp/not-here

``SCENE_MODEL``: a scene model of ``benchmarks/large_scene_train.py``. One JSON line per
expression goes to ``WORK/features-seed<N>.jsonl``; the end prints each feature's range per group.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

SETS = (("tune", [1024], [3], "TUNE", 1), ("held", [1024, 2048], [7, 7], "HELD_OUT", 2))
FEATURES = ("conf_mean", "frac_05", "frac_09", "cost_chosen")


def features(model, meta: dict, overlap: float = 0.25):
    """One dict per expression of a scene written by ``large_scene.make_set``."""
    import large_scene as L
    import rasterio
    import torch

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.components import ComponentBuilder
    from rrsis.scene.infer import predict_strips
    from rrsis.scene.rank import candidate_area, colour_costs
    from rrsis.scene.reading import read_expression

    def tiles(sc, opt, words):
        tok = model.tokenizer([words])
        with torch.no_grad():
            text = model.encode_text(tok["input_ids"], tok["attention_mask"])
        return text, np.concatenate([q for _, q, _ in predict_strips(sc, model, text, opt)])

    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    h, w = labels.shape
    with open_scene(meta["path"]) as sc:
        image = sc.read()[0]
        opt = SceneOptions(mode="tiles", overlap=overlap).resolved(model, h, w)
        anchors: dict[str, np.ndarray] = {}
        for e in meta["expressions"]:
            t0 = time.perf_counter()
            gt = np.isin(labels, e["targets"]) if e["targets"] else np.zeros((h, w), bool)
            text, p = tiles(sc, opt, e["text"])
            said = read_expression(e["text"])
            rec = {"text": e["text"], "kind": e["kind"], "gt": gt, "seconds": {f"tiles@{overlap}": 0.0},
                   "p_tiles": {overlap: p}, "near": opt.tile * opt.pixel_ratio, "p_anchor": {},
                   "cell": candidate_area(model, opt), "anchor_truth": L.anchor_truth(meta, labels, said)}
            for reading in (said, read_expression(L.full_paraphrase(e["text"]))):
                words = reading.relation and reading.relation[1]
                if words and words not in anchors:
                    anchors[words] = tiles(sc, opt, words)[1]
                if words:
                    rec["p_anchor"][words] = anchors[words]
            L.component_rows(rec, image, model, text, overlap)
            m = rec["object"]
            b = ComponentBuilder(w, image.shape[2], 0.5)
            b.add(0, p, image)
            comps = b.finish(h).without_specks(rec["cell"])
            costs = colour_costs(comps, said) if len(comps) else None
            chosen = sorted(set(np.unique(comps.label_image()[m]).tolist()) - {0}) if m.any() and len(comps) else []
            row = {"scene": meta["image"], "size": meta["size"], "kind": e["kind"], "text": e["text"],
                   "has_target": bool(gt.any()), "I": int((m & gt).sum()), "U": int((m | gt).sum()),
                   "conf_mean": float(p[m].mean()) if m.any() else 0.0,
                   "frac_05": float((p > 0.5).mean()), "frac_09": float((p > 0.9).mean())}
            if costs is not None:
                row |= {"colour": said.colour, "cost_best": float(costs.min()),
                        "cost_chosen": float(min(costs[i - 1] for i in chosen)) if chosen else None}
            row["seconds"] = time.perf_counter() - t0
            yield row


def summary(rows: list[dict]) -> str:
    """Each feature's range (min / median / max) in each group of held-out expressions."""
    held = [r for r in rows if r["set"] == "held"]
    groups = {"none (no target)": [r for r in held if r["kind"] == "none"],
              "target, answered right (IoU >= 0.5)": [r for r in held if r["has_target"] and r["U"]
                                                      and r["I"] / r["U"] >= 0.5],
              "target, answered wrong": [r for r in held if r["has_target"] and not (r["U"] and r["I"] / r["U"] >= 0.5)]}
    lines = ["| feature | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for f in FEATURES:
        cells = []
        for rs in groups.values():
            v = np.array([r[f] for r in rs if r.get(f) is not None], float)
            cells.append(f"{v.min():.4g} / {np.median(v):.4g} / {v.max():.4g} (n={v.size})" if v.size else "-")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    import large_scene as L
    import torch

    import rrsis

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a scene model folder (benchmarks/large_scene_train.py)")
    ap.add_argument("--seed", type=int, default=0, help="names the output file")
    ap.add_argument("--work", required=True, help="folder for the scenes and the features")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = rrsis.from_pretrained(args.model)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(work / f"features-seed{args.seed}.jsonl", "w") as out:
        for name, sizes, counts, settings, seed in SETS:
            for meta in L.make_set(work / f"{name}-{args.seed}", sizes, counts, getattr(L, settings), seed,
                                   model.image_size, 2):
                for row in features(model, meta):
                    rows.append({"set": name, **row})
                    out.write(json.dumps(rows[-1]) + "\n")
                print(name, meta["image"], flush=True)
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
