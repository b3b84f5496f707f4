"""A list of scenes from what a user types: paths, globs, list files, STAC items.

:func:`resolve_scenes` turns each entry into :class:`SceneSource` (an id and a path or URL GDAL
reads), expanding globs, ``@list.txt`` / ``list.txt`` files and STAC item or item-collection
JSON (:mod:`~rrsis.scene.region.entries`), dropping repeats, and giving every scene an id that
names its output folder. A STAC item whose bands are separate assets (Earth Search's Sentinel-2
and Landsat: ``red``, ``green``, ``blue``, ``nir``) is one scene of several assets, read through
a VRT stacking them (:func:`~rrsis.scene.stack.build_stack`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..stack import build_stack
from .entries import SceneSource, asset_keys, is_gdal_url, listed_scenes, scene_id

__all__ = ["SceneSource", "is_gdal_url", "resolve_scenes", "scene_id", "write_stack"]


def write_stack(scene: SceneSource) -> None:
    """Write the VRT ``scene.uri`` stacking ``scene.stack``'s band assets (nothing to do without)."""
    bands = scene.stack
    if bands is None:
        return
    os.makedirs(os.path.dirname(scene.uri) or ".", exist_ok=True)
    try:
        build_stack(list(bands.hrefs), scene.uri, colours=bands.colours)
    except (ValueError, FileNotFoundError) as exc:  # a band that does not fit, a missing file
        raise type(exc)(f"STAC item {bands.item!r}: {exc}") from None


def resolve_scenes(entries: str | os.PathLike | Sequence[str | os.PathLike],
                   asset: str | Sequence[str] | None = None, *, stack_dir: str | os.PathLike | None = None,
                   write_stacks: bool = True) -> list[SceneSource]:
    """The scenes named by ``entries``, sorted by id, each once.

    Args:
        entries: paths, quoted glob patterns (``"tiles/*.tif"``, ``**`` recurses), text files of
            paths or URLs (``@scenes.lst`` or ``scenes.txt``: one a line, ``#`` comments, paths
            relative to the list's folder), URLs or ``/vsi...`` paths GDAL reads, and STAC item
            or item-collection JSON files (read with pystac).
        asset: the STAC asset key to read; default: the item's one asset with the role ``data``.
            Several (``"red,green,blue"`` or a sequence): each item is one scene whose bands are
            those assets, in that order, read through ``STACK_DIR/<scene id>.vrt``
            (:func:`~rrsis.scene.stack.build_stack`), each band's colour declared: the
            asset's ``eo:bands[0].common_name`` (or the item's ``eo:bands`` entry of the key's
            name) when red, green, blue or nir, else the key when it is one of those, else
            undefined. Relative hrefs are read from the item file's folder, URLs as URLs.
        stack_dir: the folder the stacks of several assets are written to (created; needed
            with several assets). Written after every entry is read, so a missing asset writes
            nothing.
        write_stacks: ``False`` writes no stack: each such scene's ``uri`` is the VRT still to
            write and its ``stack`` the bands (:func:`write_stack` writes it; a region writes
            only the stacks of the scenes it segments, after checking what is done).

    Returns:
        The scenes sorted by id. An id is the file (or STAC item) name without extension, made
        file-name safe (:func:`~rrsis.scene.region.entries.scene_id`: any script's letters and
        digits kept); scenes whose ids are equal ignoring case all get ``-`` and 8 hex digits of
        their path's hash, so an id depends only on the list, not on its order, and only when
        another scene of the list has such an id.

    Raises:
        FileNotFoundError: a path or list file is missing, or a pattern matches nothing.
        ValueError: an empty list, a STAC file of another type, no or several ``data`` assets,
            several assets without ``stack_dir``, band assets that do not stack (naming the item).
        KeyError: an item without an asset named (the message lists its assets).
    """
    keys = asset_keys(asset)
    if keys is not None and len(keys) > 1 and stack_dir is None:
        raise ValueError(f"asset={','.join(keys)!r} names several assets: each STAC item is then one scene of "
                         "those bands, a VRT written by resolve_scenes(..., stack_dir=DIR), segment_scenes "
                         "(in OUT/stacks/) or rrsis predict's region (--asset red,green,blue); a mosaic "
                         "(build_vrt, --mosaic) and evaluate_scene read one asset an item")
    scenes = [SceneSource(sid, uri) if bands is None else SceneSource(sid, os.path.join(stack_dir, f"{sid}.vrt"), bands)
              for sid, uri, bands in listed_scenes(entries, keys)]
    if write_stacks:
        for scene in scenes:
            write_stack(scene)
    return scenes
