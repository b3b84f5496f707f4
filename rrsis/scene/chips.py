"""Training data from a GIS: a scene and its labelled polygons become a ``risbench`` folder.

:func:`write_chips` cuts one chip of the scene around each polygon of a vector file (GeoPackage,
GeoJSON, shapefile) whose attribute holds a referring expression, rasterises the polygons into
its mask and writes ``images/`` (a PNG chip placed by its world file ``.pgw`` and ``.aux.xml``),
``masks/``, ``output_phrase_{train,val,test}.txt`` and
``chips.json``: the folder ``rrsis train --data.dataset risbench`` reads
(:class:`rrsis.data.FolderDataset`). Vectors are read as an area of interest reads them
(:mod:`~rrsis.scene.vector`: pyogrio, RFC 7946 GeoJSON), scenes through the scene reader
(:mod:`~rrsis.scene.read`: windows, bands, nodata).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._atomic import atomic_folder, atomic_path, atomic_write, json_text
from ..data.bands import parse_bands
from .chip_stats import chip_moments, combine, read_order, stats_option
from .gdal_names import is_gdal_url
from .labelled import place_labels
from .ranges import DarkBytesWarning, dark_bytes
from .read import open_scene, require_geo
from .vector import need_shapely
from .write import remove_stale_temporaries, write_crs_sidecar, write_world_file

__all__ = ["ChipsSummary", "write_chips"]

SPLITS = ("train", "val", "test")
SKIP_REASONS = ("no_text", "no_area", "outside", "nodata", "no_pixel", "border")


@dataclass(frozen=True)
class ChipsSummary:
    """What :func:`write_chips` wrote.

    Attributes:
        out: the folder.
        counts: chips per split (``train``, ``val``, ``test``).
        skipped: features (or chips) left out, by reason: ``no_text`` (empty or null text),
            ``no_area`` (no geometry, or a point or a line), ``outside`` (no part inside the
            scene), ``nodata`` (only nodata under the mask), ``no_pixel`` (a sliver that covers no
            chip pixel centre), ``border`` (a train chip that overlaps a val or test chip, or a test
            chip that overlaps a val chip).
        larger: features larger than a chip: their chip covers their centre part.
        image_format: ``"png"`` (3-band uint8 scenes) or ``"tif"`` (every other band count or type).
        options: the ``rrsis train`` flags the folder needs besides ``--data.dataset risbench
            --data.root OUT`` (value scaling of 16-bit or float chips, the band count).
        bands: the scene's band numbers (counted from 1) the chips hold, in their order.
        mean, std: each band's mean and (population) standard deviation over the train chips'
            valid pixels, in the values ``rrsis train`` gives the model (after the value scaling
            ``options`` sets; 8-bit: ``/ 255``) and in the order it reads them (a 1-band chip: its
            band three times; 3 bands: the declared red, green, blue); ``None`` without train
            chips. ``options`` passes them for 2 or 4+ bands.
    """

    out: str
    counts: dict[str, int]
    skipped: dict[str, int]
    larger: int
    image_format: str
    options: list[str]
    bands: tuple[int, ...] = ()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def _check_args(size: Any, pixel_ratio: Any, val: Any, test: Any, seed: Any, block: Any) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size: a chip side of at least 8 pixels, got {size!r}")
    if isinstance(pixel_ratio, bool) or not isinstance(pixel_ratio, (int, float)) \
            or not math.isfinite(pixel_ratio) or pixel_ratio <= 0:
        raise ValueError(f"pixel_ratio: scene pixels per chip pixel, a positive number, got {pixel_ratio!r}")
    for name, v in (("val", val), ("test", test)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"{name}: a share of the scene's blocks in [0, 1), got {v!r}")
    if val + test >= 1:
        raise ValueError(f"val + test = {val + test:g} leaves no block for train; keep it below 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: a non-negative integer, got {seed!r}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block: the side of a split block in chips, a positive integer, got {block!r}")


def _chip_bands(bands: Any, scene: Any) -> tuple[int, ...] | None:
    """``bands`` read by ``rrsis predict --bands``'s parser, its messages naming the scene's band
    count; a band named twice is refused (a chip holds each band once). Out-of-range numbers are
    the scene reader's to refuse, with its message."""
    have = f"{scene.name} has {scene.band_count} band(s), counted from 1"
    try:
        chosen = parse_bands(bands)
    except ValueError as exc:
        raise ValueError(f"{exc}; {have}") from None
    if chosen is not None and (twice := sorted({b for b in chosen if chosen.count(b) > 1})):
        raise ValueError(f"bands {chosen}: band(s) {twice} named more than once; a chip holds each band "
                         f"once ({have})")
    return chosen


def _start(lo: float, hi: float, span: int, extent: int, rng: np.random.Generator) -> tuple[int, bool]:
    """A window's first row (or column) of ``span`` pixels that holds ``[lo, hi]`` at a seeded
    offset, clamped to ``[0, extent - span]``; ``True`` when the feature is longer than ``span``."""
    first, last = math.ceil(hi - 1e-6) - span, math.floor(lo + 1e-6)
    larger = hi - lo > span
    start = round((lo + hi - span) / 2) if larger or first > last else int(rng.integers(first, last + 1))
    if extent < span:
        return -((span - extent) // 2), larger  # the scene is smaller than a chip: centred on it
    return min(max(start, 0), extent - span), larger


def _assign_splits(windows: np.ndarray, height: int, width: int, side: int, val: float, test: float,
                   seed: int) -> list[str]:
    """Each chip's split, by the block (``side`` scene pixels square) that holds its centre."""
    nby, nbx = max(1, math.ceil(height / side)), max(1, math.ceil(width / side))
    draw = np.random.default_rng([seed, 1]).random((nby, nbx))
    split = np.where(draw < val, 1, np.where(draw < val + test, 2, 0))
    cy = np.clip(((windows[:, 0] + windows[:, 2]) / 2 // side).astype(int), 0, nby - 1)
    cx = np.clip(((windows[:, 1] + windows[:, 3]) / 2 // side).astype(int), 0, nbx - 1)
    used = sorted(set(zip(cy.tolist(), cx.tolist(), strict=True)), key=lambda b: draw[b])
    if len(used) >= 2:
        for k, share, need in ((1, val, 2), (2, test, 3)):
            train = [b for b in used if split[b] == 0]
            if share > 0 and len(used) >= need and not any(split[b] == k for b in used) and len(train) > 1:
                split[train[0]] = k  # the train block drawn nearest to the split's share
        if not any(split[b] == 0 for b in used):
            split[used[-1]] = 0
    return [SPLITS[split[y, x]] for y, x in zip(cy, cx, strict=True)]


def _drop_border(windows: np.ndarray, splits: list[str]) -> list[str | None]:
    """Splits with each test chip that overlaps a val chip, and each train chip that overlaps a
    val or test chip, dropped (``None``): no val or test pixel is trained on, and val keeps every
    chip it was given (train, the largest split, pays for the borders)."""
    out: list[str | None] = list(splits)
    for k, stronger in (("test", ("val",)), ("train", ("val", "test"))):
        other = windows[[s in stronger for s in out]]
        for i, s in enumerate(out):
            if s != k or not len(other):
                continue
            r0, c0, r1, c1 = windows[i]
            if ((other[:, 0] < r1) & (other[:, 2] > r0) & (other[:, 1] < c1) & (other[:, 3] > c0)).any():
                out[i] = None
    return out


def write_chips(image: str | os.PathLike, labels: str | os.PathLike, out: str | os.PathLike, *,
                text_field: str = "text", size: int = 480, pixel_ratio: float = 1, layer: str | None = None,
                val: float = 0.1, test: float = 0.1, seed: int = 0, block: int = 4,
                bands: str | Sequence[int] | None = None, overwrite: bool = False) -> ChipsSummary:
    """Cut a georeferenced raster into one training chip per labelled polygon of a vector file.

    The rules:

    - **One chip per feature**: a ``size`` × ``size`` window of the scene at ``pixel_ratio`` scene
      pixels per chip pixel (averaged when above 1, as ``segment_scene`` reads at a pixel ratio),
      placed so the feature lies inside it at an offset drawn from ``seed`` and the feature's
      order (not always centred), then moved inside the scene. A feature larger than the chip:
      its chip covers its centre part, and such features are counted and warned of.
    - **Mask**: the feature's polygon, with every other feature in the chip whose text is the
      same (spaces collapsed, case ignored: the expression names all of them), rasterised on the
      chip's grid by pixel centres (``rasterio.features.rasterize``); 0/255 PNG. Multi-polygons
      and holes are kept.
    - **Skipped and counted** (:class:`ChipsSummary`): empty text, features without area (points,
      lines), outside the scene, over nodata only, or too thin to hold a pixel centre. Labels in
      another CRS are reprojected to the scene's; a GeoJSON file without a ``crs`` member is
      WGS 84 (RFC 7946); a file without a CRS is refused.
    - **Images**: the scene's values as read (every non-alpha band, or ``bands`` in their order;
      its dtype; nodata pixels 0): a PNG for 3 uint8 bands, else a GeoTIFF (placed by its chip's
      transform). ``chips.json`` records the bands (with the scene's band count and the bands'
      descriptions) and each chip's id, split, expression, feature id, bounds and transform in the
      scene's CRS, and ``statistics``: each band's mean and standard deviation over the train
      chips' valid pixels, in the values ``rrsis train`` gives the model (``mean``, ``std``).
    - **Spatial splits**: the scene is cut into square blocks of ``block`` chips a side; each block
      goes to val, test or train by a seeded draw with the shares ``val`` and ``test``, and a chip
      goes with the block that holds its centre. With two or more occupied blocks, val (and, with
      three, test) gets at least one when its share is above 0, and train keeps one. A train chip
      that overlaps a val or test chip, and a test chip that overlaps a val chip, is dropped
      (``border``), so no val or test pixel is trained on and val keeps every chip it drew.
    - **Atomic**: the folder is written beside ``out`` under a temporary name and renamed; it
      appears complete or not at all. An existing ``out`` needs ``overwrite``.

    Args:
        image: a raster GDAL reads (GeoTIFF, COG, VRT) with a CRS and a transform.
        labels: a vector file (GeoPackage, GeoJSON, shapefile, ...) of polygons.
        out: the folder to write.
        text_field: the attribute holding each feature's expression.
        size: chip side in pixels (480: the training size).
        pixel_ratio: scene pixels per chip pixel (2 cuts a 0.25 m scene at 0.5 m).
        layer: the vector file's layer (needed when it has several).
        val, test: shares of the blocks drawn for val and test.
        seed: the seed of placements and of the split draw.
        block: a split block's side, in chips.
        bands: the scene's band numbers counted from 1 (as GDAL counts) the chips hold, in this
            order (``"4,3,2"`` or ``(4, 3, 2, 8)``); predicting on the scene takes the same
            (``rrsis predict --bands``). Default: every non-alpha band. A band named twice is refused.
        overwrite: replace an existing ``out``.

    Returns:
        A :class:`ChipsSummary`.

    Raises:
        ValueError: bad arguments (``bands`` empty, out of the scene's range or naming a band
            twice: the message names the scene's band count), a scene without georeference,
            labels without a CRS, an unknown layer or a missing text field (naming the fields
            there are).
        FileExistsError: ``out`` exists and ``overwrite`` is false.
        FileNotFoundError: ``image`` or ``labels`` is not a file.
        ImportError: the ``geo`` extra is missing (``pip install "rrsis[geo]"``).
    """
    _check_args(size, pixel_ratio, val, test, seed, block)
    image, labels, out = os.fspath(image), os.fspath(labels), os.path.abspath(os.fspath(out))
    for path in (image, labels):
        if not is_gdal_url(path) and not os.path.isfile(path):  # a URL: GDAL's own error
            raise FileNotFoundError(f"{path}: file not found")
        if os.path.abspath(path).startswith(out + os.sep):
            raise ValueError(f"{path} lies inside the output folder {out}, which is written anew")
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (rrsis chips --overwrite) to replace it")
    require_geo("rrsis chips")
    need_shapely()
    scene = _open(image)
    try:
        if scene.in_memory or not scene.georeferenced:
            raise ValueError(f"{image}: chips need a georeferenced raster read by rasterio (a GeoTIFF, COG or "
                             "VRT with a CRS and a transform) to place the labels on")
        chosen = _chip_bands(bands, scene)
        if chosen is not None:  # as predict reads them: channels for a count other than 1 or 3
            scene.close()
            scene = _open(image, bands=chosen, channels=None if len(chosen) in (1, 3) else len(chosen))
        elif scene.first_three_of:  # every band, not the RGB default's first three
            n = scene.first_three_of
            scene.close()
            scene = _open(image, channels=n)
        _warn_dark(scene)
        return _write(scene, image, labels, out, text_field=text_field, size=size, pixel_ratio=pixel_ratio,
                      layer=layer, val=val, test=test, seed=seed, block=block, overwrite=overwrite)
    finally:
        scene.close()


def _open(image: str, **kwargs: Any) -> Any:
    # The reader's advice for a dark 8-bit raster (scale=, stretch=) is no chips option: _warn_dark's is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarkBytesWarning)
        return open_scene(image, **kwargs)


def _warn_dark(scene: Any) -> None:
    """The dark-bytes warning in chips' words: the chips keep the values, training is to scale them."""
    if (span := dark_bytes(scene)) is not None:
        warnings.warn(f"{scene.name}: its 8-bit values span only {span[0]}-{span[1]} of 0-255: the chips keep them "
                      "as they are, which training reads (as 8-bit / 255) as a black image. A 0/1 or class layer "
                      "needs a value scaling in training: --data.options.scale max on the rrsis train line "
                      "(data.options.scale: max in a recipe)", DarkBytesWarning, stacklevel=3)


def _write(scene: Any, image: str, labels: str, out: str, *, text_field: str, size: int, pixel_ratio: float,
           layer: str | None, val: float, test: float, seed: int, block: int, overwrite: bool) -> ChipsSummary:
    import rasterio
    from affine import Affine
    from PIL import Image
    from rasterio.enums import ColorInterp
    from rasterio.features import rasterize
    from rasterio.transform import array_bounds
    from shapely import STRtree
    from shapely.geometry import box

    skipped = dict.fromkeys(SKIP_REASONS, 0)
    features = place_labels(labels, text_field, layer, scene, skipped)
    if not features:
        raise ValueError(f"{labels}: no feature with text and area inside {image} (skipped: "
                         + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
    span = max(1, round(size * pixel_ratio))
    step = span / size
    n_bands, dtype = len(scene.bands), np.dtype(scene.dtype)
    names = [scene.band_descriptions[b - 1] for b in scene.bands]  # GDAL's band descriptions, or None
    declared = scene.declared or ()  # the chips declare the scene's red, green and blue, and no alpha
    colours = [("red", "green", "blue")[declared.index(b)] if b in declared else "undefined" for b in scene.bands]
    fmt = "png" if n_bands == 3 and dtype == np.uint8 else "tif"
    scale = None if dtype == np.uint8 else "dtype" if dtype.kind in "ui" else "max"  # as the train line reads
    order = read_order(n_bands, colours if fmt == "tif" else None, names if fmt == "tif" else None)
    moments = []
    by_key: dict[str, list] = {}
    for f in features:
        by_key.setdefault(f[2], []).append(f[3])
    trees = {k: (STRtree(v), v) for k, v in by_key.items()}
    records, windows, larger = [], [], 0
    remove_stale_temporaries(out)  # what a killed run of this folder left beside it
    with atomic_folder(out, overwrite=overwrite) as tmp:
        os.makedirs(os.path.join(tmp, "images"))
        os.makedirs(os.path.join(tmp, "masks"))
        for index, (fid, text, key, pix) in enumerate(features):
            rng = np.random.default_rng([seed, index])
            x0, y0, x1, y1 = pix.bounds
            r0, big_y = _start(y0, y1, span, scene.height, rng)
            c0, big_x = _start(x0, x1, span, scene.width, rng)
            larger += big_x or big_y
            frame = box(c0, r0, c0 + span, r0 + span)
            tree, same = trees[key]
            shapes = [(same[j], 255) for j in tree.query(frame, predicate="intersects")]
            mask = rasterize(shapes, out_shape=(size, size), transform=Affine(step, 0, c0, 0, step, r0),
                             fill=0, dtype="uint8")
            if not mask.any():
                skipped["no_pixel"] += 1
                continue
            window = (r0, c0, r0 + span, c0 + span)
            data, valid = scene._read_raw(window, None if span == size else (size, size))
            if not (valid & (mask > 0)).any():
                skipped["nodata"] += 1
                continue
            data[:, ~valid] = 0
            if data.dtype.kind == "f":
                data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
            cid = f"{len(records):05d}"
            transform = scene.transform @ Affine.translation(c0, r0) @ Affine.scale(step)
            if fmt == "png":
                with atomic_path(os.path.join(tmp, "images", cid + ".png"), durable=False, keep_suffix=True) as p:
                    Image.fromarray(np.ascontiguousarray(data.transpose(1, 2, 0))).save(p, format="PNG")
            else:
                profile = dict(scene.profile or {})
                for k in ("photometric", "nodata", "blockxsize", "blockysize", "tiled", "interleave", "alpha"):
                    profile.pop(k, None)
                profile.update(driver="GTiff", count=n_bands, dtype=data.dtype.name, height=size, width=size,
                               crs=scene.crs, transform=transform, compress="deflate", photometric="MINISBLACK")
                with atomic_path(os.path.join(tmp, "images", cid + ".tif"), durable=False, keep_suffix=True) as p, \
                        rasterio.open(p, "w", **profile) as ds:
                    ds.write(data)
                    ds.colorinterp = [ColorInterp[c] for c in colours]
                    if any(names):  # the chip says which of the scene's bands it holds
                        ds.descriptions = tuple(d or "" for d in names)
            with atomic_path(os.path.join(tmp, "masks", cid + ".png"), durable=False, keep_suffix=True) as p:
                Image.fromarray(mask).save(p, format="PNG")
            windows.append(window)
            moments.append(chip_moments(data, valid, scale, order))
            records.append({"id": cid, "split": None, "expression": text, "feature": fid,
                            "bounds": list(array_bounds(size, size, transform)), "transform": list(transform)[:6],
                            "window": list(window)})
        if not records:
            raise ValueError(f"{labels}: no chip left (skipped: "
                             + ", ".join(f"{k} {v}" for k, v in skipped.items() if v) + ")")
        wins = np.asarray(windows, dtype=np.int64)
        splits = _drop_border(wins, _assign_splits(wins, scene.height, scene.width, block * span, val, test, seed))
        for rec, split in zip(records, splits, strict=True):
            rec["split"] = split
            if split is None:
                skipped["border"] += 1
                for sub, ext in (("images", fmt), ("masks", "png")):
                    os.remove(os.path.join(tmp, sub, f"{rec['id']}.{ext}"))
        records = [r for r in records if r["split"] is not None]
        for rec in records if fmt == "png" else ():  # placed where GDAL reads it: QGIS, rasterio, training's gsd
            write_world_file(os.path.join(tmp, "images", rec["id"] + ".pgw"), Affine(*rec["transform"]), durable=False)
            write_crs_sidecar(os.path.join(tmp, "images", rec["id"] + ".png.aux.xml"), scene.crs, durable=False)
        counts = {s: sum(r["split"] == s for r in records) for s in SPLITS}
        for s in SPLITS:
            if counts[s]:
                atomic_write(os.path.join(tmp, f"output_phrase_{s}.txt"),
                             "".join(f"{r['id']} {r['expression']}\n" for r in records if r["split"] == s),
                             durable=False)
        pixels, mean, m2 = combine([m for m, r in zip(moments, splits, strict=True) if r == "train"], len(order))
        mean, std = (tuple(map(float, mean)), tuple(map(float, np.sqrt(m2 / pixels)))) if pixels else (None, None)
        options = []
        if scale is not None:
            options.append(f"--data.options '{json.dumps({'scale': scale})}'")
        if n_bands not in (1, 3):
            options.append(f"--model.in_chans {n_bands} "
                           + (stats_option(mean, std) if mean else f"--model.mean ... --model.std ... ({n_bands} values each)"))
        statistics = {"split": "train", "pixels": pixels, "scale": scale or 255, "bands": [scene.bands[b - 1] for b in order],
                      "mean": list(mean) if mean else None, "std": list(std) if std else None}
        meta = {"scene": os.path.abspath(image), "labels": os.path.abspath(labels), "text_field": text_field,
                "crs": scene.crs.to_string(), "size": size, "pixel_ratio": pixel_ratio, "seed": seed, "val": val,
                "test": test, "block": block, "bands": list(scene.bands), "scene_band_count": scene.band_count,
                "band_descriptions": names, "image_format": fmt, "counts": counts, "skipped": skipped,
                "larger": larger, "train_options": options, "statistics": statistics, "chips": records}
        atomic_write(os.path.join(tmp, "chips.json"), json_text(meta, indent=1) + "\n", durable=False)
    if larger:
        warnings.warn(f"{larger} feature(s) larger than a chip ({span} scene pixels a side): their chips cover "
                      "their centre part; a larger pixel_ratio (--pixel-ratio) fits them whole", UserWarning,
                      stacklevel=3)
    if std and not all(std) and n_bands not in (1, 3):  # on the train line (RGB: ImageNet's)
        warnings.warn("band(s) " + ", ".join(str(scene.bands[order[i] - 1]) for i, s in enumerate(std) if not s)
                      + " of the scene hold one value over every train chip (std 0): the train line gives them "
                      "std 1", UserWarning, stacklevel=3)
    return ChipsSummary(out=out, counts=counts, skipped=skipped, larger=larger, image_format=fmt, options=options,
                        bands=tuple(scene.bands), mean=mean, std=std)
