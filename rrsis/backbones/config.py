"""Config nodes of the visual backbone: ``backbone`` and its ``backbone.elsa`` sub-node."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._config import (
    SIZE_LIMITS,
    ConfigError,
    check_bool,
    check_float,
    check_list,
    check_size,
    check_str,
    per_stage,
)
from ..data.band_names import check_names
from ..registry import LOCAL_ATTENTION

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "STEMS", "BackboneConfig", "ElsaConfig", "band_statistics"]

STEMS = ("patch", "conv")
# The statistics ImageNet-pretrained RGB weights expect (timm's IMAGENET_DEFAULT_MEAN/STD).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
        in_chans: input bands (timm's name; flat alias ``in_chans``): 3 for RGB, 4 for RGB +
            near-infrared, any number for multispectral rasters.
        mean, std: per-band normalisation, ``(pixels - mean) / std`` on pixels scaled to
            [0, 1], one value per input band, in band order (flat aliases ``mean``, ``std``).
            Left out (``None``) with ``in_chans=3``: ImageNet's, which pretrained RGB weights
            expect. With any other band count they must be given: rrsis does not guess what a
            band means (see :func:`band_statistics` for one way to state them). The config
            always stores the resolved values, so a saved model carries its own statistics.
        scale: the value scaling its training data was read with before ``mean``/``std``
            (``"dtype"``, ``"max"``, ``"minmax"`` or a divisor; flat alias ``scale``), which
            ``predict``, ``segment_scene``, the app and ``rrsis evaluate`` use when given none;
            ``rrsis train`` records ``data.options.scale`` here. ``None``: not recorded (8-bit
            data is divided by 255, other types need ``scale=`` at inference).
        rgb: which input bands (counted from 0, in the order the model reads them) its training
            images declared red, green and blue (flat alias ``rgb``); ``rrsis train`` records it
            when every image declares them alike (:func:`~rrsis.data.headers.declared_channels`).
            The whole-scene object mode reads colour words on those bands of a raster that
            declares none. ``None``: not recorded (three bands are then read as R, G, B, and a
            model of another band count has no colour for an undeclared raster).
        band_names: the description each input band had in its training images, in the order the
            model reads them (flat alias ``band_names``; ``["B04", "B03", "B02", "B08"]``); ``rrsis
            train`` records it when every image describes its bands alike
            (:func:`~rrsis.data.band_names.declared_names`). A raster describing bands so, among
            any others, is read with those bands in that order when no ``bands=`` is given
            (:mod:`rrsis.data.band_names`). ``None``: not recorded.
        image_ratio: image pixels per model pixel of its training images (their side over
            ``data.image_size``, the median; flat alias ``image_ratio``); ``rrsis train`` records
            it when every image agrees within 10 % (:mod:`rrsis.data.training_scale`). ``None``:
            not recorded.
        gsd: ground sampling distance per model pixel of its training images, in metres (pixel
            size × ``image_ratio``, the median; flat alias ``gsd``); ``rrsis train`` records it
            when every image is georeferenced in a projected CRS in metres and all agree within
            10 %. Whole-scene inference reads a metric scene at this resolution by default
            (``SceneOptions.pixel_ratio="auto"``). ``None``: not recorded.
    """

    embed_dim: int = 128
    depths: list[int] = field(default_factory=lambda: [2, 2, 18, 2])
    num_heads: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    window_size: int = 12
    patch_size: int = 4
    stem: str = "patch"
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.3
    local_attn: str | list[str] = "swin"
    elsa: ElsaConfig | None = field(default=None, metadata={"node": ElsaConfig})
    in_chans: int = 3
    mean: list[float] | None = None
    std: list[float] | None = None
    scale: str | float | None = None
    rgb: list[int] | None = None
    band_names: list[str] | None = None
    image_ratio: float | None = None
    gsd: float | None = None

    def __post_init__(self) -> None:
        for name in ("image_ratio", "gsd"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf):
                raise ConfigError(f"{name} must be a positive number or null, got {v!r}")
        if self.band_names is not None:
            try:
                self.band_names = check_names(self.band_names, self.in_chans)
            except ValueError as exc:
                raise ConfigError(f"{exc} (in_chans {self.in_chans})") from None
        if self.rgb is not None:
            if (not isinstance(self.rgb, (list, tuple)) or len(self.rgb) != 3 or len(set(self.rgb)) != 3
                    or any(isinstance(b, bool) or not isinstance(b, int) for b in self.rgb)):
                raise ConfigError(f"rgb must be three different band positions (counted from 0), got {self.rgb!r}")
            if not all(0 <= b < self.in_chans for b in self.rgb):
                raise ConfigError(f"rgb {list(self.rgb)} names a band outside the model's {self.in_chans} "
                                  "(in_chans; positions count from 0)")
            self.rgb = list(self.rgb)
        if not (self.scale is None or self.scale in ("dtype", "max", "minmax") or (
                isinstance(self.scale, (int, float)) and not isinstance(self.scale, bool) and self.scale > 0)):
            raise ConfigError(f"scale must be 'dtype', 'max', 'minmax', a positive divisor or null, got {self.scale!r}")
        check_size("embed_dim", self.embed_dim)
        check_size("in_chans", self.in_chans)
        self.mean, self.std = _statistics(self.in_chans, self.mean, self.std)
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
    def stage_attn(self) -> list[str]:
        return list(self.local_attn) if isinstance(self.local_attn, list) else [self.local_attn] * len(self.depths)

    @property
    def uses_elsa(self) -> bool:
        return "elsa" in self.stage_attn


def band_statistics(in_chans: int, extra_mean: float = 0.5, extra_std: float = 0.25) -> tuple[list, list]:
    """``(mean, std)`` for ``in_chans`` bands whose first three are R, G, B (NAIP's RGBN, an
    RGB + NIR synthetic scene): ImageNet's three, then ``extra_mean`` / ``extra_std`` for each
    further band (0.5 / 0.25 put a band spread over [0, 1] at about zero mean, unit spread).

    A helper to *state* the statistics, never applied behind the user's back: a config with
    ``in_chans != 3`` names its ``mean`` and ``std`` (measured on the training set where
    possible).

    Args:
        in_chans: band count, at least 3.
        extra_mean, extra_std: statistics of each band after the third.
    """
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 3:
        raise ValueError(f"band_statistics needs in_chans >= 3 (R, G, B first), got {in_chans!r}")
    n = in_chans - 3
    return list(IMAGENET_MEAN) + [float(extra_mean)] * n, list(IMAGENET_STD) + [float(extra_std)] * n


def _statistics(in_chans: int, mean: Sequence[float] | None, std: Sequence[float] | None):
    if mean is None and std is None and in_chans == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    for name, vals in (("mean", mean), ("std", std)):
        if isinstance(vals, (list, tuple)) and len(vals) != in_chans:
            raise ConfigError(f"{name} has {len(vals)} values but in_chans={in_chans}: give one per input band")
    if mean is None or std is None:
        missing = " and ".join(k for k, v in (("mean", mean), ("std", std)) if v is None)
        hint = (f"rrsis.backbones.band_statistics({in_chans}) gives ImageNet's for bands 1-3 and 0.5/0.25 "
                "for the others" if in_chans > 3 else "one value per band")
        raise ConfigError(
            f"in_chans={in_chans} needs per-band normalisation statistics: give {missing} "
            f"({in_chans} values each, for pixels scaled to [0, 1]); ImageNet's are for RGB only ({hint})")
    out = [check_list("mean", mean, check_float),
           check_list("std", std, lambda k, v: check_float(k, v, low=0.0, low_open=True))]
    for name, vals in zip(("mean", "std"), out):
        if len(vals) != in_chans:
            raise ConfigError(f"{name} has {len(vals)} values but in_chans={in_chans}: give one per input band")
    return out[0], out[1]


def _check_attn(key: str, value: object) -> str:
    check_str(key, value)
    LOCAL_ATTENTION.get(value)  # unknown name: names the kind and the closest one
    return value
