"""rrsis: referring remote sensing image segmentation models (GL-MSIN, LAVT, RMSIN)."""

__version__ = "0.1.0"

from . import backbones, fusion, heads, kernels, text  # noqa: E402,F401  (register parts)
from . import models  # noqa: E402,F401  (register models)
from ._registry import create_model, is_model, list_models, register_model  # noqa: E402
from .losses import ReferringLoss  # noqa: E402
from .models import ReferringSegmenter, RRSISModel, SegmentationOutput  # noqa: E402
from .text import Tokenizer  # noqa: E402

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "is_model",
    "register_model",
    "from_pretrained",
    "ReferringSegmenter",
    "RRSISModel",
    "SegmentationOutput",
    "Tokenizer",
    "ReferringLoss",
]


def from_pretrained(*args, **kwargs):
    """Load a saved rrsis model (``config.json`` + ``model.safetensors`` + tokenizer) from a
    local directory or a Hub repo id; see :func:`rrsis.hub.from_pretrained`."""
    from .hub import from_pretrained as _from_pretrained

    return _from_pretrained(*args, **kwargs)
