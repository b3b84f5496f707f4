"""The public name tables: register a part or a model, or look one up.

Use these names, not ``rrsis._registry``::

    from rrsis.registry import HEADS

    @HEADS.register("center")
    def build_center_head(*, in_channels, width: int = 8): ...

A part table (:data:`LOCAL_ATTENTION`, :data:`FUSION`, :data:`GLOBAL_ENHANCEMENT`,
:data:`VISUAL_BRANCH`, :data:`NECKS`, :data:`HEADS`) maps the name a config node gives to the
builder whose keyword signature is that node's schema; :data:`CHECKPOINT_FORMATS` holds the
official checkpoint layouts ``rrsis convert`` reads. Models register with
:func:`register_model`, pretrained tags (``arch.tag``) with :func:`register_pretrained`.
"""

from __future__ import annotations

from ._registry import (
    CHECKPOINT_FORMATS,
    FUSION,
    GLOBAL_ENHANCEMENT,
    HEADS,
    LOCAL_ATTENTION,
    NECKS,
    VISUAL_BRANCH,
    PretrainedCfg,
    Registry,
    register_model,
    register_pretrained,
)

__all__ = [
    "CHECKPOINT_FORMATS",
    "FUSION",
    "GLOBAL_ENHANCEMENT",
    "HEADS",
    "LOCAL_ATTENTION",
    "NECKS",
    "VISUAL_BRANCH",
    "PretrainedCfg",
    "Registry",
    "register_model",
    "register_pretrained",
]
