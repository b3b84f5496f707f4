"""Enhanced local self-attention (ELSA) and its transformer block.

ELSA replaces the dot product of a query with each neighbour key by a Hadamard
product ``q ⊙ k``, from which a small convolutional generator predicts a k×k attention
map per head (softmax over the k² positions); values are then aggregated over the
zero-padded neighbourhood, with per-channel "ghost head" terms that turn the ``G``
head maps into ``C`` distinct filters:

``y[c,p] = Σ_j (ghost_mul[c,j]^λ · A[g(c), j, p] + γ · ghost_add[c,j]) · v[c, p + dil·δ_j]``
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

from .. import kernels
from ..registry import LOCAL_ATTENTION

__all__ = ["ELSAAttention", "ELSABlock", "elsa_swin_checkpoint_filter", "is_elsa_swin_checkpoint"]


class ELSAAttention(nn.Module):
    """Enhanced local self-attention over a ``k×k`` sliding neighbourhood.

    Args:
        dim: channels ``C``; input/output ``[B, H, W, C]``.
        num_heads: heads ``G`` (attention maps generated per head).
        kernel_size: neighbourhood side ``k`` (odd; ELSA default 7).
        dilation: neighbourhood dilation.
        group_width: channels per group of the grouped k×k generator convolution; the
            q/k width ``⌊C/3⌋·2`` is rounded up to a multiple of it.
        qkv_bias: bias of the q/k/v projection.
        qk_scale: multiplier of ``q ⊙ k`` (ELSA-Swin uses 1 in its ELSA stages).
        lam: exponent λ of the multiplicative ghost term (0 disables it: ``≡ 1``).
        gamma: scale γ of the additive ghost term (0 disables it).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int = 7,
        dilation: int = 1,
        group_width: int = 8,
        qkv_bias: bool = True,
        qk_scale: float = 1.0,
        lam: float = 0.0,
        gamma: float = 1.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ELSA kernel_size must be odd, got {kernel_size}")
        if dim % num_heads:
            raise ValueError(f"ELSA: {dim} channels are not divisible into {num_heads} heads")
        self.dim, self.num_heads = dim, num_heads
        self.kernel_size, self.dilation = kernel_size, dilation
        self.qk_scale, self.lam, self.gamma = qk_scale, lam, gamma
        group_width = min(group_width, dim)
        self.qk_dim = int(math.ceil((dim // 3 * 2) / group_width) * group_width)
        k2 = kernel_size * kernel_size
        self.pre_proj = nn.Conv2d(dim, 2 * self.qk_dim + dim, 1, bias=qkv_bias)
        self.attn_gen = nn.Sequential(
            nn.Conv2d(
                self.qk_dim, self.qk_dim, kernel_size, padding=(kernel_size // 2) * dilation,
                dilation=dilation, groups=self.qk_dim // group_width,
            ),
            nn.GELU(),
            nn.Conv2d(self.qk_dim, k2 * num_heads, 1),
        )
        self.ghost_mul = nn.Parameter(torch.randn(dim, kernel_size, kernel_size)) if lam != 0 else None
        if gamma != 0:
            self.ghost_add = nn.Parameter(torch.zeros(dim, kernel_size, kernel_size))
            trunc_normal_(self.ghost_add, std=0.02)
        else:
            self.ghost_add = None
        self.proj = nn.Linear(dim, dim)

    # A/B switch measured by benchmarks/gpu_check.py: cast the ghost parameters to the autocast
    # dtype before the aggregation (off until it measures faster).
    ghost_in_autocast_dtype = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, hh, ww, c = x.shape
        k2 = self.kernel_size**2
        q, k, v = self.pre_proj(x.permute(0, 3, 1, 2)).split([self.qk_dim, self.qk_dim, c], dim=1)
        logits = self.attn_gen(q * k * self.qk_scale).view(b, self.num_heads, k2, hh, ww)
        mul = self.ghost_mul.reshape(c, k2).pow(self.lam) if self.ghost_mul is not None else None
        add = self.ghost_add.reshape(c, k2) * self.gamma if self.ghost_add is not None else None
        if self.ghost_in_autocast_dtype and torch.is_autocast_enabled(x.device.type):
            dt = torch.get_autocast_dtype(x.device.type)
            mul, add = (t.to(dt) if t is not None else None for t in (mul, add))
        # softmax over the k² taps + aggregation, [B, H, W, C] out (fused on the GPU)
        y = kernels.elsa_attention(v, logits, mul, add, self.kernel_size, self.dilation)
        return self.proj(y)


class ELSABlock(nn.Module):
    """``x + DropPath(ELSA(LN(x)))`` then ``x + DropPath(MLP(LN(x)))`` on ``[B, H, W, C]``.

    Names (``norm1``, ``attn``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) match a Swin block's,
    so the norms and MLP of an ImageNet Swin checkpoint load into an ELSA stage; only the
    ELSA-specific parameters start random. No shifted windows and no mask: the
    neighbourhood slides over the whole map.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0, **elsa_kwargs
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ELSAAttention(dim, num_heads, **elsa_kwargs)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


@LOCAL_ATTENTION.register("elsa")
def _build_elsa_block(
    *, dim: int, num_heads: int, window_size: int, index: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
    drop_path: float = 0.0, kernel: int = 7, dilation: int = 1, group_width: int = 8, qk_scale: float = 1.0,
    lam: float = 0.0, gamma: float = 1.0,
) -> ELSABlock:
    # window_size and index are the common block arguments; ELSA slides, it has no windows.
    return ELSABlock(
        dim, num_heads, mlp_ratio, drop_path, kernel_size=kernel, dilation=dilation,
        group_width=group_width, qkv_bias=qkv_bias, qk_scale=qk_scale, lam=lam, gamma=gamma,
    )


# ---------------------------------------------------------------------------- official ELSA-Swin weights

_BLOCK_ATTN = re.compile(r"^(layers\.\d+\.blocks\.\d+\.attn)\.(.+)$")


def is_elsa_swin_checkpoint(state: Mapping[str, torch.Tensor]) -> bool:
    """True for the official ELSA-Swin ImageNet checkpoints' layout (damo-cv/ELSA)."""
    return any(k.endswith((".attn.ghost_head", ".attn.rb")) for k in state)


def elsa_swin_checkpoint_filter(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ELSA-Swin keys → rrsis block names, still in Microsoft's stage layout (pass the
    result through :func:`~rrsis.backbones.swin.swin_checkpoint_filter`).

    ELSA blocks: ``attn.attn.{0,2}`` (the attention generator) → ``attn.attn_gen.{0,2}``,
    ``attn.post_proj`` → ``attn.proj``, ``attn.ghost_head`` → ``attn.ghost_add`` (shape
    ``[1, C, k, k]``: the released weights use λ = 0, γ = 1) or, stacked ``[2, 1, C, k, k]``,
    ``attn.ghost_mul`` and ``attn.ghost_add``. Swin blocks of the last stage: the fused
    projection is ordered (v, q, k) there and (q, k, v) in timm's ``attn.qkv``; the bias table
    ``attn.rb`` is ``[heads, (2w-1)²]``, transposed in timm's ``relative_position_bias_table``;
    ``attn.relative_id`` is rebuilt.
    """
    swin_blocks = {k[: -len(".rb")] for k in state if k.endswith(".attn.rb")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _BLOCK_ATTN.match(key)
        if m is None:
            out[key] = value
            continue
        attn, name = m.groups()
        if attn in swin_blocks:
            if name == "relative_id":
                continue
            if name == "rb":
                out[f"{attn}.relative_position_bias_table"] = value.t().contiguous()
            elif name.startswith("pre_proj."):
                v, q, k = value.chunk(3, dim=0)
                out[f"{attn}.qkv.{name.split('.', 1)[1]}"] = torch.cat([q, k, v], dim=0)
            elif name.startswith("post_proj."):
                out[f"{attn}.proj.{name.split('.', 1)[1]}"] = value
            else:
                out[key] = value
        elif name.startswith("attn."):
            out[f"{attn}.attn_gen.{name[len('attn.'):]}"] = value
        elif name.startswith("post_proj."):
            out[f"{attn}.proj.{name.split('.', 1)[1]}"] = value
        elif name == "ghost_head":
            if value.dim() == 5:
                out[f"{attn}.ghost_mul"], out[f"{attn}.ghost_add"] = value[0, 0], value[1, 0]
            else:
                out[f"{attn}.ghost_add"] = value[0]
        else:
            out[key] = value
    return out
