"""How the object mode's relation chooses its anchor and target, tuned on generated scenes that no
held-out benchmark scores.

"The vehicle next to the white plane": the anchor's words ("the white plane") light several
look-alikes, so :func:`rrsis.scene.rank.related_to_anchor` lets each of the anchor's ``K`` surest
components be the anchor and keeps the pair (target ``t``, anchor ``a``) of least cost
``−log p_t − α · log p_a + gap(t, a) / (λ · tile)``. This script scores that rule over a grid
of ``K``, ``α`` and ``λ`` on relation and direction expressions of TUNING scenes
(``large_scene.TUNE``: the tuning palette and density, seeds of this script's own), from each
model's two tiles passes per expression, computed once and cached. ``K = 1`` with ``λ → 0`` is
the rule before (the surest anchor, the nearest target). The chosen constants are then
measured on ``large_scene.py``'s held-out scenes (other seeds, palette and density). The grid
scores the relation without colour (its passes keep no bands): the anchor's colour ("the white
plane", :mod:`rrsis.scene.colour`) was added after it and is measured by ``large_scene.py``
(``object`` against ``object (no colour)``).

    python benchmarks/relation_pairs.py --models /tmp/s26/ranked-seed0/model /tmp/s26/ranked-seed1/model \\
        --work /tmp/relation-pairs --out benchmarks/results/relation-pairs-tuning
    python benchmarks/relation_pairs.py --smoke        # tiny random model, checks the script
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results
from large_scene import TUNE, anchor_truth, make_set, random_model

KS = (1, 2, 3, 5, 8, 12, 16, 32, 64)
ALPHAS = (0.0, 0.5, 1.0, 2.0, 4.0)
LAMBDAS = (0.25, 1.0, 2.0, 4.0, 8.0, 1e9)  # model tiles
KINDS = ("relation", "direction")


def tiles_pass(model, sc, opt, text: str, image: np.ndarray | None = None):
    """The components (p > 0.5) of one tiled pass of ``text`` over the open scene ``sc``, with
    the bands of ``image`` (the scene as its reader gives it) when given."""
    import torch

    from rrsis.scene.components import ComponentBuilder
    from rrsis.scene.infer import predict_strips
    from rrsis.scene.rank import candidate_area

    tok = model.tokenizer([text])
    with torch.no_grad():
        enc = model.encode_text(tok["input_ids"], tok["attention_mask"])
    p = np.concatenate([q for _, q, _ in predict_strips(sc, model, enc, opt)])
    image = np.zeros((*p.shape, 0), np.float32) if image is None else image
    b = ComponentBuilder(p.shape[1], image.shape[2], 0.5)
    b.add(0, p, image)
    return b.finish(p.shape[0]).without_specks(candidate_area(model, opt))  # mode object's candidates


def scene_records(model, meta: dict) -> list[dict]:
    """The relation and direction expressions of one generated scene (``meta`` from
    ``large_scene.make_set``): each one's components of both passes (p > 0.5; the anchor's pass
    once per anchor's words), its truth and its reading."""
    import rasterio

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.reading import read_expression

    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    records, anchors = [], {}
    with open_scene(meta["path"]) as sc:
        opt = SceneOptions(mode="tiles", overlap=0.25).resolved(model, *labels.shape)
        for e in meta["expressions"]:
            said = read_expression(e["text"])
            if e["kind"] not in KINDS or said.relation is None:
                continue
            words = said.relation[1]
            if words not in anchors:
                anchors[words] = tiles_pass(model, sc, opt, words)
            records.append({"scene": meta["image"], "text": e["text"], "kind": e["kind"], "said": said,
                            "comps": tiles_pass(model, sc, opt, e["text"]), "anchor": anchors[words],
                            "gt": np.isin(labels, e["targets"]), "anchor_truth": anchor_truth(meta, labels, said),
                            "near": opt.tile * opt.pixel_ratio})
            print(f"  {e['text']}", flush=True)
    return records


def cache(model, work: Path, name: str, scenes: int, seed: int, per_kind: int, size: int,
          records_of=None) -> list[dict]:
    """``records_of(model, meta)`` (default :func:`scene_records`) of ``scenes`` tuning scenes,
    cached in ``work / name`` (a pickle: delete it to recompute)."""
    records_of = records_of or scene_records
    path = work / name
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    records = []
    for meta in make_set(work / "scenes", [size], scenes, TUNE, seed, model.image_size, per_kind):
        records += records_of(model, meta)
    with open(path, "wb") as fh:
        pickle.dump(records, fh)
    return records


def _ious(comps, gt: np.ndarray) -> np.ndarray:
    inter = np.bincount(comps.label_image()[gt].ravel(), minlength=len(comps) + 1)[1:]
    return inter / (comps.area + gt.sum() - inter)


def prepare(records: list[dict], max_k: int) -> list[dict]:
    """Per expression: the relation to each of the anchor's ``max_k`` candidates
    (:func:`rrsis.scene.rank.anchor_units`, as ``related_to_anchor`` takes them), the targets'
    probabilities and IoUs."""
    from rrsis.scene.rank import anchor_units
    from rrsis.scene.reading import EVERY
    from rrsis.scene.relation import relate

    out = []
    for r in records:
        comps, anc, said = r["comps"], r["anchor"], r["said"]
        how, words = said.relation
        units = anchor_units(anc, words, candidates=max_k)
        out.append({"kind": r["kind"], "p_t": comps.mean_probability,
                    "p_a": np.array([anc.mean_probability[u].mean() for u in units]),
                    "iou": _ious(comps, r["gt"]), "near": r["near"],
                    "related": [relate(comps, anc, u, how, every=said.objects == EVERY, near=r["near"])
                                for u in units]})
    return out


def choice(e: dict, k: int, alpha: float, lam: float) -> int | None:
    """The target component the rule keeps (``None`` when no pair is in the relation)."""
    best, chosen = np.inf, None
    for j, (allowed, gap) in enumerate(e["related"][:k]):
        if allowed.any():
            cost = np.where(allowed, gap / (lam * e["near"]) - np.log(e["p_t"]), np.inf) - alpha * np.log(e["p_a"][j])
            i = int(np.argmin(cost))
            if cost[i] < best:
                best, chosen = cost[i], i
    return chosen


def pick(e: dict, k: int, alpha: float, lam: float) -> float:
    """IoU of the target the rule keeps (0 when no pair is in the relation)."""
    i = choice(e, k, alpha, lam)
    return 0.0 if i is None else float(e["iou"][i])


def grid(prepared: list[dict]) -> list[dict]:
    rows = []
    for k, alpha, lam in itertools.product(KS, ALPHAS, LAMBDAS):
        row = {"K": k, "alpha": alpha, "lambda_tiles": lam}
        for kind in (*KINDS, "both"):
            sel = [e for e in prepared if kind in ("both", e["kind"])]
            row[kind] = 100 * float(np.mean([pick(e, k, alpha, lam) for e in sel])) if sel else None
        rows.append(row)
    return rows


def markdown(report: dict) -> str:
    from rrsis.scene.rank import ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD

    s = report["settings"]
    lines = ["# The relation's anchor and target: tuning (cpu)", "",
             (f"Run {report['timestamp']}. Tuning scenes only: {s['scenes']} generated {s['size']}² scenes, each model's own passes "
             f"(settings {TUNE}, seed {s['seed']}, {s['per_kind']} expressions per kind), relation and direction "
             f"expressions; models: {', '.join(f'`{m}`' for m in s['models'])}. mIoU (×100) of the target kept "
             "by the rule, over both models' expressions; `K = 1, α = 0, λ = 0.25` is within ties the rule before "
             "(the surest anchor, the nearest target)."), "",
             f"Constants in `rrsis.scene.rank`: K = {ANCHOR_CANDIDATES}, α = {ANCHOR_WEIGHT}, λ = {SPREAD} tiles.", ""]
    for m, v in report["per_model"].items():
        lines.append(f"- `{m}`: {v['n']} expressions; the rule before {v['before']}, the constants {v['chosen']}.")
    lines += ["", "| K | α | " + " | ".join(f"λ = {lam:g} (rel / dir / both)" for lam in LAMBDAS[:-1])
              + " | λ = ∞ (both) |", "|---|---|" + "---|" * len(LAMBDAS)]
    by = {(r["K"], r["alpha"], r["lambda_tiles"]): r for r in report["grid"]}
    for k, alpha in itertools.product(KS, ALPHAS):
        cells = [f"{by[k, alpha, lam]['relation']:.1f} / {by[k, alpha, lam]['direction']:.1f} / "
                 f"{by[k, alpha, lam]['both']:.1f}" for lam in LAMBDAS[:-1]]
        lines.append(f"| {k} | {alpha:g} | " + " | ".join(cells) + f" | {by[k, alpha, LAMBDAS[-1]]['both']:.1f} |")
    return "\n".join(lines) + "\n"


def tuning_args(description: str, name: str) -> argparse.Namespace:
    """The tuning scripts' command line (``name``: their default work folder and results stem),
    parsed, with ``--smoke``'s sizes applied and one torch thread set."""
    import torch

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--models", nargs="+", help="save_pretrained folders (default: a random tiny model, --smoke)")
    p.add_argument("--work", default=f"/tmp/rrsis-{name}", help="scenes and cached passes")
    p.add_argument("--scenes", type=int, default=10)
    p.add_argument("--seed", type=int, default=7000)
    p.add_argument("--per-kind", type=int, default=4)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--smoke", action="store_true", help="one small scene and a random model")
    p.add_argument("--out", help=f"results stem (default: results/{name}-tuning)")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        args.scenes, args.size, args.per_kind = 1, 256, 2
    Path(args.work).mkdir(parents=True, exist_ok=True)
    return args


def main() -> int:
    import datetime

    from rrsis.hub import from_pretrained
    from rrsis.scene.rank import ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD

    args = tuning_args(__doc__.splitlines()[0], "relation-pairs")
    work = Path(args.work)
    prepared, per_model = [], {}
    for i, m in enumerate(args.models or ["random"]):
        model = from_pretrained(m).eval() if m != "random" else random_model(64)
        records = cache(model, work, f"rel-m{i}.pkl", args.scenes, args.seed, args.per_kind, args.size)
        mine = prepare(records, max(KS))
        prepared += mine
        per_model[m] = {"n": len(mine), "before": round(100 * float(np.mean([pick(e, 1, 0, 1e-6) for e in mine])), 1)
                        if mine else None, "chosen": round(100 * float(np.mean(
                            [pick(e, ANCHOR_CANDIDATES, ANCHOR_WEIGHT, SPREAD) for e in mine])), 1) if mine else None}
    report = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {"models": args.models or ["random"], "scenes": args.scenes, "seed": args.seed,
                           "per_kind": args.per_kind, "size": args.size, "tune_settings": TUNE},
              "per_model": per_model, "grid": grid(prepared) if prepared else []}
    stem = args.out or str(ROOT / "benchmarks" / "results" / "relation-pairs-tuning")
    if prepared:
        write_results(stem, report, markdown(report))
        print(markdown(report))
    else:
        print("no relation or direction expression in these scenes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
