"""Segmentation heads: stage features → 2-class logits (+ deep-supervision outputs); the scene
ranker, the second stage of the ranked whole-scene mode."""

from .arc import AdaptiveRotatedDecoder
from .refine import IterativeRefinementHead
from .scene_ranker import SceneRanker
from .simple import SimpleDecoder

__all__ = ["AdaptiveRotatedDecoder", "IterativeRefinementHead", "SceneRanker", "SimpleDecoder"]
