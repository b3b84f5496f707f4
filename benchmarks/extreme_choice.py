"""How the object mode takes an extreme ("the largest storage tank", "the northernmost ship"),
tuned on generated scenes that no held-out benchmark scores.

The tiles light the named category and its look-alikes, so the most extreme of every lit
component is often a look-alike. :func:`rrsis.scene.reading.choose` takes the extreme among the
``K`` surest components (``EXTREME_AMONG``); its first rule took it among every component at
least as sure as the median one. This script scores, on the extreme expressions of TUNING scenes
(``large_scene.TUNE``: the tuning palette and density, seeds of this script's own), from each
model's tiles pass per expression, computed once and cached: the surest component (no reading of
the extreme), the median rule, the ``K`` surest for a grid of ``K``, and the surest share of the
components. The chosen constant is then measured on ``large_scene.py``'s held-out scenes
(other seeds, palette and density: its ``object``, ``object (no extreme)`` and ``object (extreme,
median)`` rows).

    python benchmarks/extreme_choice.py --models /tmp/s26/ranked-seed0/model /tmp/s26/ranked-seed1/model \\
        --work /tmp/extreme-choice --out benchmarks/results/extreme-choice-tuning
    python benchmarks/extreme_choice.py --smoke        # tiny random model, checks the script
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results
from large_scene import TUNE, random_model
from relation_pairs import _ious, cache, tiles_pass, tuning_args

KS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)
SHARES = (0.1, 0.2, 0.3, 0.5)


def scene_records(model, meta: dict) -> list[dict]:
    """The extreme expressions of one generated scene (``meta`` from ``large_scene.make_set``):
    each one's components of its tiles pass (p > 0.5), its truth and its reading."""
    import rasterio

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.reading import read_expression

    with rasterio.open(meta["labels_path"]) as ds:
        labels = ds.read(1)
    records = []
    with open_scene(meta["path"]) as sc:
        opt = SceneOptions(mode="tiles", overlap=0.25).resolved(model, *labels.shape)
        for e in meta["expressions"]:
            said = read_expression(e["text"])
            if e["kind"] != "extreme" or said.extreme is None:
                continue
            records.append({"scene": meta["image"], "text": e["text"], "said": said,
                            "comps": tiles_pass(model, sc, opt, e["text"]), "gt": np.isin(labels, e["targets"])})
            print(f"  {e['text']}", flush=True)
    return records


def prepare(records: list[dict]) -> list[dict]:
    """Per expression: its components' mean probabilities, places, areas and IoUs with the truth."""
    from rrsis.scene.rank import component_places

    out = []
    for r in records:
        comps = r["comps"]
        x, y = component_places(comps)
        out.append({"said": r["said"], "p": comps.mean_probability, "x": x, "y": y, "area": comps.area,
                    "iou": _ious(comps, r["gt"]) if len(comps) else np.zeros(0)})
    return out


def pick(e: dict, among: int | str | None) -> float:
    """IoU of the component kept with the extreme taken among ``among`` (``K``, ``None``: the
    median rule, ``"surest"``: the extreme not read, a float: that share of the components)."""
    from rrsis.scene.reading import Reading, choose

    if not len(e["p"]):
        return 0.0
    said = e["said"]
    if among == "surest":
        said, among = Reading(said.objects, said.place), None
    elif isinstance(among, float):
        among = max(1, int(np.ceil(among * len(e["p"]))))
    kept = choose(said, e["p"], e["x"], e["y"], e["area"], extreme_among=among)
    return float(e["iou"][kept[0]]) if len(kept) else 0.0


RULES = {"surest (extreme not read)": "surest", "median (the first rule)": None,
         **{f"K = {k}": k for k in KS}, **{f"surest {100 * s:.0f} %": s for s in SHARES}}


def markdown(report: dict) -> str:
    from rrsis.scene.reading import EXTREME_AMONG

    s = report["settings"]
    models = list(report["per_model"])
    lines = ["# The extreme's candidates: tuning (cpu)", "",
             (f"Run {report['timestamp']}. Tuning scenes only: {s['scenes']} generated {s['size']}² scenes "
              f"(settings {TUNE}, seed {s['seed']}, {s['per_kind']} expressions per kind), extreme "
              f"expressions; models: {', '.join(f'`{m}`' for m in s['models'])}. mIoU (×100) of the "
              "component kept; the extreme taken among the K surest components, the surest share of them, "
              "or (the first rule) every one at least as sure as the median one."), "",
             f"Constant in `rrsis.scene.reading`: EXTREME_AMONG = {EXTREME_AMONG}. Expressions per model: "
             + ", ".join(str(report["per_model"][m]["n"]) for m in models) + ".", "",
             "| rule | " + " | ".join(f"model {i}" for i in range(len(models))) + " | both |",
             "|---|" + "---|" * (len(models) + 1)]
    for name in RULES:
        cells = [f"{report['per_model'][m]['rules'][name]:.1f}" for m in models]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {report['both'][name]:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    import datetime

    from rrsis.hub import from_pretrained

    args = tuning_args(__doc__.splitlines()[0], "extreme-choice")
    work = Path(args.work)
    every, per_model = [], {}
    for i, m in enumerate(args.models or ["random"]):
        model = from_pretrained(m).eval() if m != "random" else random_model(64)
        mine = prepare(cache(model, work, f"ext-m{i}.pkl", args.scenes, args.seed, args.per_kind, args.size,
                             scene_records))
        every += mine
        per_model[m] = {"n": len(mine), "rules": {name: 100 * float(np.mean([pick(e, r) for e in mine])) if mine
                                                  else 0.0 for name, r in RULES.items()}}
    report = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {"models": args.models or ["random"], "scenes": args.scenes, "seed": args.seed,
                           "per_kind": args.per_kind, "size": args.size, "tune_settings": TUNE},
              "per_model": per_model,
              "both": {name: 100 * float(np.mean([pick(e, r) for e in every])) if every else 0.0
                       for name, r in RULES.items()}}
    stem = args.out or str(ROOT / "benchmarks" / "results" / "extreme-choice-tuning")
    if every:
        write_results(stem, report, markdown(report))
        print(markdown(report))
    else:
        print("no extreme expression in these scenes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
