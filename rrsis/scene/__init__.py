"""Whole scenes: any-size rasters in, georeferenced masks and polygons out, global-to-local.

``segment_scene(model, "scene.tif", ["the largest storage tank"], out="pred")`` reads the scene
window by window (:mod:`~rrsis.scene.read`), segments it globally, by tiles or both
(:mod:`~rrsis.scene.infer`) and writes a mask GeoTIFF, GeoJSON polygons and an overlay
(:mod:`~rrsis.scene.write`). GeoTIFF and other GDAL rasters need the ``geo`` extra
(``pip install "rrsis[geo]"``); PNG/JPEG and arrays work without it.
"""

from .api import (
    SceneResult,
    check_georeference,
    check_outputs,
    output_paths,
    output_prefixes,
    segment_scene,
)
from .infer import MODES, SceneOptions
from .read import Scene, open_scene
from .write import remove_stale_temporaries

__all__ = ["MODES", "Scene", "SceneOptions", "SceneResult", "check_georeference", "check_outputs", "open_scene",
           "output_paths", "output_prefixes", "remove_stale_temporaries", "segment_scene"]
