"""Whole scenes: any-size rasters in, georeferenced masks and polygons out, global-to-local.

``segment_scene(model, "scene.tif", ["the largest storage tank"], out="pred")`` reads the scene
window by window (:mod:`~rrsis.scene.read`), segments it globally, by tiles or both
(:mod:`~rrsis.scene.infer`) and writes a mask GeoTIFF, GeoJSON polygons and an overlay
(:mod:`~rrsis.scene.write`). ``segment_scenes`` does it for a list, glob or STAC collection of
scenes, resumably and across ``torchrun`` ranks, with one merged vector file
(:mod:`~rrsis.scene.region`); ``build_vrt`` reads an area delivered as tiles as one scene
(:mod:`~rrsis.scene.mosaic`), ``build_stack`` a scene delivered as one file per band
(:mod:`~rrsis.scene.stack`); ``aoi=`` asks only inside an area of interest (:mod:`~rrsis.scene.aoi`); the ``object`` mode keeps
as many objects as the expression names, where it says (:mod:`~rrsis.scene.reading`);
``write_chips`` turns a scene and its labelled polygons into a training folder (:mod:`~rrsis.scene.chips`);
``evaluate_scene`` scores the modes on such a scene, or on many (:mod:`~rrsis.scene.evaluate`).
GeoTIFF and other GDAL rasters need the ``geo`` extra
(``pip install "rrsis[geo]"``); PNG/JPEG, plain TIFFs (no GeoTIFF tags) and arrays work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # the names as static analysis (type checkers, the API docs) reads them
    from .aoi import AOIOutsideError, AreaOfInterest, area_of_interest, open_aoi_scene
    from .api import (
        SceneResult,
        check_georeference,
        check_outputs,
        output_paths,
        output_prefixes,
        segment_scene,
    )
    from .chips import ChipsSummary, write_chips
    from .evaluate import EVAL_MODES, ExpressionScore, ModeScore, SceneEvaluation, evaluate_scene
    from .evaluate_record import SceneScore
    from .infer import MODES, SceneOptions
    from .mosaic import build_vrt
    from .read import Scene, open_scene
    from .reading import objects_named, read_expression
    from .region import RegionSummary, SceneSource, resolve_scenes, segment_scenes
    from .stack import build_stack
    from .write import remove_stale_temporaries

# public name → the submodule defining it, imported on first use: the submodules that need
# neither torch nor a model (``outputs``: the output files' names and the check before computing)
# stay cheap to import, so ``rrsis predict`` checks its outputs before it loads the model stack.
_LAZY = {
    **dict.fromkeys(["AOIOutsideError", "AreaOfInterest", "area_of_interest", "open_aoi_scene"], "aoi"),
    **dict.fromkeys(["SceneResult", "check_georeference", "segment_scene"], "api"),
    **dict.fromkeys(["check_outputs", "output_paths", "output_prefixes"], "outputs"),
    **dict.fromkeys(["ChipsSummary", "write_chips"], "chips"),
    **dict.fromkeys(["EVAL_MODES", "ExpressionScore", "ModeScore", "SceneEvaluation", "evaluate_scene"], "evaluate"),
    "SceneScore": "evaluate_record",
    **dict.fromkeys(["MODES", "SceneOptions"], "infer"),
    "build_vrt": "mosaic",
    **dict.fromkeys(["Scene", "open_scene"], "read"),
    **dict.fromkeys(["objects_named", "read_expression"], "reading"),
    **dict.fromkeys(["RegionSummary", "SceneSource", "resolve_scenes", "segment_scenes"], "region"),
    "build_stack": "stack",
    "remove_stale_temporaries": "write",
}

__all__ = ["EVAL_MODES", "MODES", "AOIOutsideError", "AreaOfInterest", "ChipsSummary", "ExpressionScore", "ModeScore",
           "RegionSummary", "Scene", "SceneEvaluation", "SceneOptions", "SceneResult", "SceneScore", "SceneSource",
           "area_of_interest", "build_stack", "build_vrt", "check_georeference", "check_outputs", "evaluate_scene",
           "objects_named", "open_aoi_scene", "open_scene", "output_paths", "output_prefixes", "read_expression",
           "remove_stale_temporaries", "resolve_scenes", "segment_scene", "segment_scenes", "write_chips"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
