"""Weights: whole models (save / load / push) and ImageNet part weights for fresh models.

- :func:`save_pretrained` (``save.py``) / :func:`push_to_hub` (``push.py``) and :func:`from_pretrained`
  (``load.py``): a model as ``config.json`` + ``model.safetensors`` (+ tokenizer, model card),
  in a local directory or a Hub repo.
- :func:`load_pretrained_parts`: timm ImageNet-22k Swin + BERT weights for
  ``create_model(..., pretrained=True)`` (``parts.py``).
- :func:`read_state_dict`: safe reading of safetensors and legacy pickle checkpoints (``files.py``).
- ``local.py``: what a model reference names (a local path or a repo id), told without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # the names as static analysis (type checkers, the API docs) reads them
    from .files import CheckpointError, find_weights_file, read_state_dict
    from .load import from_pretrained, model_from_config, read_config
    from .parts import default_swin_weights, load_pretrained_parts
    from .push import push_to_hub
    from .report import LoadReport
    from .save import save_pretrained

# public name → the submodule defining it, imported on first use: :mod:`.local` (what a model
# reference names, a folder's file names) needs neither torch nor the Hub client, so the commands
# check ``--model`` before loading them.
_LAZY = {
    **dict.fromkeys(["CheckpointError", "find_weights_file", "read_state_dict"], "files"),
    **dict.fromkeys(["from_pretrained", "model_from_config", "read_config"], "load"),
    **dict.fromkeys(["default_swin_weights", "load_pretrained_parts"], "parts"),
    "LoadReport": "report",
    "push_to_hub": "push",
    "save_pretrained": "save",
}

__all__ = [
    "CheckpointError",
    "LoadReport",
    "default_swin_weights",
    "find_weights_file",
    "from_pretrained",
    "load_pretrained_parts",
    "model_from_config",
    "push_to_hub",
    "read_config",
    "read_state_dict",
    "save_pretrained",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
