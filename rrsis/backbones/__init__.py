"""Visual backbones: Swin and ELSA blocks and the language-aware staged backbone."""

from .config import band_statistics
from .elsa import ELSAAttention, ELSABlock
from .multimodal import ENTransStage, MultiModalSwin
from .swin import SwinBlock

__all__ = ["ELSAAttention", "ELSABlock", "ENTransStage", "MultiModalSwin", "SwinBlock", "band_statistics"]
