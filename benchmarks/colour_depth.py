"""Whether the object mode's colour reading survives the values of a scene that is not 8-bit.

A 16-bit scene read with a value scaling (a model trained with ``scale="dtype"`` or a divisor)
hands the object mode dark values: reflectance near 0.3 at ``"dtype"`` is 0.05. Colour words are
compared in CIELAB with prototypes of displayed colours, so for any scene that is not 8-bit the
object mode takes the candidates' colours in the source's values over one white for the three
bands: the brightest band of the brightest candidate (:func:`rrsis.scene.colour.component_colours`);
8-bit scenes are compared as they are. The first rule took the scene's own white, a percentile of
its pixels, which a cloud brighter than every roof sets.

A value scaling is linear, so a 16-bit scene is the 8-bit scene's values times a factor, and its
colours over a white do not depend on the factor. From each model's tiles pass per expression
(``colour_choice.scene_records``: components of p > 0.5 and their mean colours), at the shipped
``COLOUR_AMONG`` and ``COLOUR_MARGIN``, rows: the colour not read (the surest), 8-bit values as
they are (what 8-bit scenes get), the values times each of ``FACTORS`` as they are (16-bit scenes
read with a value scaling before any white), stretched band by band between the 2nd and 98th
percentiles (a reader's stretch), over the scene's own white at each percentile of ``WHITES``
(the previous rule: 99.9), and over the brightest candidate (the rule). Then each white with
``CLOUDS``: that fraction of the scene's pixels added at ``CLOUD_BRIGHTNESS`` times the 8-bit
white, near-white with a little noise, as a cloud bank the tiles pass does not propose (the model's
own view of a cloud is not simulated: only the white each rule takes). Last, for the words other
than white, the same passes without their candidates near white (:func:`without_white`): where
the brightest candidate is no white object, the candidates' white is not the scene's. The rows
"no candidate under N px" drop the components smaller than one patch cell of the model
(:func:`rrsis.scene.rank.candidate_area`), as mode ``object`` does. Sets: the tuning scenes of
``colour_choice.py`` (its cache), ``large_scene.py``'s held-out 1024² scenes (seed 2, another
palette and density), and the same through ``large_scene.HAZE``.

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
WHITES = (99.5, 99.9)
CLOUDS = (0.002, 0.01, 0.05)
CLOUD_BRIGHTNESS = 2.0
HELD_SEED = 2  # large_scene.py's held-out seed
KINDS = ("colour", "multi")
DEFAULT = "over the brightest candidate (the default for any depth but 8-bit)"


def scene_values(metas: list[dict]) -> dict[str, np.ndarray]:
    """Each scene's red, green and blue over its valid pixels (a decimated read of the 8-bit
    scene: :func:`rrsis.scene.colour.display_values`), the pixels a scene's own white is taken from."""
    from rrsis.scene import open_scene
    from rrsis.scene.colour import display_values

    out = {}
    for meta in metas:
        with open_scene(meta["path"]) as sc:
            out[meta["image"]] = display_values(sc, (0, 1, 2))
    return out


def clouded(values: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """``values`` and a cloud bank: ``fraction`` of the result's pixels near-white at
    ``CLOUD_BRIGHTNESS`` times the 8-bit white."""
    n = round(fraction * len(values) / (1.0 - fraction))
    noise = np.random.default_rng(seed).normal(0.0, 0.03, (n, 3))
    cloud = CLOUD_BRIGHTNESS * np.clip(np.array([0.97, 0.99, 1.0]) + noise, 0.0, None)
    return np.concatenate([values, cloud])


def brightest_candidate(e: dict) -> np.ndarray:
    """The record's colours as the object mode takes them for a scene that is not 8-bit (the
    shipped :func:`~rrsis.scene.colour.component_colours`, on a 16-bit view of the same values)."""
    from rrsis.scene.colour import component_colours, display_range

    deep = SimpleNamespace(dtype="uint16", stretch_range=None)
    comps = SimpleNamespace(rgb=(0, 1, 2), bands=3, band_means=e["rgb"], rgb_range=display_range(deep, (0, 1, 2)))
    return component_colours(comps)


def scene_whites(values: np.ndarray) -> dict:
    """What the rows take from a scene's pixels, computed once a scene: ``"stretch"``, each band's
    2nd and 98th percentiles; ``(cloud, q)``, the ``q``-th percentile of the pixels with that
    fraction of clouds (:func:`clouded`; 0: none)."""
    out: dict = {"stretch": np.percentile(values, (2, 98), axis=0)}
    for cloud in (0.0, *CLOUDS):
        seen = clouded(values, cloud) if cloud else values
        out.update({(cloud, q): np.percentile(seen, q) for q in WHITES})
    return out


def variants(e: dict, values: np.ndarray, whites: dict | None = None) -> dict[str, dict]:
    """The record ``e`` under each row: its components' colours as that row sees them (``values``:
    its scene's pixels, :func:`scene_values`; ``whites``: their :func:`scene_whites`, when known)."""
    whites = scene_whites(values) if whites is None else whites
    rows = {"8-bit, as it is": e}
    for f in FACTORS:
        rows[f"×{f:g} (16-bit at a value scaling), as it is"] = {**e, "rgb": e["rgb"] * f}
    lo, hi = whites["stretch"]
    rows["stretched band by band, 2–98 %"] = {**e, "rgb": np.clip((e["rgb"] - lo) / (hi - lo), 0.0, 1.0)}
    default = {**e, "rgb": brightest_candidate(e)}  # no scene pixel enters it: the same with clouds
    for cloud in (0.0, *CLOUDS):
        where = f"with {100 * cloud:g} % clouds, " if cloud else ""
        for q in WHITES:
            name = f"{where}over the scene's {q:g}th percentile" + (" (the previous rule)" if q == 99.9 else "")
            rows[name] = {**e, "rgb": np.clip(e["rgb"] / whites[(cloud, q)], 0, 1)}
        rows[f"{where}{DEFAULT}"] = default
    return rows


def _subset(e: dict, keep: np.ndarray) -> dict:
    """The record with only the components ``keep`` marks."""
    return {**e, **{k: e[k][keep] for k in ("p", "rgb", "area", "inter")}}


def without_white(e: dict) -> dict | None:
    """The record without its candidates near white (weighted ΔE 20 or less), for a word other than
    white: a pass whose brightest candidate is no white object, where the candidates' own white
    is not the scene's; ``None`` for a white word or nothing left."""
    from rrsis.scene.colour import colour_cost

    if e["said"].colour == "white" or not len(e["p"]):
        return None
    keep = colour_cost("white", e["rgb"]) > 20
    return _subset(e, keep) if keep.any() else None


def without_specks(e: dict, cell: float) -> dict:
    """The record without its components smaller than ``cell`` pixels (unless none is larger):
    the candidates mode ``object`` takes (:func:`rrsis.scene.rank.candidate_area`)."""
    keep = e["area"] >= cell
    return _subset(e, keep) if keep.any() else e


def score(records: list[dict], scenes: dict[str, np.ndarray], cell: float = 0.0) -> dict:
    from rrsis.scene.colour import COLOUR_AMONG, COLOUR_MARGIN

    rule = (COLOUR_AMONG, COLOUR_MARGIN)
    rows: dict[str, dict[str, list[float]]] = {}
    whites: dict[str, dict] = {}
    for e in records:
        if e["kind"] not in KINDS:
            continue
        if e["scene"] not in whites:
            whites[e["scene"]] = scene_whites(scenes[e["scene"]])
        rows.setdefault("surest (colour not read)", {k: [] for k in KINDS})[e["kind"]].append(pick(e, None))
        if cell > 0:  # what mode object takes now: no speck smaller than a patch cell is a candidate
            bare = without_specks(e, cell)
            for name, v in ((f"8-bit, as it is; no candidate under {cell:g} px", bare),
                            (f"{DEFAULT}; no candidate under {cell:g} px", {**bare, "rgb": brightest_candidate(bare)})):
                rows.setdefault(name, {k: [] for k in KINDS})[e["kind"]].append(pick(v, rule))
        for name, v in variants(e, scenes[e["scene"]], whites[e["scene"]]).items():
            rows.setdefault(name, {k: [] for k in KINDS})[e["kind"]].append(pick(v, rule))
        if (bare := without_white(e)) is not None:  # words other than white, white candidates removed
            white = whites[e["scene"]][(0.0, 99.9)]
            for name, v in (("8-bit, as it is", bare),
                            ("over the scene's 99.9th percentile", {**bare, "rgb": np.clip(bare["rgb"] / white, 0, 1)}),
                            (DEFAULT, {**bare, "rgb": brightest_candidate(bare)})):
                rows.setdefault(f"no white candidate (words but white), {name}", {k: [] for k in KINDS})[
                    e["kind"]].append(pick(v, rule))
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
              "8-bit scene times a factor; its colours over a white do not depend on the factor. Clouds: "
              f"that fraction of the scene's pixels added at {CLOUD_BRIGHTNESS:g}× the 8-bit white (only the "
              "white each rule takes; the tiles pass is the same)."), ""]
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
    from rrsis.scene import SceneOptions
    from rrsis.scene.rank import candidate_area

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
              "settings": {"models": args.models or ["random"], "factors": FACTORS, "whites": WHITES,
                           "clouds": CLOUDS, "cloud_brightness": CLOUD_BRIGHTNESS}, "sets": {}}
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
        part = score(records, scene_values(metas), candidate_area(models[0], SceneOptions(mode="tiles", pixel_ratio=1)))
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
