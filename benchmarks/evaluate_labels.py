"""Placing one labels file on many scenes: read once (``read_truths``) against read per scene (CPU).

``rrsis.evaluate_scene`` over many scenes with one labels file places every feature on every scene
before any prediction (:func:`rrsis.scene.evaluate_labels.read_truths`). Before, each scene read
the whole file and reprojected and clipped every feature (``read_truth`` alone, once per scene,
as it still does when called on its own); now the file is read once, reprojected once per scene
CRS, and each scene clips only the features a spatial index finds near it. No model runs: the
time is the label placing alone, the scenes opened as evaluate_scene opens them.

The data are generated: a grid of S small GeoTIFF tiles (64 x 64 pixels of 10 m), the west half
in UTM zone 33N and the east half in zone 34N (two CRSs), and one GeoPackage of N small polygons
in zone 33N scattered over the grid, each with an expression. Each row is the median of 3 runs.
"Before" runs every scene up to N x S = 20,000; above, it times one scene of each CRS (a scene in
the file's CRS is not reprojected, one in the other zone is) and multiplies each by the count of
its CRS's scenes, marked ``extrapolated``; ``--full`` runs every scene.

    python benchmarks/evaluate_labels.py           # the table (writes results/evaluate-labels-cpu.{json,md})
    python benchmarks/evaluate_labels.py --smoke   # tiny N and S, a check of the script itself
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "benchmarks"):  # run from a checkout, or imported by file path
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _common as C

RESULTS = ROOT / "benchmarks" / "results"
TILE, PIXEL = 64, 10.0  # pixels a side, metres a pixel
ORIGIN = (700000.0, 5000000.0)  # the grid's north-west corner in UTM 33N
WORDS = ("red", "white", "gray", "large", "small", "round")
KINDS = ("building", "tank", "court", "roof", "pond")
FULL_UP_TO = 20000  # features x scenes up to which "before" runs on every scene


def make_scenes(folder: Path, s: int) -> list[tuple[str, str]]:
    """``[(path, crs)]``: ``s`` tiles in a near-square grid; columns east of the middle in UTM 34N."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.warp import transform as warp_points

    cols = math.ceil(math.sqrt(s))
    paths = []
    for k in range(s):
        r, c = divmod(k, cols)
        x, y = ORIGIN[0] + c * TILE * PIXEL, ORIGIN[1] - r * TILE * PIXEL
        crs = "EPSG:32633"
        if c >= (cols + 1) // 2:  # the same ground, in the next zone
            crs = "EPSG:32634"
            (x,), (y,) = warp_points("EPSG:32633", crs, [x], [y])
        path = folder / f"tile_{k:04d}.tif"
        with rasterio.open(path, "w", driver="GTiff", height=TILE, width=TILE, count=1, dtype="uint8", crs=crs,
                           transform=Affine(PIXEL, 0, x, 0, -PIXEL, y)) as ds:
            ds.write(np.full((1, TILE, TILE), 100, np.uint8))
        paths.append((str(path), crs))
    return paths


def make_labels(path: Path, n: int, s: int, seed: int = 0) -> str:
    """``n`` rectangles of 20-60 m, scattered over the grid of ``s`` tiles, in UTM 33N."""
    import numpy as np
    import shapely
    from pyogrio.raw import write as write_vector

    cols = math.ceil(math.sqrt(s))
    rows = math.ceil(s / cols)
    rng = np.random.default_rng(seed)
    w, h = cols * TILE * PIXEL, rows * TILE * PIXEL
    x0 = ORIGIN[0] + rng.uniform(0, w - 60, n)
    y0 = ORIGIN[1] - rng.uniform(60, h, n)
    size = rng.uniform(20, 60, (2, n))
    geoms = shapely.box(x0, y0, x0 + size[0], y0 + size[1])
    texts = [f"the {WORDS[i % len(WORDS)]} {KINDS[i // len(WORDS) % len(KINDS)]} {i % 97}" for i in range(n)]
    write_vector(str(path), shapely.to_wkb(geoms), [np.array(texts, dtype=object)], ["text"], driver="GPKG",
                 crs="EPSG:32633", geometry_type="Polygon")
    return str(path)


def place(scenes: list[str], labels: str, once: bool) -> int:
    """Every scene's truth from ``labels``: read once for all (now) or once per scene (before);
    the number of (scene, feature) placings."""
    from rrsis.scene.evaluate_labels import read_truth, read_truths
    from rrsis.scene.region.sources import SceneSource

    if once:
        truths = read_truths([SceneSource(str(i), p) for i, p in enumerate(scenes)], [labels] * len(scenes),
                             "text", None, None, None)
    else:
        truths = [read_truth(p, labels, "text", None, None, None) for p in scenes]
    return sum(t.found for t in truths)


def median_s(fn, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def before_s(scenes: list[str], crss: list[str], labels: str, repeats: int, full: bool) -> tuple[float, int | None]:
    """Seconds of placing ``labels`` on every scene, reading it for each; without ``full``, one
    scene of each CRS timed and multiplied by that CRS's scene count (``None`` placings)."""
    if full:
        return median_s(lambda: place(scenes, labels, False), repeats)
    total = 0.0
    for crs in dict.fromkeys(crss):
        group = [p for p, c in zip(scenes, crss, strict=True) if c == crs]
        t, _ = median_s(lambda one=group[:1]: place(one, labels, False), repeats)
        total += t * len(group)
    return total, None


def run(ns: list[int], ss: list[int], work: Path, repeats: int, full_up_to: int | None) -> list[dict]:
    rows = []
    for s in ss:
        folder = work / f"s{s}"
        folder.mkdir(exist_ok=True)
        scenes, crss = zip(*make_scenes(folder, s), strict=True)
        scenes, crss = list(scenes), list(crss)
        for n in ns:
            labels = make_labels(work / f"labels-{n}-{s}.gpkg", n, s)
            if not rows:  # imports and GDAL's first opens outside the timings
                place(scenes[:1], labels, True)
                place(scenes[:1], labels, False)
            after, placed = median_s(lambda sc=scenes, lb=labels: place(sc, lb, True), repeats)
            full = full_up_to is None or n * s <= full_up_to
            before, placed_before = before_s(scenes, crss, labels, repeats, full)
            if full:
                assert placed_before == placed, (placed_before, placed)  # the same placings both ways
            rows.append({"features": n, "scenes": s, "crs": len(set(crss)), "placed": placed,
                         "before_s": round(before, 4), "after_s": round(after, 4), "extrapolated": not full,
                         "speedup": round(before / after, 1) if after else None})
            r = rows[-1]
            print(f"N {n:>6}  S {s:>4}  before {r['before_s']:8.2f} s{' (extrapolated)' if r['extrapolated'] else ''}"
                  f"  after {r['after_s']:7.3f} s  x{r['speedup']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", type=int, nargs="+", default=[2000, 20000])
    p.add_argument("--scenes", type=int, nargs="+", default=[10, 100])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full", action="store_true", help="run 'before' on every scene (not one per CRS, scaled)")
    p.add_argument("--smoke", action="store_true", help="tiny N and S, one run: checks the script")
    p.add_argument("--work", type=Path, default=None, help="folder for the generated data (default: temporary)")
    p.add_argument("--out", default=str(RESULTS / "evaluate-labels-cpu"), help="results stem (.json, .md)")
    a = p.parse_args(argv)
    if a.smoke:
        a.features, a.scenes, a.repeats = [20], [4], 1
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="rrsis-bench-labels-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = run(a.features, a.scenes, work, a.repeats, None if a.full else FULL_UP_TO)
    meta = _conditions(argv, load)
    meta.update(repeats=a.repeats, tile_px=TILE, pixel_m=PIXEL)
    lines = ["# Placing one labels file on many scenes (CPU)", "",
             (f"`{meta['command']}` on {meta['machine']}, {meta['timestamp']} (load average before: "
              f"{meta['load_before']}; rasterio {meta['rasterio']}, GDAL {meta['gdal']}, shapely {meta['shapely']}): "
              f"median of {a.repeats} runs of placing N generated polygons (UTM 33N GeoPackage) on S tiles of "
              f"{TILE} x {TILE} pixels in two UTM zones, no model. Before: each scene reads the file "
              "(`read_truth` per scene); after: one read, one reprojection per CRS, an STRtree per CRS "
              "(`read_truths`). Extrapolated: before timed on one scene of each CRS, times that CRS's scene count "
              f"(a scene's cost does not depend on the others; run in full up to N x S = {FULL_UP_TO})."), "",
             "| features N | scenes S | placed | before s | after s | × faster |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['features']} | {r['scenes']} | {r['placed']} | {r['before_s']:.2f}"
                     f"{' (extrapolated)' if r['extrapolated'] else ''} | {r['after_s']:.3f} | {r['speedup']} |")
    md = "\n".join(lines) + "\n"
    C.write_results(a.out, {"meta": meta, "rows": rows}, md)
    print(md)
    return 0


def _conditions(argv: list[str] | None, load: float | None) -> dict[str, Any]:
    import rasterio
    import shapely

    return {"command": ("python benchmarks/evaluate_labels.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip(),
            "machine": f"{platform.machine()} {os.cpu_count()} cores ({platform.processor() or 'cpu'})",
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
            "load_before": load, "python": platform.python_version(), "rasterio": rasterio.__version__,
            "gdal": rasterio.__gdal_version__, "shapely": shapely.__version__}


if __name__ == "__main__":
    raise SystemExit(main())
