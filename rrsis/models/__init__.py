"""Registered models: each a short composition of registered parts."""

from . import gl_msin, lavt, rmsin  # noqa: F401  (register the model families)
from .base import RRSISModel, SegmentationOutput, TextFeatures, load_image
from .segmenter import ReferringSegmenter

__all__ = ["RRSISModel", "ReferringSegmenter", "SegmentationOutput", "TextFeatures", "load_image"]
