"""Regions: many scenes in one call, resumable, sharded over ``torchrun`` ranks, one merged file.

``segment_scenes(model, ["tiles/*.tif"], ["the storage tanks"], out="region")`` segments every
scene into ``region/<scene id>/``, skips the scenes a previous run finished, and writes
``region/merged.gpkg`` (:mod:`.run`). Scene lists come from paths, globs, list files and STAC
JSON (:mod:`.sources`); the merged vector file is written by :mod:`.merge`.
"""

from .merge import check_merged_path, write_merged
from .run import RECORD, RegionSummary, read_record, segment_scenes, shard
from .sources import SceneSource, is_gdal_url, resolve_scenes, scene_id

__all__ = ["RECORD", "RegionSummary", "SceneSource", "check_merged_path", "is_gdal_url", "read_record",
           "resolve_scenes", "scene_id", "segment_scenes", "shard", "write_merged"]
