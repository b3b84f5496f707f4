"""How the object mode takes a colour ("the white storage tank", "all red buildings"), tuned on
generated scenes that no held-out benchmark scores.

The tiles light the named category in every colour, and their confidence says little about
which one is white. :func:`rrsis.scene.reading.choose` measures each component's mean colour on
the scene (:mod:`rrsis.scene.colour`) and keeps, among the ``K`` surest components (every one
for "all"), those within a margin ``m`` (weighted CIELAB ΔE) of the nearest colour. This script
scores a grid of ``K`` and ``m`` on the expressions naming a colour of TUNING scenes
(``large_scene.TUNE``: the tuning palette and density, seeds of this script's own), from each
model's tiles pass per expression, computed once and cached: colour expressions ("the white
tank": IoU of what is kept) and multi-target ones ("all red buildings": IoU of the union). It also
reports how near the nearest candidate's colour is for expressions whose colour is absent from
the scene (the generator's "none" kind) against those whose colour is there: whether a distance
could say "not here". The chosen constants are then measured on ``large_scene.py``'s held-out
scenes (other seeds, palette and density, and hazy ones: its ``object`` and ``object (no
colour)`` rows).

    python benchmarks/colour_choice.py --models M0 M1 --work /tmp/colour-choice \\
        --out benchmarks/results/colour-choice-tuning
    python benchmarks/colour_choice.py --smoke        # tiny random model, checks the script
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results
from large_scene import TUNE, random_model
from relation_pairs import cache, tiles_pass, tuning_args

KS = (1, 2, 3, 5, 8, 12, 10_000)
MARGINS = (0.0, 5.0, 10.0, 20.0, 40.0)
KINDS = ("colour", "multi", "none")


def scene_records(model, meta: dict) -> list[dict]:
    """The expressions naming a colour of one generated scene: each one's components of its
    tiles pass (p > 0.5) with their mean colour, each component's overlap with the truth."""
    import rasterio

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.colour import component_colours
    from rrsis.scene.reading import read_expression

    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    records = []
    with open_scene(meta["path"]) as sc:
        opt = SceneOptions(mode="tiles", overlap=0.25).resolved(model, *labels.shape)
        image = sc.read()[0]
        for e in meta["expressions"]:
            said = read_expression(e["text"])
            if e["kind"] not in KINDS or said.colour is None:
                continue
            comps = tiles_pass(model, sc, opt, e["text"], image)
            gt = np.isin(labels, e["targets"]) if e["targets"] else np.zeros(labels.shape, bool)
            inter = np.bincount(comps.label_image()[gt].ravel(), minlength=len(comps) + 1)[1:]
            records.append({"scene": meta["image"], "text": e["text"], "kind": e["kind"], "said": said,
                            "p": comps.mean_probability, "rgb": component_colours(comps), "area": comps.area,
                            "inter": inter.astype(np.float64), "gt_area": float(gt.sum())})
            print(f"  {e['kind']}: {e['text']}", flush=True)
    return records


def pick(e: dict, rule) -> float:
    """The record's score under ``rule``: ``(K, m)``, or ``None`` (the colour not read): IoU of
    the kept components' union (colour, multi), or 1 when nothing is kept (none)."""
    from rrsis.scene.colour import colour_cost
    from rrsis.scene.reading import Reading, choose

    said = e["said"]
    if not len(e["p"]):
        return 1.0 if e["kind"] == "none" else 0.0
    xy = np.full(len(e["p"]), 0.5)
    if rule is None:
        kept = choose(Reading(said.objects), e["p"], xy, xy, e["area"])
    else:
        kept = choose(Reading(said.objects, colour=said.colour), e["p"], xy, xy, e["area"],
                      colour_cost=colour_cost(said.colour, e["rgb"]), colour_among=rule[0], colour_margin=rule[1])
    if e["kind"] == "none":
        return float(len(kept) == 0)
    inter, area = e["inter"][kept].sum(), e["area"][kept].sum()
    return float(inter / (area + e["gt_area"] - inter)) if area + e["gt_area"] else 0.0


RULES = {"surest (colour not read)": None, **{f"K = {'all' if k > 1000 else k}, m = {m:g}": (k, m)
                                             for k in KS for m in MARGINS}}


def nearest_colour(e: dict, among: int) -> float | None:
    """The weighted ΔE of the nearest colour among the ``among`` surest components."""
    from rrsis.scene.colour import colour_cost

    if not len(e["p"]):
        return None
    top = np.argsort(-e["p"], kind="stable")[:among]
    return float(colour_cost(e["said"].colour, e["rgb"][top]).min())


def summary(records: list[dict]) -> dict:
    out = {"n": {k: sum(e["kind"] == k for e in records) for k in KINDS}, "rules": {}}
    for name, rule in RULES.items():
        out["rules"][name] = {k: 100 * float(np.mean([pick(e, rule) for e in records if e["kind"] == k]))
                              if out["n"][k] else None for k in KINDS}
    from rrsis.scene.colour import COLOUR_AMONG

    near = {k: [d for e in records if e["kind"] == k and (d := nearest_colour(e, COLOUR_AMONG)) is not None]
            for k in ("colour", "none")}
    out["nearest_colour_quantiles"] = {k: [round(float(q), 1) for q in np.quantile(v, [0.1, 0.5, 0.9])] if v else []
                                       for k, v in near.items()}
    return out


def markdown(report: dict) -> str:
    from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN

    s = report["settings"]
    models = list(report["per_model"])
    lines = ["# The colour's candidates: tuning (cpu)", "",
             (f"Run {report['timestamp']}. Tuning scenes only: {s['scenes']} generated {s['size']}² scenes "
              f"(settings {TUNE}, seed {s['seed']}, {s['per_kind']} expressions per kind), the expressions "
              f"naming a colour; models: {', '.join(f'`{m}`' for m in s['models'])}. Colour: mIoU (×100) of "
              "what is kept; multi (\"all red buildings\"): mIoU of the union kept; none (a colour absent "
              "from the scene): share answered with nothing. The colour taken among the K surest components "
              "(every one for \"all\"), those within m (weighted CIELAB ΔE) of the nearest kept."), "",
             f"Constants in `rrsis.scene.colour`: COLOUR_AMONG = {COLOUR_AMONG}, COLOUR_MARGIN = {COLOUR_MARGIN:g}. "
             "Expressions (colour / multi / none) per model: "
             + ", ".join(" / ".join(str(report["per_model"][m]["n"][k]) for k in KINDS) for m in models) + ".", "",
             "| rule | " + " | ".join(f"model {i} colour | model {i} multi" for i in range(len(models)))
             + " | both: colour | both: multi |",
             "|---|" + "---|" * (2 * len(models) + 2)]

    def cell(v):
        return "–" if v is None else f"{v:.1f}"

    for name in RULES:
        cells = [cell(report["per_model"][m]["rules"][name][k]) for m in models for k in ("colour", "multi")]
        both = report["both"]["rules"][name]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {cell(both['colour'])} | {cell(both['multi'])} |")
    q = report["both"]["nearest_colour_quantiles"]
    lines += ["", ("Nearest candidate's colour distance (ΔE; 10th / 50th / 90th percentile, among the "
              f"{COLOUR_AMONG} surest): colour named and present {q['colour']}, colour absent (none) {q['none']}. "
              "None-kind N-acc is 0 under every rule: the choice is relative and keeps something."), ""]
    return "\n".join(lines)


def main() -> int:
    import datetime

    from rrsis.hub import from_pretrained

    args = tuning_args(__doc__.splitlines()[0], "colour-choice")
    work = Path(args.work)
    every, per_model = [], {}
    for i, m in enumerate(args.models or ["random"]):
        model = from_pretrained(m).eval() if m != "random" else random_model(64)
        mine = cache(model, work, f"colour-m{i}.pkl", args.scenes, args.seed, args.per_kind, args.size,
                     scene_records)
        every += mine
        per_model[m] = summary(mine)
    report = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {"models": args.models or ["random"], "scenes": args.scenes, "seed": args.seed,
                           "per_kind": args.per_kind, "size": args.size, "tune_settings": TUNE},
              "per_model": per_model, "both": summary(every)}
    stem = args.out or str(ROOT / "benchmarks" / "results" / "colour-choice-tuning")
    if every:
        write_results(stem, report, markdown(report))
        print(markdown(report))
    else:
        print("no expression naming a colour in these scenes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
