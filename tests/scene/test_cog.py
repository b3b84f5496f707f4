"""rrsis/scene/cog.py and the mask writer: Cloud-Optimized GeoTIFFs checked by reading them back,
through rasterio and through the TIFF's own bytes."""

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from _fixtures import dead_pid

rasterio = pytest.importorskip("rasterio")
from affine import Affine

from rrsis.scene import open_scene, remove_stale_temporaries
from rrsis.scene.cog import COG_BLOCK, cog_problems, translate_to_cog
from rrsis.scene.write import MaskWriter

TRANSFORM = Affine(0.5, 0.05, 399960.0, 0.02, -0.5, 5000040.0)  # sheared, UTM metres
CRS = "EPSG:32633"


def write_scene(path, h, w, *, crs=CRS, transform=TRANSFORM):
    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, (3, h, w)).astype(np.uint8)
    data[:, : h // 10, : w // 5] = 0  # a nodata corner
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8", crs=crs,
                       transform=transform, nodata=0) as ds:
        ds.write(data)
    return path


def blobs(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2) | ((yy // 37 + xx // 53) % 5 == 0)


def write_mask(path, scene, values, valid, rows=100, resampling="nearest"):
    writer = MaskWriter(path, scene, resampling=resampling)
    for r0 in range(0, values.shape[0], rows):  # strips, as segment_scene writes them
        writer.write(r0, values[r0:r0 + rows], valid[r0:r0 + rows])
    writer.close()
    return path


# ------------------------------------------------------------------ the TIFF's own bytes
_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8


def tiff_directories(path) -> list[dict]:
    """Each image file directory of a TIFF or BigTIFF, read from its bytes: its offset, whether
    it is tiled, whether it is a mask, and where its blocks' data start."""
    data = Path(path).read_bytes()
    bo = {b"II": "<", b"MM": ">"}[data[:2]]
    big = struct.unpack(bo + "H", data[2:4])[0] == 43
    count_fmt, n_fmt, field, entry = ("Q", "Q", 8, 20) if big else ("I", "H", 4, 12)
    offset = struct.unpack(bo + count_fmt, data[8:16] if big else data[4:8])[0]
    out = []
    while offset:
        (n,) = struct.unpack_from(bo + n_fmt, data, offset)
        p = offset + struct.calcsize(n_fmt)
        tags = {}
        for _ in range(n):
            tag, typ = struct.unpack_from(bo + "HH", data, p)
            (count,) = struct.unpack_from(bo + count_fmt, data, p + 4)
            if typ in _TYPES:
                size = struct.calcsize(_TYPES[typ]) * count
                at = p + 4 + field if size <= field else struct.unpack_from(bo + count_fmt, data, p + 4 + field)[0]
                tags[tag] = struct.unpack_from(bo + _TYPES[typ] * count, data, at)
            p += entry
        out.append({"offset": offset, "tiled": 322 in tags, "mask": bool(tags.get(254, (0,))[0] & 4),
                    "data": tags.get(324, tags.get(273, ()))})  # TileOffsets, or StripOffsets
        (offset,) = struct.unpack_from(bo + count_fmt, data, p)
    return out


def assert_cog_bytes(path):
    dirs = tiff_directories(path)
    data = [o for d in dirs for o in d["data"] if o]
    assert all(d["tiled"] for d in dirs)
    assert max(d["offset"] for d in dirs) < min(data), "every directory before the pixel data"
    images = [d for d in dirs if not d["mask"]]
    assert [d["offset"] for d in images] == sorted(d["offset"] for d in images)
    for smaller, larger in zip(images[:0:-1], images[-2::-1]):  # smallest overview's data first
        assert max(smaller["data"]) < min(larger["data"])
    return dirs


# ------------------------------------------------------------------ the mask COG
def test_mask_is_a_cloud_optimized_geotiff_with_the_scenes_place(tmp_path):
    h, w = 1100, 900
    scene = open_scene(write_scene(tmp_path / "scene.tif", h, w))
    valid = np.ones((h, w), bool)
    valid[: h // 10, : w // 5] = False
    values = np.where(blobs(h, w) & valid, 255, 0).astype(np.uint8)
    path = write_mask(tmp_path / "mask.tif", scene, values, valid)
    scene.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif", "scene.tif"]  # no temporaries left
    with rasterio.open(path) as ds:
        assert (ds.crs, ds.transform) == (rasterio.crs.CRS.from_user_input(CRS), TRANSFORM)
        assert (ds.count, ds.dtypes[0], ds.height, ds.width) == (1, "uint8", h, w)
        np.testing.assert_array_equal(ds.read(1), values)
        np.testing.assert_array_equal(ds.dataset_mask() > 0, valid)
        assert ds.profile["tiled"] and ds.block_shapes == [(COG_BLOCK, COG_BLOCK)]
        assert ds.compression.name == "deflate"
        assert ds.overviews(1) == [2, 4]  # halved until the image fits one 512-pixel tile
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"  # GDAL's mark of its COG driver
        # Nearest-neighbour overviews: a mask stays 0/255 at every zoom, and nodata stays nodata.
        small = ds.read(1, out_shape=(h // 4, w // 4))
        assert set(np.unique(small)) == {0, 255}
        assert not ds.read_masks(1, out_shape=(h // 4, w // 4))[: h // 40 - 1, : w // 20 - 1].any()
    assert cog_problems(path) == []
    dirs = assert_cog_bytes(path)
    assert [d["mask"] for d in dirs].count(True) == 3  # the nodata mask has its overviews too
    assert b"LAYOUT=IFDS_BEFORE_DATA" in Path(path).read_bytes()[:1024]


def test_probability_overviews_are_averages(tmp_path):
    h, w = 1100, 900
    scene = open_scene(write_scene(tmp_path / "scene.tif", h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    values = np.round(127.5 + 127.5 * np.sin(yy / 40.0) * np.cos(xx / 25.0)).astype(np.uint8)
    path = write_mask(tmp_path / "prob.tif", scene, values, np.ones((h, w), bool), resampling="average")
    scene.close()
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(1), values)
        half = ds.read(1, out_shape=(h // 2, w // 2)).astype(float)
    means = values.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # an independent 2x2 average
    assert np.abs(half - means).max() <= 1.0
    assert cog_problems(path) == []
    assert_cog_bytes(path)


def test_a_mask_within_one_tile_is_one_tile_without_overviews(tmp_path):
    scene = open_scene(write_scene(tmp_path / "scene.tif", 64, 96))
    values = np.where(blobs(64, 96), 255, 0).astype(np.uint8)
    path = write_mask(tmp_path / "small.tif", scene, values, np.ones((64, 96), bool), rows=16)
    scene.close()
    with rasterio.open(path) as ds:
        assert ds.block_shapes == [(512, 512)] and ds.overviews(1) == []
        np.testing.assert_array_equal(ds.read(1), values)
    assert cog_problems(path) == []
    assert len(assert_cog_bytes(path)) == 2  # the image and its mask


def test_cog_problems_names_what_is_missing(tmp_path):
    h, w = 1100, 900
    values = np.where(blobs(h, w), 255, 0).astype(np.uint8)[None]
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "uint8", "crs": CRS,
               "transform": TRANSFORM}
    with rasterio.open(tmp_path / "strips.tif", "w", **profile) as ds:
        ds.write(values)
    problems = cog_problems(tmp_path / "strips.tif")
    assert any("not tiled" in p for p in problems) and "not compressed" in problems
    assert any("no overviews" in p for p in problems)
    # Tiled and compressed, overviews added afterwards: GDAL appends them after the data.
    tiled = tmp_path / "tiled.tif"
    with rasterio.open(tiled, "w", tiled=True, blockxsize=512, blockysize=512, compress="deflate", **profile) as ds:
        ds.write(values)
    with rasterio.open(tiled, "r+") as ds:
        ds.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    problems = cog_problems(tiled)
    assert problems and all("after pixel data" in p or "out of order" in p or "not ordered" in p for p in problems)
    with pytest.raises(AssertionError, match="directory before the pixel data"):
        assert_cog_bytes(tiled)  # the byte-level check sees the same fault
    # Translated, the same file passes both.
    translate_to_cog(tiled, tmp_path / "fixed.tif")
    assert cog_problems(tmp_path / "fixed.tif") == []
    assert_cog_bytes(tmp_path / "fixed.tif")
    assert "tiles of 256x256 pixels, not 512x512" in cog_problems(
        translate_cog_256(tiled, tmp_path / "256.tif"))
    assert cog_problems(tmp_path / "256.tif", block=None) == []
    with rasterio.open(tmp_path / "a.png", "w", driver="PNG", height=8, width=8, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM) as ds:
        ds.write(np.zeros((1, 8, 8), np.uint8))
    assert cog_problems(tmp_path / "a.png") == ["not a GeoTIFF (GDAL driver PNG)"]


def translate_cog_256(src, dst):
    from rasterio.shutil import copy

    copy(str(src), str(dst), driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE")
    return dst


def test_bad_resampling_and_missing_rasterio_are_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="resampling 'bilinear'.*nearest, average"):
        translate_to_cog(tmp_path / "a.tif", tmp_path / "b.tif", resampling="bilinear")
    scene = open_scene(write_scene(tmp_path / "scene.tif", 32, 32))
    with pytest.raises(ValueError, match="resampling 'cubic'"):
        MaskWriter(tmp_path / "m.tif", scene, resampling="cubic")
    scene.close()
    monkeypatch.setitem(sys.modules, "rasterio", None)
    for call in (lambda: translate_to_cog(tmp_path / "a.tif", tmp_path / "b.tif"),
                 lambda: cog_problems(tmp_path / "a.tif")):
        with pytest.raises(ImportError, match=r'pip install "rrsis\[geo\]"'):
            call()


def test_a_dead_writers_strips_and_overview_temporaries_are_stale(tmp_path):
    """The names the mask writer and GDAL's COG driver give their temporaries fall under
    remove_stale_temporaries' rule: after a kill -9 the next run removes them."""
    dead = dead_pid()
    staged = f".o_mask.tif.{dead}-0123abcd.tmp.tif"
    names = [staged, f".{staged}.{dead}-4567cdef.tmp.tif",  # MaskWriter's strips
             f"{staged}.ovr.tmp", f"{staged}.msk.ovr.tmp"]  # GDAL's overviews of the COG being written
    for n in names:
        (tmp_path / n).write_bytes(b"half")
    removed = remove_stale_temporaries(tmp_path / "o_mask.tif")
    assert sorted(p.name for p in removed) == sorted(names) and not list(tmp_path.iterdir())
