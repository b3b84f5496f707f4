"""Which weight file(s) a saved model or a part repo holds, and reading them: a single file, or
the shards an index names (``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``,
as ``transformers`` writes a large model).

A Hub cache filled by ``hf download`` or ``snapshot_download`` holds the files the repo has and
records nothing about the ones it lacks, so a name that is not cached (offline) is not taken to
be absent: the next candidate is tried, and "not in the cache" is said only when none is there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from .files import SAFE_SUFFIXES, CheckpointError, read_safetensors_header, read_state_dict

__all__ = ["WEIGHT_NAMES", "is_index", "locate_weights", "read_weights", "shard_files", "weights_header"]

# Searched in this order: safetensors before the pickle, a single file before an index.
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
INDEX_SUFFIX = ".index.json"

# get(name, absent_ok) -> the file's path, None (absent_ok and known absent), or
# LocalEntryNotFoundError (a Hub file that is neither cached nor downloadable).
Getter = Callable[[str, bool], "str | os.PathLike | None"]


def is_index(path: str | os.PathLike) -> bool:
    return Path(path).name.endswith(INDEX_SUFFIX)


def locate_weights(get: Getter, ref: str, names: tuple[str, ...] = WEIGHT_NAMES) -> Path:
    """The first of ``names`` that ``get`` finds; for an index, its shards are fetched as well
    (into the same folder of the Hub cache), so that :func:`read_weights` can read it.

    Raises:
        LocalEntryNotFoundError: none of ``names`` was found and some are not in the cache
            (offline): the first such error, saying which names were looked for.
        FileNotFoundError: ``ref`` holds none of ``names``.
    """
    uncached: LocalEntryNotFoundError | None = None
    for name in names:
        try:
            found = get(name, True)
        except LocalEntryNotFoundError as exc:
            uncached = uncached or exc
            continue
        if found is None:
            continue
        path = Path(found)
        if is_index(path):
            gone = [shard for shard in sorted(set(shard_files(path).values())) if get(shard, True) is None]
            if gone:
                raise CheckpointError(f"{ref}: {name} names shards that are not beside it: {', '.join(gone[:5])}"
                                      + (f" and {len(gone) - 5} more" if len(gone) > 5 else ""))
        return path
    if uncached is not None:
        raise LocalEntryNotFoundError(
            f"{ref}: no weight file is in the cache (looked for {', '.join(names)}). {uncached}"
        ) from uncached
    raise FileNotFoundError(f"{ref} has no weight file (looked for {', '.join(names)})")


def shard_files(index: str | os.PathLike) -> dict[str, str]:
    """``tensor name -> shard file name`` of an index file (its ``weight_map``); each shard is a
    plain file name beside the index, of the index's own format."""
    index = Path(index)
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{index}: not valid JSON ({exc})") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: expected {{\"weight_map\": {{tensor name: shard file}}}}, got "
                              f"{json.dumps(data)[:200]}")
    suffix = Path(index.name.removesuffix(INDEX_SUFFIX)).suffix
    for key, shard in weight_map.items():
        plain = isinstance(shard, str) and PurePosixPath(shard).name == shard and shard not in ("", ".", "..")
        if not plain or "\\" in shard or Path(shard).suffix != suffix:
            raise CheckpointError(f"{index}: tensor {key!r} names the shard {shard!r}; shards must be {suffix} "
                                  "files beside the index")
    return dict(weight_map)


def _shards(index: Path) -> tuple[dict[str, str], list[Path]]:
    weight_map = shard_files(index)
    paths = [index.parent / name for name in sorted(set(weight_map.values()))]
    gone = [p.name for p in paths if not p.is_file()]
    if gone:
        raise CheckpointError(f"{index} names shards that are not beside it: {', '.join(gone[:5])}"
                              + (f" and {len(gone) - 5} more" if len(gone) > 5 else ""))
    return weight_map, paths


def weights_header(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]] | None:
    """``name -> (dtype, shape)`` of a safetensors file or of all the shards of a safetensors
    index, read from the headers alone; ``None`` for pickle-based weights (no header)."""
    path = Path(path)
    if not is_index(path):
        return read_safetensors_header(path) if path.suffix.lower() in SAFE_SUFFIXES else None
    _, shards = _shards(path)
    if shards[0].suffix.lower() not in SAFE_SUFFIXES:
        return None
    header: dict[str, tuple[str, tuple[int, ...]]] = {}
    for shard in shards:
        header.update(read_safetensors_header(shard))
    return header


def read_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The stored mapping of a weight file (:func:`rrsis.hub.read_state_dict`), or of all the
    shards an index names, merged; a tensor the index places in a shard that lacks it, or in
    two shards, is refused."""
    path = Path(path)
    if not is_index(path):
        return read_state_dict(path, map_location=map_location)
    weight_map, shards = _shards(path)
    out: dict[str, Any] = {}
    for shard in shards:
        part = read_state_dict(shard, map_location=map_location)
        twice = sorted(set(part) & set(out))
        if twice:
            raise CheckpointError(f"{path}: {shard.name} repeats tensors of another shard: {twice[:5]}")
        out.update(part)
    lost = sorted(k for k in weight_map if k not in out)
    if lost:
        raise CheckpointError(f"{path}: {len(lost)} tensors it lists are in none of its shards: {lost[:5]}")
    return out
