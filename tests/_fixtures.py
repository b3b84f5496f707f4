"""Where the official-format reference fixtures live.

Looked up in this order: ``$RRSIS_FIXTURES``, then ``../shared/fixtures`` relative to the
repository (a checkout with ``shared/`` beside it, as on the development machines and in CI).
Tests that need them skip when they are missing, except under ``CI=true``, where a missing
fixture set is an error: a CI run that skipped every parity test would pass without testing.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections import Counter, deque
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"  # small files the tests read (saved models, legacy configs, cards)
_MARKER = Path("lavt") / "checkpoint.pth"


def _in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def find_fixtures(environ: Mapping[str, str] | None = None, repo: Path | None = None) -> Path:
    """The fixture folder (possibly missing outside CI; tests then skip).

    Args:
        environ: the environment to read (default ``os.environ``).
        repo: the repository root (default: this checkout).

    Raises:
        RuntimeError: under ``CI=true`` when no candidate holds the fixtures.
    """
    environ = os.environ if environ is None else environ
    repo = REPO if repo is None else Path(repo)
    candidates = [Path(p) for p in [environ.get("RRSIS_FIXTURES", "")] if p]
    candidates.append(repo.parent / "shared" / "fixtures")
    for c in candidates:
        if (c / _MARKER).exists():
            return c
    if _in_ci(environ):
        tried = ", ".join(str(c) for c in candidates)
        raise RuntimeError(
            f"CI=true but the reference fixtures are missing (looked in {tried}): set "
            "RRSIS_FIXTURES to the fixture folder, or check out shared/ beside the repository"
        )
    return candidates[-1]


FIXTURES = find_fixtures()


def recipe(root: str, out: Path, *overrides: str, **train) -> dict:
    """The ``gl-msin-tiny-synthetic`` training recipe on ``root``, writing to ``out``: one thread,
    no progress bars, seed 5, batch 4, with ``train`` keys replaced."""
    from rrsis.engine import load_config

    cfg = load_config("gl-msin-tiny-synthetic", [f"data.root={root}", *overrides])
    cfg["train"].update({"output_dir": str(out), "threads": 1, "progress": False, "seed": 5,
                         "batch_size": 4, **train})
    return cfg


def fit(cfg, **kwargs):
    """``Trainer(cfg).fit(**kwargs)``, the caller's torch thread count put back afterwards (the
    trainer sets its own)."""
    import torch

    from rrsis.engine import Trainer

    threads = torch.get_num_threads()
    try:
        return Trainer(cfg).fit(**kwargs)
    finally:
        torch.set_num_threads(threads)


def tiles_pass(model, image, text: str):
    """``(p [H, W], text features)``: the tiles mode's probability over an in-memory scene."""
    import numpy as np
    import torch

    from rrsis.scene import SceneOptions, open_scene
    from rrsis.scene.infer import predict_strips

    tok = model.tokenizer([text])
    with torch.no_grad():
        enc = model.encode_text(tok["input_ids"], tok["attention_mask"])
    with open_scene(image) as sc:
        opt = SceneOptions(mode="tiles").resolved(model, sc.height, sc.width)
        p = np.concatenate([q for _, q, _ in predict_strips(sc, model, enc, opt)])
    return p, enc


def find_chromium() -> str | None:
    """The system chromium the browser tests drive (``$RRSIS_CHROMIUM`` first), or ``None``."""
    for path in (os.environ.get("RRSIS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def serve_app(model, limits, monkeypatch, tmp_path):
    """``rrsis app``'s page for ``model`` on a free loopback port, not blocking; returns
    ``(app, workspace, url)``. Uploads go to the workspace (``GRADIO_TEMP_DIR``)."""
    from rrsis.app.card import summarise
    from rrsis.app.page import build_app, launch
    from rrsis.app.session import Workspace

    ws = Workspace()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(ws.uploads))
    app = build_app(model, card=summarise(model, tmp_path), workspace=ws, limits=limits)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(app, host="127.0.0.1", port=port, limits=limits, block=False)
    return app, ws, f"http://127.0.0.1:{port}/"


class WrappedModel(nn.Module):
    """Base of test stand-ins for a model in whole-scene inference: everything but
    ``forward_with_text`` is the wrapped model's (tokenizer, sizes, text encoding, the one
    pre- and postprocessing; parameters, hence device and dtype)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.tokenizer, self.image_size, self.size_divisor = model.tokenizer, model.image_size, model.size_divisor

    def encode_text(self, ids, mask):
        return self.model.encode_text(ids, mask)

    def preprocess(self, *args, **kwargs):
        return self.model.preprocess(*args, **kwargs)

    def postprocess(self, *args, **kwargs):
        return self.model.postprocess(*args, **kwargs)


class RedPixels(WrappedModel):
    """Foreground where the red channel is above 0.6: the mask is known from the scene's pixels."""

    def forward_with_text(self, pixels, text, *position):
        from rrsis.models.base import IMAGENET_MEAN, IMAGENET_STD, SegmentationOutput

        red = pixels[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        d = 40.0 * (red - 0.6)
        return SegmentationOutput(logits=torch.stack([torch.zeros_like(d), d], 1))


def write_small_geotiff(path, *, count: int = 3, height: int = 64, width: int = 96, seed: int = 0,
                        x0: float = 440720.0, crs: str = "EPSG:32611"):
    """A small GeoTIFF of noise with bright blobs (0.5 m pixels, UTM), for region tests: uint8 with
    up to 3 bands, 16-bit (R, G, B, NIR: no alpha) with more."""
    import numpy as np
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    data = rng.integers(60, 120, (count, height, width)).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for cy, cx, r in rng.integers(8, 56, (3, 3)):
        data[0][(yy - cy) ** 2 + (xx - cx) ** 2 < (r // 4 + 3) ** 2] = 250
    if count > 3:
        data = data.astype(np.uint16) * 40
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=count, dtype=data.dtype,
                       crs=crs, transform=Affine(0.5, 0, x0, 0, -0.5, 3751320.0), photometric="MINISBLACK") as ds:
        ds.write(data)
    return data


def four_band_folder(root, n: int = 4, size: int = 64, colours=None, descriptions=None) -> str:
    """A RefSegRS-style folder of ``n`` random 16-bit 4-band GeoTIFFs (``images/``), one box mask each
    (``masks/``) and ``output_phrase_{train,val}.txt``; ``colours``, ``descriptions``: the colour
    interpretation and band descriptions each file declares (one list for all, or a list per file;
    ``None``: nothing declared)."""
    import numpy as np
    import rasterio
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        data = rng.integers(0, 65535, (4, size, size), dtype=np.uint16)
        declared = colours[i] if colours and isinstance(colours[0], list) else colours
        with rasterio.open(root / "images" / f"{i}.tif", "w", driver="GTiff", height=size, width=size, count=4,
                           dtype="uint16", photometric="MINISBLACK") as ds:
            ds.write(data)
            if declared is not None:
                ds.colorinterp = declared
            described = descriptions[i] if descriptions and isinstance(descriptions[0], list) else descriptions
            if described is not None:
                ds.descriptions = tuple(described)
        mask = np.zeros((size, size), np.uint8)
        mask[8:24, 4 * i:4 * i + 20] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        lines.append(f"{i} the wet plot")
    for split in ("train", "val"):
        (root / f"output_phrase_{split}.txt").write_text("\n".join(lines) + "\n")
    return str(root)


def merged_against_scenes(out, merged):
    """Rows of a region's merged GeoPackage and of the per-scene GeoJSON files its records list:
    ``(scene, expression, area_px, area_m2, mean_probability, polygon WKB)`` multisets (the merged
    file stores each polygon as a one-part MultiPolygon: its part must be the very same polygon)."""
    import json

    import pyogrio
    from shapely import from_wkb
    from shapely.geometry import shape

    from rrsis.scene.region import read_record

    meta, _, geoms, fields = pyogrio.raw.read(merged)
    names = list(meta["fields"])
    got = Counter(
        (fields[names.index("scene")][i], fields[names.index("expression")][i], int(fields[names.index("area_px")][i]),
         round(float(fields[names.index("area_m2")][i]), 3), round(float(fields[names.index("mean_probability")][i]), 6),
         from_wkb(geoms[i]).geoms[0].wkb)
        for i in range(len(geoms)))
    want: Counter = Counter()
    for folder in sorted(p for p in Path(out).iterdir() if p.is_dir()):
        rec = read_record(folder)
        for o in rec["outputs"]:
            for f in json.loads((folder / o["files"]["geojson"]).read_text())["features"]:
                q = f["properties"]
                want[(rec["scene"], q["expression"], q["area_px"], round(q["area_m2"], 3),
                      round(q["mean_probability"], 6), shape(f["geometry"]).wkb)] += 1
    return got, want


def flood_fill(mask, connectivity: int = 8):
    """``(labels [H, W] int, n)``: connected components of a boolean mask by breadth-first search
    (``connectivity`` 4 or 8), the plain reference the scene code's components are checked against."""
    import numpy as np

    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    labels = np.zeros(mask.shape, int)
    n = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        n += 1
        labels[y, x] = n
        queue = deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            for dy, dx in steps:
                ny, nx = cy + dy, cx + dx
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = n
                    queue.append((ny, nx))
    return labels, n


def dead_pid() -> int:
    """A process id no process holds now (above the largest Linux hands out by default), for
    temporaries a killed writer left behind."""
    pid = 2 ** 22 + 12345
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def named_alone(objects: list[dict]) -> list[tuple[dict, str]]:
    """``(object, words)`` for each object of a generated scene (``meta["objects"]``) that its
    words name alone: "the plane" for the only plane, "the white plane" for the only white one."""
    out = []
    for o in objects:
        same = [p for p in objects if p["category"] == o["category"]]
        if len(same) == 1:
            out.append((o, f"the {o['category']}"))
        elif sum(p["colour"] == o["colour"] for p in same) == 1:
            out.append((o, f"the {o['colour']} {o['category']}"))
    return out
