"""The docs' generated pages: API reference, model zoo and benchmarks, made at build time.

``tools/mkdocs_hooks.py`` calls :func:`generated_pages` from mkdocs' ``on_files`` event, so
``mkdocs build`` always renders what ``rrsis.__all__``, the registry and
``benchmarks/results/*.json`` hold now. Each function returns ``{path inside docs/: text or
PNG bytes}`` and can be called (and tested) without mkdocs.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ZOO_FIGURES = ROOT / "docs" / "zoo-figures.json"

Page = str | bytes

# RRSIS-D: 17,402 image-expression triplets; the 12,181 / 1,740 / 3,481 split comes from a
# third-party compilation (not confirmed from the release itself), as the page says.
RRSISD_TRAIN = 12_181
RRSISD_VAL = 1_740
EPOCHS = 40  # the anchors' schedule (rrsis/configs/gl-msin-rrsisd.json)

# ---------------------------------------------------------------------------- helpers


def _table(header: list[str], rows: Iterable[list[Any]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _figure(width: float = 7.0, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def _source(path: Path) -> str:
    return f"Generated from `benchmarks/results/{path.name}`."


# ---------------------------------------------------------------------------- API reference

API_GROUPS = {
    "Models and weights": ["create_model", "from_pretrained", "list_models", "list_pretrained", "is_model",
                           "pretrained_cfg", "ReferringSegmenter", "RRSISModel", "SegmentationOutput"],
    "Images and whole scenes": ["read_image", "segment_scene", "segment_scenes", "SceneOptions", "open_scene",
                                "write_chips"],
    "Text, loss and errors": ["Tokenizer", "ReferringLoss", "ConfigError"],
    "Extending": ["register_model", "register_pretrained"],
}


def api_entries() -> dict[str, str]:
    """``{public name: dotted path mkdocstrings documents}`` for every name in ``rrsis.__all__``."""
    import rrsis

    lazy = rrsis._LAZY  # the one map of public name → defining module
    return {name: f"rrsis.{lazy[name]}.{name}" for name in rrsis.__all__ if name != "__version__"}


def api_pages() -> dict[str, Page]:
    import rrsis

    entries = api_entries()
    grouped = {n for names in API_GROUPS.values() for n in names}
    groups = dict(API_GROUPS)
    other = [n for n in entries if n not in grouped]
    if other:
        groups["Other public names"] = other
    out = ["# API reference", "",
           (f"Every name in `rrsis.__all__` (version {rrsis.__version__}), generated from the docstrings "
            "when the site is built. `import rrsis` is cheap: each name loads its module on first use, "
            "so the headings give the module that defines it. The part tables live in "
            "[`rrsis.registry`](registry.md)."), ""]
    for title, names in groups.items():
        names = [n for n in names if n in entries]
        if not names:
            continue
        out += [f"## {title}", ""]
        for name in names:
            out += [f"::: {entries[name]}", "    options:", "      show_root_heading: true",
                    "      show_root_full_path: true", "      heading_level: 3", ""]
    registry = ["# `rrsis.registry`", "",
                ("The name tables a config looks parts up in, and the decorators that add models and "
                 "pretrained tags. Import them from here (`from rrsis.registry import HEADS`); "
                 "see the guide [Compose a model](../guides/compose.md)."), "",
                "::: rrsis.registry", "    options:", "      show_root_heading: false",
                "      members: [Registry, PretrainedCfg, register_model, register_pretrained]", ""]
    return {"api/index.md": "\n".join(out), "api/registry.md": "\n".join(registry)}


# ---------------------------------------------------------------------------- model zoo


def _figures(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def zoo_page(figures_path: Path = ZOO_FIGURES) -> dict[str, Page]:
    """The model zoo: every registered architecture and pretrained tag, as the registry says now."""
    import rrsis
    from tools.zoo_figures import count_parameters

    figures = _figures(figures_path)
    tags = rrsis.list_pretrained()
    rows = []
    for name in rrsis.list_models():
        fig = figures.get(name, {})
        params = fig.get("params")
        if params is None:
            params = count_parameters(name)
        gflops = fig.get("gflops_480")
        own = [t for t in tags if t.split(".", 1)[0] == name]
        rows.append([f"`{name}`", f"{params / 1e6:.2f} M", "–" if gflops is None else f"{gflops:.1f}",
                     ", ".join(f"`{t}`" for t in own) or "–"])
    tag_rows = []
    for tag in tags:
        cfg = rrsis.pretrained_cfg(tag)
        src = [f"backbone: {cfg.swin}" if cfg.swin else "", f"text: {cfg.text}" if cfg.text else "",
               f"full model: {cfg.hub_id}" if cfg.hub_id else ""]
        tag_rows.append([f"`{tag}`", "<br>".join(s for s in src if s) or "–", f"{cfg.image_size}²",
                         cfg.license or "–", cfg.notes.replace("|", "\\|").replace("\n", " ") or "–"])
    text = f"""# Model zoo

Generated from the registry (`rrsis.list_models()`, `rrsis.list_pretrained()`) when the site is
built, so a model registered with `rrsis.registry.register_model` appears here. Parameters are
counted on the meta device; GFLOPs (2 per multiply-add, one forward pass at 480×480, batch 1,
20 tokens, attention as plain torch ops) come from `docs/zoo-figures.json`, which
`python tools/zoo_figures.py` regenerates ("–": not in that file yet).

{_table(["model", "parameters", "GFLOPs at 480²", "pretrained tags"], rows, "lrrl")}
GL-MSIN is a reconstruction from the paper's abstract (see [Reconstruction](reconstruction.md)):
no GL-MSIN weights or paper numbers exist here. The `*-tiny` models are test-size configurations.

## Pretrained tags

`rrsis.create_model("name.tag", pretrained=True)` loads the weights a tag names; `rrsis models
--pretrained` prints the same. Weights of a part not listed (ELSA blocks, fusion, GEM, heads)
start random and `model.load_report` lists them.

{_table(["tag", "weight sources", "input", "licence", "notes"], tag_rows, "lllll")}"""
    return {"models.md": text}


# ---------------------------------------------------------------------------- benchmarks


def _ablation(path: Path, data: dict) -> dict[str, Page]:
    meta, table = data["meta"], data["table"]
    cols = ["mIoU", "oIoU", "P@0.5", "P@0.9", "colour", "relation", "position", "size"]
    rows = []
    for name, row in table.items():
        cells = [f"{100 * row[c]['mean']:.1f} ± {100 * row[c]['spread']:.1f}" if c in row else "–" for c in cols]
        rows.append([name, f"{row.get('params_M', float('nan')):.2f} M", *cells,
                     f"{row.get('train_s_mean', float('nan')):.0f}"])
    fig, ax = _figure(7.5, 0.45 * len(table) + 1.0)
    names = list(table)
    means = [100 * table[n]["mIoU"]["mean"] for n in names]
    spreads = [100 * table[n]["mIoU"]["spread"] / 2 for n in names]
    ax.barh(range(len(names)), means, xerr=spreads, color="#4c72b0", capsize=3)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("validation mIoU (mean over seeds; bar: ± half the spread)")
    ax.grid(axis="x", alpha=0.3)
    img = f"{path.stem}-miou.png"
    text = f"""# Ablation (CPU, from scratch)

{_source(path)} Run `{meta.get('command', '')}` on {meta.get('machine', '?')},
{meta.get('timestamp', '?')}: every row trained from scratch on {meta.get('scenes')} generated
scenes of {meta.get('size')} px (data seed {meta.get('data_seed')}), {meta.get('steps')} steps × batch
{meta.get('batch_size')}, lr {meta.get('lr')}, seeds {meta.get('seeds')}; {meta.get('val_samples')}
validation expressions. Figures: mean ± spread (max − min over seeds), in points.

![mIoU per row]({img})

{_table(["row", "params", *cols, "train s"], rows)}
What these rows mean, and the runs before this one, are in [History](../history.md).
"""
    return {f"benchmarks/{path.stem}.md": text, f"benchmarks/{img}": _png(fig)}


def _demo(path: Path, data: dict) -> dict[str, Page]:
    meta, runs = data["meta"], data["runs"]
    rows = [[r["seed"], f"{r['mIoU']:.4f}", f"{r['oIoU']:.4f}", f"{r['control_mIoU']:.4f}", f"{r['gap']:.4f}",
             f"{r['wall_s'] / 60:.1f} min", "yes" if r.get("met") else "no"] for r in runs]
    text = f"""# The demo on a CPU

{_source(path)} `{meta.get('command', '')}` on {meta.get('machine', '?')} at commit
`{meta.get('commit', '?')}`, {meta.get('timestamp', '?')}: each seed a fresh `rrsis demo --seed S`,
one after another. Targets: mIoU ≥ {meta.get('min_miou')}, a gap over the text-shuffled control
≥ {meta.get('min_gap')}, at most {meta.get('max_minutes')} minutes.

{_table(["seed", "GL-MSIN mIoU", "oIoU", "control mIoU", "gap", "wall time", "targets met"], rows)}
All targets met: **{"yes" if meta.get("all_met") else "no"}**. What the demo does: [the demo guide](../guides/demo.md).
"""
    return {f"benchmarks/{path.stem}.md": text}


def _cpu_threads(path: Path, data: dict) -> dict[str, Page]:
    meta = data["meta"]
    rows = [[r["threads"], r["competitors"], f"{1000 * r['median_step_s']:.0f}",
             f"{1000 * r['min_step_s']:.0f}–{1000 * r['max_step_s']:.0f}", r.get("load_before", "–")]
            for r in data["rows"]]
    text = f"""# Threads under load (CPU)

{_source(path)} `{meta.get('command', '').strip()}` on {meta.get('machine', '?')}, {meta.get('timestamp', '?')}:
one training step of the demo model, {meta.get('steps')} steps after {meta.get('warmup')} warm-up,
with 0 or 1 competing busy processes.

{_table(["threads", "competitors", "median step (ms)", "range (ms)", "load before"], rows)}
Two threads collapse when another process holds a core; one does not. This is why `rrsis demo`
trains with one thread per process, side by side.
"""
    return {f"benchmarks/{path.stem}.md": text}


def _large_scene(path: Path, data: dict) -> dict[str, Page]:
    stem = path.stem
    if "held_out" in data and path.with_suffix(".md").is_file():  # the v2 benchmark writes its own page
        return {f"benchmarks/{stem}.md": path.with_suffix(".md").read_text()}
    out: dict[str, Page] = {}
    lines = [f"# Whole scenes: `{stem}`", "", _source(path) + f" Run {data.get('timestamp', '?')} on "
             f"{data.get('machine', '?')}; {data.get('conditions', '')}.", ""]
    acc = data.get("accuracy")
    if acc:
        settings = data.get("settings", {})
        lines += [(f"Scored on {data.get('eval_expressions')} expressions over {settings.get('eval_scenes')} "
                   f"generated {settings.get('eval_size')}² scenes; options {settings.get('options')}."), "",
                  _table(["mode", "mIoU", "oIoU", "P@0.5", "s / expression"],
                         [[m, _pct(a.get("mIoU"), 2), _pct(a.get("oIoU"), 2), _pct(a.get("P@0.5")),
                           f"{a.get('seconds_per_expression', float('nan')):.2f}"] for m, a in acc.items()])]
    perf = data.get("performance") or []
    if perf:
        lines += ["Throughput and memory (peak RSS of the measuring process):", "",
                  _table(["scene", "configuration", "seconds", "Mpx/s", "peak RSS (MiB)"],
                         [[f"{p['size']}²", p.get("config", p.get("mode")), f"{p['seconds']:.1f}",
                           f"{p['mpx_per_s']:.2f}", f"{p['rss_mib']:.0f}"] for p in perf], "llrrr")]
    out[f"benchmarks/{stem}.md"] = "\n".join(lines)
    return out


def _gpu(path: Path, data: dict) -> dict[str, Page]:
    env = data.get("environment", {})
    stem = path.stem
    lines = [f"# {env.get('gpu', stem)}", "", _source(path) + f" Measured {env.get('timestamp', '?')}: "
             f"driver {env.get('driver', '?')}, CUDA {env.get('cuda', '?')}, torch {env.get('torch', '?')}, "
             f"triton {env.get('triton', '?')}.", ""]
    train = data.get("train") or {}
    if train:
        lines += ["## Training step (GL-MSIN-B, random weights, AdamW)", "",
                  _table(["kernels", "precision", "batch", "median step (s)", "images/s", "peak memory (GiB)"],
                         [[k, t["precision"], t["batch"], f"{t['median_step_s']:.3f}", f"{t['images_per_s']:.1f}",
                           f"{t['peak_bytes'] / 2**30:.1f}"] for k, t in train.items()], "llrrrr")]
    for name, bench in (data.get("benchmarks") or {}).items():
        rows = [[r["model"], r["mode"], r["precision"], r["kernels"], r.get("batch", "–"),
                 f"{r['images_per_s']:.1f}" if r.get("status") == "ok" else r.get("status", "?")]
                for r in bench.get("rows", [])]
        if rows:
            lines += [f"## `{name}`", "", _table(["model", "mode", "precision", "kernels", "batch", "images/s"],
                                                 rows, "llllrr")]
    scene = data.get("scene") or []
    if scene:
        lines += ["## Whole scenes", "", _table(["scene", "mode", "precision", "seconds", "Mpx/s", "peak CUDA (GiB)"],
                                                [[f"{s['size']}²", s["mode"], s["precision"], f"{s['seconds']:.2f}",
                                                  f"{s['mpx_per_s']:.2f}", f"{s['peak_cuda_bytes'] / 2**30:.1f}"]
                                                 for s in scene], "lllrrr")]
    return {f"benchmarks/{stem}.md": "\n".join(lines)}


def _attention(path: Path, data: dict) -> dict[str, Page]:
    run = (data.get("runs") or [{}])[0]
    rows = data.get("rows", [])
    stem = path.stem
    table = [[r["op"], r["stage"], r.get("shape", ""), r["provider"], r["mode"], r["dtype"],
              f"{r['p50_ms']:.3f}" if r.get("status") == "ok" else "–",
              f"{r['peak_bytes'] / 2**20:.0f}" if r.get("status") == "ok" else "–",
              f"{r['pct_hbm']:.1f}" if r.get("status") == "ok" and r.get("pct_hbm") is not None else "–",
              "ok" if r.get("status") == "ok" else "failed"] for r in rows]
    out: dict[str, Page] = {}
    plots = []
    for op in sorted({r["op"] for r in rows}):
        ok = [r for r in rows if r["op"] == op and r.get("status") == "ok"]
        stages = sorted({r["stage"] for r in ok})
        providers = sorted({r["provider"] for r in ok})
        if not ok:
            continue
        fig, ax = _figure()
        width = 0.8 / max(1, len(providers))
        for i, prov in enumerate(providers):
            ys = [next((r["p50_ms"] for r in ok if r["stage"] == s and r["provider"] == prov), math.nan)
                  for s in stages]
            ax.bar([j + i * width for j in range(len(stages))], ys, width, label=prov)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(stages))], stages)
        ax.set_yscale("log")
        ax.set_ylabel("p50 time (ms, log scale)")
        ax.set_title(f"{op}: {', '.join(sorted({r['mode'] for r in ok}))}, {', '.join(sorted({r['dtype'] for r in ok}))}")
        ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        ax.grid(axis="y", alpha=0.3)
        img = f"{stem}-{op}.png"
        out[f"benchmarks/{img}"] = _png(fig)
        plots.append(f"![{op} time per provider]({img})")
    text = "\n".join([f"# Attention kernels: {run.get('gpu', stem)}", "",
                      _source(path) + f" Measured {run.get('timestamp', '?')} (`benchmarks/attention.py "
                      f"{run.get('argv', '')}`), torch {run.get('torch', '?')}, triton {run.get('triton', '?')}.",
                      "Lower is better. A failed provider is listed without a time.", "", *plots, "",
                      _table(["op", "stage", "shape", "provider", "mode", "dtype", "p50 (ms)", "peak (MiB)",
                              "% HBM", "status"], table, "llllllrrrl")])
    out[f"benchmarks/{stem}.md"] = text
    return out


def _generic(path: Path, data: Any) -> dict[str, Page]:
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))} if isinstance(data, dict) else {}
    text = f"# `{path.stem}`\n\n{_source(path)} No page layout knows this file yet; its top-level values:\n\n"
    text += _table(["key", "value"], [[k, f"`{v}`"] for k, v in scalars.items()], "ll")
    return {f"benchmarks/{path.stem}.md": text}


def _nir(path: Path, data: dict) -> dict[str, Page]:
    # benchmarks/nir.py writes its table beside the data; the page is that table under a title.
    text = (f"# Near-infrared band: 4-band against RGB tiny GL-MSIN\n\n{_source(path)} Written by "
            f"`benchmarks/nir.py` (its docstring says how).\n\n{path.with_suffix('.md').read_text()}")
    return {f"benchmarks/{path.stem}.md": text}


def _with_report(path: Path, data: dict) -> dict[str, Page]:
    # A script that writes its own report beside the data (its first line the title): the page
    # is that report, with where it came from under the title.
    title, _, rest = path.with_suffix(".md").read_text().partition("\n")
    return {f"benchmarks/{path.stem}.md": f"{title}\n\n{_source(path)}\n{rest}"}


def _kind(path: Path, data: Any) -> Callable[[Path, Any], dict[str, Page]]:
    if not isinstance(data, dict):
        return _generic
    if path.stem.startswith("ablation") and "table" in data:
        return _ablation
    if path.stem.startswith("demo") and "runs" in data:
        return _demo
    if path.stem.startswith("cpu-threads"):
        return _cpu_threads
    if path.stem.startswith("large-scene"):
        return _large_scene
    if path.stem.startswith(("cpu-inference", "evaluate-labels", "extreme-choice", "relation-pairs", "colour-choice",
                                 "colour-depth")) \
            and path.with_suffix(".md").exists():
        return _with_report
    if path.stem.startswith("nir") and "check" in data and path.with_suffix(".md").exists():
        return _nir
    if "environment" in data and "train" in data:
        return _gpu
    if "rows" in data and data["rows"] and "provider" in data["rows"][0]:
        return _attention
    return _generic


def time_to_train(results: Path = RESULTS) -> str:
    """The RRSIS-D estimate from every measured training throughput in ``results``."""
    rows = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        if not (isinstance(data, dict) and "environment" in data and "train" in data):
            continue
        gpu = data["environment"].get("gpu", path.stem)
        forward = {r["kernels"]: r["images_per_s"] for b in (data.get("benchmarks") or {}).values()
                   for r in b.get("rows", []) if r.get("mode") == "forward" and r.get("status") == "ok"}
        for kernels, t in data["train"].items():
            ips = t["images_per_s"]
            train_h = EPOCHS * RRSISD_TRAIN / ips / 3600
            val_ips = forward.get(kernels)
            val_h = EPOCHS * RRSISD_VAL / val_ips / 3600 if val_ips else None
            rows.append([gpu, kernels, t["precision"], t["batch"], f"{ips:.1f}", f"{train_h:.1f} h",
                         "–" if val_h is None else f"{val_h:.2f} h",
                         f"{train_h + (val_h or 0):.1f} h", f"`{path.name}`"])
    table = _table(["GPU", "kernels", "precision", "batch", "train images/s", "training", "validation",
                    "total", "from"], rows, "llllrrrrl") if rows else "No GPU training throughput is recorded yet.\n"
    return f"""# Time to train on RRSIS-D (one GPU)

An estimate, not a measured run: the time of one full recipe (`rrsis train --config
gl-msin-rrsisd`) from the training throughput `benchmarks/gpu_check.py` measured (GL-MSIN-B,
480×480, random weights, AdamW, 50 steps), generated from `benchmarks/results/*.json`.

**Formula.** training = epochs × N_train / (train images/s); validation = epochs × N_val /
(forward images/s, `no_grad`), one validation per epoch; total = the sum. Data loading, start-up
and checkpoint writing are left out (they overlap with the GPU or are small).

**Numbers used.** epochs = {EPOCHS} (the anchors' recipe, `rrsis/configs/gl-msin-rrsisd.json`);
RRSIS-D holds 17,402 image–expression triplets, split {RRSISD_TRAIN:,} / {RRSISD_VAL:,} / 3,481
(train / val / test), figures from a third-party compilation of the dataset (RMSIN, CVPR 2024,
introduced it); the split sums to the total but was not read from the release here, so treat
N_train = {RRSISD_TRAIN:,} as approximate. Every training expression is one sample per epoch (the loaders' default).

{table}
The fused kernels' figures assume the kernels run (a CUDA GPU inside the envelope of
[Kernels and GPUs](guides/kernels.md)); "torch" is the PyTorch reference path.
"""


def benchmark_pages(results: Path = RESULTS) -> dict[str, Page]:
    """One page per ``results/*.json`` (with plots where a reader would rather look), an index and
    the time-to-train estimate."""
    out: dict[str, Page] = {}
    index = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        pages = _kind(path, data)(path, data)
        out.update(pages)
        page = next(p for p in pages if p.endswith(".md"))
        title = (str(pages[page]).splitlines() or [""])[0].lstrip("# ").strip() or Path(page).stem
        index.append([f"[{title}]({Path(page).name})", f"`{path.name}`"])
    # Reports written as markdown only (no data file), e.g. the sm_90 compile report: as they are.
    for path in sorted(results.glob("*.md")):
        if path.with_suffix(".json").exists():
            continue
        text = path.read_text()
        out[f"benchmarks/{path.name}"] = text
        title = (text.splitlines() or [path.stem])[0].lstrip("# ").strip()
        index.append([f"[{title}]({path.name})", f"`{path.name}`"])
    out["benchmarks/index.md"] = f"""# Benchmarks

Every page here is generated from a results file in `benchmarks/results/` when the site is built;
a rerun of a benchmark script rewrites its file and so its page. The scripts say how each was
measured (`benchmarks/*.py`). Timings come from the machine named on each page: compare figures
only within one page. The experiments that led to today's defaults, dated, are in
[History](../history.md); an estimate of a full RRSIS-D training is in
[Time to train](../time-to-train.md).

{_table(["page", "results file"], index, "ll")}"""
    out["time-to-train.md"] = time_to_train(results)
    return out


def cli_page() -> str:
    """Every ``rrsis`` command's ``--help``, as the installed parser prints it (100 columns)."""
    import os
    from unittest import mock

    from rrsis.cli import build_parser

    with mock.patch.dict(os.environ, {"COLUMNS": "100"}):
        parser = build_parser()
        parts = ["# Command line\n",
                 ("Every `rrsis` command and its options, as `rrsis COMMAND --help` prints them (generated "
                  "from the parser at build time). The guides show them at work.\n"),
                 "```text\n" + parser.format_help().rstrip() + "\n```\n"]
        for name, sub in parser.get_default("_commands").items():
            parts.append(f"## rrsis {name}\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def generated_pages(results: Path = RESULTS, figures: Path = ZOO_FIGURES) -> dict[str, Page]:
    """Every generated page of the site."""
    out: dict[str, Page] = {}
    out.update(api_pages())
    out["cli.md"] = cli_page()
    out.update(zoo_page(figures))
    out.update(benchmark_pages(results))
    out["changelog.md"] = (ROOT / "CHANGELOG.md").read_text()
    return out
