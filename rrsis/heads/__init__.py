"""Segmentation heads: stage features → 2-class logits (+ deep-supervision outputs)."""

from .refine import IterativeRefinementHead
from .simple import SimpleDecoder

__all__ = ["SimpleDecoder", "IterativeRefinementHead"]
