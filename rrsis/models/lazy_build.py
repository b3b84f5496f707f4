"""The model builders' one way to the segmenter: imported with the first model built, so that
registering, listing or looking up the models' names does not import the parts (timm,
torchvision)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .segmenter import ReferringSegmenter

__all__ = ["build_segmenter"]


def build_segmenter(*args: Any, **kwargs: Any) -> ReferringSegmenter:
    """:func:`rrsis.models.segmenter.build_segmenter`, imported on the first call."""
    from .segmenter import build_segmenter as build

    return build(*args, **kwargs)
