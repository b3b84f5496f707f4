"""Scene.band_count and Scene.band_descriptions: a raster's bands as ``bands=`` numbers them.

Each raster is written here with rasterio, its band count and descriptions chosen, and read
back through ``open_scene``; what the properties say is compared with what was written.
"""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine
from rasterio.control import GroundControlPoint

from rrsis.scene import open_scene

UTM = "EPSG:32633"
T = Affine(2.0, 0, 400000.0, 0, -2.0, 4600064.0)


def _tif(path, count, descriptions, **place):
    data = np.random.default_rng(0).integers(1, 250, (count, 32, 32)).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", height=32, width=32, count=count, dtype="uint8",
                       photometric="MINISBLACK", **place) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions, 1):
            if d is not None:
                ds.set_band_description(i, d)
    return str(path)


def test_a_rasters_band_count_and_descriptions_are_the_files(tmp_path):
    path = _tif(tmp_path / "ms.tif", 5, ("blue", "green", None, "nir", "swir"), crs=UTM, transform=T)
    for bands in (None, "4,3,2", "5"):  # the bands read change neither
        with open_scene(path, bands=bands) as sc:
            assert sc.band_count == 5
            assert sc.band_descriptions == ("blue", "green", None, "nir", "swir")
    with open_scene(path) as sc, pytest.raises(AttributeError):
        sc.band_count = 3  # read-only


def test_plain_images_and_arrays_have_no_band_information(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "p.png")
    for source in (str(tmp_path / "p.png"), np.zeros((8, 8, 3), np.uint8)):
        with open_scene(source) as sc:
            assert (sc.band_count, sc.band_descriptions) == (None, None)


def test_a_paletted_raster_counts_its_colours(tmp_path):
    path = tmp_path / "pal.tif"
    with rasterio.open(path, "w", driver="GTiff", height=16, width=16, count=1, dtype="uint8", crs=UTM,
                       transform=T) as ds:
        ds.write(np.arange(256, dtype="uint8").reshape(1, 16, 16))
        ds.write_colormap(1, {i: (i, 255 - i, 0, 255) for i in range(256)})
        ds.set_band_description(1, "class index")
    with open_scene(str(path)) as sc:  # read as R, G, B (and alpha): bands 1-3 are colours
        assert sc.bands == (1, 2, 3) and sc.band_count == 4
        assert sc.band_descriptions == (None, None, None, None)


def test_a_rectified_raster_keeps_its_files_bands_not_the_warpers_alpha(tmp_path):
    rotated = T @ Affine.rotation(20)
    gcps = [GroundControlPoint(r, c, *(rotated @ (c, r))) for r, c in ((0, 0), (0, 32), (32, 0), (32, 32), (16, 16))]
    path = _tif(tmp_path / "gcp.tif", 3, ("red", None, "blue"), gcps=gcps, crs=UTM)
    with open_scene(path) as sc:
        assert sc.rectified and sc.band_count == 3
        assert sc.band_descriptions == ("red", None, "blue")
