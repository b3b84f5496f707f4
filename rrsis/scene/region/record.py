"""What a region records: each scene's ``done.json``, the check that a rerun may reuse it, the
outputs an earlier run left in a scene's folder, and the region's own ``region.json``.

A scene's record names everything its files depend on: the expressions and settings, the model
(:func:`~rrsis.scene.outputs.model_fingerprint` of its config, weights and tokenizer) and what was read (the scene's path or URL;
for a STAC item's band assets, their keys, files and colours). A rerun reuses a scene only when
all of them are the same; otherwise it refuses, naming what differs, unless ``overwrite``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..._atomic import atomic_write, json_text
from ..._version import __version__
from ..api import output_paths
from .entries import SceneSource, id_key

__all__ = ["RECORD", "REGION_FILE", "check_done", "older_folders", "ratio_used", "read_record",
           "remove_old_outputs", "scene_auto_ratio", "scene_reading", "write_region_file"]

RECORD = "done.json"
REGION_FILE = "region.json"
_REDO = "pass overwrite=True (rrsis predict --overwrite) to redo it, or choose another output folder"
# Every file name segment_scene gives one expression's outputs, after the prefix.
_SUFFIXES = sorted({p for g in (True, False) for p in output_paths("", g).values()}, key=len, reverse=True)


def read_record(folder: str | os.PathLike) -> dict | None:
    """A scene folder's completion record, or ``None`` when absent or unreadable."""
    try:
        with open(Path(folder) / RECORD, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def scene_reading(scene: SceneSource) -> dict[str, Any]:
    """What a scene's files were read from: its path or URL; for a stack of a STAC item's band
    assets, also the asset keys, their files and the colours declared."""
    got: dict[str, Any] = {"source": scene.uri}
    if scene.stack is not None:
        got.update(assets=list(scene.stack.keys), files=list(scene.stack.hrefs), colours=list(scene.stack.colours))
    return got


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value[:19] + "…" if value.startswith("sha256:") else value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return json_text(value)


def _differences(rec: dict, settings: dict, reading: dict) -> list[str]:
    """What differs between a record and this run, in words: ``the model (… → …)``, ..."""
    old = rec.get("settings") or {}
    words = {"texts": "the expressions", "model": "the model"}
    out = []
    for key in sorted(set(old) | set(settings)):
        a, b = old.get(key), settings.get(key)
        if key == "options" and isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k} ({_short(a.get(k))} → {_short(b.get(k))})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{words.get(key, key)} ({_short(a)} → {_short(b)})")
    read = rec.get("read") or {}
    # Other asset keys: said alone (their files and colours differ with them).
    for key in ("assets",) if read.get("assets") != reading.get("assets") else ("source", "files", "colours"):
        if read.get(key) != reading.get(key):
            out.append(f"the {'asset keys' if key == 'assets' else key} read ({_short(read.get(key))} → "
                       f"{_short(reading.get(key))})")
    return out


def ratio_used(results: Sequence[Any]) -> float | None:
    """The ``pixel_ratio`` a scene's outputs were made at, from their masks' records (``None``
    without outputs): the number ``pixel_ratio="auto"`` was on that scene."""
    from ..outputs import read_record as mask_record

    for r in results:
        rec = mask_record(r.files["mask"]) if "mask" in r.files else None
        ratio = (((rec or {}).get("settings") or {}).get("options") or {}).get("pixel_ratio")
        if isinstance(ratio, (int, float)):
            return float(ratio)
    return None


def scene_auto_ratio(model: Any, scene: SceneSource, crs: Any = None) -> float | None:
    """``pixel_ratio="auto"`` on ``scene`` for ``model``, from the scene's header (nothing logged
    or warned), or ``None`` when the scene cannot be opened."""
    from ..gsd import auto_pixel_ratio
    from ..read import open_scene

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_scene(scene.uri, crs=crs) as sc:
                return auto_pixel_ratio(model, sc, say=False)
    except Exception:  # noqa: BLE001 - not opened: the settings are compared as given
        return None


def _with_ratio(settings: dict[str, Any], ratio: float) -> dict[str, Any]:
    return {**settings, "options": {**(settings.get("options") or {}), "pixel_ratio": ratio}}


def check_done(folder: Path, settings: dict[str, Any], reading: dict[str, Any], overwrite: bool,
               auto_ratio: Callable[[], float | None] | None = None) -> bool:
    """Whether a scene is done with these settings (``model`` among them) and this reading; a
    record made otherwise is an error naming what differs, unless ``overwrite``. A record of an
    earlier rrsis, which names no model, is refused too: it cannot say which model made it.
    ``auto_ratio`` gives the number ``pixel_ratio="auto"`` is on this scene, called only where
    one side says ``"auto"`` and the other a number: the same number is the same setting."""
    rec = read_record(folder)
    if rec is None:
        return False
    if "model" not in (rec.get("settings") or {}) or "read" not in rec:
        if overwrite:
            return False
        raise ValueError(f"{folder}: done by rrsis {rec.get('rrsis', '?')}, whose {RECORD} does not record the "
                         "model or the files read, so whether this model and these files made it is unknown; "
                         f"{_REDO}")
    old = (rec["settings"].get("options") or {}).get("pixel_ratio")
    new = (settings.get("options") or {}).get("pixel_ratio")
    if (old == "auto") != (new == "auto") and auto_ratio is not None and (n := auto_ratio()) is not None:
        if old == "auto":  # a record of a run before the number was recorded
            rec = {**rec, "settings": _with_ratio(rec["settings"], n)}
        else:
            settings = _with_ratio(settings, n)
    diffs = _differences(rec, settings, reading)
    if diffs:
        if overwrite:
            return False
        raise ValueError(f"{folder}: done with other expressions or settings ({RECORD}): {'; '.join(diffs)}; {_REDO}")
    return all((folder / f).is_file() for o in rec.get("outputs", []) for f in o["files"].values())


def _read_key(read: dict) -> str:
    """What identifies a scene's reading whatever its id: a stack's source (``stacks/<id>.vrt``) aside."""
    return json.dumps({k: v for k, v in read.items() if not (k == "source" and "assets" in read)}, sort_keys=True)


def older_folders(out: Path, sources: list[SceneSource], settings: dict[str, Any], overwrite: bool,
                  auto_ratio: Callable[[SceneSource], float | None]) -> tuple[list[SceneSource], list[dict]]:
    """Scenes of ``sources`` that an earlier run did under another id (an older rrsis's id, or a
    ``-<hash>`` one given while the list had another scene of the same name): without a record in
    its own folder and not ``overwrite``, a scene done there with the same settings keeps that
    folder's id (it is skipped, not redone). Returns the scenes, sorted by id, and the folders
    of OUT holding a scene of the list under an id it no longer has, left as they were
    (``{"folder", "source", "id"}``, ``id`` the scene's now; said in a warning)."""
    by_read = {_read_key(scene_reading(s)): s for s in sources}
    taken = {id_key(s.id) for s in sources}
    found: dict[str, list[str]] = {}
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(out), key=lambda e: e.name):
            rec = read_record(entry.path) if entry.is_dir() and id_key(entry.name) not in taken else None
            if rec is not None and isinstance(rec.get("read"), dict) and (
                    s := by_read.get(_read_key(rec["read"]))) is not None:
                found.setdefault(s.id, []).append(entry.name)
    ids, left = {s.id: s for s in sources}, []
    for sid, names in found.items():
        s = ids[sid]
        for name in names:
            moved = dataclasses.replace(s, id=name, uri=s.uri if s.stack is None else
                                        os.path.join(os.path.dirname(s.uri), f"{name}.vrt"))
            if (ids[sid] is s and not overwrite and read_record(out / sid) is None and id_key(name) not in taken
                    and check_done(out / name, settings, scene_reading(moved), True, lambda m=moved: auto_ratio(m))):
                ids[sid] = moved
                taken.add(id_key(name))
            else:
                left.append({"folder": name, "source": s.uri, "id": sid})
    for entry in left:
        entry["id"] = ids[entry["id"]].id
    if left:
        warnings.warn(f"{out}: {len(left)} folder(s) hold a scene of this list under an id it no longer has, "
                      f"left as they were ({', '.join(e['folder'] for e in left)}: region.json's older_folders; "
                      "remove them once not needed)", UserWarning, stacklevel=3)
    return sorted(ids.values(), key=lambda s: s.id), left


def remove_old_outputs(folder: Path, scene_id: str, rec: dict | None) -> list[str]:
    """Remove, before a scene is redone, the outputs an earlier run wrote in its folder: the
    files its record lists and the files named as segment_scene names a scene's outputs
    (``ID_mask.tif``, ``ID_2.geojson``, ...); any other file is kept. Returns the names removed."""
    listed = {os.path.basename(f) for o in (rec or {}).get("outputs", []) for f in o.get("files", {}).values()}
    ours = re.compile(rf"{re.escape(scene_id)}(_\d+)?({'|'.join(re.escape(s) for s in _SUFFIXES)})")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file(follow_symlinks=False) and (entry.name in listed or ours.fullmatch(entry.name)):
                os.remove(entry.path)
                removed.append(entry.name)
    return removed


def write_region_file(out: Path, sources: list[SceneSource], status: dict[str, str], failed: dict[str, str],
                      merged: Path | None, n_polygons: int | None, texts: list[str], model: str,
                      left_out: Sequence[str] = (), older: Sequence[dict] = ()) -> Path:
    """Write ``OUT/region.json`` atomically: each scene's id, source, status (``done`` by this
    call, ``skipped``: done before, ``failed``) and outputs (paths relative to ``OUT``), the
    merged file (``null`` when none was written), the scenes left out of it (``left_out``:
    a CRS that cannot reach the merged file's) and the folders of scenes under older ids
    (``older_folders``: :func:`older_folders`)."""
    scenes = []
    for s in sources:
        rec = read_record(out / s.id) or {}
        entry: dict[str, Any] = {"id": s.id, "source": s.uri, "status": status.get(s.id, "failed")}
        if s.stack is not None:
            entry["read"] = scene_reading(s)
        if s.id in failed:
            entry["error"] = failed[s.id]
        for key in ("outside_aoi", "no_valid_pixels"):
            if key in rec:
                entry[key] = rec[key]
        entry["outputs"] = [{"expression": o["expression"], "files": {k: f"{s.id}/{f}" for k, f in o["files"].items()}}
                            for o in rec.get("outputs", [])]
        scenes.append(entry)
    where = None
    if merged is not None:
        rel = os.path.relpath(merged.resolve(), out.resolve())
        where = rel if not rel.startswith("..") else str(merged.resolve())
    doc = {"rrsis": __version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "texts": texts,
           "model": model, "merged": where, "n_polygons": n_polygons, "left_out": list(left_out),
           "older_folders": list(older),
           "counts": {k: sum(e["status"] == k for e in scenes) for k in ("done", "skipped", "failed")},
           "scenes": scenes}
    return atomic_write(out / REGION_FILE, json_text(doc, indent=1))
