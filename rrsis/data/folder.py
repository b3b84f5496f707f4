"""Folder datasets: ``images/<id>``, ``masks/<id>`` and ``output_phrase_<split>.txt`` lines.

This is the RefSegRS layout; RISBench-style releases use the same scheme, sometimes with other
folder names, extensions or mask values, which are all options here.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

import numpy as np

from .base import DATASETS, Entry, ReferringDataset, layout_hint
from .headers import ImageHeader
from .io import image_size, read_mask

__all__ = ["FolderDataset", "RISBenchDataset", "RefSegRSDataset"]

_EXT_PREFERENCE = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
_STANDARD_SPLITS = ("train", "val", "test")


def _index_folder(folder: str, ext: str | None) -> dict[str, str]:
    """Map file stem → file name for the images of a folder (listed once, not stat'ed per id);
    each whole file name maps to itself too, for phrase files whose ids carry the extension."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: folder not found")
    found: dict[str, str] = {}
    rank: dict[str, int] = {}
    names = []
    for name in os.listdir(folder):
        stem, suffix = os.path.splitext(name)
        suffix = suffix.lower()
        if ext is not None:
            if suffix == ext.lower():
                found[stem] = name
                names.append(name)
            continue
        if suffix in _EXT_PREFERENCE:
            names.append(name)
            r = _EXT_PREFERENCE.index(suffix)
            if stem not in rank or r < rank[stem]:
                found[stem], rank[stem] = name, r
    for name in names:
        found.setdefault(name, name)  # an id is a stem first
    return found


def _find(index: dict[str, str], sample_id: str) -> str | None:
    """The file of ``sample_id``: by stem, by whole name (``12.png``), or by the stem of an id
    written with an image extension whose mask has another (``12.jpg`` → ``masks/12.png``)."""
    if sample_id in index:
        return index[sample_id]
    stem, suffix = os.path.splitext(sample_id)
    return index.get(stem) if suffix.lower() in _EXT_PREFERENCE else None


def _exif_turns(path: str) -> bool:
    """Whether an image's EXIF orientation swaps its stored width and height."""
    return image_size(path) != image_size(path, upright=False)


@DATASETS.register("folder")
class FolderDataset(ReferringDataset):
    """Images, masks and one ``<id> <expression>`` line per sample (RISBench-style layout).

    Registered as ``"folder"`` and ``"risbench"``. For RISBench check the release's folder
    names and mask values and pass ``image_dir``, ``mask_dir`` and ``mask_threshold`` (e.g. 0
    for 0/1 masks) as needed. Each line is split on its first whitespace; the image and mask
    share the id, which may be written with or without its extension (``12`` or ``12.png``).
    Masks may be empty (no-target expressions) or hold several objects (multi-target
    expressions).

    Args:
        root: dataset folder.
        split: selects the phrase file; ``"train"``, ``"val"``, ``"test"`` or any split whose
            file exists.
        image_dir, mask_dir: sub-folders (or absolute paths) of images and masks.
        phrase_file: phrase file name with a ``{split}`` field.
        image_ext, mask_ext: file extensions (``".tif"``); ``None`` finds the file by id,
            preferring .tif, .tiff, .png, .jpg, .jpeg, .bmp.
        mask_threshold: mask values above it are foreground.
        **kwargs: :class:`~rrsis.data.base.ReferringDataset` options (size, tokenizer,
            skip_bad, ...).
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        image_dir: str = "images",
        mask_dir: str = "masks",
        phrase_file: str = "output_phrase_{split}.txt",
        image_ext: str | None = None,
        mask_ext: str | None = None,
        mask_threshold: float = 50,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = os.fspath(root)
        self.split = split
        self.mask_threshold = mask_threshold
        self.image_dir = os.path.join(self.root, image_dir)
        self.mask_dir = os.path.join(self.root, mask_dir)
        self.phrase_path = self._phrase_path(phrase_file, split)
        lines = self._read_lines(self.phrase_path)
        images = _index_folder(self.image_dir, image_ext)
        masks = _index_folder(self.mask_dir, mask_ext)
        entries = []
        for line_no, line in lines:
            parts = line.strip().split(maxsplit=1)
            stem = parts[0]
            text = parts[1] if len(parts) > 1 else ""
            sample_id = f"{stem}:{line_no}"
            image, mask = _find(images, stem), _find(masks, stem)
            entries.append(
                Entry(
                    name=sample_id,
                    source=f"{self.phrase_path} line {line_no}",
                    image_path=os.path.join(self.image_dir, image or stem + (image_ext or "")),
                    image_id=stem,
                    sentences=[(sample_id, text)],
                    target=os.path.join(self.mask_dir, mask or stem + (mask_ext or "")),
                    extra={"image_found": image is not None, "mask_found": mask is not None},
                )
            )
        self._finish(entries)

    def _phrase_path(self, pattern: str, split: str) -> str:
        path = os.path.join(self.root, pattern.format(split=split))
        if os.path.isfile(path):
            return path
        rx = re.compile(re.escape(pattern).replace(re.escape("{split}"), "(.+)") + "$")
        available = sorted(
            m.group(1)
            for f in glob.glob(os.path.join(glob.escape(self.root), "*"))
            if (m := rx.match(os.path.basename(f)))
        )
        if split in _STANDARD_SPLITS:
            hint = "" if available else layout_hint(self.root, os.path.basename(path))
            raise FileNotFoundError(f"{path}: phrase file for split {split!r} not found; splits found "
                                    f"in {self.root}: {', '.join(available) or '(none)'}{hint}")
        raise ValueError(
            f"unknown split {split!r}: {path} does not exist; splits found in {self.root}: "
            f"{', '.join(available) or '(none)'}"
        )

    @staticmethod
    def _read_lines(path: str) -> list[tuple[int, str]]:
        try:
            # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first id.
            with open(path, encoding="utf-8-sig") as f:
                raw = f.read().splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc})") from exc
        return [(i + 1, line) for i, line in enumerate(raw) if line.strip()]

    def _check(self, entry: Entry) -> None:
        if not entry.extra["image_found"]:
            stem = entry.image_id
            try:  # a name with a space: its id was cut there
                spaced = sorted(n for n in os.listdir(self.image_dir) if n.startswith(f"{stem} "))
            except OSError:
                spaced = []
            hint = (f"; a line's id is its first word (cut at the first space, the expression after it), and "
                    f"{spaced[0]!r} in {self.image_dir} has a space in its name: rename such files without "
                    f"spaces ({spaced[0].replace(' ', '_')!r}) and write their ids so") if spaced else ""
            raise FileNotFoundError(f"{entry.source}: sample {entry.name}: image {entry.image_path} not found{hint}")
        if not entry.extra["mask_found"]:
            raise FileNotFoundError(
                f"{entry.source}: sample {entry.name}: mask {entry.target} not found"
            )
        if self.check_sizes:
            hw_image, hw_mask = self._header(entry.image_path).hw, self._header(entry.target, False).hw
            if hw_image != hw_mask:
                turned = hw_image == hw_mask[::-1] and _exif_turns(entry.image_path)
                raise ValueError(
                    f"{entry.source}: sample {entry.name}: mask {entry.target} is "
                    f"{hw_mask[0]}x{hw_mask[1]} but image {entry.image_path} is "
                    f"{hw_image[0]}x{hw_image[1]}"
                    + (" once its EXIF orientation turns it upright (as rrsis reads images); "
                       "draw the mask on the upright image, or save the image without the tag"
                       if turned else "")
                )

    def _files(self, entry: Entry) -> dict[str, ImageHeader]:
        # A mask keeps its palette indices (read_mask), so its header is read the same way.
        return {"image": self._header(entry.image_path), "mask": self._header(entry.target, False)}

    def _load_mask(self, entry: Entry, hw: tuple[int, int]) -> np.ndarray:
        return read_mask(entry.target, self.mask_threshold)


@DATASETS.register("refsegrs")
class RefSegRSDataset(FolderDataset):
    """RefSegRS (Yuan et al., TGRS 2024): ``images/<id>.tif``, ``masks/<id>.tif`` (foreground
    where > 50) and ``output_phrase_{train,val,test}.txt``.

    Args:
        root: the ``RefSegRS`` folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (results are reported on test).
        **kwargs: :class:`FolderDataset` / :class:`~rrsis.data.base.ReferringDataset` options.
    """

    def __init__(self, root: str, split: str = "train", **kwargs: Any) -> None:
        kwargs.setdefault("image_ext", ".tif")
        kwargs.setdefault("mask_ext", ".tif")
        kwargs.setdefault("mask_threshold", 50)
        super().__init__(root, split, **kwargs)


# RISBench (Dong et al., CroBIM) ships a RefSegRS-like folder; its folder names and mask values
# are unverified (third-party loaders use images/masks or img_rgb/mask), hence the plain options.
RISBenchDataset = DATASETS.register("risbench")(FolderDataset)
