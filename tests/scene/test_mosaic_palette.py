"""Paletted tiles in a mosaic (rrsis/scene/mosaic_palette.py): one colour table kept on one grid,
otherwise each tile expanded to its colours before it is warped or placed. The reference is a
numpy lookup of the tiles' indices in their tables; a warped tile's reference is the lookup of the
source pixel under each mosaic pixel's centre, computed from the transforms, not by GDAL."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from rasterio.transform import from_origin

from rrsis.scene import open_scene
from rrsis.scene.mosaic import build_vrt

CRS = "EPSG:32631"
X0, Y0 = 500000.0, 5000064.0
RED, GREEN, BLUE = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)
TABLE = {0: (0, 0, 0, 255), 1: RED, 2: GREEN, 3: BLUE}
OTHER = {0: (10, 10, 10, 255), 1: (200, 150, 0, 255), 2: (0, 90, 250, 255), 3: (240, 240, 240, 255)}


def halves(h=64, w=64):
    """Indices: red (1) on the left half, blue (3) on the right."""
    idx = np.full((h, w), 3, np.uint8)
    idx[:, : w // 2] = 1
    return idx


def lookup(idx, table):
    lut = np.zeros((256, 4), np.uint8)
    for k, v in table.items():
        lut[k] = v
    return lut[idx]


def paletted(path, idx, table, left, top, res=1.0, nodata=None):
    """A paletted GeoTIFF; with a transparent entry (alpha 0), which a TIFF colour table cannot
    hold, a VRT of the GeoTIFF's indices carrying the table instead."""
    transform = from_origin(left, top, res, res)
    tif = path.with_suffix(".tif")
    with rasterio.open(tif, "w", driver="GTiff", width=idx.shape[1], height=idx.shape[0], count=1, dtype="uint8",
                       crs=CRS, transform=transform, nodata=nodata, photometric="palette") as ds:
        ds.write(idx, 1)
        ds.write_colormap(1, table)
    if path.suffix == ".tif":
        return str(path)
    h, w = idx.shape
    entries = "".join(f'<Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>'
                      for c in (table.get(k, (0, 0, 0, 255)) for k in range(256)))
    path.write_text(
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{CRS}</SRS>'
        f"<GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1">{"" if nodata is None else f"<NoDataValue>{nodata}</NoDataValue>"}'
        f"<ColorInterp>Palette</ColorInterp><ColorTable>{entries}"
        f'</ColorTable><SimpleSource><SourceFilename relativeToVRT="1">{tif.name}</SourceFilename>'
        f'<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>')
    return str(path)


def scene_rgb(vrt, **kw):
    """The mosaic as the scene reader reads it: uint8 RGB and validity."""
    with open_scene(vrt, **kw) as sc:
        img, valid = sc.read()
    return np.rint(img * 255).astype(np.uint8), valid


def test_tiles_of_one_table_on_one_grid_stay_paletted_and_read_as_its_colours(tmp_path):
    a_idx, b_idx = halves(), halves()[:, ::-1].copy()
    b_idx[20:30, 5:15] = 2
    a = paletted(tmp_path / "a.tif", a_idx, TABLE, X0, Y0)
    b = paletted(tmp_path / "b.tif", b_idx, TABLE, X0 + 64, Y0)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    text = vrt.read_text()
    assert "<ColorTable>" in text and "<ColorInterp>Palette</ColorInterp>" in text
    assert "Bilinear" not in text and not (tmp_path / "m_warped").exists()  # nothing resampled
    with rasterio.open(vrt) as ds:
        assert ds.count == 1 and {k: ds.colormap(1)[k] for k in TABLE} == TABLE
    truth = lookup(np.hstack([a_idx, b_idx]), TABLE)[:, :, :3]
    rgb, valid = scene_rgb(vrt)
    np.testing.assert_array_equal(rgb, truth)
    assert valid.all()
    # Its colours are RGB: a model of another band count refuses it as it refuses one paletted raster.
    with pytest.raises(ValueError, match=r"m\.vrt: a paletted raster .*R, G, B.*in_chans=4"):
        open_scene(vrt, channels=4)


def test_tiles_of_two_tables_on_one_grid_are_their_colours(tmp_path):
    a_idx, b_idx = halves(), halves()
    b_idx[10:20, 40:60] = 2
    a = paletted(tmp_path / "a.tif", a_idx, TABLE, X0, Y0)
    b = paletted(tmp_path / "b.tif", b_idx, OTHER, X0 + 64, Y0 - 8)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.count == 3 and [c.name for c in ds.colorinterp] == ["red", "green", "blue"]
        assert ds.tags()["RRSIS_PALETTE_COLOURS"] == "YES"
    assert "Bilinear" not in vrt.read_text()  # on one grid: placed, not warped
    assert sorted(p.name for p in (tmp_path / "m_warped").iterdir()) == ["a.palette.vrt", "b.palette.vrt"]
    truth = np.zeros((72, 128, 3), np.uint8)
    truth[:64, :64] = lookup(a_idx, TABLE)[:, :, :3]
    truth[8:, 64:] = lookup(b_idx, OTHER)[:, :, :3]
    rgb, valid = scene_rgb(vrt)
    inside = np.zeros((72, 128), bool)
    inside[:64, :64] = inside[8:, 64:] = True
    np.testing.assert_array_equal(valid, inside)  # the gaps are nodata (the mask band)
    np.testing.assert_array_equal(rgb, truth)
    with pytest.raises(ValueError, match=r"m\.vrt: a paletted raster .*R, G, B.*in_chans=4"):
        open_scene(vrt, channels=4)


def test_a_warped_paletted_tile_blends_colours_not_indices(tmp_path):
    """Bilinear on indices between red (1) and blue (3) gives 2, green: colours blend instead."""
    a = paletted(tmp_path / "a.tif", halves(), TABLE, X0, Y0)
    c_idx = halves(32, 32)
    c_left, c_top, c_res = X0 + 64.5, Y0 - 0.3, 2.0  # off a's grid, coarser: warped onto it
    c = paletted(tmp_path / "c.tif", c_idx, TABLE, c_left, c_top, c_res)
    vrt = build_vrt([a, c], tmp_path / "m.vrt")
    assert "Bilinear" in (tmp_path / "m_warped" / "c.vrt").read_text()
    with rasterio.open(vrt) as ds:
        assert ds.count == 3 and ds.res == (1.0, 1.0)
        t = ds.transform
    rgb, valid = scene_rgb(vrt)
    # No colour that is in neither tile: every valid pixel is red, blue or a blend of the two.
    assert valid.sum() > 64 * 64 + 60 * 60
    assert (rgb[valid][:, 1] == 0).all()
    assert (np.abs(rgb[valid][:, 0].astype(int) + rgb[valid][:, 2] - 255) <= 2).all()
    # Away from its edges and its red-blue border, each pixel is the colour of c's pixel under it.
    rows, cols = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    x, y = t @ (cols + 0.5, rows + 0.5)
    u, v = (x - c_left) / c_res, (c_top - y) / c_res  # c's pixel coordinates of each centre
    away = (u > 1.5) & (u < 30.5) & (v > 1.5) & (v < 30.5) & (np.abs(u - 16) > 1.5)
    assert away.sum() > 2000
    truth = lookup(c_idx[np.clip(v, 0, 31).astype(int), np.clip(u, 0, 31).astype(int)], TABLE)[:, :, :3]
    np.testing.assert_allclose(rgb[away], truth[away], atol=1)
    assert valid[away].all()
    # a, placed as it is, keeps its exact colours where c does not cover it.
    np.testing.assert_array_equal(rgb[:64, :64], lookup(halves(), TABLE)[:, :, :3])


@pytest.mark.parametrize("alpha", [False, True])
def test_a_paletted_tile_beside_an_rgb_tile_mosaics_as_three_bands(tmp_path, alpha):
    a_idx = halves()
    a = paletted(tmp_path / "a.tif", a_idx, TABLE, X0, Y0)
    rgb_data = np.random.default_rng(0).integers(1, 255, (3 + alpha, 64, 48), dtype=np.uint8)
    if alpha:  # an RGBA tile: its alpha band is its mask
        rgb_data[3] = 255
        rgb_data[3, :10] = 0
    b = str(tmp_path / "b.tif")
    with rasterio.open(b, "w", driver="GTiff", width=48, height=64, count=3 + alpha, dtype="uint8", crs=CRS,
                       transform=from_origin(X0 + 64, Y0, 1.0, 1.0), photometric="rgb",
                       **({"alpha": "YES"} if alpha else {})) as ds:
        ds.write(rgb_data)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.count == 3 and (ds.width, ds.height) == (112, 64)
    rgb, valid = scene_rgb(vrt)
    np.testing.assert_array_equal(valid[:, :64], True)
    np.testing.assert_array_equal(valid[:, 64:], rgb_data[3] > 0 if alpha else True)
    np.testing.assert_array_equal(rgb[:, :64], lookup(a_idx, TABLE)[:, :, :3])
    np.testing.assert_array_equal(rgb[:, 64:][valid[:, 64:]], np.moveaxis(rgb_data[:3], 0, -1)[valid[:, 64:]])
    # Tiles that are not RGB cannot join paletted ones read as colours.
    grey = str(tmp_path / "grey.tif")
    with rasterio.open(grey, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint16", crs=CRS,
                       transform=from_origin(X0 + 64, Y0, 1.0, 1.0)) as ds:
        ds.write(np.ones((1, 8, 8), np.uint16))
    with pytest.raises(ValueError, match=r"grey\.tif has 1 band\(s\) of uint16: a mosaic with paletted tiles"):
        build_vrt([a, grey], tmp_path / "bad.vrt")


CLEAR = {**TABLE, 2: (0, 255, 0, 0)}  # a transparent entry


@pytest.mark.parametrize("other", [CLEAR, OTHER])  # one table kept; two tables expanded
def test_transparent_entries_and_the_nodata_index_are_invalid(tmp_path, other):
    a_idx = halves()
    a_idx[5:15, 5:25] = 2  # transparent
    b_idx = halves()
    b_idx[40:50, 30:40] = 0  # the nodata index
    a_idx[50:55, 50:60] = 0
    a = paletted(tmp_path / "a.vrt", a_idx, CLEAR, X0, Y0, nodata=0)
    b = paletted(tmp_path / "b.vrt", b_idx, other, X0 + 64, Y0, nodata=0)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.count == (3 if other is OTHER else 1)
    with open_scene(vrt) as sc:
        valid = sc.read_valid((0, 0, 64, 128))
    np.testing.assert_array_equal(valid, np.hstack([(a_idx != 2) & (a_idx != 0), b_idx != 0]))


def test_a_rebuild_keeps_the_palette_documents_it_reads_and_drops_the_others(tmp_path):
    a = paletted(tmp_path / "a.tif", halves(), TABLE, X0, Y0)
    b = paletted(tmp_path / "b.tif", halves(), OTHER, X0 + 64, Y0)
    c = paletted(tmp_path / "c.tif", halves(32, 32), TABLE, X0 + 64.5, Y0 - 0.3, 2.0)
    warped = tmp_path / "m_warped"
    build_vrt([a, c], tmp_path / "m.vrt")
    assert sorted(p.name for p in warped.iterdir()) == ["a.palette.vrt", "c.palette.vrt", "c.vrt"]
    build_vrt([a, b], tmp_path / "m.vrt")
    assert sorted(p.name for p in warped.iterdir()) == ["a.palette.vrt", "b.palette.vrt"]
    d = paletted(tmp_path / "d.tif", halves(), TABLE, X0 + 64, Y0)
    build_vrt([a, d], tmp_path / "m.vrt")  # one table on one grid: paletted, no documents left
    assert not warped.exists()


@pytest.mark.parametrize("other", [TABLE, OTHER])  # the mosaic paletted; the mosaic of colours
def test_one_question_over_a_paletted_mosaic_equals_it_over_the_rgb_geotiff(tmp_path, tiny_model, other):
    from rrsis.scene import segment_scene

    rng = np.random.default_rng(3)
    a_idx, b_idx = (np.kron(rng.integers(0, 4, (16, 16)), np.ones((4, 4), np.int64)).astype(np.uint8) for _ in "ab")
    a = paletted(tmp_path / "a.tif", a_idx, TABLE, X0, Y0)
    b = paletted(tmp_path / "b.tif", b_idx, other, X0 + 64, Y0)
    rgb = tmp_path / "rgb.tif"
    truth = np.hstack([lookup(a_idx, TABLE), lookup(b_idx, other)])[:, :, :3]
    with rasterio.open(rgb, "w", driver="GTiff", width=128, height=64, count=3, dtype="uint8", crs=CRS,
                       transform=from_origin(X0, Y0, 1.0, 1.0)) as ds:
        ds.write(np.moveaxis(truth, -1, 0))
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    kw = {"mode": "tiles", "tile": 64, "probabilities": True}
    (m,) = segment_scene(tiny_model, vrt, "the red building", out=tmp_path / "m", **kw)
    (r,) = segment_scene(tiny_model, rgb, "the red building", out=tmp_path / "r", **kw)
    with rasterio.open(m.files["mask"]) as dm, rasterio.open(r.files["mask"]) as dr:
        assert dm.transform == dr.transform and dm.crs == dr.crs
        np.testing.assert_array_equal(dm.read(), dr.read())


@pytest.mark.parametrize("nodata", [None, 0])
def test_gaps_between_paletted_tiles_are_nodata_not_a_colour(tmp_path, nodata):
    """Without a nodata index a gap of a paletted mosaic would read as index 0's colour: such
    tiles are read as colours, with a mask band; with one, the gap is that index."""
    a = paletted(tmp_path / "a.tif", halves(), TABLE, X0, Y0, nodata=nodata)
    b = paletted(tmp_path / "b.tif", halves(32, 64), TABLE, X0 + 64, Y0, nodata=nodata)  # half as tall
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.count == (3 if nodata is None else 1)
    rgb, valid = scene_rgb(vrt)
    expected = np.ones((64, 128), bool)
    expected[32:, 64:] = False
    np.testing.assert_array_equal(valid, expected)
    np.testing.assert_array_equal(rgb[:32], np.hstack([lookup(halves(32, 64), TABLE)] * 2)[:, :, :3])
