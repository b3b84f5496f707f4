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
        config: the validated ``text`` node (:class:`~rrsis.text.config.TextConfig`): the
            ``BertConfig`` sizes, dropout, and how much to freeze. Its ``max_tokens`` is the
            tokenizer's length, not the encoder's.
    """

    def __init__(self, config: TextConfig) -> None:
        # transformers costs seconds to import: paid when a text encoder is built, not by `import rrsis`.
        from transformers import BertConfig, BertModel

        super().__init__()
        if not isinstance(config, TextConfig):
            raise TypeError(f"TextEncoder takes a validated TextConfig, got {type(config).__name__}")
        self.config = BertConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_positions,
            type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps,
            hidden_act="gelu",
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
            pad_token_id=0,
            use_cache=False,  # an encoder keeps no cache; True only draws a warning under checkpointing
        )
        self.bert = BertModel(self.config, add_pooling_layer=False)
        self.hidden_size = config.hidden_size
        self.vocab_size = config.vocab_size
        if config.freeze_embeddings:
            self.bert.embeddings.requires_grad_(False)
        n = max(0, min(config.freeze_last_layers, config.num_layers))
        for layer in self.bert.encoder.layer[config.num_layers - n :]:
            layer.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` ids and 0/1 mask → ``[B, L, D]`` last hidden state."""
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
