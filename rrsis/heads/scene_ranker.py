"""The scene ranker: scores a scene's components against an expression (a set transformer).

The second stage of the *ranked* whole-scene mode (:mod:`rrsis.scene.rank`): the tiled pass
proposes components, this part decides which of them the expression names. Components attend
to one another (so sizes and places can be compared: "the largest", "the northernmost") and to
the expression's word features from the model's own text encoder (cross-attention). It reads
plain tensors; what a component's features are is :mod:`rrsis.scene.components`'s business.
"""

from __future__ import annotations

import torch
from torch import nn

from .._config import ConfigError
from ..registry import SCENE_RANKER

__all__ = ["SceneRanker"]


class SceneRanker(nn.Module):
    """Score every component of a scene.

    Args:
        features: features per component.
        text_dim: width of the model's word features.
        bands: band count of the scenes it was trained on (recorded; the features hold a mean
            and a spread per band).
        tile: the model's training side in scene pixels (sizes are read at that scale).
        candidate_threshold: the tiled pass's probability above which a pixel is a candidate's.
        dim: width of the ranker.
        heads: attention heads.
        layers: decoder layers (self-attention over components, cross-attention to words).
        dropout: dropout in the decoder layers while training.
    """

    def __init__(self, *, features: int, text_dim: int, bands: int = 3, tile: int, candidate_threshold: float = 0.5,
                 dim: int = 64, heads: int = 4, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        for name, v in (("features", features), ("text_dim", text_dim), ("bands", bands), ("tile", tile),
                        ("dim", dim), ("heads", heads), ("layers", layers)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"scene ranker {name} must be a positive integer, got {v!r}")
        if not 0.0 < candidate_threshold < 1.0:
            raise ConfigError(f"candidate_threshold must be in (0, 1), got {candidate_threshold!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"scene ranker dropout must be in [0, 1), got {dropout!r}")
        if dim % heads:
            raise ConfigError(f"scene ranker dim {dim} must be a multiple of heads {heads}")
        self.config = {"name": "set-transformer", "features": features, "text_dim": text_dim, "bands": bands,
                       "tile": tile, "candidate_threshold": candidate_threshold, "dim": dim, "heads": heads,
                       "layers": layers, "dropout": dropout}
        self.bands, self.tile, self.candidate_threshold = bands, tile, float(candidate_threshold)
        # Feature standardisation, fitted on the training components.
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.embed = nn.Sequential(nn.Linear(features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.words = nn.Linear(text_dim, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, 2 * dim, dropout=dropout, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1)

    def forward(self, features: torch.Tensor, present: torch.Tensor, words: torch.Tensor,
                word_mask: torch.Tensor) -> torch.Tensor:
        """``features [B, N, F]``, ``present [B, N]`` bool (False: padding), ``words [B, L, D]``,
        ``word_mask [B, L]`` (1: a real token) → logits ``[B, N]``."""
        x = self.embed((features - self.feature_mean) / self.feature_std)
        mem = self.words(words)
        x = self.decoder(x, mem, tgt_key_padding_mask=~present, memory_key_padding_mask=word_mask <= 0)
        return self.score(self.norm(x)).squeeze(-1)


@SCENE_RANKER.register("set-transformer")
def build_set_transformer(*, features: int, text_dim: int, bands: int = 3, tile: int,
                          candidate_threshold: float = 0.5, dim: int = 64, heads: int = 4,
                          layers: int = 2, dropout: float = 0.1) -> SceneRanker:
    return SceneRanker(features=features, text_dim=text_dim, bands=bands, tile=tile,
                       candidate_threshold=candidate_threshold, dim=dim, heads=heads, layers=layers,
                       dropout=dropout)
