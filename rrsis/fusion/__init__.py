"""Vision-language fusion parts: PWAM, gates, GEM and RMSIN's IIM and CIM."""

from .cim import CrossScaleInteraction
from .gate import LanguageGate
from .gem import GlobalEnhancementModule
from .iim import IntraScaleInteraction
from .position import ScenePositionEncoding
from .pwam import PixelWordAttention

__all__ = [
    "CrossScaleInteraction",
    "GlobalEnhancementModule",
    "IntraScaleInteraction",
    "LanguageGate",
    "PixelWordAttention",
    "ScenePositionEncoding",
]
