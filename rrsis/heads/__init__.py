"""Segmentation heads: stage features → 2-class logits (+ deep-supervision outputs)."""

from .arc import AdaptiveRotatedDecoder
from .refine import IterativeRefinementHead
from .simple import SimpleDecoder

__all__ = ["AdaptiveRotatedDecoder", "IterativeRefinementHead", "SimpleDecoder"]
