"""BERT text encoder built from a config (no download), with LAVT's freezing."""

from __future__ import annotations

import torch
from torch import nn

from .config import TextConfig

__all__ = ["TextEncoder"]


class TextEncoder(nn.Module):
    """A BERT encoder returning per-word features.

    LAVT/RMSIN optimise BERT layers 0–9 only, so by default the embeddings and the last
    two layers are frozen (``requires_grad=False``).

    Args:
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size,
        max_position_embeddings, type_vocab_size, layer_norm_eps, hidden_act,
        dropout: the ``BertConfig`` fields (defaults: bert-base-uncased).
        freeze_embeddings: freeze the embedding tables and their LayerNorm.
        freeze_last_layers: number of final encoder layers to freeze.
    """

    def __init__(
        self,
        *,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        intermediate_size: int = 3072,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        hidden_act: str = "gelu",
        dropout: float = 0.1,
        freeze_embeddings: bool = True,
        freeze_last_layers: int = 2,
    ) -> None:
        # transformers costs seconds to import: paid when a text encoder is built, not by `import rrsis`.
        from transformers import BertConfig, BertModel

        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"text hidden size {hidden_size} is not divisible by {num_heads} heads")
        self.config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_position_embeddings,
            type_vocab_size=type_vocab_size,
            layer_norm_eps=layer_norm_eps,
            hidden_act=hidden_act,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            pad_token_id=0,
        )
        self.bert = BertModel(self.config, add_pooling_layer=False)
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        if freeze_embeddings:
            self.bert.embeddings.requires_grad_(False)
        n = max(0, min(freeze_last_layers, num_layers))
        for layer in self.bert.encoder.layer[num_layers - n :]:
            layer.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: TextConfig) -> "TextEncoder":
        """The encoder a ``text`` config node describes (``max_tokens`` is the tokenizer's)."""
        return cls(
            vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
            num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_positions, type_vocab_size=cfg.type_vocab_size,
            layer_norm_eps=cfg.layer_norm_eps, dropout=cfg.dropout,
            freeze_embeddings=cfg.freeze_embeddings, freeze_last_layers=cfg.freeze_last_layers,
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` ids and 0/1 mask → ``[B, L, D]`` last hidden state."""
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
