"""Config nodes of the visual backbone: ``backbone`` and its ``backbone.elsa`` sub-node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Union

from .._config import SIZE_LIMITS, ConfigError, check_bool, check_float, check_size, check_str, per_stage
from ..registry import LOCAL_ATTENTION

__all__ = ["STEMS", "BackboneConfig", "ElsaConfig"]

STEMS = ("patch", "conv")


@dataclass
class ElsaConfig:
    """Knobs of ELSA attention (:class:`~rrsis.backbones.elsa.ELSAAttention`); present only
    when some stage uses ``local_attn="elsa"``.

    Attributes:
        kernel: neighbourhood side ``k`` (odd). dilation: neighbourhood dilation.
        group_width: channels per group of the k×k generator convolution.
        qk_scale: multiplier of ``q ⊙ k``. lam: exponent of the multiplicative ghost term
        (0 disables it). gamma: scale of the additive ghost term (0 disables it).
    """

    kernel: int = 7
    dilation: int = 1
    group_width: int = 8
    qk_scale: float = 1.0
    lam: float = 0.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        check_size("kernel", self.kernel, "elsa.kernel")
        if self.kernel % 2 == 0:
            raise ConfigError(f"kernel must be odd (a centred neighbourhood), got {self.kernel}")
        check_size("dilation", self.dilation, "elsa.dilation")
        check_size("group_width", self.group_width, "elsa.group_width")
        self.qk_scale = check_float("qk_scale", self.qk_scale)
        self.lam = check_float("lam", self.lam)
        self.gamma = check_float("gamma", self.gamma)


@dataclass
class BackboneConfig:
    """The hierarchical Swin/ELSA backbone (:class:`~rrsis.backbones.multimodal.MultiModalSwin`).

    Attributes:
        embed_dim: stage-1 channels (stage ``i`` has ``embed_dim·2^i``).
        depths, num_heads: blocks and attention heads per stage.
        window_size: Swin window side. patch_size: patch-embedding stride (a power of two, so
            that inputs whose sides are multiples of 32 tile exactly).
        stem: ``"patch"`` (Swin's linear patch embedding; what pretrained weights load into) or
            ``"conv"`` (a stack of 3×3 stride-2 conv-BN-ReLU layers, then a 1×1 projection:
            the "early convolutions" stem, which trains faster and more stably from scratch).
        mlp_ratio, qkv_bias, drop_path_rate: as in Swin.
        local_attn: registered local-attention block per stage, or one for all.
        elsa: ELSA knobs (``None`` when no stage uses ELSA).
    """

    embed_dim: int = 128
    depths: List[int] = field(default_factory=lambda: [2, 2, 18, 2])
    num_heads: List[int] = field(default_factory=lambda: [4, 8, 16, 32])
    window_size: int = 12
    patch_size: int = 4
    stem: str = "patch"
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.3
    local_attn: Union[str, List[str]] = "swin"
    elsa: Optional[ElsaConfig] = field(default=None, metadata={"node": ElsaConfig})

    def __post_init__(self) -> None:
        check_size("embed_dim", self.embed_dim)
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not value:
                raise ConfigError(f"{name} must be a non-empty list (one entry per stage), got {value!r}")
            if len(value) > SIZE_LIMITS["stages"]:
                raise ConfigError(f"{name} has {len(value)} stages; rrsis's upper bound is {SIZE_LIMITS['stages']}")
            setattr(self, name, [check_size(f"{name}[{i}]", v, name) for i, v in enumerate(value)])
        n = len(self.depths)
        if len(self.num_heads) != n:
            raise ConfigError(f"depths has {n} stages but num_heads has {len(self.num_heads)}")
        for i, h in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % h:
                raise ConfigError(f"num_heads[{i}]={h} does not divide stage {i}'s {self.embed_dim * 2**i} channels")
        check_size("window_size", self.window_size)
        check_size("patch_size", self.patch_size)
        if self.patch_size & (self.patch_size - 1):
            raise ConfigError(f"patch_size must be a power of two (1, 2, 4, 8...), got {self.patch_size}")
        check_str("stem", self.stem, STEMS)
        self.mlp_ratio = check_float("mlp_ratio", self.mlp_ratio, low=0.0, high=SIZE_LIMITS["mlp_ratio"])
        if self.mlp_ratio <= 0:
            raise ConfigError(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        check_bool("qkv_bias", self.qkv_bias)
        self.drop_path_rate = check_float("drop_path_rate", self.drop_path_rate, low=0.0, high=1.0, high_open=True)
        self.local_attn = per_stage("local_attn", self.local_attn, n, _check_attn)
        if self.uses_elsa and self.elsa is None:
            self.elsa = ElsaConfig()
        elif not self.uses_elsa and self.elsa is not None:
            raise ConfigError(f"elsa is set but no stage uses ELSA (local_attn={self.local_attn!r})")

    @property
    def stage_attn(self) -> List[str]:
        return list(self.local_attn) if isinstance(self.local_attn, list) else [self.local_attn] * len(self.depths)

    @property
    def uses_elsa(self) -> bool:
        return "elsa" in self.stage_attn


def _check_attn(key: str, value: object) -> str:
    check_str(key, value)
    LOCAL_ATTENTION.get(value)  # unknown name: names the kind and the closest one
    return value
