"""RRSIS-D in the REFER layout: ``refs(unc).p`` + COCO ``instances.json`` + an image folder."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from .base import DATASETS, Entry, ReferringDataset, layout_hint
from .coco import decode_segmentation, resolve_backend, warn_polygon_fallback
from .coco_checks import checked_parts
from .io import image_size, load_json, load_plain_pickle

__all__ = ["RRSISDDataset", "find_image_dir", "load_refer"]

logger = logging.getLogger(__name__)

# How to give the image folder, in each place a dataset option is given.
IMAGE_DIR_HOWTO = ("give the folder as the dataset option image_dir: rrsis train --data.options.image_dir DIR "
                   "(or --data.options '{\"image_dir\": \"DIR\"}'), rrsis evaluate --data-option image_dir=DIR, "
                   "image_dir=DIR in Python")


def load_refer(
    refs_path: str, instances_path: str
) -> tuple[list[dict[str, Any]], dict[Any, dict], dict[Any, dict]]:
    """Read a REFER annotation pair and check its structure.

    Args:
        refs_path: the ``refs(unc).p`` pickle (plain data only).
        instances_path: the COCO ``instances.json``.

    Returns:
        ``(refs, images by id, annotations by id)``.
    """
    # Wrong content in a data file is a ValueError (the loaders' contract), not a TypeError.
    refs = load_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise ValueError(
            f"{refs_path}: expected a list of refs, got {type(refs).__name__}"
        )
    coco = load_json(instances_path)
    if not (
        isinstance(coco, dict)
        and isinstance(coco.get("images"), list)
        and isinstance(coco.get("annotations"), list)
    ):
        raise ValueError(
            f"{instances_path}: expected a COCO dict with 'images' and 'annotations' lists"
        )
    try:
        images = {img["id"]: img for img in coco["images"]}
        anns = {ann["id"]: ann for ann in coco["annotations"]}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{instances_path}: an image or annotation has no 'id' ({exc})") from exc
    return refs, images, anns


def find_image_dir(root: str, image_dir: str) -> str:
    """The image folder: ``root/image_dir``; when that is missing and ``image_dir`` is relative,
    the RRSIS-D release's own place for it, beside the annotations' folder
    (``<release>/rrsisd/{refs(unc).p, instances.json}`` and ``<release>/images/rrsisd/JPEGImages``),
    if exactly one such folder exists; it is used with a warning naming it.

    Raises:
        FileNotFoundError: no folder, or several candidates; the message says how to name it.
    """
    given = os.path.join(root, image_dir)
    if os.path.isdir(given):
        return given
    found: list[str] = []
    if not os.path.isabs(image_dir):
        top = os.path.abspath(root)
        parent = os.path.dirname(top)
        for name in ("rrsisd", os.path.basename(top)):
            candidate = os.path.join(parent, "images", name, image_dir)
            if os.path.isdir(candidate) and candidate not in found:
                found.append(candidate)
    if len(found) == 1:
        logger.warning("no image folder %s; reading the images from %s, where the RRSIS-D release keeps them "
                       "(the dataset option image_dir chooses another)", given, found[0])
        return found[0]
    where = (f"; {' and '.join(found)} both could be the images" if found else
             "; if the images are elsewhere (the RRSIS-D release keeps them in images/rrsisd/JPEGImages "
             "beside the folder of refs(unc).p)")
    raise FileNotFoundError(f"{given}: image folder not found{where}: {IMAGE_DIR_HOWTO}")


def _ann_ids(value: Any) -> list[Any]:
    """A ref's ``ann_id``: one id, a list (multi-target), or ``-1`` / ``None`` / ``[]`` (no
    target)."""
    if value is None:
        return []
    ids = list(value) if isinstance(value, (list, tuple)) else [value]
    return [i for i in ids if i is not None and i != -1]


def _split_matches(wanted: str, split: str) -> bool:
    # As REFER's getRefIds: "test" selects testA/testB/... too.
    return split == wanted or (wanted == "test" and "test" in split)


@DATASETS.register("rrsisd")
class RRSISDDataset(ReferringDataset):
    """RRSIS-D (Liu et al., CVPR 2024) and any REFER-layout dataset.

    ``refs(unc).p`` holds refs ``{ref_id, ann_id, image_id, category_id, split, sentences:
    [{raw, sent, tokens, sent_id}]}``; ``ann_id`` may also be a list (multi-target: the masks are
    unioned) or ``-1`` / ``[]`` (no target: an empty mask). Masks are COCO polygons or RLE.

    Args:
        root: folder with the two annotation files.
        split: ``"train"``, ``"val"``, ``"test"`` (also matches ``testA``...), or another split
            present in the refs.
        mode: ``"eval"`` (every sentence is a sample) or ``"train"`` (one random sentence per
            ref, redrawn each epoch); ``None``: train for the train split, else eval.
        refs_file, instances_file: file names under ``root`` (or absolute paths).
        image_dir: image folder under ``root`` or absolute. The official release keeps the
            images beside the annotations' folder (``refer/data/rrsisd`` and
            ``refer/data/images/rrsisd/JPEGImages``): a relative ``image_dir`` missing under
            ``root`` is looked for there (:func:`find_image_dir`).
        sentence_key: which sentence field is the text (``"raw"``; ``"sent"`` if missing).
        coco_backend: ``"auto"``, ``"pycocotools"`` or ``"numpy"`` mask decoding; the one used is
            ``coco_backend_used``. ``"auto"`` without pycocotools (the ``coco`` extra) rasterises
            polygons by numpy's rule, with a warning: published RRSIS-D numbers need
            pycocotools' masks.
        **kwargs: :class:`~rrsis.data.base.ReferringDataset` options.

    A ref without ``split``, ``image_id``, ``sentences`` or ``ann_id`` is malformed (an error naming
    the ref and the key, or skipped and listed with ``skip_bad``). A ref with an empty
    ``sentences`` list has no sample: it is left out, with one logged
    warning per dataset giving the count and a ref id.
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        mode: str | None = None,
        refs_file: str = "refs(unc).p",
        instances_file: str = "instances.json",
        image_dir: str = "JPEGImages",
        sentence_key: str = "raw",
        coco_backend: str = "auto",
        **kwargs: Any,
    ) -> None:
        mode = mode or ("train" if split == "train" else "eval")
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        super().__init__(train=mode == "train", **kwargs)
        self.root = os.fspath(root)
        self.split = split
        self.coco_backend = coco_backend
        self.coco_backend_used = resolve_backend(coco_backend)
        self.refs_path = os.path.join(self.root, refs_file)
        self.instances_path = os.path.join(self.root, instances_file)
        if not os.path.isfile(self.refs_path):
            raise FileNotFoundError(f"{self.refs_path}: file not found{layout_hint(self.root, refs_file)}")
        refs, self.images, self.annotations = load_refer(self.refs_path, self.instances_path)
        available = sorted({str(r.get("split")) for r in refs if isinstance(r, dict)})
        if not any(_split_matches(split, s) for s in available):
            raise ValueError(
                f"{self.refs_path}: unknown split {split!r}; splits present: "
                f"{', '.join(available) or '(none)'}"
            )
        self.image_dir = find_image_dir(self.root, image_dir)
        files = set(os.listdir(self.image_dir))
        entries: list[Entry] = []
        self._no_sentences: list[Any] = []
        self._polygons = False
        for k, ref in enumerate(refs):
            if isinstance(ref, dict) and "split" not in ref:  # in no split: said, not dropped unseen
                self._reject([f"ref {ref.get('ref_id', k)}"], ValueError(
                    f"{self.refs_path}: ref {ref.get('ref_id', k)}: malformed ref (KeyError('split'))"))
                continue
            if not isinstance(ref, dict) or not _split_matches(split, str(ref.get("split"))):
                continue
            entry = self._entry(k, ref, sentence_key, files)
            if entry is not None:
                entries.append(entry)
        self._finish(entries)
        if self._no_sentences:
            logger.warning("%s: %d ref(s) of split %r have no sentences and are left out (e.g. ref %s)",
                           self.refs_path, len(self._no_sentences), split, self._no_sentences[0])
        if self._polygons and coco_backend == "auto" and self.coco_backend_used == "numpy":
            warn_polygon_fallback()

    def _entry(self, k: int, ref: dict, key: str, files: set) -> Entry | None:
        ref_id = ref.get("ref_id", k)
        name = f"ref {ref_id}"
        try:
            sentences = [
                (f"ref{ref_id}/sent{s.get('sent_id', j)}", s.get(key, s.get("sent", "")))
                for j, s in enumerate(ref["sentences"])
            ]
            image_id = ref["image_id"]
            target = _ann_ids(ref["ann_id"])  # absent is malformed; -1 / [] / None say "no target"
        except (KeyError, TypeError, AttributeError) as exc:
            self._reject([name], ValueError(f"{self.refs_path}: {name}: malformed ref ({exc!r})"))
            return None
        if not sentences:
            self._no_sentences.append(ref_id)  # told once, after the split is read
            return None
        image = self.images.get(image_id)
        file_name = image.get("file_name", "") if isinstance(image, dict) else ""
        return Entry(
            name=name,
            source=self.refs_path,
            image_path=os.path.join(self.image_dir, file_name),
            image_id=image_id,
            sentences=sentences,
            target=target,
            extra={"image": image, "file_found": file_name in files},
        )

    def _check(self, entry: Entry) -> None:
        image = entry.extra["image"]
        if not isinstance(image, dict) or not image.get("file_name"):
            raise ValueError(
                f"{self.instances_path}: sample {entry.name}: image id {entry.image_id!r} "
                "is not listed (or has no file_name)"
            )
        if not entry.extra["file_found"]:
            raise FileNotFoundError(
                f"{self.refs_path}: sample {entry.name}: image {entry.image_path} not found"
            )
        missing = [a for a in entry.target if a not in self.annotations]
        if missing:
            raise ValueError(
                f"{self.instances_path}: sample {entry.name}: annotation id(s) {missing} not found"
            )
        for a in entry.target:
            owner = self.annotations[a].get("image_id") if isinstance(self.annotations[a], dict) else None
            if owner is not None and owner != entry.image_id:
                # Its mask was drawn on another image: training on it would teach a wrong target.
                raise ValueError(
                    f"{self.instances_path}: sample {entry.name}: annotation {a} belongs to image "
                    f"{owner!r}, but the ref is on image {entry.image_id!r}"
                )
        declared = (image.get("height"), image.get("width"))
        if self.check_sizes:
            actual = self._header(entry.image_path).hw
            if None not in declared and tuple(declared) != actual:
                raise ValueError(
                    f"{self.instances_path}: sample {entry.name}: image {entry.image_path} is "
                    f"{actual[0]}x{actual[1]} but is declared {declared[0]}x{declared[1]}"
                )
            declared = actual
        if None in declared:
            declared = image_size(entry.image_path)
        h, w = (int(v) for v in declared)
        for a in entry.target:
            # Every annotation is checked here, at construction, so that a malformed one stops
            # (or is skipped by skip_bad) before training or evaluation starts, not at its batch.
            ann = self.annotations[a]
            seg = ann.get("segmentation") if isinstance(ann, dict) else None
            try:
                self._polygons |= bool(checked_parts(seg, h, w)[0])
            except ValueError as exc:
                raise ValueError(
                    f"{self.instances_path}: sample {entry.name}: annotation {a} (image "
                    f"{entry.image_path}, {h}x{w}): {exc}"
                ) from None

    def _load_mask(self, entry: Entry, hw: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(hw, dtype=bool)
        for a in entry.target:
            seg = self.annotations[a].get("segmentation")
            try:
                # The resolved backend: construction has warned about a fallback, if any.
                mask |= decode_segmentation(seg, hw[0], hw[1], backend=self.coco_backend_used)
            except ValueError as exc:
                raise ValueError(
                    f"{self.instances_path}: annotation {a} of image {entry.image_path}: {exc}"
                ) from exc
        return mask
