"""Crops of large scenes, each with its box in the scene: training data for whole-scene inference.

A model that segments a large scene tile by tile must learn two things no single-image dataset
teaches: to say "not here" (most tiles hold nothing the expression names) and to answer words
about the scene rather than the tile ("the pond in the north-west", "the northernmost ship").
:class:`SceneCropDataset` serves crops of large scenes with the expressions of the *whole*
scene: the mask is the part of the scene's answer inside the crop (often empty), and the sample
carries the crop's ``position``, its box ``(left, top, right, bottom)`` in scene fractions, which
a model with a scene-position encoding (``fusion.position``) reads. At inference,
:func:`rrsis.segment_scene` passes every tile's box the same way.

Layout (``rrsis synth --large --train-size N --n-scenes K ROOT/SPLIT``): ``ROOT/SPLIT/*.json``
as :func:`rrsis.data.synthetic.at_scale.write_scene_at_scale` writes them, each naming its
``image`` (RGB GeoTIFF) and ``labels`` (object ids) beside it, and its ``expressions`` with
target ids (an empty list: the expression names nothing in the scene).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import DATASETS, Entry
from .expressions import check_expression
from .io import read_image
from .transforms import ResizeNormalize, Size

__all__ = ["SceneCropDataset"]

logger = logging.getLogger(__name__)


def _read_labels(path: Path) -> np.ndarray:
    try:
        import rasterio
    except ImportError as exc:  # pragma: no cover - geo extra missing
        raise ImportError('scene-crops reads GeoTIFF labels with rasterio: pip install "rrsis[geo]"') from exc
    with rasterio.open(path) as ds:
        return ds.read(1).astype(np.int64)


@DATASETS.register("scene-crops")
class SceneCropDataset(Dataset):
    """Square crops of large labelled scenes with the scene's expressions and the crop's box.

    Training (``train=True``): sample ``i`` is expression ``i`` of the flattened list; each
    epoch draws a new crop for it (:meth:`set_epoch`): with probability ``target_fraction``
    (when the expression has targets) a crop holding the centre of one of its targets, else a
    crop anywhere (mostly holding none). Evaluation: two fixed crops per expression, one around
    its first target (when it has one) and one drawn with a fixed seed.

    Samples are the dicts of :class:`~rrsis.data.base.ReferringDataset` (``pixel_values``,
    ``mask``, ``text``, ``image_id``, ``sample_id``, ``orig_size``, tokens with a tokenizer) plus
    ``position`` float ``[4]``.

    Args:
        root: dataset folder (``root/split/*.json``).
        split: sub-folder.
        size: model input side (the crop is resized to it when ``crop`` differs).
        crop: crop side in scene pixels (default: the scenes' ``train_size``, so objects keep
            the scale of the small training scenes).
        train: training sampling (see above) or fixed evaluation crops.
        tokenizer: ``tokenizer(list_of_str) -> {"input_ids", "attention_mask"}``.
        target_fraction: share of training crops drawn around a target.
        seed: seed of the crop draws.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        size: Size = 96,
        crop: int | None = None,
        train: bool = True,
        tokenizer=None,
        target_fraction: float = 0.6,
        seed: int = 0,
    ) -> None:
        folder = Path(root) / split
        files = sorted(folder.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{folder}: no scene .json files (write them with "
                                    f"`rrsis synth --large --train-size N {folder}`)")
        if not 0.0 <= target_fraction <= 1.0:
            raise ValueError(f"target_fraction must be in [0, 1], got {target_fraction}")
        self.train, self.tokenizer, self.seed = train, tokenizer, int(seed)
        self.target_fraction = float(target_fraction)
        self.transform = ResizeNormalize(size)
        self.images: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.entries: list[Entry] = []
        self.samples: list[tuple[int, int]] = []  # (entry, expression) per sample
        crops = set()
        for path in files:
            with open(path) as fh:
                meta = json.load(fh)
            for key in ("image", "labels", "expressions"):
                if key not in meta:
                    raise ValueError(f"{path}: not a large-scene description (no {key!r})")
            image = read_image(path.parent / meta["image"])
            labels = _read_labels(path.parent / meta["labels"])
            if labels.shape != image.shape[:2]:
                raise ValueError(f"{path}: labels {labels.shape} and image {image.shape[:2]} differ in size")
            side = int(crop or meta.get("settings", {}).get("train_size", 0))
            if side <= 0:
                raise ValueError(f"{path}: no settings.train_size: pass crop=")
            if side > min(labels.shape):
                raise ValueError(f"{path}: crop {side} is larger than the scene {labels.shape}")
            crops.add(side)
            k = len(self.images)
            self.images.append(image)
            self.labels.append(labels)
            for j, e in enumerate(meta["expressions"]):
                text = check_expression(e["text"], f"{path.name}: expression {j}")
                targets = [int(t) for t in e["targets"]]
                missing = [t for t in targets if not (labels == t).any()]
                if missing:
                    raise ValueError(f"{path.name}: expression {j} ({text!r}) names objects {missing} "
                                     f"that the labels do not hold")
                self.entries.append(Entry(name=f"{path.stem}:{j}", source=str(path), image_path=str(path.parent / meta["image"]),
                                          image_id=path.stem, sentences=[(f"{path.stem}:{j}", text)],
                                          target=targets, extra={"scene": k, "kind": e.get("kind")}))
        if len(crops) != 1:
            raise ValueError(f"{folder}: scenes of different train_size {sorted(crops)}: pass crop=")
        self.crop = crops.pop()
        per = 1 if train else 2
        self.samples = [(i, r) for i in range(len(self.entries)) for r in range(per)]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Training crops are drawn anew each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def _window(self, index: int, entry: Entry, draw: int) -> tuple[int, int]:
        labels = self.labels[entry.extra["scene"]]
        h, w = labels.shape
        c = self.crop
        rng = np.random.default_rng([self.seed, self.epoch if self.train else 0, index, draw])
        around = bool(entry.target) and (draw == 0 if not self.train else rng.random() < self.target_fraction)
        if around:
            t = entry.target[0] if not self.train else entry.target[int(rng.integers(len(entry.target)))]
            ys, xs = np.nonzero(labels == t)
            cy, cx = int(ys.mean()), int(xs.mean())
            y0 = int(rng.integers(max(cy - c + 1, 0), min(cy, h - c) + 1))
            x0 = int(rng.integers(max(cx - c + 1, 0), min(cx, w - c) + 1))
            return y0, x0
        return int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        ei, draw = self.samples[index]
        entry = self.entries[ei]
        k = entry.extra["scene"]
        image, labels = self.images[k], self.labels[k]
        h, w = labels.shape
        y0, x0 = self._window(index, entry, draw)
        c = self.crop
        mask = np.isin(labels[y0:y0 + c, x0:x0 + c], entry.target)
        pixel_values, mask_t = self.transform(image[y0:y0 + c, x0:x0 + c], mask)
        sample_id, text = entry.sentences[0]
        sample: dict[str, Any] = {
            "pixel_values": pixel_values,
            "mask": mask_t,
            "text": text,
            "image_id": entry.image_id,
            "sample_id": sample_id if self.train else f"{sample_id}:{draw}",
            "orig_size": (c, c),
            "position": torch.tensor([x0 / w, y0 / h, (x0 + c) / w, (y0 + c) / h], dtype=torch.float32),
        }
        if self.tokenizer is not None:
            enc = self.tokenizer([text])
            sample["input_ids"] = torch.as_tensor(enc["input_ids"], dtype=torch.long)[0]
            sample["attention_mask"] = torch.as_tensor(enc["attention_mask"], dtype=torch.long)[0]
        return sample

    def __repr__(self) -> str:
        return (f"SceneCropDataset({len(self.images)} scenes, {len(self.entries)} expressions, crop "
                f"{self.crop}, {'train' if self.train else 'eval'})")
