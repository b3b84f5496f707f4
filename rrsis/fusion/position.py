"""Where an image lies in its scene, as a feature: the scene-position encoding.

A tile of a large scene cannot tell "the pond in the north-west" from any other pond: its own
pixels say nothing about where it is. The scene-position encoding gives every feature pixel its
coordinates in the *scene* (not in the tile) as Fourier features, projected to the stage's
channels and added to the visual feature before pixel-word fusion, so the fused feature can
match words about place ("north-west", "northernmost", "in the centre") with where a pixel is.

An image's place is a box ``(left, top, right, bottom)`` in scene fractions: ``(0, 0, 1, 1)``
for an image that is its own scene (the default, and what every ordinary dataset sample is), a
sub-box for a tile of a larger scene (:func:`rrsis.segment_scene` passes each tile's box). The
projection starts at zero, so adding the part changes nothing until it is trained.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import POSITION_ENCODING

__all__ = ["ScenePositionEncoding", "check_position", "full_scene"]


def full_scene(batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The box of images that are their own scene: ``(0, 0, 1, 1)`` each, ``[batch, 4]``."""
    return torch.tensor([[0.0, 0.0, 1.0, 1.0]], device=device, dtype=dtype).expand(batch, 4)


def check_position(position: torch.Tensor, batch: int) -> None:
    """Raise ``ValueError`` unless ``position`` is ``[batch, 4]`` finite boxes ``(left, top,
    right, bottom)`` with ``left < right`` and ``top < bottom`` (values read only on the host).
    Boxes lie in [0, 1] but may reach past it: a window read past the scene's edge (the one tile
    of a scene smaller than a tile) has the place of its padding too."""
    if not isinstance(position, torch.Tensor):
        raise ValueError(f"position must be a torch.Tensor [B, 4], got {type(position).__name__}")
    if position.dim() != 2 or position.shape != (batch, 4) or not position.is_floating_point():
        raise ValueError(f"position must be float boxes [B, 4] = (left, top, right, bottom) in scene "
                         f"fractions, B = {batch}; got {tuple(position.shape)} {position.dtype}")
    if position.device.type != "cpu":
        return
    p = position.double()
    bad = ~(torch.isfinite(p).all(1) & (p[:, 0] < p[:, 2]) & (p[:, 1] < p[:, 3]))
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(f"position {i}: {position[i].tolist()} is not a box (left, top, right, bottom) "
                         f"with left < right and top < bottom")


class ScenePositionEncoding(nn.Module):
    """Scene coordinates of every feature pixel → ``[B, C, h, w]`` added to the feature.

    Features per pixel: its scene coordinates ``x, y`` in [0, 1] and ``sin / cos(2^k π x)``,
    ``sin / cos(2^k π y)`` for ``k < frequencies``, through a 1×1 projection (zero at start).

    Args:
        dim: channels of the feature it is added to.
        frequencies: octaves of the Fourier features.
    """

    def __init__(self, dim: int, frequencies: int = 3) -> None:
        super().__init__()
        if frequencies < 0:
            raise ValueError(f"frequencies must be >= 0, got {frequencies}")
        self.frequencies = frequencies
        self.proj = nn.Conv2d(2 + 4 * frequencies, dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def features(self, position: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``[B, 2 + 4F, h, w]`` Fourier features of the pixel centres' scene coordinates."""
        dt = self.proj.weight.dtype
        frac_x = (torch.arange(w, device=position.device, dtype=dt) + 0.5) / w
        frac_y = (torch.arange(h, device=position.device, dtype=dt) + 0.5) / h
        pos = position.to(dt)
        x = pos[:, 0:1] + frac_x[None] * (pos[:, 2:3] - pos[:, 0:1])  # [B, w]
        y = pos[:, 1:2] + frac_y[None] * (pos[:, 3:4] - pos[:, 1:2])  # [B, h]
        b = position.shape[0]
        xs, ys = [x], [y]
        for k in range(self.frequencies):
            f = math.pi * 2 ** k
            xs += [torch.sin(f * x), torch.cos(f * x)]
            ys += [torch.sin(f * y), torch.cos(f * y)]
        fx = torch.stack(xs, 1)[:, :, None, :].expand(b, len(xs), h, w)
        fy = torch.stack(ys, 1)[:, :, :, None].expand(b, len(ys), h, w)
        return torch.cat([fx, fy], 1)

    def forward(self, position: torch.Tensor | None, h: int, w: int) -> torch.Tensor:
        """``position [B, 4]`` boxes → ``[B, dim, h, w]``."""
        return self.proj(self.features(position, h, w))


@POSITION_ENCODING.register("fourier")
def _build_fourier(*, dim: int, frequencies: int = 3) -> ScenePositionEncoding:
    return ScenePositionEncoding(dim, frequencies)
