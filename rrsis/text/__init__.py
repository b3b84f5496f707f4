"""Text side: the BERT encoder and the tokenizer that feeds it."""

from .bert import TextEncoder
from .config import TextConfig
from .tokenizer import MAX_TOKENS, SPECIAL_TOKENS, Tokenizer

__all__ = ["MAX_TOKENS", "SPECIAL_TOKENS", "TextConfig", "TextEncoder", "Tokenizer"]
