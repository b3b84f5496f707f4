"""The types a model returns: its segmentation output and encoded text."""

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
