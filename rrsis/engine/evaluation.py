"""Evaluation loop: a model over a dataset → oIoU, mIoU, P@0.5–0.9 (optionally over ranks)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data import collate_fn
from ..data.expressions import unreadable_expressions
from ..data.transforms import check_input_size, smallest_input_side
from ..metrics import ReferringMetrics
from .distributed import DistInfo, ShardSampler, all_gather_objects

__all__ = ["autocast_context", "evaluate", "resolve_amp"]


def resolve_amp(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (``None``: full precision).

    ``"auto"`` is bf16 on CUDA and off on the CPU (CPU bf16 autocast is slower than fp32 on
    most machines and changes results); ``"bf16"``/``"fp16"`` force one; ``"off"``/``False``
    disables it.
    """
    if amp in (None, False, "off", "none", "fp32"):
        return None
    if amp in (True, "auto"):
        return torch.bfloat16 if device.type == "cuda" else None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def autocast_context(dtype: torch.dtype | None, device: torch.device):
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _check_input_side(net: nn.Module, pixel_values: torch.Tensor) -> None:
    """Refuse a dataset whose samples the model cannot take, with the dataset's remedy (its
    ``size=``) rather than the model's (``model.predict`` resizes; a dataset is sized when built)."""
    div = getattr(net, "size_divisor", None)
    if div is None:
        return
    h, w = (int(v) for v in pixel_values.shape[-2:])
    stride = getattr(net, "feature_stride", None)
    try:
        check_input_size(h, w, int(div), stride)
    except ValueError as exc:
        why = str(exc).split("; resize or pad")[0]
        own = getattr(net, "image_size", None)
        raise ValueError(
            f"the dataset's samples are {h}x{w} model inputs: {why}. Build the dataset with size= a multiple of "
            f"{div} of at least {smallest_input_side(int(div), stride)}"
            + (f" (the model's own image_size is {own})" if own else "")) from None


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    amp: str | bool | None = "auto",
    resolution: str = "eval",
    empty_iou: float = 0.0,
    num_workers: int = 0,
    info: DistInfo | None = None,
    progress: bool = True,
    desc: str = "eval",
) -> dict[str, Any]:
    """Run ``model`` over every sample of ``dataset`` and compute the referring metrics.

    With ``resolution="eval"`` the prediction is compared with the dataset's ``mask`` at the
    model input size (the anchors' protocol: 480×480, ground truth resized nearest); with
    ``"native"`` the logits are resized to each image's own size by the model's
    :meth:`~rrsis.models.base.RRSISModel.postprocess` (as ``predict`` resizes them) and compared
    with ``native_mask`` (build the dataset with ``return_native_mask=True``).

    Args:
        model: an rrsis model (or its DDP wrapper).
        dataset: yields rrsis sample dicts with ``input_ids``/``attention_mask``.
        batch_size: samples per forward pass.
        device: where to run (default: the model's device).
        amp: autocast mode, see :func:`resolve_amp`.
        resolution: ``"eval"`` or ``"native"``.
        empty_iou: IoU of a sample whose prediction and target are both empty, in [0, 1]
            (another value raises ``ValueError``).
        num_workers: DataLoader workers.
        info: in a distributed run each rank scores its shard and the counts are gathered.
        progress: show a progress bar (rank 0 only).
        desc: progress-bar label.

    Returns:
        ``{"oIoU", "mIoU", "P@0.5", ..., "P@0.9", "n"}`` (fractions); every rank gets the
        same numbers. The expressions of an rrsis dataset that have no word the model's
        vocabulary knows are counted first and logged as one warning ("N of M expressions have
        no word the model knows"); :func:`rrsis.data.expressions.unreadable_expressions` returns
        the count.
    """
    info = info or DistInfo()
    if len(dataset) == 0:
        skipped = getattr(dataset, "skipped", None)
        why = f" ({len(skipped)} skipped as malformed, see .skipped)" if skipped else ""
        raise ValueError(f"no samples to evaluate: the dataset is empty{why}")
    # Every expression counted before any sample is read (tokenization only), logged once (and
    # kept on the dataset, so that its DataLoader workers do not count again).
    unreadable_expressions(dataset, log=info.is_main)
    net = _unwrap(model)
    device = torch.device(device) if device is not None else next(net.parameters()).device
    dtype = resolve_amp(amp, device)
    sampler = ShardSampler(len(dataset), info.rank, info.world_size)
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        collate_fn=collate_fn, generator=torch.Generator().manual_seed(0),
    )
    metrics = ReferringMetrics(resolution=resolution, empty_iou=empty_iou)
    was_training = net.training
    net.eval()
    bar = None
    if progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader), desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    try:
        for batch in loader:
            if "input_ids" not in batch:
                raise ValueError("the dataset yields no input_ids: build it with tokenizer=...")
            _check_input_side(net, batch["pixel_values"])
            with autocast_context(dtype, device):
                # Crops of larger scenes carry their box in the scene (rrsis.data.scene_crops).
                where = {"position": batch["position"].to(device)} if "position" in batch else {}
                out = net(
                    batch["pixel_values"].to(device, non_blocking=True),
                    batch["input_ids"].to(device, non_blocking=True),
                    batch["attention_mask"].to(device, non_blocking=True),
                    **where,
                )
            logits = out.logits.float()
            if resolution == "native":
                if "native_mask" not in batch:
                    raise ValueError("native-resolution evaluation needs a dataset built with "
                                     "return_native_mask=True")
                # The model's own postprocessing resizes the logits back, as predict does; the
                # metrics take the argmax of what it returns.
                targets = batch["native_mask"]
                sizes = [tuple(np.shape(t)[-2:]) for t in targets]
                for up, target in zip(net.postprocess(logits, sizes, output="logits"), targets):
                    metrics.update(up, [target])
            else:
                metrics.update(logits, batch["mask"])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        net.train(was_training)
    if info.distributed:
        merged = ReferringMetrics(resolution=resolution, empty_iou=empty_iou)
        for part in all_gather_objects(metrics, info):
            merged.merge(part)
        metrics = merged
    return metrics.compute()
