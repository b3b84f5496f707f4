"""Text side: the BERT encoder and the tokenizer that feeds it."""

from .bert import TextEncoder
from .tokenizer import SPECIAL_TOKENS, Tokenizer

__all__ = ["TextEncoder", "Tokenizer", "SPECIAL_TOKENS"]
