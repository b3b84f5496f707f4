"""Regions: many scenes in one call, resumable, sharded over ``torchrun`` ranks, one merged file.

``segment_scenes(model, ["tiles/*.tif"], ["the storage tanks"], out="region")`` segments every
scene into ``region/<scene id>/``, skips the scenes a previous run finished, and writes
``region/merged.gpkg`` (:mod:`.run`). Scene lists come from paths, globs, list files and STAC
JSON (:mod:`.sources`); the merged vector file is written by :mod:`.merge`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

if TYPE_CHECKING:  # the names as static analysis (type checkers, the API docs) reads them
    from .merge import check_merged_path, write_merged
    from .run import RECORD, RegionSummary, read_record, segment_scenes, shard
    from .sources import SceneSource, is_gdal_url, resolve_scenes, scene_id

# public name → the submodule that holds it, imported on first use (``entries``, the scene list's
# plain parts, stays cheap: ``rrsis predict`` reads it before loading the model stack)
_LAZY = {
    **dict.fromkeys(["check_merged_path", "write_merged"], "merge"),
    **dict.fromkeys(["RECORD", "RegionSummary", "read_record", "segment_scenes", "shard"], "run"),
    "resolve_scenes": "sources",
    **dict.fromkeys(["SceneSource", "is_gdal_url", "scene_id"], "entries"),
}

__all__ = ["RECORD", "RegionSummary", "SceneSource", "check_merged_path", "is_gdal_url", "read_record",
           "resolve_scenes", "scene_id", "segment_scenes", "shard", "write_merged"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
