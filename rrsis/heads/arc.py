"""RMSIN's decoder with adaptive rotated convolutions (ARC).

An :class:`AdaptiveRotatedConv2d` predicts, per sample, a gain ``α`` and an angle ``θ``
from its input (the routing function), rotates its 3×3 kernel(s) by ``θ`` with a fixed
closed-form interpolation of the 8 border taps, scales by ``α`` and convolves each sample
with its own kernel (one grouped convolution over the batch).
:class:`AdaptiveRotatedDecoder` is LAVT's top-down decoder with the second 3×3 conv of each
fusion step replaced by an ARC. Attribute names follow the official checkpoints
(including the misspelled ``rounting_func``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_float, check_size
from ..registry import HEADS
from .simple import SimpleDecoder, _check_width

__all__ = [
    "AdaptiveRotatedConv2d",
    "AdaptiveRotatedDecoder",
    "RoutingFunction",
    "rotate_kernels",
    "rotation_matrices",
]

# The 9×9 matrix R(θ) maps a flattened 3×3 kernel (row-major taps 0..8) to its rotated
# version, out[i] = Σ_j R[i, j] · w[j]. Every entry is affine in (1, cos θ, sin θ,
# cos θ·sin θ); the tables below hold those four coefficients per (i, j). Edge taps
# (1, 3, 5, 7) are bilinear mixes of their 2×2 cell; corner taps move linearly along the
# kernel border; the centre stays. θ ≥ 0 and θ < 0 use different cells (RMSIN's ARC).
_POS = {  # θ ≥ 0
    0: {0: (0, 1, -1, 0), 1: (1, -1, 1, 0)},
    1: {1: (0, 1, 0, -1), 2: (0, 0, 0, 1), 4: (1, -1, -1, 1), 5: (0, 0, 1, -1)},
    2: {2: (0, 1, -1, 0), 5: (1, -1, 1, 0)},
    3: {0: (0, 0, 0, 1), 1: (0, 0, 1, -1), 3: (0, 1, 0, -1), 4: (1, -1, -1, 1)},
    4: {4: (1, 0, 0, 0)},
    5: {4: (1, -1, -1, 1), 5: (0, 1, 0, -1), 7: (0, 0, 1, -1), 8: (0, 0, 0, 1)},
    6: {3: (1, -1, 1, 0), 6: (0, 1, -1, 0)},
    7: {3: (0, 0, 1, -1), 4: (1, -1, -1, 1), 6: (0, 0, 0, 1), 7: (0, 1, 0, -1)},
    8: {7: (1, -1, 1, 0), 8: (0, 1, -1, 0)},
}
_NEG = {  # θ < 0
    0: {0: (0, 1, 1, 0), 3: (1, -1, -1, 0)},
    1: {0: (0, 0, 0, -1), 1: (0, 1, 0, 1), 3: (0, 0, -1, 1), 4: (1, -1, 1, -1)},
    2: {1: (1, -1, -1, 0), 2: (0, 1, 1, 0)},
    3: {3: (0, 1, 0, 1), 4: (1, -1, 1, -1), 6: (0, 0, 0, -1), 7: (0, 0, -1, 1)},
    4: {4: (1, 0, 0, 0)},
    5: {1: (0, 0, -1, 1), 2: (0, 0, 0, -1), 4: (1, -1, 1, -1), 5: (0, 1, 0, 1)},
    6: {6: (0, 1, 1, 0), 7: (1, -1, -1, 0)},
    7: {4: (1, -1, 1, -1), 5: (0, 0, -1, 1), 7: (0, 1, 0, 1), 8: (0, 0, 0, -1)},
    8: {5: (1, -1, -1, 0), 8: (0, 1, 1, 0)},
}


def _coefficient_table(rows: dict) -> torch.Tensor:
    # An explicit device: a first import inside `with torch.device("meta")` must not make the
    # module-level tables meta tensors.
    table = torch.zeros(9, 9, 4, device="cpu")
    for i, cols in rows.items():
        for j, coef in cols.items():
            table[i, j] = torch.tensor(coef, dtype=table.dtype, device="cpu")
    return table


_POS_TABLE = _coefficient_table(_POS)
_NEG_TABLE = _coefficient_table(_NEG)


def rotation_matrices(thetas: torch.Tensor) -> torch.Tensor:
    """Per-angle 3×3-kernel rotation matrices.

    Args:
        thetas: angles in radians (|θ| ≤ π/4 keeps the interpolation in-cell), any shape ``S``.

    Returns:
        ``[*S, 9, 9]`` matrices ``R`` with ``rotated = R @ kernel.flatten()``.
    """
    cos, sin = torch.cos(thetas), torch.sin(thetas)
    basis = torch.stack([torch.ones_like(cos), cos, sin, cos * sin], dim=-1)  # [*S, 4]
    pos = _POS_TABLE.to(device=thetas.device, dtype=thetas.dtype)
    neg = _NEG_TABLE.to(device=thetas.device, dtype=thetas.dtype)
    r_pos = torch.einsum("ijk,...k->...ij", pos, basis)
    r_neg = torch.einsum("ijk,...k->...ij", neg, basis)
    return torch.where((thetas >= 0)[..., None, None], r_pos, r_neg)


def rotate_kernels(
    weight: torch.Tensor, alphas: torch.Tensor, thetas: torch.Tensor
) -> torch.Tensor:
    """Rotate, gate and sum ``n`` 3×3 kernel banks per sample.

    Args:
        weight: ``[n, C_out, C_in, 3, 3]`` kernel banks.
        alphas: ``[B, n]`` gains.
        thetas: ``[B, n]`` angles in radians.

    Returns:
        ``[B * C_out, C_in, 3, 3]``: sample ``b``'s kernel is ``Σ_n α_bn · rot(θ_bn, W_n)``.
    """
    n, c_out, c_in, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"adaptive rotation is defined for 3×3 kernels, got {kh}×{kw}")
    if alphas.shape != thetas.shape or alphas.shape[1] != n:
        raise ValueError(
            f"alphas {tuple(alphas.shape)} / thetas {tuple(thetas.shape)} do not match "
            f"{n} kernels"
        )
    b = thetas.shape[0]
    gated = rotation_matrices(thetas) * alphas[..., None, None]  # [B, n, 9, 9]
    # [B, 9, n·9] @ [n·9, C_out·C_in]: one matmul sums the kernel banks.
    gated = gated.permute(0, 2, 1, 3).reshape(b, 9, n * 9)
    taps = weight.permute(0, 3, 4, 1, 2).reshape(n * 9, c_out * c_in)
    rotated = (gated @ taps).view(b, 3, 3, c_out, c_in)
    return rotated.permute(0, 3, 4, 1, 2).reshape(b * c_out, c_in, 3, 3)


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a ``[B, C, H, W]`` map (inner module ``norm``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class RoutingFunction(nn.Module):
    """Predict per-sample kernel gains and rotation angles from a feature map.

    ``dw3×3 → channel LayerNorm → ReLU → global average pool``, then
    ``α = sigmoid(fc_alpha(dropout(·)))`` and ``θ = softsign(fc_theta(dropout(·))) · max_angle``.

    Args:
        in_channels: channels of the input map.
        kernel_number: kernel banks (one α, θ each).
        dropout: dropout before both heads.
        max_angle: largest |θ| in degrees (40 in RMSIN).
    """

    def __init__(
        self,
        in_channels: int,
        kernel_number: int = 1,
        dropout: float = 0.2,
        max_angle: float = 40.0,
    ) -> None:
        super().__init__()
        self.kernel_number = kernel_number
        self.dwc = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.norm = _ChannelLayerNorm(in_channels)
        self.dropout1 = nn.Dropout(dropout)
        self.fc_alpha = nn.Linear(in_channels, kernel_number, bias=True)
        self.dropout2 = nn.Dropout(dropout)
        self.fc_theta = nn.Linear(in_channels, kernel_number, bias=False)
        self.max_angle = max_angle / 180.0 * math.pi
        for w in (self.dwc.weight, self.fc_alpha.weight, self.fc_theta.weight):
            nn.init.trunc_normal_(w, std=0.02)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, C, H, W]`` → ``(alphas [B, n], angles [B, n])``; angles in radians."""
        h = torch.relu(self.norm(self.dwc(x))).mean(dim=(2, 3))
        alphas = torch.sigmoid(self.fc_alpha(self.dropout1(h)))
        angles = F.softsign(self.fc_theta(self.dropout2(h))) * self.max_angle
        return alphas, angles


class AdaptiveRotatedConv2d(nn.Module):
    """3×3 convolution whose kernel is rotated and scaled per sample by a routing function.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: must be 3.
        stride, padding, dilation, groups: as in :class:`torch.nn.Conv2d`.
        kernel_number: kernel banks mixed per sample.
        dropout: routing-function dropout.
        max_angle: routing-function angle range in degrees.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        kernel_number: int = 1,
        dropout: float = 0.2,
        max_angle: float = 40.0,
    ) -> None:
        super().__init__()
        if kernel_size != 3:
            raise ValueError(f"AdaptiveRotatedConv2d supports kernel_size=3 only, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.kernel_number = kernel_number
        # Misspelling kept: official RMSIN checkpoints store ``conv2_*.rounting_func.*``.
        self.rounting_func = RoutingFunction(in_channels, kernel_number, dropout, max_angle)
        self.weight = nn.Parameter(
            torch.empty(kernel_number, out_channels, in_channels // groups, 3, 3)
        )
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` → ``[B, C_out, H', W']``."""
        alphas, angles = self.rounting_func(x)
        weight = rotate_kernels(self.weight, alphas, angles)
        b, c, h, w = x.shape
        # Fold the batch into channels so each sample meets its own kernel.
        out = F.conv2d(
            x.reshape(1, b * c, h, w), weight, None, self.stride, self.padding, self.dilation,
            self.groups * b,
        )
        return out.view(b, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size=3, "
            f"kernel_number={self.kernel_number}, stride={self.stride}, padding={self.padding}"
        )


class AdaptiveRotatedDecoder(SimpleDecoder):
    """RMSIN's top-down decoder: LAVT's decoder with ARC as each step's second conv.

    Each step upsamples the running map ×2 (bilinear, align_corners=True), concatenates
    the skip map, and applies ``conv3×3-BN-ReLU`` then ``ARC3×3-BN-ReLU``; a final 1×1 conv
    gives class logits at the stage-1 resolution. Keys match RMSIN's ``classifier.*``.

    Args:
        in_channels: stage channels ``(C1, C2, C3, C4)``; Swin-B 128/256/512/1024.
        hidden: decoder width (``None``: RMSIN's ``C4 // 2``).
        num_classes: output channels (2 in RMSIN).
        kernel_number: ARC kernel banks.
        dropout: ARC routing dropout.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (128, 256, 512, 1024),
        hidden: int | None = None,
        num_classes: int = 2,
        kernel_number: int = 1,
        dropout: float = 0.2,
    ) -> None:
        super().__init__(in_channels, hidden, num_classes, upsample="scale")
        width = self.conv1_1.in_channels
        for tag in ("4", "3", "2"):
            # Re-assigning keeps each conv2_* at its place in the state-dict order.
            setattr(
                self,
                f"conv2_{tag}",
                AdaptiveRotatedConv2d(
                    width, width, 3, padding=1, kernel_number=kernel_number, dropout=dropout
                ),
            )


@HEADS.register("arc")
def _build_arc(
    *,
    in_channels: Sequence[int],
    hidden: int | None = None,
    num_classes: int = 2,
    kernel_number: int = 1,
    dropout: float = 0.2,
) -> AdaptiveRotatedDecoder:
    _check_width("hidden", hidden)
    check_size("kernel_number", kernel_number, "head.kernel_number")
    check_float("dropout", dropout, low=0.0, high=1.0, high_open=True)
    return AdaptiveRotatedDecoder(in_channels, hidden, num_classes, kernel_number, dropout)
