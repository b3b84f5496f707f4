"""``segment_scenes``: a region of many scenes, resumable, sharded over ``torchrun`` ranks.

Each scene's files go to ``OUT/<scene id>/``. A scene is *done* when its completion record
``OUT/<scene id>/done.json`` exists, was made with the same expressions, settings, model and
scene files (:mod:`.record`), and every file it lists exists. The record is written atomically after the scene's files, so a run
killed at any moment (kill -9 included) leaves the scene not done, and the next run redoes it
(removing the temporaries the killed run left) and skips the done ones. A scene whose every
pixel is nodata (a mosaic's tile beyond the swath) is done with no files, its record saying so.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is the training engine's
(:func:`rrsis.engine.distributed.setup_distributed`); the scenes, sorted by id, are dealt
``i % world_size == rank``; every rank segments its own; after a barrier rank 0 writes the
merged vector file from the scenes done, and ``OUT/region.json``. ``OUT`` must be a folder every
rank can see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._atomic import atomic_write, json_text, writable_folder
from ..._lock import LOCK_NAME, run_lock
from ..._version import __version__
from ...data.bands import parse_bands
from ...data.expressions import check_expressions, expression_problem
from ..aoi import AOIOutsideError, area_of_interest
from ..api import segment_scene
from ..gsd import auto_is_one
from ..infer import SceneOptions
from ..outputs import fingerprint_held, model_fingerprint
from ..read import NoValidPixelsError
from ..write import remove_stale_temporaries
from .merge import check_merged_path, left_out_text, place_parts, read_geojson_rows, write_merged
from .record import (
    RECORD,
    REGION_FILE,
    check_done,
    older_folders,
    ratio_used,
    read_record,
    remove_old_outputs,
    scene_auto_ratio,
    scene_reading,
    write_region_file,
)
from .sources import SceneSource, resolve_scenes, write_stack

__all__ = ["RECORD", "TEST_EXIT_ENV", "RegionSummary", "read_record", "segment_scenes", "shard"]

# Test hook (for the kill-and-rerun tests only): "RANK:N" makes that rank end with os._exit(17),
# no cleanup, right after its N-th segmented scene, as a killed worker would.
TEST_EXIT_ENV = "RRSIS_TEST_EXIT_AFTER_SCENES"
# segment_scene keywords a region passes on to every scene (``out``, ``overwrite``,
# ``progress`` and ``return_mask`` belong to the region).
_SCENE_DEFAULTS = {n: p.default for n, p in inspect.signature(segment_scene).parameters.items()
                   if n not in {"model", "scene", "texts", "out", "overwrite", "progress", "return_mask",
                                "option_overrides"}}
_SCENE_KEYS = set(_SCENE_DEFAULTS)
_OPTION_KEYS = {f.name for f in dataclasses.fields(SceneOptions)} - {"mode"}
_NOT_SETTINGS = {"mode", "batch_size", "strip_rows"}  # mode is segment_scene's; the others change no output


@dataclass
class RegionSummary:
    """What :func:`segment_scenes` did, over all ranks.

    Attributes:
        total: scenes in the list.
        done: ids of the scenes segmented by this call.
        skipped: ids of the scenes already done (their files kept).
        failed: ``id → error`` of the scenes that failed (not done; a rerun retries them; the
            merged file lacks them).
        outside: ids of the scenes this call found outside the area of interest (``aoi=``):
            done with no files, ``done.json``'s ``outside_aoi`` saying why.
        merged: the merged vector file of the scenes done (rank 0), else ``None`` (none done).
        n_polygons: rows of the merged file (``None`` when none was written).
        left_out: ids of the scenes done whose polygons the merged file lacks: their CRS (a local
            grid) cannot be transformed to the merged file's (their own GeoJSONs hold them).
        megapixels: scene pixels segmented by this call, in millions.
        seconds: wall time of this call (on this rank).
        region: ``OUT/region.json`` (rank 0), each scene's source, status and outputs.
    """

    total: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    outside: list[str] = field(default_factory=list)
    merged: str | None = None
    n_polygons: int | None = None
    left_out: list[str] = field(default_factory=list)
    megapixels: float = 0.0
    seconds: float = 0.0
    region: str | None = None


def shard(scenes: Sequence[SceneSource], rank: int, world_size: int) -> list[SceneSource]:
    """Rank ``rank``'s scenes: the ``i``-th of the id-sorted list when ``i % world_size == rank``."""
    ordered = sorted(scenes, key=lambda s: s.id)
    return [s for i, s in enumerate(ordered) if i % world_size == rank]


def _check_keys(kwargs: dict[str, Any]) -> None:
    known = sorted(_SCENE_KEYS | _OPTION_KEYS)
    for key in kwargs:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
            raise TypeError(f"segment_scenes got an unknown keyword {key!r}{hint}")


def _settings(texts: list[str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every setting a scene's files depend on, defaults included, so that the same settings
    compare equal however they were given (``bands="1,2,3"`` or ``(1, 2, 3)``, ``tile=`` or
    ``options=``, a default or no keyword)."""
    eff = {k: kwargs.get(k, v) for k, v in _SCENE_DEFAULTS.items() if k != "options"}
    eff["bands"] = parse_bands(eff["bands"])
    opts = dataclasses.replace(kwargs.get("options") or SceneOptions(),
                               **{k: v for k, v in kwargs.items() if k in _OPTION_KEYS})
    eff["options"] = {k: v for k, v in dataclasses.asdict(opts).items() if k not in _NOT_SETTINGS}
    return json.loads(json.dumps({"texts": texts, **eff}, sort_keys=True, default=str))


def _dist(model) -> tuple[int, int, Any]:
    """``(rank, world_size, info to clean up or None)``: the running process group, or the
    engine's torchrun setup when ``WORLD_SIZE`` > 1."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), None
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    from ...engine.distributed import setup_distributed

    device = next(model.parameters()).device
    info = setup_distributed("cuda" if device.type == "cuda" else "cpu")
    return info.rank, info.world_size, info


def _barrier(rank: int, timeout: float | None) -> None:
    import datetime

    import torch.distributed as dist

    try:
        if dist.get_backend() == "gloo":  # names the rank that did not arrive
            dist.monitored_barrier(timeout=None if timeout is None else datetime.timedelta(seconds=timeout))
        else:
            dist.barrier()
    except RuntimeError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"rank {rank}: not every rank finished its scenes ({reason}); nothing was "
                           "merged and their scenes are left not done: rerun the same command to "
                           "finish them and merge") from exc


def _exit_hook(rank: int, n_done: int) -> None:
    spec = os.environ.get(TEST_EXIT_ENV, "")
    if spec and spec == f"{rank}:{n_done}":
        os._exit(17)


def _one_scene(model, src: SceneSource, texts: list[str], out: Path, settings: dict, rank: int,
               kwargs: dict[str, Any]) -> tuple[int, bool]:
    """Segment one scene into ``out/<id>/`` and write its record last; returns its pixels and
    whether it lies outside the area of interest."""
    folder = out / src.id
    record = folder / RECORD
    old = read_record(folder)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()  # from here on the scene is not done until its new record exists
    remove_stale_temporaries(record)
    remove_old_outputs(folder, src.id, old)  # an earlier run's files (other expressions) go with it
    write_stack(src)  # a STAC item's band assets: written only now, for a scene being segmented
    empty = outside = None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"text \d+: ")  # said once for the region
        try:
            results = segment_scene(model, src.uri, texts, out=folder / src.id, overwrite=True, **kwargs)
        except NoValidPixelsError as exc:  # a mosaic's tile beyond the swath: done, nothing in it
            results, empty = [], str(exc)
        except AOIOutsideError as exc:  # not asked about: done, nothing in it, listed
            results, outside = [], str(exc)
    if empty is not None:
        warnings.warn(f"scene {src.id}: {empty}; recorded as done with no outputs", UserWarning, stacklevel=4)
    outputs = [{"expression": r.text, "mode": r.mode, "files": {k: os.path.basename(p) for k, p in r.files.items()},
                "area_px": r.area_px, "area_m2": r.area_m2, "n_polygons": r.n_polygons,
                "seconds": round(r.seconds, 3)} for r in results]
    h, w = results[0].shape if results else (0, 0)
    if settings["options"]["pixel_ratio"] == "auto" and (used := ratio_used(results)) is not None:
        settings = {**settings, "options": {**settings["options"], "pixel_ratio": used}}  # this scene's number
    atomic_write(record, json_text({"scene": src.id, "source": src.uri, "shape": [h, w] if results else None,
                                     "rank": rank, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "rrsis": __version__, "settings": settings, "read": scene_reading(src),
                                     "outputs": outputs,
                                     **({"no_valid_pixels": empty} if empty is not None else {}),
                                     **({"outside_aoi": outside} if outside is not None else {})},
                                    indent=1))
    return h * w, outside is not None


def segment_scenes(
    model,
    scenes: Any,
    texts: str | Sequence[str],
    *,
    out: str | os.PathLike,
    asset: str | Sequence[str] | None = None,
    merged: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = False,
    barrier_timeout: float | None = None,
    lock_command: str = "rrsis.segment_scenes",
    **scene_kwargs: Any,
) -> RegionSummary:
    """Segment every scene of a region and merge their polygons into one vector file.

    Args:
        model: an rrsis model with a tokenizer.
        scenes: what :func:`~rrsis.scene.region.sources.resolve_scenes` takes: paths, quoted
            globs, ``@list.txt`` / ``.txt`` lists of paths or URLs, STAC item or item-collection
            JSON files; or a list of :class:`SceneSource`.
        texts: one expression or several, run on every scene.
        out: the region's folder: ``OUT/<scene id>/<scene id>_mask.tif``, ``.geojson``,
            ``_overlay.png`` (``<scene id>_1_*``, … with several expressions) and ``done.json``.
        asset: the STAC asset key (default: the item's asset with the role ``data``); several
            (``"red,green,blue"``): each item is one scene of those bands, in that order, through
            ``OUT/stacks/<scene id>.vrt`` (written as its scene is segmented, never for a scene
            already done; see ``resolve_scenes``).
        merged: the merged file, ``.gpkg`` (GeoPackage, pyogrio) or ``.parquet`` (GeoParquet,
            needs pyarrow); default ``OUT/merged.gpkg``. Written by rank 0 from every scene done
            (scenes that failed are missing from it until a rerun finishes them): one row per
            polygon with ``scene``, ``expression``, ``area_px``, ``area_m2``,
            ``mean_probability`` and ``source`` (the scene's path or URL), in the GeoJSONs' CRS
            (EPSG:4326 unless ``geojson_crs``). Rank 0 also writes ``OUT/region.json``: each
            scene's id, source, status (``done``, ``skipped``, ``failed`` with its error) and
            output files.
        overwrite: redo done scenes too, removing the outputs an earlier run wrote in their
            folders (default: skip them; a scene done with other expressions, settings, model
            or scene files is an error naming what differs).
        progress: a bar of scenes done / total with Mpx/s and the time left.
        barrier_timeout: seconds rank 0 waits for the other ranks to finish their scenes
            (default: the process group's timeout); then a ``RuntimeError``, nothing merged.
        lock_command: who holds ``OUT/.rrsis.lock`` while the call runs, as a second run's
            refusal names it (with this process's pid, host and start time).
        **scene_kwargs: :func:`~rrsis.scene.segment_scene`'s keywords (``mode``, ``threshold``,
            ``bands``, ``scale``, ``geojson_crs``, ``options``, ``tile``, …) for every scene.
            With ``aoi=`` (read once) each scene is segmented inside the area of interest only,
            and the scenes it misses are skipped and listed (:attr:`RegionSummary.outside`).

    Returns:
        A :class:`RegionSummary` (counts over all ranks). Scenes that fail are reported in it
        and are not done; the others go on. A scene with no valid pixel is done, with a
        warning and no files (``done.json``'s ``no_valid_pixels`` says why).

    Raises:
        rrsis._lock.OutputInUseError: another run (another process, or another ``torchrun`` job)
            is using ``out``: its ``OUT/.rrsis.lock`` names it. A lock whose process is no longer
            running on this host is taken over with a warning; the lock is removed when the call
            ends, however it ends. The ranks of one ``torchrun`` job share it (rank 0 holds it).
    """
    texts_list = check_expressions(texts)
    _check_keys(scene_kwargs)
    if getattr(model, "tokenizer", None) is None:
        raise ValueError("this model has no tokenizer; set model.tokenizer (see model.predict)")
    sources = (sorted(scenes, key=lambda s: s.id) if isinstance(scenes, (list, tuple)) and scenes
               and all(isinstance(s, SceneSource) for s in scenes)
               else resolve_scenes(scenes, asset, stack_dir=Path(out) / "stacks", write_stacks=False))
    out = Path(out)
    merged_path = Path(merged) if merged is not None else out / "merged.gpkg"
    check_merged_path(merged_path)
    if merged_path.resolve().parent == out.resolve() and merged_path.name in {s.id for s in sources}:
        raise ValueError(f"{merged_path}: a scene has the merged file's name; choose another merged path")
    if REGION_FILE in {s.id for s in sources}:
        raise ValueError(f"a scene's id is {REGION_FILE}, the region's own summary file; rename that scene's file")
    # removed again if no scene could be read into it (the CLI's lock may be there already)
    made = not out.exists() or (out.is_dir() and [p.name for p in out.iterdir()] == [LOCK_NAME])
    writable_folder(out, "choose another output folder")
    for i, t in enumerate(texts_list):
        problem = expression_problem(model.tokenizer, t, words=True)
        if problem:
            warnings.warn(f"text {i}: {problem}", UserWarning, stacklevel=2)
    if scene_kwargs.get("aoi") is not None:  # a file read once for the region, checked before any scene
        scene_kwargs = {**scene_kwargs, "aoi": area_of_interest(scene_kwargs["aoi"], scene_kwargs.get("aoi_crs")),
                        "aoi_crs": None}
    digest = model_fingerprint(model)
    settings = {**_settings(texts_list, scene_kwargs), "model": "sha256:" + digest}
    if settings["options"]["pixel_ratio"] == "auto" and auto_is_one(model):  # 1 on every scene: as recorded before
        settings["options"]["pixel_ratio"] = 1.0
    rank, world, info = _dist(model)
    summary = None
    try:
        with run_lock(out, rank, world, command=lock_command):  # one run at a time; its ranks share it
            sources, older = older_folders(out, sources, settings, overwrite,
                                           lambda s: scene_auto_ratio(model, s, scene_kwargs.get("crs")))
            done_before = {s.id for s in sources if check_done(
                out / s.id, settings, scene_reading(s), overwrite,
                lambda s=s: scene_auto_ratio(model, s, scene_kwargs.get("crs")))}
            with fingerprint_held(model, digest):  # hashed once for the run, not once per scene
                summary = _run(model, sources, texts_list, out, merged_path, settings, done_before, overwrite,
                               progress, barrier_timeout, rank, world, scene_kwargs)
            if rank == 0 and not (made and len(summary.failed) == summary.total):
                status = {**dict.fromkeys(summary.skipped, "skipped"),
                          **dict.fromkeys(summary.done + summary.outside, "done")}
                summary.region = str(write_region_file(out, sources, status, summary.failed,
                                                       None if summary.merged is None else merged_path,
                                                       summary.n_polygons, texts_list, settings["model"],
                                                       summary.left_out, older))
        if made and rank == 0 and len(summary.failed) == summary.total:  # no empty folders left behind
            for sid in [*summary.failed, "stacks", ""]:
                with contextlib.suppress(OSError):
                    (out / sid).rmdir()
        return summary
    finally:
        if info is not None:
            from ...engine.distributed import cleanup_distributed

            cleanup_distributed(info)


def _failure_text(exc: BaseException) -> str:
    """``Type: message`` of a scene's failure, with the causes it points to ("Read failed. See
    previous exception for details.": GDAL's own message is the chained one) after it."""
    parts, seen = [f"{type(exc).__name__}: {exc}"], exc
    while (seen := seen.__cause__ or seen.__context__) is not None and len(parts) < 4:
        text = f"{type(seen).__name__}: {seen}"
        if text not in parts:
            parts.append(text)
    return " <- ".join(parts)


def _run(model, sources, texts, out, merged_path, settings, done_before, overwrite, progress, timeout,
         rank, world, kwargs) -> RegionSummary:
    t0 = time.time()
    mine = shard(sources, rank, world)
    todo = [s for s in mine if overwrite or s.id not in done_before]
    part = RegionSummary(total=len(sources), skipped=[s.id for s in mine if s not in todo])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(mine), initial=len(part.skipped), unit="scene", dynamic_ncols=True,
                   desc="scenes" if world == 1 else f"scenes (rank {rank})")
    pixels = 0
    try:
        for src in todo:
            try:
                n, outside = _one_scene(model, src, texts, out, settings, rank, kwargs)
                pixels += n
                (part.outside if outside else part.done).append(src.id)
            except Exception as exc:  # noqa: BLE001 - one bad scene does not stop the region
                part.failed[src.id] = _failure_text(exc)
                warnings.warn(f"scene {src.id} ({src.uri}) failed: {part.failed[src.id]}", UserWarning, stacklevel=3)
            _exit_hook(rank, len(part.done))
            if bar is not None:
                bar.set_postfix_str(f"{pixels / 1e6 / max(time.time() - t0, 1e-9):.3g} Mpx/s", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    part.megapixels = pixels / 1e6
    summary = part
    if world > 1:
        from ...engine.distributed import DistInfo, all_gather_objects

        _barrier(rank, timeout)
        parts = all_gather_objects(part, DistInfo(rank=rank, world_size=world))
        summary = RegionSummary(total=len(sources), megapixels=sum(p.megapixels for p in parts))
        for p in parts:
            summary.done += p.done
            summary.skipped += p.skipped
            summary.failed.update(p.failed)
            summary.outside += p.outside
    if rank == 0:  # the scenes done (a failed one has no record): merged, the failed ones missing
        records = {s: rec for s in sources if (rec := read_record(out / s.id)) is not None}
        if records:
            remove_stale_temporaries(merged_path)
            parts_rows = [read_geojson_rows(s.id, out / s.id / o["files"]["geojson"], s.uri)
                          for s, rec in records.items() for o in rec["outputs"] if "geojson" in o["files"]]
            parts_rows, summary.left_out = place_parts(parts_rows)
            if summary.left_out:
                warnings.warn(left_out_text(merged_path, summary.left_out), UserWarning, stacklevel=3)
            summary.n_polygons = write_merged(merged_path, parts_rows)
            summary.merged = str(merged_path)
    summary.seconds = time.time() - t0
    return summary
