"""Vision-language fusion parts: pixel-word attention, gates, global enhancement."""

from .gate import LanguageGate
from .gem import GlobalEnhancementModule
from .pwam import PixelWordAttention

__all__ = ["LanguageGate", "PixelWordAttention", "GlobalEnhancementModule"]
