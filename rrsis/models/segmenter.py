"""The composition every rrsis model shares: text → language-aware backbone → [neck] → head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._config import ConfigError
from ..backbones.multimodal import MultiModalSwin
from ..fusion.position import check_position
from ..registry import HEADS, NECKS, Registry
from ..text.bert import TextEncoder
from .base import RRSISModel, SegmentationOutput, TextFeatures
from .config import ModelConfig, activation_bytes, is_flat, migrate_flat, resolve

__all__ = ["ReferringSegmenter", "build_segmenter"]


class ReferringSegmenter(RRSISModel):
    """Referring segmentation model composed of built parts: text encoder → language-aware
    backbone → [neck] → head.

    It wires parts; it does not build their insides (:meth:`from_config` does, from a
    :class:`~rrsis.models.config.ModelConfig`).

    Args:
        text_encoder: ``(input_ids, attention_mask) → words [B, L, D]``.
        backbone: ``(pixels, words, mask) → stage features`` with ``dims`` and ``reduction``.
        head: ``stage features → (logits, aux_logits)``.
        neck: applied to the stage features before the head (RMSIN's CIM), or ``None``.
        arch: registry name recorded in ``config.json``.
        config: the validated tree the parts were built from; ``model.config`` is its JSON-able
            form (a plain nested dict: ``model.config["head"]["refine_steps"]``).
    """

    def __init__(
        self,
        *,
        text_encoder: nn.Module,
        backbone: nn.Module,
        head: nn.Module,
        neck: nn.Module | None = None,
        arch: str = "custom",
        config: ModelConfig | None = None,
    ) -> None:
        super().__init__()
        self.arch = arch
        self._config = config.to_dict() if config is not None else {}
        self.text_encoder = text_encoder
        self.backbone = backbone
        self.size_divisor = max(32, backbone.reduction)
        self.feature_stride = backbone.reduction  # the last stage's
        self.neck = neck
        self.classifier = head

    @classmethod
    def from_config(cls, cfg: ModelConfig, arch: str = "custom") -> ReferringSegmenter:
        """Build every part a validated config tree names and compose them."""
        text = TextEncoder(cfg.text)
        backbone = MultiModalSwin(cfg.backbone, cfg.fusion, text_dim=cfg.text.hidden_size,
                                  in_chans=cfg.backbone.in_chans)
        dims = backbone.dims
        neck = None
        if cfg.neck is not None:
            neck = _build_node(NECKS, "neck", cfg.neck, dims)
        head = _build_node(HEADS, "head", cfg.head, dims)
        return cls(text_encoder=text, backbone=backbone, head=head, neck=neck, arch=arch, config=cfg)

    def estimate_activation_bytes(self, batch_size: int = 1) -> int:
        """Estimated training activation memory (:func:`rrsis.models.config.activation_bytes`)."""
        return activation_bytes(self.config, batch_size)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        """Encode expressions once: ``input_ids``/``attention_mask [B, L]`` → :class:`TextFeatures`.

        The result can be reused for many images (e.g. every tile of one scene) through
        :meth:`forward_with_text`, so BERT runs once per expression, not once per image.
        """
        return TextFeatures(
            words=self.text_encoder(input_ids, attention_mask), mask=attention_mask.float()
        )

    @property
    def uses_position(self) -> bool:
        """Whether the model reads each image's box in its scene (``fusion.position``)."""
        return bool(getattr(self.backbone, "uses_position", False))

    def forward_with_text(self, pixel_values: torch.Tensor, text: TextFeatures,
                          position: torch.Tensor | None = None) -> SegmentationOutput:
        """``pixel_values [B, 3, H, W]`` with already encoded text (batch 1 broadcasts to B);
        ``position [B, 4]``: each image's box ``(left, top, right, bottom)`` in its scene, in
        scene fractions (``None``: every image is its own scene), read by a model with a
        scene-position encoding and refused by one without."""
        words, mask = text.words, text.mask.to(pixel_values.dtype)
        b = pixel_values.shape[0]
        if words.shape[0] == 1 and b > 1:
            words, mask = words.expand(b, -1, -1), mask.expand(b, -1)
        if position is not None:
            if not self.uses_position:
                raise ValueError("position given, but this model has no scene-position encoding "
                                 "(fusion.position is None): it cannot use tile boxes")
            if not torch.compiler.is_compiling():
                check_position(position, b)
        feats: list[torch.Tensor] = self.backbone(pixel_values, words, mask, position)
        if self.neck is not None:
            feats = self.neck(feats)
        logits, aux = self.classifier(feats)
        size = pixel_values.shape[-2:]

        def up(t: torch.Tensor) -> torch.Tensor:
            if t.shape[-2:] == size:  # a head predicting at full size (align_corners=True: identity)
                return t
            return F.interpolate(t, size=size, mode="bilinear", align_corners=True)

        return SegmentationOutput(logits=up(logits), aux_logits=[up(a) for a in aux])

    def _forward(self, pixel_values, input_ids, attention_mask, position=None) -> SegmentationOutput:
        return self.forward_with_text(pixel_values, self.encode_text(input_ids, attention_mask), position)


def _args(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != "name"}


def _build_node(registry: Registry, where: str, node: dict[str, Any], dims: list[int]) -> nn.Module:
    """Build a head or neck; a value its builder refuses is reported with the node's path."""
    try:
        return registry.build(node["name"], in_channels=dims, **_args(node))
    except ConfigError as exc:
        raise ConfigError(f"model config.{where} ({registry.kind} {node['name']!r}): {exc}") from None


def build_segmenter(
    arch: str,
    defaults: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    fixed: Mapping[str, Any] | None = None,
    flat_defaults: Mapping[str, Any] | None = None,
) -> ReferringSegmenter:
    """What every registered segmenter's entrypoint does: the saved ``config`` (a tree, or the
    flat ``model_args`` of rrsis 0.1) or the architecture's ``defaults``, with ``overrides``.

    ``flat_defaults``: the architecture's defaults as rrsis 0.1 had them, when they changed
    since (a flat config names only what differed from those)."""
    base: Mapping[str, Any] = defaults
    if config is not None:
        if not isinstance(config, Mapping):
            raise ConfigError(f"a model config must be a mapping, got {type(config).__name__}")
        if is_flat(config):
            base = flat_defaults or defaults
            overrides = {**migrate_flat(config), **overrides}
        else:
            base = config
    cfg = resolve(base, overrides, fixed=fixed, arch=arch)
    return ReferringSegmenter.from_config(cfg, arch=arch)
