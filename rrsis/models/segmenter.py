"""The composition every rrsis model shares: text → language-aware backbone → [neck] → head."""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .._registry import HEADS, NECKS
from ..backbones.multimodal import MultiModalSwin
from ..text.bert import TextEncoder
from .base import RRSISModel, SegmentationOutput, TextFeatures

__all__ = ["ReferringSegmenter"]


class ReferringSegmenter(RRSISModel):
    """Referring segmentation model assembled from registered parts by name.

    Every argument is JSON-able, so ``config.json`` round-trips and an ablation is a
    keyword (``local_attn="swin"``, ``use_gem=False``, ``head="simple"``, ``refine_steps=1``).

    Args:
        arch: registry name recorded in the config.
        image_size: default square input side used by ``predict``.
        embed_dim, depths, num_heads, window_size, patch_size, mlp_ratio, qkv_bias,
        drop_path_rate, local_attn, fusion, fusion_heads, fusion_drop, use_gem, gem, gem_pool,
        gem_heads, gate_act, keep_final_gate, visual_branch, elsa_*: backbone knobs
            (:class:`~rrsis.backbones.multimodal.MultiModalSwin`).
        text_*: BERT knobs (:class:`~rrsis.text.bert.TextEncoder`); ``max_tokens`` is the
            tokenizer length.
        neck: registered neck applied to the stage features (RMSIN ``"cim"``) or ``None``;
            ``neck_args`` extra keyword arguments for it.
        head: registered head (``"simple"`` LAVT, ``"arc"`` RMSIN, ``"refine"`` GL-MSIN);
            ``head_hidden`` its width (``None``: the head's default), ``refine_steps`` the
            refinement iterations of ``"refine"``; ``head_args`` extra keyword arguments.
    """

    def __init__(
        self,
        *,
        arch: str = "custom",
        image_size: int = 480,
        # backbone
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 12,
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.3,
        local_attn: Union[str, Sequence[str]] = "swin",
        fusion: str = "pwam",
        fusion_heads: Union[int, Sequence[int]] = 1,
        fusion_drop: float = 0.0,
        use_gem: Union[bool, Sequence[bool]] = False,
        gem: str = "gem",
        gem_pool: int = 8,
        gem_heads: Optional[Union[int, Sequence[int]]] = None,
        gate_act: str = "tanh",
        keep_final_gate: bool = False,
        visual_branch: Optional[str] = None,
        elsa_kernel: int = 7,
        elsa_dilation: int = 1,
        elsa_group_width: int = 8,
        elsa_qk_scale: float = 1.0,
        elsa_lam: float = 0.0,
        elsa_gamma: float = 1.0,
        # text
        text_vocab_size: int = 30522,
        text_hidden_size: int = 768,
        text_layers: int = 12,
        text_heads: int = 12,
        text_intermediate_size: int = 3072,
        text_max_positions: int = 512,
        text_type_vocab_size: int = 2,
        text_layer_norm_eps: float = 1e-12,
        text_dropout: float = 0.1,
        text_freeze_embeddings: bool = True,
        text_freeze_last_layers: int = 2,
        max_tokens: int = 20,
        # neck and head
        neck: Optional[str] = None,
        neck_args: Optional[Dict[str, Any]] = None,
        head: str = "simple",
        head_hidden: Optional[int] = None,
        refine_steps: int = 3,
        head_args: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        frame = inspect.currentframe()
        args, _, _, values = inspect.getargvalues(frame)
        # ``arch`` is kept apart: ``create_model(model.arch, **model.config)`` rebuilds the model.
        self._config = {a: _jsonable(values[a]) for a in args if a not in ("self", "arch")}
        self.arch = arch
        if image_size % 32:
            raise ValueError(f"image_size {image_size} is not a multiple of 32")
        self.text_encoder = TextEncoder(
            vocab_size=text_vocab_size, hidden_size=text_hidden_size, num_layers=text_layers,
            num_heads=text_heads, intermediate_size=text_intermediate_size,
            max_position_embeddings=text_max_positions, type_vocab_size=text_type_vocab_size,
            layer_norm_eps=text_layer_norm_eps, dropout=text_dropout,
            freeze_embeddings=text_freeze_embeddings, freeze_last_layers=text_freeze_last_layers,
        )
        # The backbone's keywords are named alike here; pass them through by name.
        backbone_args = inspect.signature(MultiModalSwin).parameters
        self.backbone = MultiModalSwin(
            text_dim=text_hidden_size, **{k: values[k] for k in backbone_args if k in values}
        )
        self.size_divisor = max(32, self.backbone.reduction)
        dims = self.backbone.dims
        self.neck = NECKS.build(neck, in_channels=dims, **(neck_args or {})) if neck else None
        self.classifier = HEADS.build(
            head, in_channels=dims, hidden=head_hidden, refine_steps=refine_steps, **(head_args or {})
        )

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        """Encode expressions once: ``input_ids``/``attention_mask [B, L]`` → :class:`TextFeatures`.

        The result can be reused for many images (e.g. every tile of one scene) through
        :meth:`forward_with_text`, so BERT runs once per expression, not once per image.
        """
        return TextFeatures(
            words=self.text_encoder(input_ids, attention_mask), mask=attention_mask.float()
        )

    def forward_with_text(self, pixel_values: torch.Tensor, text: TextFeatures) -> SegmentationOutput:
        """``pixel_values [B, 3, H, W]`` with already encoded text (batch 1 broadcasts to B)."""
        words, mask = text.words, text.mask.to(pixel_values.dtype)
        b = pixel_values.shape[0]
        if words.shape[0] == 1 and b > 1:
            words, mask = words.expand(b, -1, -1), mask.expand(b, -1)
        feats: List[torch.Tensor] = self.backbone(pixel_values, words, mask)
        if self.neck is not None:
            feats = self.neck(feats)
        logits, aux = self.classifier(feats)
        size = pixel_values.shape[-2:]

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=True)

        return SegmentationOutput(logits=up(logits), aux_logits=[up(a) for a in aux])

    def _forward(self, pixel_values, input_ids, attention_mask) -> SegmentationOutput:
        return self.forward_with_text(pixel_values, self.encode_text(input_ids, attention_mask))


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ValueError(f"model arguments must be JSON-able; got {type(v).__name__}: {v!r}")
