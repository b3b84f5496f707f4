"""Whether the object mode's colour reading survives the values of a scene that is not 8-bit.

A 16-bit scene read with a value scaling (a model trained with ``scale="dtype"`` or a divisor)
hands the object mode dark values: reflectance near 0.3 at ``"dtype"`` is 0.05. Colour words are
compared in CIELAB with prototypes of displayed colours, so for any scene that is not 8-bit the
object mode divides red, green and blue by the scene's white, one value for the three
(:func:`rrsis.scene.colour.display_range`: ``WHITE_PERCENTILE`` of the three together); 8-bit
scenes are compared as they are.

A value scaling is linear, so a 16-bit scene is the 8-bit scene's values times a factor, and its
colours over its white do not depend on the factor. From each model's tiles pass per expression
(``colour_choice.scene_records``: components of p > 0.5 and their mean colours), at the shipped
``COLOUR_AMONG`` and ``COLOUR_MARGIN``, rows: the colour not read (the surest), 8-bit values as
they are (what 8-bit scenes get), the values times each of ``FACTORS`` as they are (16-bit scenes
read with a value scaling before this rule), stretched band by band between the 2nd and 98th
percentiles (a reader's stretch, as a 16-bit scene without a value scaling is read; the first
rule tried), and over the white at each percentile of ``WHITES`` (the grid; chosen on the tuning
scenes). Sets: the tuning scenes of ``colour_choice.py`` (its cache), ``large_scene.py``'s
held-out 1024² scenes (seed 2, another palette and density), and the same through
``large_scene.HAZE``.

    python benchmarks/colour_depth.py --models M0 M1 --work /tmp/colour-choice \\
        --out benchmarks/results/colour-depth
    python benchmarks/colour_depth.py --smoke        # tiny random model, checks the script
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import write_results
from colour_choice import pick, scene_records
from large_scene import HELD_OUT, TUNE, hazy, make_set, random_model
from relation_pairs import cache, tuning_args

FACTORS = (0.5, 0.15, 0.05)
WHITES = (98.0, 99.0, 99.5, 99.9, 100.0)
HELD_SEED = 2  # large_scene.py's held-out seed
KINDS = ("colour", "multi")
DEFAULT = "over its white (the default for any depth but 8-bit)"


def scene_values(metas: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each scene's red, green and blue over its valid pixels as :func:`display_range` reads them
    (a decimated read, the 8-bit scene's reader values), with the range ``display_range`` gives
    the same scene as one that is not 8-bit."""
    from rrsis.scene import open_scene
    from rrsis.scene.colour import display_range, display_values

    out = {}
    for meta in metas:
        with open_scene(meta["path"]) as sc:
            deep = SimpleNamespace(dtype="uint16", height=sc.height, width=sc.width, read=sc.read, stretch_range=None)
            out[meta["image"]] = display_values(sc, (0, 1, 2)), display_range(deep, (0, 1, 2))
    return out


def variants(e: dict, values: np.ndarray, span: np.ndarray) -> dict[str, dict]:
    """The record ``e`` under each row: its components' colours as that row sees them (``values``
    and ``span``: its scene's, :func:`scene_values`)."""
    from rrsis.scene.colour import WHITE_PERCENTILE

    rows = {"8-bit, as it is": e}
    for f in FACTORS:
        rows[f"×{f:g} (16-bit at a value scaling), as it is"] = {**e, "rgb": e["rgb"] * f}
    lo, hi = np.percentile(values, (2, 98), axis=0)
    rows["stretched band by band, 2–98 %"] = {**e, "rgb": np.clip((e["rgb"] - lo) / (hi - lo), 0.0, 1.0)}
    for q in WHITES:
        if q != WHITE_PERCENTILE:
            rows[f"over the {q:g}th percentile"] = {**e, "rgb": np.clip(e["rgb"] / np.percentile(values, q), 0, 1)}
    rows[f"{DEFAULT}: the {WHITE_PERCENTILE:g}th percentile"] = {
        **e, "rgb": np.clip((e["rgb"] - span[:, 0]) / (span[:, 1] - span[:, 0]), 0.0, 1.0)}
    return rows


def score(records: list[dict], scenes: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN

    rule = (COLOUR_AMONG, COLOUR_MARGIN)
    rows: dict[str, dict[str, list[float]]] = {}
    for e in records:
        if e["kind"] not in KINDS:
            continue
        rows.setdefault("surest (colour not read)", {k: [] for k in KINDS})[e["kind"]].append(pick(e, None))
        for name, v in variants(e, *scenes[e["scene"]]).items():
            rows.setdefault(name, {k: [] for k in KINDS})[e["kind"]].append(pick(v, rule))
    return {"n": {k: sum(e["kind"] == k for e in records) for k in KINDS},
            "rows": {name: {k: 100 * float(np.mean(v)) if v else None for k, v in r.items()}
                     for name, r in rows.items()}}


def markdown(report: dict) -> str:
    from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN

    s = report["settings"]
    lines = ["# The colour reading at other value ranges (cpu)", "",
             (f"Run {report['timestamp']}. Models: {', '.join(f'`{m}`' for m in s['models'])}. "
              f"COLOUR_AMONG = {COLOUR_AMONG}, COLOUR_MARGIN = {COLOUR_MARGIN:g} (shipped; nothing tuned here). "
              "mIoU (×100), both models' expressions pooled: colour (\"the white tank\", what is kept) and "
              "multi (\"all red buildings\", the union kept). A 16-bit scene read with a value scaling is the "
              "8-bit scene times a factor; its colours over its white do not depend on the factor."), ""]
    for name, part in report["sets"].items():
        lines += [f"## {name}", "", (f"{part['what']}; expressions colour / multi: "
                                     f"{part['n']['colour']} / {part['n']['multi']}."), "",
                  "| row | colour | multi |", "|---|---|---|"]
        for row, v in part["rows"].items():
            lines.append(f"| {row} | " + " | ".join("–" if v[k] is None else f"{v[k]:.1f}" for k in KINDS) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    import datetime

    from rrsis.hub import from_pretrained

    args = tuning_args(__doc__.splitlines()[0], "colour-choice")
    work = Path(args.work)
    models = [from_pretrained(m).eval() if m != "random" else random_model(64) for m in (args.models or ["random"])]
    size = 256 if args.smoke else 1024
    sets = {
        "Tuning scenes": ("colour_choice.py's", work / "scenes", TUNE, args.seed, args.scenes, args.size, "colour-m{i}.pkl"),
        "Held-out scenes": ("large_scene.py's held-out scenes", work / "held", HELD_OUT, HELD_SEED,
                            1 if args.smoke else 7, size, "depth-held-m{i}.pkl"),
        "Held-out scenes through haze": ("the same through large_scene.HAZE", work / "haze", HELD_OUT, HELD_SEED,
                                         1 if args.smoke else 7, size, "depth-haze-m{i}.pkl"),
    }
    report = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": {"models": args.models or ["random"], "factors": FACTORS, "whites": WHITES}, "sets": {}}
    for name, (what, folder, settings, seed, scenes, side, pkl) in sets.items():
        metas = make_set(folder, [side], scenes, settings, seed, models[0].image_size, args.per_kind)
        if "haze" in pkl:  # make_set writes the scenes afresh each time
            for meta in metas:
                hazy(meta["path"])
        records = []
        for i, model in enumerate(models):
            if pkl.startswith("colour"):  # colour_choice.py's own cache of its tuning scenes
                records += cache(model, work, pkl.format(i=i), scenes, seed, args.per_kind, side, scene_records)
            else:
                records += _cached(work / pkl.format(i=i), model, metas)
        part = score(records, scene_values(metas))
        report["sets"][name] = {"what": f"{what}: {scenes} of {side}², seed {seed}, settings {settings}", **part}
    stem = args.out or str(ROOT / "benchmarks" / "results" / "colour-depth")
    write_results(stem, report, markdown(report))
    print(markdown(report))
    return 0


def _cached(path: Path, model, metas: list[dict]) -> list[dict]:
    """``scene_records`` of ``metas``, cached in ``path`` (a pickle: delete it to recompute)."""
    import pickle

    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    records = [r for meta in metas for r in scene_records(model, meta)]
    with open(path, "wb") as fh:
        pickle.dump(records, fh)
    return records


if __name__ == "__main__":
    raise SystemExit(main())
