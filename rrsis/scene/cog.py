"""Cloud-Optimized GeoTIFFs: the layout a GIS (or a web map reading over HTTP) opens fast.

A COG is a GeoTIFF whose full-resolution image is cut into square tiles, with reduced copies
(overviews) down to about one tile, and whose directories (IFDs) all come before the pixel data,
smallest overview's data first: a reader fetches the header once, then only the tiles of the
zoom level and place it shows. :func:`translate_to_cog` makes one from a tiled GeoTIFF through
GDAL's COG driver; :func:`cog_problems` checks a file against those rules by reading it back.
"""

from __future__ import annotations

import os
from pathlib import Path

from .read import GDAL_ENV, require_geo

__all__ = ["COG_BLOCK", "COG_COMPRESS", "cog_problems", "translate_to_cog"]

COG_BLOCK = 512
COG_COMPRESS = "DEFLATE"
_RESAMPLINGS = ("nearest", "average")


def translate_to_cog(src: str | os.PathLike, dst: str | os.PathLike, *, resampling: str = "nearest") -> Path:
    """Copy the GeoTIFF ``src`` to a Cloud-Optimized GeoTIFF ``dst``.

    Tiles of :data:`COG_BLOCK` pixels, :data:`COG_COMPRESS` compression, overviews halving the
    size until the image fits one tile (an internal mask gets its own). GDAL reads ``src`` block
    by block and builds the overviews in temporary files beside ``dst`` (named after it, so the
    stale-temporary rule of :func:`~rrsis.scene.write.remove_stale_temporaries` covers them), so
    memory stays near GDAL's block cache whatever the image size.

    Args:
        src: a tiled GeoTIFF (its CRS, transform, nodata and mask are kept).
        dst: the COG written (replaced if it exists; write it to a temporary name and rename it).
        resampling: of the overviews: ``"nearest"`` for classes (a mask stays 0/255 at every
            zoom), ``"average"`` for continuous values (probabilities).

    Returns:
        ``dst``.
    """
    if resampling not in _RESAMPLINGS:
        raise ValueError(f"resampling {resampling!r}: choose one of {', '.join(_RESAMPLINGS)}")
    rasterio = require_geo("writing a Cloud-Optimized GeoTIFF")
    from rasterio.shutil import copy

    with rasterio.Env(**GDAL_ENV):
        copy(os.fspath(src), os.fspath(dst), driver="COG", BLOCKSIZE=COG_BLOCK, COMPRESS=COG_COMPRESS,
             OVERVIEW_RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER", NUM_THREADS=1)
    return Path(dst)


def _offset(ds, item: str, ovr: int | None = None) -> int | None:
    value = ds.get_tag_item(item, "TIFF", bidx=1, ovr=ovr)
    return int(value) if value not in (None, "") else None


def cog_problems(path: str | os.PathLike, block: int | None = COG_BLOCK) -> list[str]:
    """What keeps ``path`` from being a Cloud-Optimized GeoTIFF (an empty list: nothing).

    The checks are the essential ones of GDAL's ``validate_cloud_optimized_geotiff.py`` and of
    ``rio cogeo validate``, read through rasterio: a GeoTIFF; tiled (square tiles of ``block``
    pixels unless ``block`` is ``None``); compressed; overviews when the image is larger than
    one tile; the main image's directory first, the overviews' after it in decreasing size, and
    every directory before the pixel data; the smallest overview's data first and the full
    resolution's last.
    """
    rasterio = require_geo("checking a Cloud-Optimized GeoTIFF")
    problems: list[str] = []
    with rasterio.Env(**GDAL_ENV), rasterio.open(path) as ds:
        if ds.driver != "GTiff":
            return [f"not a GeoTIFF (GDAL driver {ds.driver})"]
        bh, bw = ds.block_shapes[0]
        if not ds.profile.get("tiled"):
            problems.append(f"not tiled (strips of {bh} row(s))")
        elif block is not None and (bh, bw) != (block, block):
            problems.append(f"tiles of {bh}x{bw} pixels, not {block}x{block}")
        if ds.compression is None:
            problems.append("not compressed")
        overviews = ds.overviews(1)
        if max(ds.width, ds.height) > bw and not overviews:
            problems.append(f"no overviews, though the image ({ds.width}x{ds.height}) is larger than one tile")
        ifd = [_offset(ds, "IFD_OFFSET")] + [_offset(ds, "IFD_OFFSET", i) for i in range(len(overviews))]
        data = [_offset(ds, "BLOCK_OFFSET_0_0")] + [_offset(ds, "BLOCK_OFFSET_0_0", i) for i in range(len(overviews))]
    if None in ifd:
        return problems + ["the file's directory offsets cannot be read"]
    if ifd != sorted(ifd):
        problems.append(f"directories out of order (main image first, then overviews from the largest): {ifd}")
    written = [d for d in data if d]  # 0: an empty (sparse) first tile, nothing to place
    if written and max(ifd) > min(written):
        problems.append(f"a directory (at byte {max(ifd)}) comes after pixel data (from byte {min(written)})")
    if len(written) == len(data) and data[1:] and data != sorted(data, reverse=True):
        problems.append(f"pixel data not ordered from the smallest overview to the full resolution: {data}")
    return problems
