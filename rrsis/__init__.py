"""rrsis: referring remote sensing image segmentation models (GL-MSIN, LAVT, RMSIN).

``import rrsis`` is cheap: the names below load their module (and torch, timm, transformers)
on first use, so the ``rrsis`` command answers ``--help`` without paying for them.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from ._version import __version__

# public name → module defining it
_LAZY = {
    "create_model": "factory",
    "from_pretrained": "factory",
    "list_models": "factory",
    "list_pretrained": "factory",
    "is_model": "factory",
    "pretrained_cfg": "factory",
    "register_model": "registry",
    "register_pretrained": "registry",
    "ConfigError": "_config",
    "ReferringSegmenter": "models.segmenter",
    "RRSISModel": "models",
    "SegmentationOutput": "models",
    "Tokenizer": "text",
    "ReferringLoss": "losses",
    "segment_scene": "scene",
    "segment_scenes": "scene",
    "SceneOptions": "scene",
    "open_scene": "scene",
    "write_chips": "scene",
    "evaluate_scene": "scene",
    "read_image": "data",
}

__all__ = [  # noqa: RUF022  (grouped as in _LAZY)
    "__version__", "create_model", "from_pretrained", "list_models", "list_pretrained", "is_model",
    "pretrained_cfg", "register_model", "register_pretrained", "ConfigError", "ReferringSegmenter",
    "RRSISModel", "SegmentationOutput", "Tokenizer", "ReferringLoss", "segment_scene", "segment_scenes",
    "SceneOptions", "open_scene", "write_chips", "evaluate_scene", "read_image",
]

# the public subpackages and modules, imported on first use as well: ``rrsis.kernels.compile_model``,
# ``rrsis.engine.param_groups`` work after a bare ``import rrsis``
_SUBMODULES = ("app", "backbones", "convert", "data", "demo", "engine", "fusion", "heads", "hub", "kernels",
               "losses", "metrics", "models", "plugins", "registry", "scene", "text")

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
