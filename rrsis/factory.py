"""The way in: ``create_model`` and ``from_pretrained`` over the one builder.

This module stands above the models (importing it registers every built-in architecture and
pretrained tag) and above the weights I/O, which it calls for ``pretrained=True``.
"""

from __future__ import annotations

from typing import Any

from . import models  # noqa: F401  (registers the built-in architectures and their tags)
from ._config import ConfigError
from .hub import from_pretrained, load_pretrained_parts
from .hub.kwargs import refuse_hub_kwargs
from .registry import (
    build_from_config,
    is_model,
    list_models,
    list_pretrained,
    pretrained_cfg,
    split_model_name_tag,
)

__all__ = ["create_model", "from_pretrained", "is_model", "list_models", "list_pretrained", "pretrained_cfg"]

_TAKES = "pretrained=, swin_weights=, text_weights=, cache_dir=, local_files_only=, token=, max_params=, max_activation_gib="
_REVISION = ("the part weights come from two repos; pass swin_weights= / text_weights= a local copy of the revision "
             "(`hf download REPO --revision REV --local-dir DIR`); a saved model: rrsis.from_pretrained(repo, revision=)")


def create_model(
    name: str,
    pretrained: bool = False,
    *,
    swin_weights: Any = None,
    text_weights: Any = None,
    cache_dir: Any = None,
    local_files_only: bool = False,
    token: bool | str | None = None,
    max_params: int | None = None,
    max_activation_gib: float | None = None,
    **overrides: Any,
):
    """Build a registered model by name.

    Args:
        name: a registered name (``rrsis.list_models()``), optionally with a pretrained tag
            (``"gl-msin.in22k"``, ``rrsis.list_pretrained()``); an unknown tag is an error.
        pretrained: load the part weights the tag names (the architecture's default tag when
            none is given): ImageNet Swin and BERT from the Hub, or the local paths given as
            ``swin_weights=`` / ``text_weights=``. Parts without pretrained weights (fusion,
            GEM, head) stay randomly initialised; ``model.load_report`` lists them.
        swin_weights, text_weights: where part weights come from instead (see
            :func:`rrsis.hub.load_pretrained_parts`): a local file or directory, a Hub repo id,
            a timm tag, or ``False`` to skip that part.
        cache_dir, local_files_only, token: forwarded to the Hub downloads of part weights
            (``token``: a Hub token for private or gated part repos).
        max_params, max_activation_gib: the largest parameter count and estimated activation
            memory (GiB, one training image at ``image_size``) accepted; defaults 2·10⁹ and 64,
            or ``$RRSIS_MAX_PARAMS`` / ``$RRSIS_MAX_ACTIVATION_GIB``. The configuration is
            built on the meta device and checked before any memory is allocated; every size
            also has a fixed upper bound (:data:`rrsis.registry.SIZE_LIMITS`).
        **overrides: config nodes (``head={"name": "refine", "refine_steps": 1}``) or their flat
            aliases (``refine_steps=1``, see :data:`rrsis.models.config.ALIASES`). ``None`` values
            are dropped so that CLI defaults never override model defaults; unknown or misplaced
            keys raise :class:`~rrsis.ConfigError` naming the closest valid key.
    """
    if "/" in name or "\\" in name or ":" in name:
        raise ValueError(
            f"{name!r} looks like a path or Hub repo id, not a registered model name; "
            "use rrsis.from_pretrained() to load a saved model"
        )
    refuse_hub_kwargs(overrides, "rrsis.create_model", _TAKES, {"revision": _REVISION})
    if not pretrained and (swin_weights is not None or text_weights is not None):
        raise ValueError("swin_weights= / text_weights= are only used with pretrained=True")
    _, tag = split_model_name_tag(name)
    cfg = None
    if tag or (pretrained and swin_weights is None and text_weights is None):
        cfg = pretrained_cfg(name)  # unknown tag → error, before anything is built
        overrides.setdefault("image_size", cfg.image_size)
    if pretrained and cfg is not None:
        _check_usable(name, cfg, swin_weights)
    model = build_from_config(name, max_params=max_params, max_activation_gib=max_activation_gib, **overrides)
    if pretrained:
        swin = swin_weights if swin_weights is not None else (cfg.swin if cfg else None)
        text = text_weights if text_weights is not None else (cfg.text if cfg else None)
        model.load_report = load_pretrained_parts(
            model, swin=swin, text=text, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
    if cfg is not None:
        model.pretrained_cfg = cfg
    return model


def _check_usable(name: str, cfg, swin_weights: Any) -> None:
    if cfg.hub_id:
        raise ConfigError(f"{name} is a whole saved model: load it with rrsis.from_pretrained({cfg.hub_id!r})")
    if cfg.extra.get("convert"):
        raise ConfigError(f"{name} is an official trained checkpoint, not part weights: {cfg.swin}")
    if cfg.extra.get("needs_local_file") and swin_weights is None:
        raise ConfigError(f"{name}: no public download can be fetched for it; {cfg.swin}")
