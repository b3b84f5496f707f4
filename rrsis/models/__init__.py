"""Registered models: each a short composition of registered parts."""

from . import gl_msin  # noqa: F401  (registers the gl-msin family)
from .base import RRSISModel, SegmentationOutput, load_image
from .segmenter import ReferringSegmenter

__all__ = ["RRSISModel", "ReferringSegmenter", "SegmentationOutput", "load_image"]
