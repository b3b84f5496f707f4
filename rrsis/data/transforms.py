"""Resizing, normalisation and batching shared by every dataset (and by the metrics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ResizeNormalize",
    "check_image_size",
    "check_input_size",
    "collate_fn",
    "make_collate_fn",
    "nearest_indices",
    "normalize",
    "resize_image",
    "resize_image_bands",
    "resize_mask",
    "smallest_input_side",
    "to_hw",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Size = int | Sequence[int]


def smallest_input_side(divisor: int, stride: int | None = None) -> int:
    """The smallest square input side a model with ``size_divisor`` ``divisor`` and coarsest
    feature stride ``stride`` runs: a multiple of ``divisor`` whose last stage holds more than one
    position (:func:`check_input_size`); 64 for the zoo's models. ``None`` (a model that declares no
    ``feature_stride``): ``divisor``."""
    return divisor if stride is None else -(-2 * stride // divisor) * divisor


def check_input_size(height: int, width: int, divisor: int, stride: int | None = None) -> None:
    """Refuse (``ValueError``) a model input of ``height × width`` pixels the model cannot run.

    Each side must be a multiple of ``divisor`` (the model's ``size_divisor``), and the coarsest
    stage (1/``stride`` of the input, the model's ``feature_stride``) must hold more than one
    position: the pixel-word attention instance-normalises each stage over its positions, which a
    single one cannot be (a 32×32 input to a 4-stage model with 4-pixel patches). ``stride=None``
    (a model that declares no ``feature_stride``): the divisor rule alone."""
    if height % divisor or width % divisor:
        raise ValueError(f"image size {height}x{width} is not a multiple of {divisor}; resize or pad "
                         "(model.predict does this for you)")
    if stride is not None and (height // stride) * (width // stride) < 2:
        side = smallest_input_side(divisor, stride)
        rect = f" (or {divisor}x{side}, {side}x{divisor})" if side > divisor else ""
        raise ValueError(f"image size {height}x{width} is too small for this model: the smallest accepted size is "
                         f"{side}x{side}{rect}, as its last stage (1/{stride} of the input) needs more than one "
                         f"position; resize or pad (model.predict does this for you)")


def check_image_size(image_size: Any, default: int, divisor: int, stride: int | None = None, *,
                     unset: str | None = "None") -> int:
    """A square model input side: ``None`` means ``default`` (the model's); anything else must
    be a positive multiple of ``divisor`` (0 is an error, not the default) and at least
    :func:`smallest_input_side` (``stride``: the model's ``feature_stride``). ``unset``: how the
    caller asks for the default, which the messages name with it (``"(None: the model's 64)"``;
    a command's words such as ``"leave --image-size out"``); ``None``: no such note (training,
    where the model takes the size it is given)."""
    if image_size is None:
        return int(default)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"image_size must be an integer, got {image_size!r}")
    note = "" if unset is None else f" ({unset}: the model's {default})"
    if image_size <= 0 or image_size % divisor:
        raise ValueError(f"image_size {image_size} is not a positive multiple of {divisor}{note}")
    if image_size < (side := smallest_input_side(divisor, stride)):
        raise ValueError(f"image_size {image_size} is too small for this model: the smallest accepted side is "
                         f"{side}, as its last stage (1/{stride or divisor} of the input) needs more than one "
                         f"position{note}")
    return int(image_size)


def to_hw(size: Size) -> tuple[int, int]:
    """``480`` → ``(480, 480)``; ``(h, w)`` is kept.

    Args:
        size: an int or a pair.
    """
    if isinstance(size, (int, np.integer)):
        hw = (int(size), int(size))
    else:
        hw = tuple(int(v) for v in size)
        if len(hw) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
    if min(hw) <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return hw  # type: ignore[return-value]


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel for nearest-neighbour resizing, exactly as PIL picks it.

    PIL steps through the output adding the scale factor each time, so on exact ties its choice
    follows that running sum's rounding; ``floor((i + 0.5) * scale)`` differs there.

    Args:
        n_in: source length.
        n_out: target length.
    """
    step = n_in / n_out
    pos = np.cumsum(np.concatenate([[step * 0.5], np.full(n_out - 1, step)]))
    return np.clip(np.floor(pos).astype(np.int64), 0, n_in - 1)


def resize_mask(mask: torch.Tensor, size: Size) -> torch.Tensor:
    """Nearest-neighbour resize of masks, pixel-identical to PIL's ``NEAREST``.

    Args:
        mask: ``[..., H, W]`` of any dtype.
        size: target ``(h, w)`` or an int.

    Returns:
        ``[..., h, w]``, same dtype and device.
    """
    h, w = to_hw(size)
    if tuple(mask.shape[-2:]) == (h, w):
        return mask
    rows = torch.from_numpy(nearest_indices(mask.shape[-2], h)).to(mask.device)
    cols = torch.from_numpy(nearest_indices(mask.shape[-1], w)).to(mask.device)
    return mask.index_select(-2, rows).index_select(-1, cols)


def _aa_bilinear(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)


def resize_image(image: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize with antialiasing (close to PIL's ``BILINEAR`` on downscaling): the one
    image resize of rrsis (datasets, ``model.preprocess``, whole scenes through
    :func:`resize_image_bands`).

    Args:
        image: ``[C, H, W]`` or ``[B, C, H, W]`` float.
        size: target ``(h, w)`` or an int.
    """
    hw = to_hw(size)
    if tuple(image.shape[-2:]) == hw:
        return image
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    x = _aa_bilinear(x, hw)
    return x if batched else x.squeeze(0)


def resize_image_bands(
    read_rows: Callable[[int, int], np.ndarray], height: int, width: int, size: Size, band_rows: int = 32
) -> torch.Tensor:
    """:func:`resize_image` of an image read a band of rows at a time: the same numbers, bit for
    bit, never holding the whole image as floats.

    The antialiased resize is separable and runs along the width first; that pass treats rows
    independently, so it is done band by band, and the height pass then reads an
    ``[C, height, w]`` buffer (``w`` = target width: small for a scene shrunk to the model's size).

    Args:
        read_rows: ``(row0, row1) -> [row1 - row0, width, C]`` float32 rows of the image.
        height, width: the image's size.
        size: target ``(h, w)`` or an int.

    Returns:
        ``[C, h, w]`` float32, equal to ``resize_image(whole image as [C, H, W], size)``.
    """
    h, w = to_hw(size)
    buffer = None
    for y0 in range(0, height, max(int(band_rows), 1)):
        y1 = min(y0 + max(int(band_rows), 1), height)
        rows = np.asarray(read_rows(y0, y1), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(rows.transpose(2, 0, 1)))
        if width != w:
            x = _aa_bilinear(x[None], (y1 - y0, w))[0]
        if buffer is None:  # a numpy buffer, so memory tools that trace numpy see it
            buffer = np.empty((x.shape[0], height, w), np.float32)
        buffer[:, y0:y1] = x.numpy()
    out = torch.from_numpy(buffer)
    if height != h:
        out = _aa_bilinear(out[None], (h, w))[0]
    return out


def normalize(
    pixels: torch.Tensor, mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
    std: Sequence[float] | torch.Tensor = IMAGENET_STD,
) -> torch.Tensor:
    """``(pixels - mean) / std`` per channel: the one normalisation of rrsis.

    Args:
        pixels: ``[C, H, W]`` or ``[B, C, H, W]`` float in [0, 1].
        mean, std: per-channel statistics (ImageNet by default).
    """
    mean = torch.as_tensor(mean, dtype=torch.float32, device=pixels.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=pixels.device).view(-1, 1, 1)
    return (pixels - mean) / std


class ResizeNormalize:
    """Resize image (bilinear) and mask (nearest) to one size, then normalise the image.

    Args:
        size: output size, an int or ``(h, w)``; the anchors train and evaluate at 480.
        mean, std: per-channel statistics (ImageNet by default); their length must match the
            number of bands read.
    """

    def __init__(
        self,
        size: Size = 480,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.size = to_hw(size)
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} values but std has {len(std)}: give one of each per band")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``image [H, W, C]`` float, ``mask [H, W]`` bool → ``[C, h, w]`` float, ``[h, w]`` long."""
        m = resize_mask(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64)), self.size)
        return self.image(image), m

    def image(self, image: np.ndarray) -> torch.Tensor:
        """The image half alone (``model.predict`` has no mask): ``[H, W, C]`` → ``[C, h, w]``."""
        if image.shape[2] != self.mean.shape[0]:
            raise ValueError(
                f"the image has {image.shape[2]} bands but mean/std have {self.mean.shape[0]}"
            )
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
        return normalize(resize_image(x, self.size), self.mean, self.std)

    def denormalize(self, pixel_values: torch.Tensor) -> np.ndarray:
        """Inverse of the normalisation, for pictures: ``[C, h, w]`` → ``[h, w, C]`` uint8."""
        img = (pixel_values.detach().cpu().float() * self.std + self.mean).clamp(0, 1)
        return (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)

    def __repr__(self) -> str:
        return f"ResizeNormalize(size={self.size})"


_STACKED = ("pixel_values", "mask", "position")
_PADDED = ("input_ids", "attention_mask")


def make_collate_fn(pad_id: int = 0):
    """A ``collate_fn`` that stacks images and masks and pads token rows with ``pad_id``.

    Args:
        pad_id: the tokenizer's padding id for ``input_ids`` (``attention_mask`` pads with 0).
    """

    def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in batch[0]:
            values = [sample[key] for sample in batch]
            if key in _STACKED:
                out[key] = torch.stack(values)
            elif key in _PADDED:
                length = max(v.shape[-1] for v in values)
                fill = pad_id if key == "input_ids" else 0
                out[key] = torch.stack([F.pad(v, (0, length - v.shape[-1]), value=fill)
                                        for v in values])
            else:
                # Native masks differ in size and ids/texts are not tensors: keep lists.
                out[key] = values
        return out

    return collate


collate_fn = make_collate_fn(0)
"""Batch samples: ``pixel_values [B, 3, H, W]``, ``mask [B, H, W]``, ``input_ids`` and
``attention_mask [B, L]`` (right-padded with 0), everything else as lists."""
