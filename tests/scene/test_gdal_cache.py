"""rrsis/scene/read.py's GDAL settings: the block cache is megabytes, not bytes."""

import pytest

rasterio = pytest.importorskip("rasterio")

from rrsis.scene.read import GDAL_ENV


def test_the_block_cache_holds_blocks():
    # rasterio hands GDAL_CACHEMAX to GDALSetCacheMax64 (bytes): 64 there was a 64-byte cache.
    with rasterio.Env(**GDAL_ENV):
        size = rasterio.env.get_gdal_config("GDAL_CACHEMAX")
    assert 16 * 2**20 <= size <= 256 * 2**20, size
