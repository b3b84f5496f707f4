"""What every rrsis model shares: the input contract's checks, ``preprocess`` / ``postprocess``,
``predict`` and the weights I/O (the output types are in :mod:`.outputs`)."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import _grad_checkpoint, hub
from .._finite import check_finite_logits

# The one reader, resize and normalisation of rrsis: predict sees exactly what evaluation sees.
from ..data.expressions import check_expressions, expression_problem
from ..data.io import MAX_PIXELS, Bands, Scale, _read_masked
from ..data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_image_size,
    check_input_size,
    normalize,
    resize_image,
)
from ..hub.save_check import unwrapped_state
from .outputs import SegmentationOutput, TextFeatures

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RRSISModel", "SegmentationOutput", "TextFeatures", "load_image", "threshold_mask"]

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor


def _compiling() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def load_image(image: ImageLike, index: int = 0, *, bands: Bands = None, scale: Scale = None) -> np.ndarray:
    """Any supported image → ``[H, W, 3]`` uint8 RGB, upright (for display and overlays), read by
    :func:`rrsis.data.read_image` (as ``predict`` and the datasets read): EXIF orientation applied,
    CMYK/YCbCr converted, a declared alpha band dropped, grey replicated, a TIFF's declared R, G, B
    read, nodata black; other band counts need ``bands=`` (three, from 1), 16-bit data ``scale=``."""
    return np.ascontiguousarray(np.round(_read_nodata(image, index, bands, scale)[0] * 255.0).astype(np.uint8))


def _read_nodata(image: ImageLike, index: int, bands: Bands, scale: Scale, max_pixels: int | None = None,
                 channels: int | None = None, colours=None, names=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``read_image``'s pixels and where they are nodata (``nodata_mask`` of the bands read; ``None``: nowhere), with
    errors that say which input was wrong; ``colours``, ``names``: the model's ``backbone.rgb``, ``band_names``."""
    where = f"image {index}"  # the reader's messages name the file itself
    try:
        return _read_masked(image, bands, scale, max_pixels, channels, colours, names)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _input_bands(model: nn.Module) -> tuple[int, tuple, tuple, Scale]:
    """``(in_chans, mean, std, scale)`` of a model's backbone node; RGB with ImageNet's statistics
    for a stand-in module that borrows :meth:`RRSISModel.preprocess` without a config."""
    bb = (getattr(model, "_config", None) or {}).get("backbone") or {}
    return int(bb.get("in_chans", 3)), tuple(bb.get("mean") or IMAGENET_MEAN), tuple(bb.get("std") or IMAGENET_STD), bb.get("scale")


def threshold_mask(probability: np.ndarray, threshold: float) -> np.ndarray:
    """Foreground probability → bool mask (``>``, compared in float32): the one threshold step,
    shared by :meth:`RRSISModel.postprocess` and the whole-scene strips."""
    return np.greater(probability, np.float32(threshold))


class RRSISModel(nn.Module):
    """Base of every registered model: the forward contract's checks and ``predict``.

    Subclasses set ``self.arch`` (registry name), ``self._config`` (the JSON-able config
    tree), ``self.text_encoder`` and implement ``_forward``.
    """

    arch: str = ""
    tokenizer = None  # an rrsis.Tokenizer, attached by from_pretrained / the user
    size_divisor: int = 32
    feature_stride: int = 32  # the coarsest stage's: it must hold more than one position (check_input_size)

    @property
    def config(self) -> dict[str, Any]:
        """The JSON-able config tree; ``create_model(arch, **config)`` rebuilds the model."""
        return copy.deepcopy(self._config)

    image_size = property(lambda self: int(self._config.get("image_size", 480)), doc="Default input side.")
    in_chans = property(lambda self: _input_bands(self)[0], doc="Input bands (``backbone.in_chans``; 3: RGB).")
    pixel_mean = property(lambda self: _input_bands(self)[1], doc="Per-band mean (``backbone.mean``).")
    pixel_std = property(lambda self: _input_bands(self)[2], doc="Per-band std (``backbone.std``).")
    pixel_scale = property(lambda self: _input_bands(self)[3], doc="Training data's value scaling (``backbone.scale``).")
    colours = property(lambda self: ((self._config or {}).get("backbone") or {}).get("rgb"), doc="``backbone.rgb``.")
    band_names = property(lambda self: ((self._config or {}).get("backbone") or {}).get("band_names"), doc="``backbone.band_names``.")
    grad_checkpointing = property(_grad_checkpoint.is_enabled, doc="Whether :meth:`set_grad_checkpointing` is on.")

    def set_grad_checkpointing(self, enable: bool = True) -> RRSISModel:
        """Recompute activations in the backward pass instead of keeping them (timm's switch): the local
        blocks, each stage's fusion + GEM + gate, the BERT layers; the same loss and gradients, less memory,
        about one more forward pass of time; only in training mode with autograd on (:mod:`rrsis._grad_checkpoint`)."""
        _grad_checkpoint.set_grad_checkpointing(self, enable)
        return self

    # ------------------------------------------------------------------ checks
    def check_inputs(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                     values: bool | None = None) -> None:
        """Raise ``ValueError`` naming the problem when inputs break the contract.

        Shapes (``in_chans`` channels), dtypes: always checked (metadata: free). The values (finite
        pixels, a 0/1 mask, no empty text, ids inside the vocabulary) are read only when ``values``
        is true, or, by default, when every tensor is in host memory: reading a GPU tensor's values
        blocks the host until the GPU catches up, which in a training step stalls the launch queue
        and rules out CUDA graphs. A training loop checks a batch's values once on the host
        (``check_inputs(..., values=True)`` before ``.to(device)``); the forward on the device reads
        none. Under ``torch.compile`` the values are never read (a data-dependent branch)."""
        for name, t in (("pixel_values", pixel_values), ("input_ids", input_ids), ("attention_mask", attention_mask)):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if pixel_values.dim() != 4:
            raise ValueError(f"pixel_values must be [B, {self.in_chans}, H, W], got shape {tuple(pixel_values.shape)}")
        b, c, h, w = pixel_values.shape
        if c != (bands := self.in_chans):
            raise ValueError(f"pixel_values has {c} channels but this model takes {bands} (in_chans; "
                             f"shape {tuple(pixel_values.shape)})")
        if h == 0 or w == 0 or b == 0:
            raise ValueError(f"pixel_values has a zero-size dimension: {tuple(pixel_values.shape)}")
        check_input_size(h, w, self.size_divisor, self.feature_stride)
        if not pixel_values.is_floating_point():
            raise ValueError(f"pixel_values must be a float tensor (normalised), got {pixel_values.dtype}")
        param = next(self.parameters())  # the weights' dtype and device: metadata, no host sync
        if pixel_values.device != param.device:
            raise ValueError(f"pixel_values is on {pixel_values.device} but the model is on {param.device}: move one "
                             f"(pixel_values.to({str(param.device)!r}) or model.to(...))")
        if pixel_values.dtype != param.dtype and not torch.is_autocast_enabled(pixel_values.device.type):
            raise ValueError(f"pixel_values is {pixel_values.dtype} but the model's weights are {param.dtype}: convert "
                             f"the input (pixel_values.to({param.dtype})) or run under torch.autocast")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got shape {tuple(input_ids.shape)}")
        if input_ids.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape "
                             f"{tuple(input_ids.shape)}")
        if input_ids.shape[0] != b:
            raise ValueError(f"{b} images but {input_ids.shape[0]} texts (input_ids batch)")
        max_len = self.text_encoder.config.max_position_embeddings
        if input_ids.shape[1] == 0 or input_ids.shape[1] > max_len:
            raise ValueError(f"text length {input_ids.shape[1]} must be in 1..{max_len}")
        if _compiling() or values is False:
            return
        if values is None and any(t.device.type != "cpu" for t in (pixel_values, input_ids, attention_mask)):
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

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position: torch.Tensor | None = None) -> SegmentationOutput:
        """``pixel_values [B, in_chans, H, W]`` (normalised), ``input_ids``/``attention_mask``
        ``[B, L]`` → :class:`SegmentationOutput` with ``logits [B, 2, H, W]``; ``position [B, 4]``:
        each image's box in its scene, for a scene-position encoding (:mod:`rrsis.fusion.position`)."""
        self.check_inputs(pixel_values, input_ids, attention_mask)
        return self._forward(pixel_values, input_ids, attention_mask, *(() if position is None else (position,)))

    # ------------------------------------------------------------------ inference
    def preprocess(self, images: ImageLike | Sequence[ImageLike], *, image_size: int | None = None, bands: Bands = None,
                   scale: Scale = None, max_pixels: int | None = MAX_PIXELS) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Images → the model's input: read, band choice, value scaling, resize, normalise.

        The one preprocessing of rrsis inference (``predict``, ``segment_scene`` in every mode,
        the app): :func:`rrsis.data.read_image`, then :func:`rrsis.data.transforms.resize_image`
        to ``image_size``² and :func:`rrsis.data.transforms.normalize`, the arithmetic the
        datasets use for training and evaluation, with the model's :attr:`pixel_mean` / ``pixel_std``.
        A ``[in_chans, H, W]`` float tensor counts as already
        read (the reader's values, channels first): callers that read pixels themselves (a
        scene's windows) only resize and normalise here.

        Args:
            images: paths, PIL images, numpy arrays (see :meth:`predict`) or read
                ``[in_chans, H, W]`` tensors; or a single one.
            image_size: square model input side (default: the model's ``image_size``), a multiple
                of ``size_divisor``, at least :func:`~rrsis.data.transforms.smallest_input_side` (64).
            bands: band numbers counted from 1, ``in_chans`` of them (see :meth:`predict`).
            scale: value scaling (see :func:`rrsis.data.read_image`; default: :attr:`pixel_scale`).
            max_pixels: largest image read (see :meth:`predict`).

        Returns:
            ``(pixel_values [B, in_chans, S, S]`` on the model's device and dtype, ``[(H, W), ...]``
            the native size of each image, for :meth:`postprocess`).
        """
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not images:
            raise ValueError("no images given")
        size = check_image_size(image_size, self.image_size, self.size_divisor, getattr(self, "feature_stride", None))
        pixels, sizes = [], []
        n, mean, std, own_scale = _input_bands(self)
        for i, im in enumerate(images):
            if isinstance(im, torch.Tensor):
                if im.dim() != 3 or im.shape[0] != n or not im.is_floating_point():
                    raise ValueError(f"image {i}: a tensor must be read pixels [{n}, H, W] float (the model's "
                                     f"in_chans={n}), got {tuple(im.shape)} {im.dtype}")
                x = im.float()
            else:
                a = _read_nodata(im, i, bands, own_scale if scale is None else scale, max_pixels, n, self.colours, self.band_names)[0]
                x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
            sizes.append((int(x.shape[1]), int(x.shape[2])))
            pixels.append(normalize(resize_image(x, size), mean, std))
        param = next(self.parameters())
        return torch.stack(pixels).to(device=param.device, dtype=param.dtype), sizes

    def postprocess(self, logits: torch.Tensor, sizes: Sequence[tuple[int, int]], *, output: str = "mask",
                    threshold: float = 0.5) -> list:
        """The model's logits → results at each image's native size: the one postprocessing of
        rrsis inference (``predict``, ``segment_scene``'s global pass, native-resolution
        evaluation).

        The logits are resized back bilinearly (``align_corners=False``), in float32; the
        foreground probability is the softmax's second channel; the mask is probability
        ``> threshold`` (0.5 equals the anchors' argmax up to exact ties).

        Args:
            logits: ``[B, 2, h, w]``.
            sizes: ``(H, W)`` per image.
            output: ``"mask"`` (bool numpy ``[H, W]``), ``"probability"`` (float32 numpy
                ``[H, W]``) or ``"logits"`` (the resized float32 tensor ``[1, 2, H, W]``, on the
                logits' device; evaluation takes its argmax).
            threshold: foreground-probability threshold for ``"mask"``, in (0, 1).

        Returns:
            one result per image.
        """
        if output not in ("mask", "probability", "logits"):
            raise ValueError(f"output must be 'mask', 'probability' or 'logits', got {output!r}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if logits.dim() != 4 or logits.shape[1] != 2:
            raise ValueError(f"logits must be [B, 2, H, W], got shape {tuple(logits.shape)}")
        if len(sizes) != logits.shape[0]:
            raise ValueError(f"{logits.shape[0]} logits but {len(sizes)} sizes")
        out = []
        for logit, hw in zip(logits, sizes):
            hw = (int(hw[0]), int(hw[1]))
            up = logit[None].float()
            if tuple(up.shape[-2:]) != hw:
                up = F.interpolate(up, size=hw, mode="bilinear", align_corners=False)
            if output == "logits":
                out.append(up)
                continue
            prob = up.softmax(dim=1)[0, 1].cpu().numpy()
            out.append(threshold_mask(prob, threshold) if output == "mask" else prob)
        return out

    def check_texts(self, texts: str | Sequence[str]) -> list[str]:
        """The expressions as a list, checked (:func:`rrsis.data.expressions.check_expressions`),
        with a warning naming each one the model will not see whole (cut at ``max_tokens``) or
        not at all (every word unknown to the vocabulary)."""
        texts = check_expressions(texts, "text")
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer: predict needs a vocabulary. Load one with "
                             "model.tokenizer = rrsis.Tokenizer('vocab.txt'), or use rrsis.from_pretrained / "
                             "create_model(..., pretrained=True)")
        for i, t in enumerate(texts):
            problem = expression_problem(self.tokenizer, t, words=True)
            if problem:
                # check_texts <- predict <- torch.no_grad's wrapper <- the caller
                warnings.warn(f"text {i}: {problem}", UserWarning, stacklevel=4)
        return texts

    @torch.no_grad()
    def predict(
        self,
        images: ImageLike | Sequence[ImageLike],
        texts: str | Sequence[str],
        *,
        threshold: float = 0.5,
        batch_size: int = 8,
        image_size: int | None = None,
        bands: Bands = None,
        scale: Scale = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> list[np.ndarray]:
        """Segment what each expression names; one bool mask per image at its native size.

        :meth:`preprocess` (read, bands, scaling, resize, normalise: the datasets' arithmetic),
        the forward pass, :meth:`postprocess` (logits resized back bilinearly, as
        native-resolution evaluation does; probability; threshold). A warning names each
        expression the model will not see whole (cut at ``max_tokens``) or not at all (every
        word unknown to the vocabulary).

        Args:
            images: paths, PIL images, numpy arrays or tensors (``[H, W]`` / ``[H, W, C]``, or
                ``[C, H, W]`` with C of 1, 3 or 4 and W of none of these; uint8, or
                float in [0, 1]; C = 4 is RGBA), any size; or a single one.
            texts: one expression per image (or a single string for a single image).
            threshold: foreground-probability threshold (0.5 equals the anchors' argmax).
            batch_size: images per forward pass.
            image_size: square model input side (default: the model's ``image_size``),
                a multiple of 32, at least 64 (the zoo's models; see :meth:`preprocess`).
            bands: band numbers **counted from 1** (as GDAL counts), as many as the model's
                ``in_chans`` (``(1, 2, 3)``: the R, G, B of an RGBN GeoTIFF for an RGB model; an
                ``in_chans=4`` model reads a 4-band image whole); see :func:`rrsis.data.read_image`.
            scale: value scaling for 16-bit or float rasters (``"dtype"``, ``"max"``, ``"minmax"``
                or a divisor; default: the training data's, :attr:`pixel_scale`); see read_image.
            max_pixels: largest image, height × width, read whole into memory (default
                :data:`rrsis.data.io.MAX_PIXELS`, 40 million; ``None``: no bound but PIL's),
                checked on the file's header before decoding. Larger scenes go through
                :func:`rrsis.segment_scene`, which reads rasters window by window.

        Pixels with a non-finite value (NaN, ±inf) in any band, or a TIFF's declared nodata value
        (GDAL's tag 42113 or ``.aux.xml``) in every band read, are *nodata*, as in
        :func:`rrsis.segment_scene`: the model sees them as 0 and their mask pixels are ``False``.

        Returns:
            ``[H_i, W_i]`` bool arrays.
        """
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not isinstance(texts, (str, list, tuple)):
            raise ValueError(f"texts must be a string or a list of strings (one per image), got "
                             f"{type(texts).__name__} {texts!r:.60}")
        texts = [texts] if isinstance(texts, str) else list(texts)
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts; give one expression per image")
        if not images:
            raise ValueError("no images given")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = self.check_texts(texts)
        size = check_image_size(image_size, self.image_size, self.size_divisor, getattr(self, "feature_stride", None))
        # Read every image first, so a bad one fails before any forward pass.
        scale = self.pixel_scale if scale is None else scale  # the training data's, when recorded
        read_all = [_read_nodata(im, i, bands, scale, max_pixels, self.in_chans, self.colours, self.band_names) for i, im in enumerate(images)]
        read = [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)) for a, _ in read_all]
        tokens = self.tokenizer(texts)
        device = next(self.parameters()).device
        was_training, masks = self.training, []
        self.eval()
        try:
            for s in range(0, len(read), batch_size):
                pix, sizes = self.preprocess(read[s : s + batch_size], image_size=size)
                out = self(pix, tokens["input_ids"][s : s + batch_size].to(device),
                           tokens["attention_mask"][s : s + batch_size].to(device))
                masks += self.postprocess(check_finite_logits(self, out.logits), sizes, threshold=threshold)
        finally:
            self.train(was_training)
        for m, (_, nodata) in zip(masks, read_all):
            if nodata is not None:
                m[nodata] = False
        return masks

    # ------------------------------------------------------------------ weights
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """:meth:`torch.nn.Module.load_state_dict`; also takes the state dict of ``torch.compile(model)``
        (keys ``_orig_mod.*``) or of a DDP-wrapped model (``module.*``)."""
        return super().load_state_dict(unwrapped_state(state_dict, self.state_dict()), strict=strict, assign=assign)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> Path:
        """Write ``config.json``, ``model.safetensors``, the tokenizer files (when
        ``self.tokenizer`` is set) and a model card, atomically; see :func:`rrsis.hub.save_pretrained`.

        Args:
            save_directory: target directory (created or replaced; files rrsis does not own are kept).
            **kwargs: those of :func:`rrsis.hub.save_pretrained`: ``metrics=`` and ``dataset=``
                (model card), ``repo_id=`` (the card's loading snippet), ``origin=``.
        """
        return hub.save_pretrained(self, save_directory, **kwargs)

    def num_parameters(self, only_trainable: bool = False) -> int:
        """The number of parameters (those with ``requires_grad`` only, with ``only_trainable=True``),
        as ``transformers`` counts them: a tensor shared by two modules counts once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

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
