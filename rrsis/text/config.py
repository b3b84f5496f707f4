"""Config node of the text side: ``text`` (BERT encoder sizes, freezing, tokenizer length)."""

from __future__ import annotations

from dataclasses import dataclass

from .._config import ConfigError, check_bool, check_float, check_int, check_size
from .tokenizer import MAX_TOKENS

__all__ = ["TextConfig"]


@dataclass
class TextConfig:
    """The BERT text encoder (:class:`~rrsis.text.bert.TextEncoder`); defaults are
    bert-base-uncased's.

    Attributes:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_positions,
        type_vocab_size, layer_norm_eps, dropout: the ``BertConfig`` fields.
        freeze_embeddings: freeze the embeddings (LAVT/RMSIN do).
        freeze_last_layers: final encoder layers to freeze (LAVT/RMSIN: 2).
        max_tokens: tokenizer length (tokens per expression with [CLS]/[SEP], padded or
            truncated); the model's tokenizer is built with it. The one such setting: training
            recipes set it as ``model.max_tokens``.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    freeze_embeddings: bool = True
    freeze_last_layers: int = 2
    max_tokens: int = MAX_TOKENS

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_positions", "type_vocab_size"):
            check_size(name, getattr(self, name), f"text.{name}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not divisible by num_heads={self.num_heads}")
        self.layer_norm_eps = check_float("layer_norm_eps", self.layer_norm_eps, low=0.0)
        self.dropout = check_float("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_bool("freeze_embeddings", self.freeze_embeddings)
        check_int("freeze_last_layers", self.freeze_last_layers, low=0)
        check_int("max_tokens", self.max_tokens, low=2, high=self.max_positions)
