"""The types a model returns: its segmentation output and encoded text.

Both are registered as pytree nodes (``torch.export.register_dataclass``), so
``torch.export.export(model, args)`` takes a model that returns them, and an exported program
returns them again; they pickle, copy and compare as the plain dataclasses they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["SegmentationOutput", "TextFeatures"]


@dataclass
class SegmentationOutput:
    """Model output.

    Attributes:
        logits: ``[B, 2, H, W]`` background/foreground logits at input resolution.
        aux_logits: earlier predictions ``[B, 2, H, W]`` for deep supervision (may be empty).
    """

    logits: torch.Tensor
    aux_logits: list[torch.Tensor] = field(default_factory=list)


@dataclass
class TextFeatures:
    """Encoded expressions, reusable across images.

    Attributes:
        words: ``[B, L, D]`` word features from the text encoder.
        mask: ``[B, L]`` float 0/1, 1 for real tokens.
    """

    words: torch.Tensor
    mask: torch.Tensor


for _cls in (SegmentationOutput, TextFeatures):
    # The serialized name lets torch.export.save write a program whose output holds one.
    torch.export.register_dataclass(_cls, serialized_type_name=f"{_cls.__module__}.{_cls.__qualname__}")
del _cls
