"""What every rrsis model shares: the output type, input checks and ``predict``."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import hub

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RRSISModel", "SegmentationOutput", "TextFeatures", "load_image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


@dataclass
class SegmentationOutput:
    """Model output.

    Attributes:
        logits: ``[B, 2, H, W]`` background/foreground logits at input resolution.
        aux_logits: earlier predictions ``[B, 2, H, W]`` for deep supervision (may be empty).
    """

    logits: torch.Tensor
    aux_logits: List[torch.Tensor] = field(default_factory=list)


@dataclass
class TextFeatures:
    """Encoded expressions, reusable across images.

    Attributes:
        words: ``[B, L, D]`` word features from the text encoder.
        mask: ``[B, L]`` float 0/1, 1 for real tokens.
    """

    words: torch.Tensor
    mask: torch.Tensor


def _compiling() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def load_image(image: ImageLike, index: int = 0) -> np.ndarray:
    """Any supported image → ``[H, W, 3]`` uint8 RGB.

    Paths and PIL images go through PIL; numpy arrays must be ``[H, W]`` or ``[H, W, C]``
    with C ∈ {1, 3, 4}, dtype uint8 (0–255) or float (0–1, finite). Grey is replicated to
    three channels; a 4th (alpha) channel is dropped.
    """
    where = f"image {index}"
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        where = f"image {index} ({path})"
        if not path.is_file():
            raise FileNotFoundError(f"{where}: file not found")
        try:
            with Image.open(path) as im:
                im.load()
                image = im.copy()
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"{where}: cannot read image: {exc}") from None
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"{where}: zero-size image")
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            raise ValueError(
                f"{where}: {image.mode} (16/32-bit) image; scale it to uint8 RGB first "
                "(rrsis.data reads 16-bit and multi-band TIFFs with explicit scaling)"
            )
        image = np.asarray(image.convert("RGBA") if image.mode in ("LA", "PA", "P") else image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: expected a path, PIL image or numpy array, got {type(image).__name__}")
    arr = image
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{where}: expected [H, W] or [H, W, C] array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{where}: zero-size image {arr.shape}")
    if arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"{where}: {arr.shape[2]} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)")
    if arr.dtype == np.uint8:
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}: contains NaN or infinite pixels")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{where}: float pixels must lie in [0, 1], got [{arr.min():.3g}, {arr.max():.3g}]")
        arr = np.round(arr * 255).astype(np.uint8)
    else:
        raise ValueError(f"{where}: unsupported dtype {arr.dtype}; expected uint8 or float in [0, 1]")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


class RRSISModel(nn.Module):
    """Base of every registered model: the forward contract's checks and ``predict``.

    Subclasses set ``self.arch`` (registry name), ``self._config`` (the JSON-able config
    tree), ``self.text_encoder`` and implement ``_forward``.
    """

    arch: str = ""
    tokenizer = None  # an rrsis.Tokenizer, attached by from_pretrained / the user
    size_divisor: int = 32

    @property
    def config(self) -> Dict[str, Any]:
        """The JSON-able config tree; ``create_model(arch, **config)`` rebuilds the model."""
        return copy.deepcopy(self._config)

    @property
    def image_size(self) -> int:
        return int(self._config.get("image_size", 480))

    # ------------------------------------------------------------------ checks
    def check_inputs(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the problem when inputs break the contract."""
        for name, t in (("pixel_values", pixel_values), ("input_ids", input_ids), ("attention_mask", attention_mask)):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be [B, 3, H, W], got shape {tuple(pixel_values.shape)}")
        b, c, h, w = pixel_values.shape
        if c != 3:
            raise ValueError(f"pixel_values must have 3 channels, got {c} (shape {tuple(pixel_values.shape)})")
        if h == 0 or w == 0 or b == 0:
            raise ValueError(f"pixel_values has a zero-size dimension: {tuple(pixel_values.shape)}")
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(
                f"image size {h}x{w} is not a multiple of {self.size_divisor}; resize or pad "
                "(model.predict does this for you)"
            )
        if not pixel_values.is_floating_point():
            raise ValueError(f"pixel_values must be a float tensor (ImageNet-normalised), got {pixel_values.dtype}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got shape {tuple(input_ids.shape)}")
        if input_ids.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        if input_ids.shape[0] != b:
            raise ValueError(f"{b} images but {input_ids.shape[0]} texts (input_ids batch)")
        max_len = self.text_encoder.config.max_position_embeddings
        if input_ids.shape[1] == 0 or input_ids.shape[1] > max_len:
            raise ValueError(f"text length {input_ids.shape[1]} must be in 1..{max_len}")
        if _compiling():
            return
        if not torch.isfinite(pixel_values).all():
            raise ValueError("pixel_values contains NaN or infinite values")
        if ((attention_mask != 0) & (attention_mask != 1)).any():
            raise ValueError("attention_mask must contain only 0 and 1")
        empty = (attention_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"empty text (attention_mask all zero) for sample(s) {empty}")
        vocab = self.text_encoder.config.vocab_size
        if input_ids.min() < 0 or input_ids.max() >= vocab:
            raise ValueError(f"input_ids must lie in [0, {vocab}), got [{int(input_ids.min())}, {int(input_ids.max())}]")

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> SegmentationOutput:
        """``pixel_values [B, 3, H, W]`` (ImageNet-normalised), ``input_ids``/``attention_mask``
        ``[B, L]`` → :class:`SegmentationOutput` with ``logits [B, 2, H, W]``."""
        self.check_inputs(pixel_values, input_ids, attention_mask)
        return self._forward(pixel_values, input_ids, attention_mask)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        texts: Union[str, Sequence[str]],
        *,
        threshold: float = 0.5,
        batch_size: int = 8,
        image_size: Optional[int] = None,
    ) -> List[np.ndarray]:
        """Segment what each expression names; one bool mask per image at its native size.

        Args:
            images: paths, PIL images or numpy arrays (``[H, W]`` / ``[H, W, C]``, C ∈ {1,3,4},
                uint8 or float in [0, 1]), any size; or a single one.
            texts: one expression per image (or a single string for a single image).
            threshold: foreground-probability threshold (0.5 equals the anchors' argmax).
            batch_size: images per forward pass.
            image_size: square model input side (default: the model's ``image_size``),
                a multiple of 32.

        Returns:
            ``[H_i, W_i]`` bool arrays.
        """
        single = isinstance(texts, str)
        if single:
            texts = [texts]
        if not isinstance(images, (list, tuple)):
            images = [images]
        texts = list(texts)
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts; give one expression per image")
        if not images:
            raise ValueError("no images given")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: predict needs a vocabulary. Load one with "
                "model.tokenizer = rrsis.Tokenizer('vocab.txt'), or use rrsis.from_pretrained / "
                "create_model(..., pretrained=True)"
            )
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"text {i} is empty: every image needs a non-empty expression")
        size = int(image_size or self.image_size)
        if size % self.size_divisor:
            raise ValueError(f"image_size {size} is not a multiple of {self.size_divisor}")
        arrays = [load_image(im, i) for i, im in enumerate(images)]
        tokens = self.tokenizer(texts)
        device = next(self.parameters()).device
        dtype = next(self.parameters()).dtype
        mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
        was_training = self.training
        self.eval()
        masks: List[np.ndarray] = []
        try:
            for s in range(0, len(arrays), batch_size):
                chunk = arrays[s : s + batch_size]
                batch = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in chunk])
                pix = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).to(dtype) / 255.0
                pix = (pix - mean) / std
                out = self(
                    pix, tokens["input_ids"][s : s + batch_size].to(device),
                    tokens["attention_mask"][s : s + batch_size].to(device),
                )
                for a, logit in zip(chunk, out.logits):
                    logit = F.interpolate(logit[None].float(), size=a.shape[:2], mode="bilinear", align_corners=True)
                    masks.append((logit.softmax(dim=1)[0, 1] > threshold).cpu().numpy())
        finally:
            self.train(was_training)
        return masks

    # ------------------------------------------------------------------ weights
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        metrics: dict[str, Any] | None = None,
        dataset: str | None = None,
    ) -> Path:
        """Write ``config.json``, ``model.safetensors``, the tokenizer files (when
        ``self.tokenizer`` is set) and a model card, atomically; see :func:`rrsis.hub.save_pretrained`.

        Args:
            save_directory: target directory (created or replaced; files rrsis does not own are kept).
            metrics: JSON-able ``name → value`` for the model card.
            dataset: training dataset name for the model card.
        """
        return hub.save_pretrained(self, save_directory, metrics=metrics, dataset=dataset)

    def push_to_hub(self, repo_id: str, **kwargs: Any):
        """Upload the :meth:`save_pretrained` files to a Hub model repo; see :func:`rrsis.hub.push_to_hub`."""
        return hub.push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, repo_id_or_dir: str | os.PathLike, **kwargs: Any) -> RRSISModel:
        """Load a saved model from a local directory or a Hub repo; see :func:`rrsis.hub.from_pretrained`."""
        model = hub.from_pretrained(repo_id_or_dir, **kwargs)
        if not isinstance(model, cls):
            raise TypeError(f"{repo_id_or_dir} holds a {type(model).__name__} ({model.arch!r}), not a {cls.__name__}")
        return model
