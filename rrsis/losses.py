"""Training loss of the anchors: weighted cross-entropy plus Dice, over all outputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .models.base import SegmentationOutput

__all__ = ["ReferringLoss", "dice_loss"]


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-6, reduction: str = "sum") -> torch.Tensor:
    """Multi-class soft Dice over ``softmax(logits)`` against one-hot ``target``.

    RMSIN's form: per sample and class ``1 − (2·Σpt + s)/(Σp + Σt + s)``, summed over
    batch and classes (``reduction="sum"``) or averaged (``"mean"``).

    Args:
        logits: ``[B, K, H, W]``.
        target: ``[B, H, W]`` class indices.
    """
    probs = logits.float().softmax(dim=1)
    onehot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    inter = (probs * onehot).sum(dim=(2, 3))
    denom = probs.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    loss = 1 - (2 * inter + smooth) / (denom + smooth)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def _check_target(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``target`` as the loss reads it, ``[B, H, W]`` (a ``[B, 1, H, W]`` mask loses its channel);
    ``ValueError`` naming the problem for a shape or values the loss cannot read as 0/1 classes.

    The values are read only when the target is in host memory (reading a GPU tensor's values
    blocks the host each step, as :meth:`~rrsis.RRSISModel.check_inputs` avoids too) and never
    under ``torch.compile``: check a GPU target on the host before moving it."""
    if target.dim() == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if target.dim() != 3:
        raise ValueError(f"target must be [B, H, W] (or [B, 1, H, W]) class indices, got shape {tuple(target.shape)}")
    if target.shape[-2:] != logits.shape[-2:]:
        raise ValueError(f"target size {tuple(target.shape[-2:])} != logits size {tuple(logits.shape[-2:])}")
    if (target.dtype != torch.bool and target.device.type == "cpu" and not torch.compiler.is_compiling()
            and ((target != 0) & (target != 1)).any()):
        found = torch.unique(target)
        shown = ", ".join(f"{v:g}" for v in found[:6].tolist()) + (", ..." if found.numel() > 6 else "")
        raise ValueError(
            f"target must hold the class indices 0 (background) and 1 (the referred object); it holds {shown}. "
            "A 0/255 mask converts with (mask > 127).long(), a probability map with (p > 0.5).long()")
    return target


class ReferringLoss(nn.Module):
    """``ce_weight·CE(class_weights) + dice_weight·Dice``, summed over the main and aux outputs.

    Args:
        ce_weight: weight of the cross-entropy term (RMSIN: 0.9).
        dice_weight: weight of the Dice term (RMSIN: 0.1; 0 gives LAVT's CE-only loss).
        class_weights: CE weights of background/foreground (anchors: 0.9, 1.1).
        dice_reduction: ``"sum"`` (RMSIN) or ``"mean"``.
        aux_weight: weight of each deep-supervision output.
    """

    def __init__(
        self,
        ce_weight: float = 0.9,
        dice_weight: float = 0.1,
        class_weights: Sequence[float] = (0.9, 1.1),
        dice_reduction: str = "sum",
        aux_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.ce_weight, self.dice_weight, self.aux_weight = ce_weight, dice_weight, aux_weight
        self.dice_reduction = dice_reduction
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32), persistent=False)

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.ce_weight * F.cross_entropy(logits.float(), target.long(), weight=self.class_weights)
        if self.dice_weight:
            loss = loss + self.dice_weight * dice_loss(logits, target, reduction=self.dice_reduction)
        return loss

    def forward(self, output: SegmentationOutput | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``output`` (or bare logits ``[B, 2, H, W]``) and ``target`` → scalar.

        ``target`` is ``[B, H, W]`` (or ``[B, 1, H, W]``, the channel dropped) of class indices: 0
        (background) and 1 (the referred object), as integers, bools or 0./1. floats."""
        logits = output if isinstance(output, torch.Tensor) else output.logits
        target = _check_target(target, logits)
        if isinstance(output, torch.Tensor):
            return self.single(output, target)
        loss = self.single(output.logits, target)
        for aux in output.aux_logits:
            loss = loss + self.aux_weight * self.single(aux, target)
        return loss
