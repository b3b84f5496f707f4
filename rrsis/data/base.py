"""The dataset base class: index of (image, expressions, target) entries → model-ready samples."""

from __future__ import annotations

import abc
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._config import check_keys
from ..registry import Registry
from .band_names import common_named_bands, declared_names
from .expressions import check_expression, unreadable_expressions
from .headers import ImageHeader, declared_channels, header_problems, mixed_note, read_header
from .io import Bands, Scale, read_image
from .training_scale import training_scale
from .transforms import ResizeNormalize, Size

__all__ = ["DATASETS", "ReferringDataset", "build_dataset", "check_dataset_options", "dataset_options"]

logger = logging.getLogger(__name__)

DATASETS = Registry("dataset")
_OPTIONS_WHERE = "data.options in a training recipe, --data-option KEY=VALUE for rrsis evaluate"

Tokenizer = Callable[[list[str]], dict[str, Any]]


@dataclass
class Entry:
    """One target in one image and the expressions that refer to it.

    Args:
        name: how errors call it (a sample id or ``ref <id>``).
        source: the annotation file that defined it, named in errors.
        image_path: the image file.
        image_id: the dataset's image id.
        sentences: ``(sample_id, text)`` pairs.
        target: what the subclass needs to build the mask (a mask path, annotations, ...).
    """

    name: str
    source: str
    image_path: str
    image_id: Any
    sentences: list[tuple[str, str]]
    target: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class ReferringDataset(Dataset, abc.ABC):
    """Base class of the referring-segmentation datasets.

    A sample is a dict: ``pixel_values`` float ``[3, H, W]``, ``mask`` long ``[H, W]`` in {0, 1},
    ``text``, ``image_id``, ``sample_id``, ``orig_size`` ``(h, w)``; with a tokenizer also
    ``input_ids`` and ``attention_mask`` ``[L]``; with ``return_native_mask`` also
    ``native_mask`` long ``[h, w]`` at the image's own resolution. Masks may be empty
    (no-target expressions) or unions of several objects (multi-target expressions).

    Subclasses build a list of :class:`Entry` and call :meth:`_finish`; they implement
    :meth:`_check` (cheap per-entry validation at construction) and :meth:`_load_mask`.

    Args:
        size: training/eval size for the default transform, an int or ``(h, w)``.
        transform: ``(image [H, W, C] float, mask [H, W] bool) -> (tensor, tensor)``; replaces
            the default :class:`~rrsis.data.transforms.ResizeNormalize`.
        tokenizer: ``tokenizer(list_of_str) -> {"input_ids": [B, L], "attention_mask": [B, L]}``.
        bands, scale: passed to :func:`~rrsis.data.io.read_image` (``bands=None``: RGB or grey;
            other band counts raise and ask for a choice; ``bands=(1, 2, 3, 4)`` reads R, G, B
            and near-infrared for a model built with ``in_chans=4``).
        mean, std: per-band statistics of the default transform, one per band read (``None``:
            ImageNet's three); pass the model's (``model.pixel_mean``, ``model.pixel_std``).
            Their length is the band count read, as a model's ``in_chans`` is for
            ``model.predict``: with ``bands=None`` an image of exactly that many bands is read
            whole (four statistics: a 4-band raster), anything else raises naming both counts.
        return_native_mask: add ``native_mask`` for native-resolution evaluation.
        skip_bad: skip malformed samples (recorded in ``self.skipped`` as
            ``(sample_id, reason)``, with a logged warning) instead of raising. Every image and
            mask is then decoded once at construction, so a file whose header reads but whose
            body is corrupt is skipped too instead of stopping a run midway.
        check_sizes: compare image and mask sizes from file headers at construction, and
            decode the first sample's image and mask there, so that a setting wrong for a whole
            folder (``scale``, ``bands``, ``mask_threshold``) fails before a model is built.
        check_headers: read every image's and mask's header at construction (no pixel is
            decoded) and refuse, naming the file, one that the options cannot read (a band
            count ``bands`` does not fit, a dtype ``scale`` does not fit: see
            :func:`~rrsis.data.bands.check_divisor`) or that differs from the dataset's other
            files in dtype (one 16-bit image among 8-bit ones; a mask in dtype, band count or
            palette). With ``skip_bad`` such files are skipped and listed. A grey or paletted
            image among RGB ones is read as RGB, as PIL's ``convert("RGB")`` reads it, with a
            logged note naming one.
            ``False`` lets a deliberate mix through, each file read as it is.
        train: one sample per entry with a random expression each epoch (see
            :meth:`set_epoch`); otherwise every expression is a sample.
        seed: seed of the per-epoch expression choice.
        band_names: a model's band names (``model.band_names``): with ``bands=None``, the bands the
            images describe so, in that order, when every image has them at the same numbers, as
            ``model.predict`` reads a raster (from the headers: ``check_headers``); else the band rule.
    """

    def __init__(
        self, *, size: Size = 480, transform: Callable | None = None, tokenizer: Tokenizer | None = None,
        bands: Bands = None, scale: Scale = None, mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None, return_native_mask: bool = False, skip_bad: bool = False,
        check_sizes: bool = True, check_headers: bool = True, train: bool = False, seed: int = 0,
        band_names: Sequence[str] | None = None,
    ) -> None:
        if transform is not None and (mean is not None or std is not None):
            raise ValueError("mean/std set the default transform's normalisation; a given transform has its own")
        stats = {k: v for k, v in (("mean", mean), ("std", std)) if v is not None}
        self.transform = transform if transform is not None else ResizeNormalize(size, **stats)
        self.tokenizer = tokenizer
        self.bands, self.read_names = None if bands is None else tuple(bands), band_names
        # The band count read follows the statistics, as predict's follows the model's in_chans.
        self.channels = None if mean is None else len(mean)
        self.scale = scale
        # Set by the header checks: which channels read the images declare red, green, blue, the
        # names all of them give those channels (declared_names), and their training_scale (image
        # pixels, and metres, per model pixel of ``size``).
        self.rgb: tuple[int, int, int] | None = None
        self.band_names: list[str] | None = None
        self.size, self.training_scale = size, None
        self.return_native_mask, self.skip_bad = return_native_mask, skip_bad
        self.check_sizes = check_sizes
        self.check_headers = check_headers
        self._headers: dict[tuple[str, bool], ImageHeader] = {}
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.entries: list[Entry] = []
        self.skipped: list[tuple[str, str]] = []
        self._index: list[tuple[int, int]] = []

    # ---- construction -------------------------------------------------------------------

    def _check(self, entry: Entry) -> None:
        """Raise ``ValueError`` / ``FileNotFoundError`` if ``entry`` cannot be loaded."""

    @abc.abstractmethod
    def _load_mask(self, entry: Entry, hw: tuple[int, int]) -> np.ndarray:
        """The target mask, bool ``[h, w]``, for an image of size ``hw``."""

    def _header(self, path: str, palette_to_rgb: bool = True) -> ImageHeader:
        """A file's header, read once per construction (refs share images)."""
        key = (path, palette_to_rgb)
        if key not in self._headers:
            self._headers[key] = read_header(path, palette_to_rgb)
        return self._headers[key]

    def _files(self, entry: Entry) -> dict[str, ImageHeader]:
        """The headers of the files ``entry`` reads, by role (``"image"``, ``"mask"``)."""
        return {"image": self._header(entry.image_path)}

    def _reject(self, sample_ids: Sequence[str], exc: Exception) -> None:
        if not self.skip_bad:
            raise exc
        reason = str(exc)
        self.skipped.extend((sid, reason) for sid in sample_ids)

    def _finish(self, entries: Sequence[Entry]) -> None:
        """Validate entries (dropping or raising on bad ones) and build the sample index."""
        checked = []
        for entry in entries:
            good = []
            for sid, text in entry.sentences:
                try:
                    good.append((sid, check_expression(text).strip()))
                except ValueError as exc:
                    self._reject([sid], ValueError(f"{entry.source}: sample {sid}: {exc}"))
            if not good:
                continue
            entry.sentences = good
            try:
                self._check(entry)
            except (ValueError, FileNotFoundError) as exc:
                self._reject([sid for sid, _ in good], exc)
                continue
            checked.append(entry)
        if self.check_headers:
            checked = self._check_headers(checked)
        for entry in checked:
            try:
                if self.skip_bad:
                    self._decode(entry)
            except (ValueError, FileNotFoundError) as exc:
                self._reject([sid for sid, _ in entry.sentences], exc)
                continue
            self.entries.append(entry)
        self._headers = {}
        if self.entries and self.check_sizes and not self.skip_bad:
            # One decode at construction: a setting wrong for the whole folder (16-bit images
            # without scale=, 0/1 masks with the default mask_threshold, a 4-band raster without
            # bands=) stops here, before a model is built, not at the first batch.
            try:
                self._decode(self.entries[0])
            except ValueError as exc:
                raise ValueError(f"{exc} (dataset options: {_OPTIONS_WHERE})") from exc
        if self.train:
            self._index = [(i, -1) for i in range(len(self.entries))]
        else:
            self._index = [
                (i, j) for i, e in enumerate(self.entries) for j in range(len(e.sentences))
            ]
        if self.skipped:
            shown = "; ".join(f"{sid}: {why}" for sid, why in self.skipped[:3])
            logger.warning(
                "%s: skipped %d bad sample(s) (see .skipped): %s%s",
                type(self).__name__, len(self.skipped), shown,
                " ..." if len(self.skipped) > 3 else "",
            )

    def _check_headers(self, entries: list[Entry]) -> list[Entry]:
        """The entries whose files' headers pass (see ``check_headers``); the rest are rejected."""
        files, kept = [], []
        for entry in entries:
            try:
                files.append(self._files(entry))
                kept.append(entry)
            except (ValueError, FileNotFoundError) as exc:
                self._reject([sid for sid, _ in entry.sentences], exc)
        if self.bands is None and self.read_names:  # a model's bands found by name, as predict finds them
            self.bands = common_named_bands([f["image"] for f in files], self.read_names, self.channels)
        good, passed = [], {}
        for entry, found, headers in zip(kept, header_problems(files, self.bands, self.scale, self.channels,
                                                               self.read_names), files):
            if found is None:
                good.append(entry)
                passed[headers["image"].path] = headers["image"]
                continue
            problem, about_options = found
            hint = f" (dataset options: {_OPTIONS_WHERE})" if about_options else ""
            self._reject([sid for sid, _ in entry.sentences],
                         ValueError(f"{entry.source}: sample {entry.name}: {problem}{hint}"))
        self.rgb = declared_channels(list(passed.values()), self.bands, self.channels)
        self.band_names = declared_names(list(passed.values()), self.bands, self.channels)
        self.training_scale = training_scale(list(passed.values()), self.size, type(self).__name__)
        note = mixed_note(passed)
        if note:
            logger.warning("%s: %s", self.__class__.__name__, note)
        return good

    # ---- access ---------------------------------------------------------------------------

    def _decode(self, entry: Entry) -> None:
        image = read_image(entry.image_path, bands=self.bands, scale=self.scale, channels=self.channels)
        mask = self._load_mask(entry, image.shape[:2])
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"{entry.source}: sample {entry.name}: mask is {mask.shape[0]}x{mask.shape[1]} "
                f"but image {entry.image_path} is {image.shape[0]}x{image.shape[1]}"
            )

    def set_epoch(self, epoch: int) -> None:
        """Choose which expression each entry shows in training mode (deterministic per epoch).

        Args:
            epoch: the epoch number.
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._index)

    def sentence_index(self, index: int) -> tuple[int, int]:
        """``(entry index, sentence index)`` of sample ``index`` in the current epoch."""
        ei, si = self._index[index]
        if si < 0:
            n = len(self.entries[ei].sentences)
            si = int(np.random.default_rng((self.seed, self.epoch, ei)).integers(n)) if n > 1 else 0
        return ei, si

    def __getitem__(self, index: int) -> dict[str, Any]:
        ei, si = self.sentence_index(index)
        entry = self.entries[ei]
        sample_id, text = entry.sentences[si]
        try:
            image = read_image(entry.image_path, bands=self.bands, scale=self.scale, channels=self.channels)
            hw = image.shape[:2]
            mask = self._load_mask(entry, hw)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"sample {sample_id}: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"sample {sample_id}: {exc}") from exc
        if mask.shape != hw:
            raise ValueError(
                f"{entry.source}: sample {sample_id}: mask is {mask.shape[0]}x{mask.shape[1]} "
                f"but image {entry.image_path} is {hw[0]}x{hw[1]}"
            )
        pixel_values, mask_t = self.transform(image, mask)
        sample: dict[str, Any] = {
            "pixel_values": pixel_values,
            "mask": mask_t,
            "text": text,
            "image_id": entry.image_id,
            "sample_id": sample_id,
            "orig_size": (int(hw[0]), int(hw[1])),
        }
        if self.tokenizer is not None:
            unreadable_expressions(self)  # once: all of them counted, a warning naming a few
            enc = self.tokenizer([text])
            sample["input_ids"] = torch.as_tensor(enc["input_ids"], dtype=torch.long)[0]
            sample["attention_mask"] = torch.as_tensor(enc["attention_mask"], dtype=torch.long)[0]
        if self.return_native_mask:
            sample["native_mask"] = torch.from_numpy(mask.astype(np.int64))
        return sample

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        return (
            f"{type(self).__name__}({len(self)} samples, {len(self.entries)} targets, {mode}, "
            f"{len(self.skipped)} skipped)"
        )


def dataset_options(name: str) -> list[str] | None:
    """The keyword options a registered dataset takes: its constructor's and, through its
    ``**kwargs``, its base classes' (``root`` and ``split`` aside); ``None`` when they cannot be
    told (a builder function, or ``**kwargs`` that no base class spells out).

    Args:
        name: registry key (``DATASETS.names()``).
    """
    builder = DATASETS.get(name)
    chain = inspect.getmro(builder) if inspect.isclass(builder) else (builder,)
    known: list[str] = []
    for item in chain:
        init = vars(item).get("__init__") if inspect.isclass(item) else item
        if init is None:
            continue
        if item is object:
            return None
        params = inspect.signature(init).parameters.values()
        known += [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.name not in ("self", "root", "split") and p.name not in known]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return known
    return None


def check_dataset_options(name: str, options: Any, where: str = "data.options") -> None:
    """Refuse an option the dataset ``name`` does not take (a misspelt ``mask_treshold``)
    with the closest valid one, before any file is read.

    Raises:
        ConfigError: naming the key, the dataset and the closest valid option.
    """
    known = dataset_options(name)
    if known is not None:
        check_keys(options, known, f"{where} (dataset {name!r})")


# What marks each on-disk layout, for the hint when a folder is read with the wrong one.
_LAYOUT_MARKS = (("refs(unc).p", "rrsisd"), ("output_phrase_train.txt", "risbench (or refsegrs)"))


def layout_hint(root: str, expected: str) -> str:
    """``"; ..."``: where the file ``expected`` is, if a folder just inside ``root`` holds it
    (the root given one level too high), else which other layout ``root`` (or a folder inside)
    has; ``""`` when none is found.

    Args:
        root: the folder given as the dataset root.
        expected: the file the dataset looked for (its name).
    """
    subdirs = sorted(e.path for e in os.scandir(root) if e.is_dir()) if os.path.isdir(root) else []
    for folder in subdirs:
        if os.path.isfile(os.path.join(folder, expected)):
            return f"; {folder} holds {expected}: is that the root?"
    for folder in (root, *subdirs):
        for mark, dataset in _LAYOUT_MARKS:
            if mark != expected and os.path.isfile(os.path.join(folder, mark)):
                return (f"; {folder} holds {mark}, the {dataset} layout (data.dataset / rrsis "
                        "evaluate --dataset)")
    return ""


def build_dataset(name: str, root: str, split: str = "train", **kwargs: Any) -> ReferringDataset:
    """Build a registered dataset: ``"refsegrs"``, ``"rrsisd"``, ``"risbench"`` or ``"folder"``.

    Args:
        name: registry key (``DATASETS.names()``).
        root: dataset folder.
        split: ``"train"``, ``"val"``, ``"test"``, ...
        **kwargs: the dataset's options (an unknown one raises :class:`~rrsis.ConfigError`).
    """
    check_dataset_options(name, kwargs, "dataset options")
    return DATASETS.build(name, root=root, split=split, **kwargs)
