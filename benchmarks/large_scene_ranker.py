"""Train the scene ranker of the ranked whole-scene mode for a model, on generated large scenes.

The model stays frozen. Large scenes at training scale (:mod:`rrsis.data.synthetic.at_scale`;
density 0.35 and the generator's own palette, 640²/768²/1024², seeds of their own: other than
both sets of ``benchmarks/large_scene.py``) are run through the model's tiled pass, once per
expression the scene was drawn with; each pass's components are labelled by the expression's
targets. Each pass also serves the scene's other expressions naming the same category (up to
``--relabel`` of them, drawn from all the expressions the scene admits): the components and their
features stay, the words and labels change (:func:`rrsis.scene.rank_train.relabel`), so each
costly pass teaches several expressions. A quarter of the scenes is held back and scored per
kind (ranked / all components / oracle selection, gIoU over components).

Writes ``--out``: the model with its ranker (``save_pretrained``: ``scene_ranker.json`` +
``scene_ranker.safetensors`` beside the model), ``ranker-training.json`` (settings, counts,
held-back scores) and ``examples.pt`` (the passes, reusable with ``--examples``).

    python benchmarks/large_scene_ranker.py --model /tmp/scene-train/position-seed0/final \\
        --out /tmp/scene-train/ranked-seed0 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TRAIN = {"density": 0.35}
SCENES = ((640, 8), (768, 12), (1024, 4))
SEED = 11  # scene seeds 11 + 1000·k + size: none of large_scene.py's or large_scene_train.py's
KINDS = ("colour", "region", "extreme", "relation", "multi", "none")


def category(text: str, targets, objects: dict) -> str | None:
    """The category an expression names: its targets', else the one whose name it holds."""
    from rrsis.data.synthetic.scene import CATEGORIES

    if targets:
        return objects[targets[0]]["category"]
    for name in sorted(CATEGORIES, key=len, reverse=True):
        if CATEGORIES[name].name in text or CATEGORIES[name].plural in text:
            return name
    return None


def passes(model, work: Path, scenes, per_kind: int, log) -> dict:
    """Scenes, one tiled pass per drawn expression, and every expression each scene admits."""
    import rasterio

    from rrsis.data.synthetic.at_scale import (
        LargeSceneSettings,
        make_scene_at_scale,
        write_scene_at_scale,
    )
    from rrsis.scene.rank_train import ranker_examples

    t = model.image_size
    examples, pools = [], {}
    for size, n in scenes:
        for k in range(n):
            st = LargeSceneSettings.from_dict({**TRAIN, "size": size, "train_size": t, "per_kind": per_kind})
            seed = SEED + 1000 * k + size
            meta = write_scene_at_scale(work, st, seed=seed, name=f"s{size}_{k}")
            with rasterio.open(work / meta["labels"]) as ds:
                labels = ds.read(1)
            exprs = [(e["text"], np.isin(labels, e["targets"]) if e["targets"] else None) for e in meta["expressions"]]
            ex = ranker_examples(model, [(str(work / meta["image"]), exprs, labels)], log=None)
            for e, x in zip(ex, meta["expressions"]):
                e.update(kind=x["kind"], scene=meta["image"], targets=x["targets"])
            examples += ex
            # Every expression the scene admits (the same scene drawn with more per kind).
            _, _, full = make_scene_at_scale(LargeSceneSettings.from_dict({**st.to_dict(), "per_kind": 12}), seed)
            pools[meta["image"]] = {"expressions": full["expressions"], "objects": full["objects"]}
            log(f"{meta['image']}: {len(examples)} passes ({time.strftime('%H:%M:%S')})")
    return {"examples": examples, "pools": pools}


def relabelled(model, examples: list[dict], pools: dict, per_pass: int, rng) -> list[dict]:
    """For each pass, up to ``per_pass`` other expressions of its scene naming its category."""
    import torch

    from rrsis.scene.rank_train import relabel

    cache: dict[str, tuple] = {}

    def words(text):
        if text not in cache:
            tok = model.tokenizer([text])
            with torch.no_grad():
                enc = model.encode_text(tok["input_ids"], tok["attention_mask"])
            cache[text] = (enc.words[0].float(), enc.mask[0].float())
        return cache[text]

    out = []
    for e in examples:
        if "objects" not in e or e["scene"] not in pools:
            continue
        pool = pools[e["scene"]]
        objs = {o["id"]: o for o in pool["objects"]}
        cat = category(e["text"], e["targets"], objs)
        options = [x for x in pool["expressions"]
                   if x["text"] != e["text"] and category(x["text"], x["targets"], objs) == cat]
        for i in rng.permutation(len(options))[:per_pass]:
            x = options[int(i)]
            a = relabel(e, x["text"], *words(x["text"]), x["targets"], sum(objs[t]["area_px"] for t in x["targets"]))
            a["kind"] = x["kind"]
            out.append(a)
    return out


def held_back_scores(ranker, examples: list[dict]) -> dict:
    """gIoU over components per kind: the ranker at 0.5, every component, the oracle selection."""
    from rrsis.scene.rank_train import _giou, _probs

    out = {}
    for k in KINDS:
        sub = [e for e in examples if e["kind"] == k]
        if sub:
            out[k] = {"n": len(sub), "ranked": _giou(sub, [_probs(ranker, e) for e in sub], 0.5),
                      "all components": _giou(sub, [np.ones(len(e["labels"])) for e in sub], 0.5),
                      "oracle": _giou(sub, [e["labels"].astype(float) for e in sub], 0.5)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the frozen model (a save_pretrained folder)")
    p.add_argument("--out", required=True, help="folder for the model with its ranker")
    p.add_argument("--seed", type=int, default=0, help="ranker seed (initialisation, batches, held-back split)")
    p.add_argument("--examples", nargs="+", help="reuse the passes of earlier runs (their examples.pt; a plain "
                                                 "list of passes without objects is used as it is, not relabelled)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the scene counts")
    p.add_argument("--per-kind", type=int, default=2, help="drawn expressions of each kind per scene (passes)")
    p.add_argument("--relabel", type=int, default=4, help="other expressions per pass (0: none)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from rrsis.hub import from_pretrained, save_pretrained
    from rrsis.hub.ranker import attach_ranker
    from rrsis.scene.rank_train import train_ranker

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = from_pretrained(args.model).eval()
    t0 = time.time()
    if args.examples:
        data = {"examples": [], "pools": {}}
        for i, path in enumerate(args.examples):  # scene names are per file
            d = torch.load(path, weights_only=False)
            d = d if isinstance(d, dict) else {"examples": d, "pools": {}}
            for e in d["examples"]:
                data["examples"].append({**e, "scene": f"{i}/{e['scene']}"})
            data["pools"].update({f"{i}/{k}": v for k, v in d["pools"].items()})
    else:
        scenes = [(size, max(1, round(n * args.scale))) for size, n in SCENES]
        data = passes(model, out / "scenes", scenes, args.per_kind, lambda m: print(m, flush=True))
        tmp = out / "examples.pt.tmp"
        torch.save(data, tmp)
        os.replace(tmp, out / "examples.pt")
    t_passes = time.time() - t0
    rng = np.random.default_rng(args.seed)
    names = sorted({e["scene"] for e in data["examples"]})
    held = set(rng.choice(names, max(len(names) // 4, 1), replace=False).tolist())
    train = [e for e in data["examples"] if e["scene"] not in held]
    val = [e for e in data["examples"] if e["scene"] in held]
    extra = relabelled(model, train, data["pools"], args.relabel, rng) if args.relabel else []
    t1 = time.time()
    ranker = train_ranker(train + extra, steps=args.steps, seed=args.seed, dim=args.dim, layers=args.layers,
                          dropout=args.dropout)
    scores = held_back_scores(ranker, val)
    attach_ranker(model, ranker)
    save_pretrained(model, out / "model")
    report = {"model": args.model, "seed": args.seed, "examples_files": args.examples, "passes": len(train), "relabelled": len(extra),
              "held_back_passes": len(val), "held_back_scenes": sorted(held), "scene_settings": TRAIN,
              "scenes": [list(s) for s in SCENES], "scale": args.scale, "steps": args.steps,
              "ranker": ranker.config, "seconds_passes": round(t_passes), "seconds_training": round(time.time() - t1),
              "held_back": scores, "timestamp": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (out / "ranker-training.json").write_text(json.dumps(report, indent=2) + "\n")
    for k, v in scores.items():
        print(f"{k:9s} n={v['n']:3d} ranked {v['ranked']:.3f}  all {v['all components']:.3f}  oracle {v['oracle']:.3f}")
    print(f"model with ranker: {out / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
