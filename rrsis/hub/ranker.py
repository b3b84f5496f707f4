"""A model folder's scene ranker (``scene_ranker.json`` + ``scene_ranker.safetensors``).

The ranked whole-scene mode's second stage (:mod:`rrsis.scene.rank`) is saved beside the model,
not inside its state dict: ``from_pretrained`` attaches it as ``model.scene_ranker`` when the
folder has one, ``save_pretrained`` writes it when the model has one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from .._atomic import json_text
from .._config import ConfigError
from ..heads.scene_ranker import SceneRanker
from ..registry import SCENE_RANKER
from .files import CheckpointError

__all__ = ["RANKER_CONFIG_NAME", "RANKER_WEIGHTS_NAME", "attach_ranker", "build_ranker", "read_ranker",
           "write_ranker"]

RANKER_CONFIG_NAME = "scene_ranker.json"
RANKER_WEIGHTS_NAME = "scene_ranker.safetensors"


def build_ranker(config: dict[str, Any]) -> nn.Module:
    """A ranker from its saved ``config`` (``name`` picks the registered builder; keys strict)."""
    config = dict(config)
    name = config.pop("name", "set-transformer")
    SCENE_RANKER.check_args(name, config, RANKER_CONFIG_NAME)
    return SCENE_RANKER.build(name, **config)


def write_ranker(ranker: nn.Module, directory: Path) -> None:
    """Write the ranker's two files into ``directory`` (a save's staging folder)."""
    (directory / RANKER_CONFIG_NAME).write_text(json_text(ranker.config, indent=2) + "\n", encoding="utf-8")
    save_file({k: v.detach().contiguous().cpu() for k, v in ranker.state_dict().items()},
              str(directory / RANKER_WEIGHTS_NAME), metadata={"format": "pt"})


def read_ranker(config_path: Path, weights_path: Path | None) -> nn.Module:
    """The ranker of a model folder from its two files (the weights must be there)."""
    if weights_path is None:
        raise CheckpointError(f"{config_path} without {RANKER_WEIGHTS_NAME} beside it: the scene ranker "
                              "is incomplete")
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    try:
        ranker = build_ranker(config)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    try:
        ranker.load_state_dict(load_file(str(weights_path)))
    except (RuntimeError, OSError) as exc:
        raise CheckpointError(f"{weights_path} does not fit {config_path}: {exc}") from None
    return ranker.eval()


def attach_ranker(model: nn.Module, ranker: nn.Module | None) -> None:
    """Give ``model`` a scene ranker as ``model.scene_ranker``: a plain attribute, not a
    submodule, so the model's own state dict (and its parity with official checkpoints) stays
    as it is. ``None`` removes it."""
    if ranker is not None and not isinstance(ranker, SceneRanker):
        raise TypeError(f"a scene ranker is a rrsis.heads.SceneRanker, got {type(ranker).__name__}")
    object.__setattr__(model, "scene_ranker", ranker)
