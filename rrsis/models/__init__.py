"""Registered models: each a short composition of registered parts."""

from .._lazy import lazy_exports
from . import gl_msin, lavt, rmsin  # noqa: F401  (register the model families: names, configs, tags)
from .base import RRSISModel, SegmentationOutput, TextFeatures, load_image

# The segmenter imports the parts (timm, torchvision): with the first model built, or when read.
__getattr__, __dir__ = lazy_exports(__name__, {"ReferringSegmenter": "segmenter"})

__all__ = ["RRSISModel", "ReferringSegmenter", "SegmentationOutput", "TextFeatures", "load_image"]
