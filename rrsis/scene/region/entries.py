"""The entries of a scene list, expanded: paths, globs, list files, STAC items (and their assets).

The layer under :func:`~rrsis.scene.region.sources.resolve_scenes` (which also writes the
stacks of band assets) that :func:`~rrsis.scene.mosaic.build_vrt` and
:func:`~rrsis.scene.stack.build_stack` read their files with: nothing here writes a file.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..gdal_names import absolute_name, is_gdal_url, name_stem

__all__ = ["Bands", "SceneSource", "asset_keys", "id_key", "is_gdal_url", "listed_scenes", "one_asset", "scene_id",
           "scene_sources"]

_GLOB = re.compile(r"[*?\[]")
_MAX_ID_BYTES = 200  # of UTF-8: ID_12_overlay.png.aux.xml's temporary name, with a hash, fits in 255
_BAND_COLOURS = ("red", "green", "blue", "nir")  # the colours a stacked asset declares; others: undefined


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def scene_id(uri: str) -> str:
    """The file name without its extension (:func:`~rrsis.scene.gdal_names.name_stem`: a subdataset's
    file and name), NFC-normalised, each run of characters other than letters, digits (any
    script's: ``北京``, ``scène``), ``.``, ``_`` and ``-`` made one ``_`` (path separators,
    spaces, control and format characters, those Windows refuses), ``.`` and ``_`` stripped
    from both ends (``scene`` when nothing is left). Longer than 200 bytes of UTF-8, it is cut
    to 191 and ends in ``-`` and 8 hex digits of the whole name's hash. ASCII names keep the ids
    earlier versions gave them (below 200 bytes)."""
    stem = unicodedata.normalize("NFC", name_stem(uri))
    kept = "".join(c if c in "._-" or unicodedata.category(c)[0] in "LMN" else "\0" for c in stem)
    sid = re.sub("\0+", "_", kept).strip("._") or "scene"
    if len(sid.encode("utf-8")) > _MAX_ID_BYTES:
        cut = sid.encode("utf-8")[:_MAX_ID_BYTES - 9].decode("utf-8", "ignore").rstrip("._")
        sid = f"{cut}-{_digest(stem)}"
    return sid


def id_key(sid: str) -> str:
    """What two ids must differ in to name two folders on any file system: ``sid`` case-folded."""
    return unicodedata.normalize("NFC", sid.casefold())


def asset_keys(asset: str | Sequence[str] | None) -> list[str] | None:
    """``asset`` as a list of STAC asset keys (``"red,green,blue"`` or a sequence), or ``None``."""
    if asset is None:
        return None
    keys = [k.strip() for k in (asset.split(",") if isinstance(asset, str) else asset)]
    if not keys or not all(keys):
        raise ValueError(f"asset {asset!r}: give asset keys, one or several separated by commas (red,green,blue)")
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"asset {asset!r}: {', '.join(twice)} named twice; a stack reads each asset once")
    return keys


def one_asset(asset: str | Sequence[str] | None, where: str) -> str | Sequence[str] | None:
    """``asset`` unchanged when it names at most one key; several are refused, ``where`` (the
    API or flag: ``"evaluate_scene's asset="``) reading one asset an item."""
    keys = asset_keys(asset)
    if keys is not None and len(keys) > 1:
        raise ValueError(f"{where} {','.join(keys)}: several assets (one scene of several band files an item) "
                         "are read by a region (segment_scenes, rrsis predict), which writes their stacks in "
                         "OUT/stacks/; here give one asset key, or those stacks (OUT/stacks/*.vrt)")
    return asset


@dataclass(frozen=True)
class Bands:
    """A STAC item's assets read as the bands of one scene (their keys, hrefs resolved, colours
    as :func:`~rrsis.scene.stack.build_stack` takes them): stacked once the scene's id is known."""

    item: str
    hrefs: tuple[str, ...]
    colours: tuple[str, ...]
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class SceneSource:
    """One scene of a list: ``id`` (its output folder's name) and ``uri`` (an absolute local
    path, or a URL or ``/vsi...`` path GDAL reads). ``stack``: a STAC item's band assets that
    ``uri`` (a VRT) stacks, when it is still to be written (``resolve_scenes(write_stacks=False)``)
    or to be recorded."""

    id: str
    uri: str
    stack: Bands | None = None


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
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                uri = _resolve(line, folder)
                if not is_gdal_url(uri) and not os.path.isfile(uri):  # before any output is written
                    where = "" if uri == line else f" ({uri})"
                    raise FileNotFoundError(f"{path} is read as a list of scenes (one path or URL a line); "
                                            f"line {n}, {line!r}{where}: file not found")
                out.append((scene_id(uri), uri))
    if not out:
        raise ValueError(f"scene list {path}: no paths in it (one path or URL a line; # starts a comment)")
    return out


def _band_colour(item: Any, key: str) -> str:
    """A stacked asset's colour: its ``eo:bands[0].common_name`` (STAC 1.1: ``bands[0]``'s
    ``eo:common_name``; else the item's ``eo:bands`` entry named as the key) when red, green,
    blue or nir, else the key itself when it is one of those, else ``undefined``."""
    fields = item.assets[key].extra_fields
    listed = fields.get("eo:bands") or fields.get("bands") or [
        b for b in item.properties.get("eo:bands") or [] if isinstance(b, dict) and b.get("name") == key]
    first = listed[0] if isinstance(listed, list) and listed and isinstance(listed[0], dict) else {}
    for name in (first.get("common_name"), first.get("eo:common_name"), key):
        if isinstance(name, str) and name.lower() in _BAND_COLOURS:
            return name.lower()
    return "undefined"


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


def _from_stac(path: str, asset: str | Sequence[str] | None) -> list[tuple[str, str | Bands]]:
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
    keys = asset_keys(asset)
    if keys is None or len(keys) == 1:
        return [(scene_id(item.id), _resolve(_stac_asset(item, keys and keys[0], path), folder)) for item in items]
    return [(scene_id(item.id), Bands(item.id, tuple(_resolve(_stac_asset(item, k, path), folder) for k in keys),
                                       tuple(_band_colour(item, k) for k in keys), tuple(keys))) for item in items]


def _expand(entry: str, asset: str | Sequence[str] | None) -> list[tuple[str, str | Bands]]:
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
            hint = ("; [ and ] are pattern characters (a set of characters): to match them in a name, write "
                    "[[] and []] (glob.escape), or list the files in a text file (@list.txt)") if "[" in entry or \
                "]" in entry else ""
            raise FileNotFoundError(f"{entry}: the pattern matches no file{hint}")
        return [(scene_id(p), os.path.normpath(p)) for p in found]
    if not os.path.isfile(entry):
        raise FileNotFoundError(f"{entry}: file not found")
    return [(scene_id(entry), os.path.normpath(entry))]


def listed_scenes(entries: str | os.PathLike | Sequence[str | os.PathLike], asset: str | Sequence[str] | None
                  ) -> list[tuple[str, str, Bands | None]]:
    """``(id, uri, bands)`` of each scene of ``entries``, sorted by id, each once (see
    :func:`~rrsis.scene.region.sources.resolve_scenes`); ``bands`` is an item's assets when
    ``asset`` names several (its ``uri`` then their hrefs, a line each), else ``None``."""
    keys = asset_keys(asset)
    if isinstance(entries, (str, os.PathLike)):
        entries = [entries]
    found: dict[str, str] = {}
    stacks: dict[str, Bands] = {}
    for entry in entries:
        text = os.fspath(entry)
        if not text.strip():
            raise ValueError("a scene entry is empty: give a path, a glob, @list.txt or a STAC JSON file")
        for sid, uri in _expand(text, keys):
            if isinstance(uri, Bands):  # the same item's bands listed twice are one scene
                key = "\n".join(uri.hrefs)
                stacks[key] = uri
            else:
                key = absolute_name(uri)  # a subdataset's or /vsigzip/'s file too, as a plain file
            found.setdefault(key, sid)  # the same file listed twice is one scene
    if not found:
        raise ValueError("no scenes given")
    count: dict[str, int] = {}
    for sid in found.values():
        count[id_key(sid)] = count.get(id_key(sid), 0) + 1
    scenes = []
    for key, sid in found.items():
        if count[id_key(sid)] > 1:  # equal ignoring case (Tile, tile): one folder on some file systems
            sid = f"{sid}-{_digest(key)}"
        scenes.append((sid, key, stacks.get(key)))
    return sorted(scenes, key=lambda s: s[0])


def scene_sources(entries: str | os.PathLike | Sequence[str | os.PathLike], asset: str | Sequence[str] | None,
                  where: str = "asset=") -> list[SceneSource]:
    """The scenes of ``entries`` reading one asset a STAC item (several refused, naming ``where``)."""
    return [SceneSource(sid, uri) for sid, uri, _ in listed_scenes(entries, one_asset(asset, where))]
