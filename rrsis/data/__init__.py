"""Datasets, readers, transforms and the synthetic scene generator.

``RefSegRSDataset``, ``RRSISDDataset`` and ``FolderDataset`` (RISBench-style) all yield the same
sample dict (see :class:`~rrsis.data.base.ReferringDataset`); ``collate_fn`` batches them.
"""

from .base import DATASETS, ReferringDataset, build_dataset
from .coco import decode_segmentation, mask_to_polygons, polygon_to_mask, rle_decode, rle_encode
from .folder import FolderDataset, RefSegRSDataset, RISBenchDataset
from .io import image_size, load_plain_pickle, load_raster, read_image, read_mask
from .rrsisd import RRSISDDataset
from .scene_crops import SceneCropDataset
from .statistics import measure_statistics
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResizeNormalize,
    collate_fn,
    make_collate_fn,
    resize_image,
    resize_mask,
)

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FolderDataset",
    "RISBenchDataset",
    "RRSISDDataset",
    "RefSegRSDataset",
    "ReferringDataset",
    "ResizeNormalize",
    "SceneCropDataset",
    "build_dataset",
    "collate_fn",
    "decode_segmentation",
    "image_size",
    "load_plain_pickle",
    "load_raster",
    "make_collate_fn",
    "mask_to_polygons",
    "measure_statistics",
    "polygon_to_mask",
    "read_image",
    "read_mask",
    "resize_image",
    "resize_mask",
    "rle_decode",
    "rle_encode",
]
