"""A list of scenes from what a user types: paths, globs, list files, STAC items.

:func:`resolve_scenes` turns each entry into :class:`SceneSource` (an id and a path or URL GDAL
reads), expanding globs, ``@list.txt`` / ``list.txt`` files and STAC item or item-collection
JSON, dropping repeats, and giving every scene an id that names its output folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SceneSource", "is_gdal_url", "resolve_scenes", "scene_id"]

_GLOB = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SceneSource:
    """One scene of a list: ``id`` (its output folder's name) and ``uri`` (an absolute local
    path, or a URL or ``/vsi...`` path GDAL reads)."""

    id: str
    uri: str


def is_gdal_url(text: str) -> bool:
    """A URL (``https://``, ``s3://``, ...) or a GDAL virtual path (``/vsicurl/...``)."""
    return "://" in text or text.startswith("/vsi")


def scene_id(uri: str) -> str:
    """The file name without its extension, reduced to letters, digits, ``.``, ``_`` and ``-``."""
    base = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    stem = os.path.splitext(base)[0] if "." in base[1:] else base
    return _UNSAFE.sub("_", stem).strip("._") or "scene"


def _require_pystac():
    try:
        import pystac
    except ImportError:
        raise ImportError('reading STAC items needs pystac: pip install "rrsis[geo]"') from None
    return pystac


def _resolve(href: str, folder: str) -> str:
    if is_gdal_url(href) or os.path.isabs(href):
        return href
    return os.path.normpath(os.path.join(folder, href))


def _from_list_file(path: str) -> list[tuple[str, str]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scene list {path}: file not found")
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                uri = _resolve(line, folder)
                out.append((scene_id(uri), uri))
    if not out:
        raise ValueError(f"scene list {path}: no paths in it (one path or URL a line; # starts a comment)")
    return out


def _stac_asset(item: Any, asset: str | None, where: str) -> str:
    keys = sorted(item.assets)
    if asset is not None:
        if asset not in item.assets:
            raise KeyError(f"{where}: item {item.id!r} has no asset {asset!r}; its assets: {', '.join(keys)}")
        return item.assets[asset].href
    data = [k for k in keys if "data" in (item.assets[k].roles or [])]
    if len(data) != 1:
        found = "no asset has" if not data else f"assets {', '.join(data)} have"
        raise ValueError(f"{where}: item {item.id!r}: {found} the role 'data'; choose one with asset= "
                         f"(rrsis predict --asset KEY) among {', '.join(keys) or 'none'}")
    return item.assets[data[0]].href


def _from_stac(path: str, asset: str | None) -> list[tuple[str, str]]:
    pystac = _require_pystac()
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc})") from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "Feature":
        items = [pystac.Item.from_dict(doc)]
    elif kind == "FeatureCollection":
        items = list(pystac.ItemCollection.from_dict(doc))
    else:
        raise ValueError(f"{path}: a STAC item (type Feature) or item collection (type FeatureCollection) "
                         f"is expected, got type {kind!r}")
    if not items:
        raise ValueError(f"{path}: the item collection holds no items")
    folder = os.path.dirname(os.path.abspath(path))
    return [(scene_id(item.id), _resolve(_stac_asset(item, asset, path), folder)) for item in items]


def _expand(entry: str, asset: str | None) -> list[tuple[str, str]]:
    if entry.startswith("@"):
        return _from_list_file(entry[1:])
    if is_gdal_url(entry):
        return [(scene_id(entry), entry)]
    low = entry.lower()
    if low.endswith(".txt"):
        return _from_list_file(entry)
    if low.endswith(".json"):
        if not os.path.isfile(entry):
            raise FileNotFoundError(f"STAC file {entry}: file not found")
        return _from_stac(entry, asset)
    if not os.path.exists(entry) and _GLOB.search(entry):
        found = sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
        if not found:
            raise FileNotFoundError(f"{entry}: the pattern matches no file")
        return [(scene_id(p), os.path.normpath(p)) for p in found]
    if not os.path.isfile(entry):
        raise FileNotFoundError(f"{entry}: file not found")
    return [(scene_id(entry), os.path.normpath(entry))]


def resolve_scenes(entries: str | os.PathLike | Sequence[str | os.PathLike], asset: str | None = None
                   ) -> list[SceneSource]:
    """The scenes named by ``entries``, sorted by id, each once.

    Args:
        entries: paths, quoted glob patterns (``"tiles/*.tif"``, ``**`` recurses), text files of
            paths or URLs (``@scenes.lst`` or ``scenes.txt``: one a line, ``#`` comments, paths
            relative to the list's folder), URLs or ``/vsi...`` paths GDAL reads, and STAC item
            or item-collection JSON files (read with pystac).
        asset: the STAC asset key to read; default: the item's one asset with the role ``data``.

    Returns:
        The scenes sorted by id. An id is the file (or STAC item) name without extension, made
        file-name safe; scenes whose names collide all get ``-`` and 8 hex digits of their
        path's hash, so an id depends only on the list, not on its order.

    Raises:
        FileNotFoundError: a path or list file is missing, or a pattern matches nothing.
        ValueError: an empty list, a STAC file of another type, no or several ``data`` assets.
    """
    if isinstance(entries, (str, os.PathLike)):
        entries = [entries]
    found: dict[str, str] = {}
    for entry in entries:
        text = os.fspath(entry)
        if not text.strip():
            raise ValueError("a scene entry is empty: give a path, a glob, @list.txt or a STAC JSON file")
        for sid, uri in _expand(text, asset):
            key = uri if is_gdal_url(uri) else os.path.abspath(uri)
            found.setdefault(key, sid)  # the same file listed twice is one scene
    if not found:
        raise ValueError("no scenes given")
    count: dict[str, int] = {}
    for sid in found.values():
        count[sid] = count.get(sid, 0) + 1
    scenes = []
    for key, sid in found.items():
        if count[sid] > 1:
            sid = f"{sid}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        scenes.append(SceneSource(sid, key))
    return sorted(scenes, key=lambda s: s.id)
