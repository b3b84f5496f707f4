"""Write generated scenes in the on-disk formats the real loaders read.

RRSIS-D (REFER): ``JPEGImages/<scene>.png``, COCO ``instances.json`` (storage tanks as
compressed RLE, vehicles as uncompressed RLE, everything else as polygons traced along pixel
edges, which decode back exactly) and ``refs(unc).p``. RefSegRS: ``images/<id>.tif``,
``masks/<id>.tif`` (255 = target) and ``output_phrase_<split>.txt``, one id per target set.
Images of four or more bands (R, G, B, near-infrared) are uncompressed TIFFs in both layouts
(``JPEGImages/<scene>.tif``), their extra bands declared spectral, not alpha, so that
:func:`rrsis.data.read_image` reads every band. All output is byte-for-byte deterministic.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from ..._atomic import atomic_open, atomic_path, atomic_write, json_text
from ..coco import mask_to_polygons, rle_encode
from .grammar import Expression
from .scene import CATEGORIES, NIR_CATEGORIES, Scene, category

__all__ = ["GeneratedScene", "RRSISDWriter", "RefSegRSWriter", "write_tiff"]

CATEGORY_IDS = {name: i + 1 for i, name in enumerate([*CATEGORIES, *NIR_CATEGORIES])}


def write_tiff(path: str, image: np.ndarray) -> None:
    """Write a uint8 ``[H, W, C]`` image as one uncompressed baseline TIFF strip (little-endian,
    interleaved): RGB photometric from three bands on, grey below, and every band after the
    colour ones declared an unspecified extra sample (ExtraSamples 0: spectral, not alpha).

    PIL would store a fourth band as alpha; rrsis's reader reads these files with numpy.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"write_tiff takes a uint8 [H, W, C] array, got {image.dtype} {image.shape}")
    h, w, c = image.shape
    colour = 3 if c >= 3 else 1
    data = np.ascontiguousarray(image).tobytes()
    # (tag, type, values): type 3 = SHORT, 4 = LONG; the strip offset is filled in below
    tags = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8] * c), (259, 3, [1]), (262, 3, [2 if colour == 3 else 1]),
            (273, 4, [0]), (277, 3, [c]), (278, 4, [h]), (279, 4, [len(data)]), (284, 3, [1])]
    if c > colour:
        tags.append((338, 3, [0] * (c - colour)))
    tags.append((339, 3, [1] * c))
    ifd_size = 2 + 12 * len(tags) + 4
    extra = bytearray()  # values longer than 4 bytes, after the IFD
    extra_at = 8 + ifd_size
    entries = []
    for tag, typ, values in tags:
        raw = struct.pack("<" + ("H" if typ == 3 else "I") * len(values), *values)
        if len(raw) <= 4:
            entries.append((tag, typ, len(values), raw.ljust(4, b"\0")))
        else:
            entries.append((tag, typ, len(values), struct.pack("<I", extra_at + len(extra))))
            extra += raw + b"\0" * (len(raw) % 2)
    strip_at = extra_at + len(extra)
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        value = struct.pack("<I", strip_at) if tag == 273 else value
        ifd += struct.pack("<HHI", tag, typ, count) + value
    ifd += struct.pack("<I", 0)
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 8) + bytes(ifd) + bytes(extra) + data)


@dataclass
class GeneratedScene:
    """A rendered scene and its expressions.

    Args:
        index: scene number (names its files).
        split: ``"train"``, ``"val"`` or ``"test"``.
        scene: geometry and masks.
        image: uint8 ``[S, S, 3]``, or ``[S, S, 4]`` with a near-infrared band.
        expressions: the chosen expressions.
    """

    index: int
    split: str
    scene: Scene
    image: np.ndarray
    expressions: list[Expression]

    def groups(self) -> list[tuple[tuple[int, ...], list[Expression]]]:
        """Expressions grouped by target set, in first-use order (one REFER ref each).

        No-target expressions are not grouped: each names its own absent thing.
        """
        out: dict[object, tuple[tuple[int, ...], list[Expression]]] = {}
        for k, e in enumerate(self.expressions):
            key = e.targets if e.targets else ("none", k)
            out.setdefault(key, (e.targets, []))[1].append(e)
        return list(out.values())

    def target_mask(self, targets: tuple[int, ...]) -> np.ndarray:
        """Union of the targets' masks, bool ``[S, S]`` (empty for no target)."""
        mask = np.zeros((self.scene.size, self.scene.size), dtype=bool)
        for i in targets:
            mask |= self.scene.objects[i].mask
        return mask


def _segmentation(mask: np.ndarray, encoding: str):
    if encoding == "polygon":
        polys = mask_to_polygons(mask)
        if polys is not None:
            return polys
        encoding = "rle"  # a hole: polygons cannot express it
    return rle_encode(mask, compressed=encoding == "rle")


def _interned(obj):
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, list):
        return [_interned(v) for v in obj]
    if isinstance(obj, dict):
        return {_interned(k): _interned(v) for k, v in obj.items()}
    return obj


class RRSISDWriter:
    """Writes the REFER layout scene by scene; :meth:`close` writes the annotation files.

    Args:
        out_dir: target folder (created).
        image_format: ``"png"`` (lossless, the default) or ``"jpg"`` (JPEG quality 95).
    """

    def __init__(self, out_dir: str, image_format: str = "png") -> None:
        if image_format not in ("png", "jpg"):
            raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
        self.out_dir, self.image_format = out_dir, image_format
        self.img_dir = os.path.join(out_dir, "JPEGImages")
        os.makedirs(self.img_dir, exist_ok=True)
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.refs: list[dict] = []
        self._sent_id = 0
        self._nir = False

    def add(self, gs: GeneratedScene) -> None:
        """Write one scene's image and record its annotations and refs."""
        image_id = gs.index + 1
        bands = gs.image.shape[2]
        file_name = f"{gs.index:05d}.{self.image_format if bands == 3 else 'tif'}"
        path = os.path.join(self.img_dir, file_name)
        self._nir |= bands != 3
        # Not durable (no fsync): a generated image costs a rerun, not a result, and there are thousands.
        with atomic_path(path, durable=False) as tmp:
            if bands != 3:
                write_tiff(tmp, gs.image)
            elif self.image_format == "png":
                Image.fromarray(gs.image).save(tmp, format="PNG", compress_level=6)
            else:
                Image.fromarray(gs.image).save(tmp, format="JPEG", quality=95)
        s = gs.scene.size
        self.images.append({"id": image_id, "file_name": file_name, "height": s, "width": s})
        ann_ids = []
        for obj in gs.scene.objects:
            ann_ids.append(len(self.annotations) + 1)
            ys, xs = np.nonzero(obj.mask)
            self.annotations.append({
                "id": ann_ids[-1],
                "image_id": image_id,
                "category_id": CATEGORY_IDS[obj.category],
                "segmentation": _segmentation(obj.mask, category(obj.category).encoding),
                "area": int(obj.mask.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                "iscrowd": 0,
            })
        for targets, exprs in gs.groups():
            sentences = []
            for e in exprs:
                sentences.append({"raw": e.text, "sent": e.text, "tokens": e.text.split(),
                                  "sent_id": self._sent_id})
                self._sent_id += 1
            ids = [ann_ids[i] for i in targets]
            self.refs.append({
                "ref_id": len(self.refs) + 1,
                # One id, a list for multi-target, -1 for no target.
                "ann_id": ids[0] if len(ids) == 1 else (ids or -1),
                "image_id": image_id,
                "category_id": CATEGORY_IDS[exprs[0].category],
                "split": gs.split,
                "file_name": file_name,
                "sentences": sentences,
                "sent_ids": [x["sent_id"] for x in sentences],
            })

    def close(self) -> str:
        """Write ``instances.json`` and ``refs(unc).p``; returns the folder."""
        categories = [{"id": i, "name": n, "supercategory": "object"}
                      for n, i in CATEGORY_IDS.items() if self._nir or n in CATEGORIES]
        coco = {"images": self.images, "annotations": self.annotations, "categories": categories}
        # dumps, not dump: the same bytes, from the C encoder (dump streams through the Python one).
        text = json_text(coco, sort_keys=True, separators=(",", ":"))
        atomic_write(os.path.join(self.out_dir, "instances.json"), text)
        with atomic_open(os.path.join(self.out_dir, "refs(unc).p"), "wb") as f:
            # Equal strings made one object first: pickle writes a shared object once, so its
            # bytes would otherwise depend on where the scenes were made (here or in workers).
            pickle.dump(_interned(self.refs), f, protocol=4)
        return self.out_dir


class RefSegRSWriter:
    """Writes the RefSegRS layout scene by scene; :meth:`close` writes the phrase files.

    Args:
        out_dir: target folder (created).
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.img_dir = os.path.join(out_dir, "images")
        self.mask_dir = os.path.join(out_dir, "masks")
        os.makedirs(self.img_dir, exist_ok=True)
        os.makedirs(self.mask_dir, exist_ok=True)
        self.compression = "tiff_adobe_deflate" if features.check("libtiff") else None
        self.lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def add(self, gs: GeneratedScene) -> None:
        """Write one image/mask pair per target set of the scene and record its lines."""
        for r, (targets, exprs) in enumerate(gs.groups()):
            stem = f"{gs.index:05d}_{r:02d}"
            mask = gs.target_mask(targets).astype(np.uint8) * 255
            for arr, folder in ((gs.image, self.img_dir), (mask, self.mask_dir)):
                with atomic_path(os.path.join(folder, stem + ".tif"), durable=False) as tmp:
                    if arr.ndim == 3 and arr.shape[2] != 3:
                        write_tiff(tmp, arr)
                    else:
                        Image.fromarray(arr).save(tmp, format="TIFF", compression=self.compression)
            self.lines.setdefault(gs.split, []).extend(f"{stem} {e.text}" for e in exprs)

    def close(self) -> str:
        """Write ``output_phrase_<split>.txt``; returns the folder."""
        for split, lines in self.lines.items():
            path = os.path.join(self.out_dir, f"output_phrase_{split}.txt")
            atomic_write(path, "".join(line + "\n" for line in lines))
        return self.out_dir
