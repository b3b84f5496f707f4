"""Training and evaluation: recipes, the trainer, checkpoints, logs and the evaluation loop.

>>> from rrsis.engine import load_config, Trainer
>>> cfg = load_config("gl-msin-rrsisd", ["data.root=data/rrsisd", "train.epochs=2"])
>>> Trainer(cfg).fit(resume="auto-or-new")     # doctest: +SKIP
"""

from .checkpoint import atomic_save, latest_checkpoint, list_checkpoints, load_checkpoint
from .config import DEFAULTS, apply_overrides, list_configs, load_config, parse_override_args
from .distributed import resolve_device
from .evaluate import evaluate
from .logs import JsonlLogger, plot_history, read_jsonl
from .optim import build_optimizer, build_scheduler, param_groups, poly_lambda
from .trainer import Trainer, build_model, build_tokenizer, text_words
from .validate import validate_config

__all__ = [
    "DEFAULTS",
    "JsonlLogger",
    "Trainer",
    "apply_overrides",
    "atomic_save",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "build_tokenizer",
    "evaluate",
    "latest_checkpoint",
    "list_checkpoints",
    "list_configs",
    "load_checkpoint",
    "load_config",
    "param_groups",
    "parse_override_args",
    "plot_history",
    "poly_lambda",
    "read_jsonl",
    "resolve_device",
    "text_words",
    "validate_config",
]
