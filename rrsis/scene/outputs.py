"""One scene's output files: their names, the check before computing, and the record each
expression's files carry of what they answer.

The record names the expression, the scene's source, the model (``model``: the path or Hub id it
was loaded from, ``model_sha256``: a fingerprint of its config and weights) and the settings the
files depend on, and gives the result's numbers. It is written as metadata tags of the mask
(GeoTIFF tags ``RRSIS_EXPRESSION``, ``RRSIS_SOURCE``, ``RRSIS_MODEL``, ``RRSIS_MODEL_SHA256``,
``RRSIS_SETTINGS`` and ``RRSIS_RESULT``, the last two JSON; a mask PNG's text chunks of the same
names) and as the ``rrsis`` member of the GeoJSON FeatureCollection, so each file says what it
answers even when the answer is empty. ``resume=True`` (``rrsis predict --resume``) keeps an
expression's files when all are there and their mask records the same expression, source, model
and settings: the mask is replaced last and its old file removed before any other is replaced
(:func:`~rrsis.scene.write.staged_outputs`), so a complete record means complete files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from .._atomic import remove_stale_temporaries, writable_folder
from .gdal_names import name_stem

__all__ = ["TAGS", "check_outputs", "fingerprint_held", "kept_outputs", "model_fingerprint", "output_paths", "output_prefixes",
           "output_record", "read_record", "record_tags"]

TAGS = {"expression": "RRSIS_EXPRESSION", "source": "RRSIS_SOURCE", "model": "RRSIS_MODEL",
        "model_sha256": "RRSIS_MODEL_SHA256", "settings": "RRSIS_SETTINGS", "result": "RRSIS_RESULT"}
_JSON_TAGS = ("settings", "result")
_NOT_SETTINGS = {"batch_size", "strip_rows"}  # they change no output
RESUME = "resume=True (rrsis predict --resume) to keep the expressions done with the same model and settings"
OVERWRITE = "overwrite=True (rrsis predict --overwrite)"


def output_paths(prefix: str, georeferenced: bool) -> dict[str, str]:
    """Files written for an output prefix: GIS outputs for a georeferenced scene, PNGs otherwise.
    The mask comes first: it carries the record and is replaced last."""
    if georeferenced:  # the overlay's world file and CRS sidecar let a GIS place it
        return {"mask": f"{prefix}_mask.tif", "geojson": f"{prefix}.geojson",
                "overlay": f"{prefix}_overlay.png", "overlay_world": f"{prefix}_overlay.pgw",
                "overlay_crs": f"{prefix}_overlay.png.aux.xml"}
    return {"mask": f"{prefix}_mask.png", "overlay": f"{prefix}_overlay.png"}


def output_prefixes(out: str | os.PathLike, n_texts: int, scene_name: str = "scene") -> list[str]:
    """The output prefix of each expression.

    ``out`` is a prefix (``runs/tank`` gives ``runs/tank_mask.tif``, ...); with several
    expressions ``PREFIX_1``, ``PREFIX_2``, … . An ``out`` that is an existing folder or ends
    with a path separator names a folder: the files go inside it, named after the scene's
    file (``DIR/STEM_mask.tif``, ``DIR/STEM.geojson``, ``DIR/STEM_overlay.png``; ``scene``
    for arrays and PIL images; STEM: :func:`~rrsis.scene.gdal_names.name_stem`, ``area`` for
    ``/vsigzip/…/area.tif.gz``), never as hidden ``DIR/.geojson`` or ``DIR/_mask.tif``.
    """
    text = os.fspath(out)
    if not text.strip():
        raise ValueError("out is empty: give an output prefix (e.g. results/tanks) or a folder")
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        stem = name_stem(scene_name) if scene_name not in ("array", "") else ""
        text = os.path.join(text, stem or "scene")
    prefixes = [text] if n_texts == 1 else [f"{text}_{i + 1}" for i in range(n_texts)]
    check_name_length(prefixes[-1], os.fspath(out))
    return prefixes


# Bytes a file name may hold (ext4, XFS, APFS, NTFS), and what rrsis adds to an output name at most:
# ".NAME_overlay.png.aux.xml.PID-XXXXXXXX.tmp.xml", a temporary file of the longest output.
NAME_MAX = 255
NAME_ROOM = 64


def check_name_length(prefix: str, out: str) -> None:
    """Refuse an output prefix whose name is too long for the files made from it (the system's
    "[Errno 36] File name too long" named a lock or temporary file, not what to shorten)."""
    name = os.path.basename(prefix)
    n = len(os.fsencode(name))
    if n > NAME_MAX - NAME_ROOM:
        shown = out if len(out) <= 80 else f"{out[:40]}…{out[-20:]}"
        raise ValueError(f"output prefix {shown!r}: its file name {'(from the scene) ' if name not in out else ''}is "
                         f"{n} bytes; the files made from it (NAME_overlay.png.aux.xml, temporary and lock files) "
                         f"need it at most {NAME_MAX - NAME_ROOM} (a file name holds {NAME_MAX}): choose a shorter one")


def check_outputs(paths: Sequence[str], overwrite: bool = False, *,
                  replace: str = OVERWRITE, instead: str = "another output prefix",
                  resume: str | None = None) -> None:
    """Before any computing: remove the temporaries killed runs left beside the outputs
    (:func:`~rrsis._atomic.remove_stale_temporaries`: their process is gone), refuse existing outputs
    unless ``overwrite``, and make sure each output folder can be created and written; up to six
    existing files are named. ``replace`` and ``instead`` are what the caller's
    user can do, named in the messages: "pass REPLACE to replace, or choose INSTEAD"; ``resume``,
    when given, is offered first ("pass RESUME and finish the others, REPLACE to replace, ...").

    Raises:
        FileExistsError: an output exists and ``overwrite`` is false (names them and the flag).
        PermissionError: an output folder cannot be written.
    """
    remove_stale_temporaries(paths)
    existing = [p for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        more = f" (and {len(existing) - 6} more)" if len(existing) > 6 else ""
        first = "" if resume is None else f"{resume} and finish the others, "
        raise FileExistsError(f"{', '.join(existing[:6])}{more} already exist(s): pass {first}{replace} to "
                              f"replace, or choose {instead}")
    for folder in sorted({os.path.dirname(os.path.abspath(p)) for p in paths}):
        writable_folder(folder, f"choose {instead}")
    for p in paths:
        if os.path.isdir(p):
            raise IsADirectoryError(f"{p}: an output file's name is taken by a folder; choose {instead}")


_HELD: ContextVar[tuple[int, str] | None] = ContextVar("rrsis_model_fingerprint", default=None)


@contextlib.contextmanager
def fingerprint_held(model, digest: str | None = None) -> Iterator[str]:
    """Inside the block, :func:`model_fingerprint` of ``model`` is the digest taken on entry (or
    ``digest``, taken just before): a region's scenes share one model, hashed once, not per scene.
    The model must not change inside."""
    token = _HELD.set((id(model), digest or model_fingerprint(model)))
    try:
        yield _HELD.get()[1]
    finally:
        _HELD.reset(token)


def model_fingerprint(model) -> str:
    """sha256 over the model's architecture, config (JSON), its tokenizer's vocabulary and length,
    and every tensor of its state dict (name, dtype, shape and bytes): the same weights give the
    same digest wherever loaded. Taken afresh on every call (an in-place edit through ``.data``
    leaves no trace to cache by), except inside :func:`fingerprint_held`."""
    import torch

    held = _HELD.get()
    if held is not None and held[0] == id(model):
        return held[1]
    state = model.state_dict()
    tok = getattr(model, "tokenizer", None)
    h = hashlib.sha256()
    config = {"arch": getattr(model, "arch", type(model).__name__), "config": getattr(model, "config", None)}
    if tok is not None:
        config["tokenizer"] = {"vocab": getattr(tok, "vocab", None), "max_tokens": getattr(tok, "max_tokens", None)}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in sorted(state.items()):
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{t.numel()}\n".encode())
        h.update(t.view(torch.uint8).numpy() if t.numel() else b"")  # its own bytes, not a copy
    return h.hexdigest()


def output_record(model, text: str, source: str, settings: dict[str, Any], digest: str) -> dict[str, Any]:
    """What one expression's files answer (see the module's description); ``digest``:
    :func:`model_fingerprint`."""
    options = settings.get("options")
    if dataclasses.is_dataclass(options):
        settings = {**settings, "options": {k: v for k, v in dataclasses.asdict(options).items()
                                            if k not in _NOT_SETTINGS}}
    if str(source).lower().endswith(".vrt") and os.path.isfile(source):  # a --stack or --mosaic: what it joins
        with open(source, "rb") as fh:
            settings = {**settings, "vrt_sha256": hashlib.sha256(fh.read()).hexdigest()}
    return {"expression": text, "source": source, "model": getattr(model, "name_or_path", None),
            "model_sha256": digest, "settings": json.loads(json.dumps(settings, sort_keys=True, default=str))}


def record_tags(record: dict[str, Any]) -> dict[str, str]:
    """The record as GeoTIFF metadata tags (or PNG text chunks): strings, JSON for the nested."""
    return {TAGS[k]: json.dumps(v, sort_keys=True) if k in _JSON_TAGS else ("" if v is None else str(v))
            for k, v in record.items() if k in TAGS}


def read_record(mask: str | os.PathLike) -> dict[str, Any] | None:
    """The record a mask file (GeoTIFF tags or PNG text chunks) carries, or ``None``."""
    try:
        if str(mask).lower().endswith(".png"):
            from PIL import Image

            with Image.open(mask) as im:
                tags = dict(getattr(im, "text", {}))
        else:
            import rasterio

            with rasterio.open(mask) as ds:
                tags = ds.tags()
    except OSError:  # unreadable (rasterio's and PIL's errors are OSErrors): no record, not kept
        return None
    if TAGS["model_sha256"] not in tags:
        return None
    try:
        return {k: json.loads(tags.get(t, "null")) if k in _JSON_TAGS else (tags.get(t) or None)
                for k, t in TAGS.items()}
    except json.JSONDecodeError:
        return None


def _differs(old: dict[str, Any] | None, new: dict[str, Any]) -> str | None:
    if old is None:
        return "its mask records nothing of what it answers (written by an earlier rrsis or another program)"
    for key, what in (("expression", "another expression"), ("source", "another scene source"),
                      ("model_sha256", "another model"), ("settings", "other settings")):
        if old.get(key) != new.get(key):
            if key == "settings":
                a, b = old.get(key) or {}, new.get(key) or {}
                names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                return f"made with other settings ({', '.join(names)})"
            return f"made for {what} ({old.get(key) if key != 'model_sha256' else old.get('model')})"
    return None


def kept_outputs(prefixes: Sequence[str], georeferenced: bool,
                 records: Sequence[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """``resume``: the expressions (by index) whose files are all there with the same record
    (their record returned); files of any other expression there are refused, saying why.

    Raises:
        FileExistsError: an expression's files are there, incomplete or with another record.
    """
    kept, why = {}, []
    for i, (prefix, rec) in enumerate(zip(prefixes, records)):
        paths = output_paths(prefix, georeferenced)
        there = [p for p in paths.values() if os.path.lexists(p)]
        if not there:
            continue
        old = read_record(paths["mask"]) if len(there) == len(paths) else None
        reason = _differs(old, rec) if len(there) == len(paths) else \
            f"incomplete ({', '.join(sorted(set(paths.values()) - set(there)))} missing)"
        if reason is None:
            kept[i] = old
        else:
            why.append(f"{prefix}_* ({rec['expression']!r}): {reason}")
    if why:
        raise FileExistsError(f"{'; '.join(why)}: not kept; pass {OVERWRITE} to replace them, or choose "
                              "another output prefix")
    return kept
