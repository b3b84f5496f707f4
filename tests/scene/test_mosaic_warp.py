"""``rrsis.scene.mosaic.build_vrt`` over tiles that are not on one grid (rrsis/scene/mosaic_warp.py):
another UTM zone, another pixel size, half a pixel off, placed by GCPs; each warped onto one grid.

The tiles are cut from a ramp, values linear in ground position: bilinear resampling reproduces
a linear function, so the mosaic's value at each pixel centre is known independently of GDAL
(the ramp at that point) up to the warper's approximate transformer (an eighth of a pixel)."""

from __future__ import annotations

import math

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import array_bounds, from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from rrsis.scene import open_scene
from rrsis.scene.mosaic import build_vrt

UTM33, UTM34 = "EPSG:32633", "EPSG:32634"
X0, Y0, PX = 500000.0, 4000000.0, 2.0
H, W = 96, 128
NODATA = -9999.0


def ramp_at(x, y):
    """The area's value at ground point (x, y) of UTM zone 33: the original raster's pixel
    (col, row) centre holds 100 + col + 0.7 row."""
    return 100.0 + (x - X0) / PX - 0.5 + 0.7 * ((Y0 - y) / PX - 0.5)


def ramp(transform, h, w):
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x, y = transform @ (cols, rows)
    return ramp_at(x, y).astype(np.float32)[None]


def write(path, data, crs, transform=None, nodata=None, gcps=None, **kw):
    place = {"gcps": gcps, "crs": crs} if gcps else {"crs": crs, "transform": transform}
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, nodata=nodata, **place, **kw) as ds:
        ds.write(data)
    return str(path)


def centres(ds):
    cols, rows = np.meshgrid(np.arange(ds.width) + 0.5, np.arange(ds.height) + 0.5)
    return ds.transform @ (cols, rows)


def inside_original(x, y, margin):
    """Pixel centres at least ``margin`` pixels inside the original H x W raster of zone 33."""
    return ((x > X0 + margin * PX) & (x < X0 + (W - margin) * PX)
            & (y < Y0 - margin * PX) & (y > Y0 - (H - margin) * PX))


def two_zones(folder, nodata=NODATA):
    """Columns 0-80 of the area in zone 33 as they are; columns 72-128 reprojected (bilinear, 2 m
    pixels) to zone 34, as a neighbouring product tile would be delivered."""
    full = ramp(from_origin(X0, Y0, PX, PX), H, W)
    a = write(folder / "a.tif", full[:, :, :80], UTM33, from_origin(X0, Y0, PX, PX), nodata=nodata)
    tb = from_origin(X0 + 72 * PX, Y0, PX, PX)
    t34, w, h = calculate_default_transform(UTM33, UTM34, 56, H, *array_bounds(H, 56, tb), resolution=PX)
    b34 = np.full((1, h, w), NODATA, np.float32)
    reproject(full[:, :, 72:], b34, src_transform=tb, src_crs=UTM33, dst_transform=t34, dst_crs=UTM34,
              resampling=Resampling.bilinear, src_nodata=NODATA, dst_nodata=NODATA)
    b = write(folder / "b.tif", b34, UTM34, t34, nodata=nodata)
    return a, b


def test_a_tile_in_another_utm_zone_is_warped_onto_the_mosaic_grid(tmp_path):
    a, b = two_zones(tmp_path)
    vrt = build_vrt([a, b], tmp_path / "area.vrt")
    with rasterio.open(vrt) as ds, rasterio.open(b) as tb:
        # Zone 33 holds most of the area; its tile is the grid (2 m, corners on its grid).
        assert ds.crs == CRS.from_user_input(UTM33) and (ds.transform.a, ds.transform.e) == (PX, -PX)
        assert ((ds.transform.c - X0) / PX).is_integer() and ((ds.transform.f - Y0) / PX).is_integer()
        left, bottom, right, top = ds.bounds
        bl, bb, br, bt = transform_bounds(UTM34, UTM33, *tb.bounds)
        assert left <= min(X0, bl) and top >= Y0 and right >= br and bottom <= min(bb, Y0 - H * PX) and top >= bt
        data, valid = ds.read(1), ds.read_masks(1) == 255
        x, y = centres(ds)
    inner = inside_original(x, y, 3)
    assert valid[inner].all()
    # Along tile b's edge (column 72 of the area, inside tile a) b's partly valid bilinear
    # kernels average the valid neighbours only: within a pixel's step of the ramp there.
    edge = np.abs((x - X0) / PX - 72) < 2.5
    np.testing.assert_allclose(data[inner & ~edge], ramp_at(x, y)[inner & ~edge], atol=0.3)
    np.testing.assert_allclose(data[inner & edge], ramp_at(x, y)[inner & edge], atol=1.0)
    assert not valid[~inside_original(x, y, -2)].any()  # nodata beyond the area, not black
    # Tile a is on the grid: its pixels are read as they are, not resampled.
    with rasterio.open(a) as ta:
        c, r = ~ds.transform @ (X0, Y0)
        np.testing.assert_array_equal(data[round(r):round(r) + H, round(c):round(c) + 64], ta.read(1)[:, :64])
    text = vrt.read_text()
    assert 'relativeToVRT="1">a.tif<' in text and 'relativeToVRT="1">area_warped/b.vrt<' in text
    assert 'relativeToVRT="1">../b.tif<' in (tmp_path / "area_warped" / "b.vrt").read_text()
    assert "<ResampleAlg>Bilinear</ResampleAlg>" in (tmp_path / "area_warped" / "b.vrt").read_text()


def test_the_mosaic_crs_can_be_chosen_and_the_scene_reads_the_footprints_as_valid(tmp_path):
    """Without a nodata value a mask band marks the tiles' footprints: tile a (zone 33) warped
    into zone 34 is valid inside its rotated footprint only, not in the black corners of its
    bounding box, and tile b (zone 34's ramp, full of data) is read where it lies."""
    ta = from_origin(X0, Y0, PX, PX)
    a = write(tmp_path / "a.tif", ramp(ta, H, 80), UTM33, ta)
    t34, _, _ = calculate_default_transform(UTM33, UTM34, W, H, *array_bounds(H, W, ta), resolution=PX)
    tb = t34 @ Affine.translation(60, 0)
    cols, rows = np.meshgrid(np.arange(40) + 0.5, np.arange(H) + 0.5)
    xb, yb = rasterio.warp.transform(UTM34, UTM33, *(np.ravel(v) for v in tb @ (cols, rows)))
    b = write(tmp_path / "b.tif", ramp_at(np.reshape(xb, cols.shape), np.reshape(yb, cols.shape))
              .astype(np.float32)[None], UTM34, tb)
    vrt = build_vrt([a, b], tmp_path / "area.vrt", crs=UTM34, resampling="nearest")
    with rasterio.open(vrt) as ds, rasterio.open(b) as db:
        assert ds.crs == CRS.from_user_input(UTM34) and ds.nodata is None
        assert (ds.transform.a, ds.transform.e) == (PX, -PX) and ((ds.transform.c - tb.c) / PX).is_integer()
        x, y = centres(ds)
        x33, y33 = rasterio.warp.transform(UTM34, UTM33, x.ravel(), y.ravel())
        x33, y33 = np.reshape(x33, x.shape), np.reshape(y33, y.shape)
        data, mask = ds.read(1), ds.read_masks(1) == 255
        left, bottom, right, top = db.bounds
    with open_scene(vrt) as sc:
        valid = sc.read_valid((0, 0, sc.height, sc.width))
    np.testing.assert_array_equal(valid, mask)
    in_a = (x33 > X0 + 2 * PX) & (x33 < X0 + 78 * PX) & (y33 < Y0 - 2 * PX) & (y33 > Y0 - (H - 2) * PX)
    in_b = (x > left + PX) & (x < right - PX) & (y < top - PX) & (y > bottom + PX)
    near = ((x33 > X0 - 2 * PX) & (x33 < X0 + 82 * PX) & (y33 < Y0 + 2 * PX) & (y33 > Y0 - (H + 2) * PX)
            | (x > left - PX) & (x < right + PX) & (y < top + PX) & (y > bottom - PX))
    assert valid[in_a | in_b].all() and not valid[~near].any() and (~near).sum() > 100
    # Nearest neighbour: a's pixels within half a pixel's step (1.7 / 2) of the ramp.
    np.testing.assert_allclose(data[in_a & ~in_b], ramp_at(x33, y33)[in_a & ~in_b], atol=0.9)
    assert "<ResampleAlg>NearestNeighbour</ResampleAlg>" in (tmp_path / "area_warped" / "a.warp.vrt").read_text()


def test_a_gcp_only_tile_mosaics_like_its_north_up_original(tmp_path):
    full = ramp(from_origin(X0, Y0, PX, PX), H, W)
    a = write(tmp_path / "a.tif", full[:, :, :64], UTM33, from_origin(X0, Y0, PX, PX))
    tb = from_origin(X0 + 64 * PX, Y0, PX, PX)
    b = write(tmp_path / "b.tif", full[:, :, 64:], UTM33, tb)
    gcps = [GroundControlPoint(row=r, col=c, x=(tb @ (c, r))[0], y=(tb @ (c, r))[1])
            for r, c in ((0, 0), (0, 64), (H, 0), (H, 64), (H / 2, 32))]
    g = write(tmp_path / "g.tif", full[:, :, 64:], UTM33, gcps=gcps)
    plain = build_vrt([a, b], tmp_path / "plain.vrt")
    placed = build_vrt([a, g], tmp_path / "gcp.vrt")
    with rasterio.open(plain) as dp, rasterio.open(placed) as dg:
        assert dg.transform.almost_equals(dp.transform) and dg.shape == dp.shape == (H, W) and dg.crs == dp.crs
        np.testing.assert_allclose(dg.read(1)[1:-1, 1:-1], dp.read(1)[1:-1, 1:-1], atol=0.05)
        assert (dg.read_masks(1)[1:-1, 1:-1] == 255).all()
    assert (tmp_path / "gcp_warped" / "g.vrt").is_file()


@pytest.mark.parametrize("case", ["coarser pixels", "half a pixel off"])
def test_tiles_of_another_pixel_size_or_off_the_grid_are_resampled_onto_the_first(tmp_path, case):
    ta = from_origin(X0, Y0, PX, PX)
    a = write(tmp_path / "a.tif", ramp(ta, H, 64), UTM33, ta)
    if case == "coarser pixels":
        tb = from_origin(X0 + 64 * PX, Y0, 2 * PX, 2 * PX)
        b = write(tmp_path / "b.tif", ramp(tb, H // 2, 32), UTM33, tb)
    else:
        tb = from_origin(X0 + 64.5 * PX, Y0 - 0.5 * PX, PX, PX)
        b = write(tmp_path / "b.tif", ramp(tb, H, 64), UTM33, tb)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(vrt) as ds, rasterio.open(a) as da:
        assert ds.transform == ta and ds.crs == CRS.from_user_input(UTM33)  # the finest size, on a's grid
        data, valid = ds.read(1), ds.read_masks(1) == 255
        np.testing.assert_array_equal(data[:H, :64], da.read(1))
        x, y = centres(ds)
    with rasterio.open(b) as db:
        left, bottom, right, top = db.bounds
    inner = (x > left + 1.5 * PX) & (x < right - 1.5 * PX) & (y < top - 1.5 * PX) & (y > bottom + 1.5 * PX)
    assert valid[inner].all() and inner.sum() > 1000
    np.testing.assert_allclose(data[inner], ramp_at(x, y)[inner], atol=0.05)
    assert not valid[(x > right + PX) | (y < bottom - PX)].any()


def test_only_the_tiles_pixels_under_a_window_are_read(tmp_path):
    """The blocks of a warped tile far from the window are overwritten with garbage: a read of the
    window still succeeds (with the right values), a read of the whole mosaic fails."""
    n, block = 256, 32
    ta = from_origin(X0, Y0, PX, PX)
    a = write(tmp_path / "a.tif", ramp(ta, n, 64), UTM33, ta)
    tb = from_origin(X0 + 64.5 * PX, Y0, PX, PX)
    b = write(tmp_path / "b.tif", ramp(tb, n, n), UTM33, tb, tiled=True, blockxsize=block, blockysize=block,
              compress="deflate")
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    spans = []
    with rasterio.open(b) as ds:
        for i in range(5, n // block):  # rows 160 and below
            for j in range(n // block):
                spans.append((int(ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=1)),
                              int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))))
    with open(b, "r+b") as fh:
        for offset, size in spans:
            fh.seek(offset)
            fh.write(b"\xff" * size)
    window = rasterio.windows.Window(100, 8, 64, 48)  # columns 100-164, rows 8-56: inside tile b
    with rasterio.open(vrt) as ds:
        part = ds.read(1, window=window)
        x, y = ds.window_transform(window) @ np.meshgrid(np.arange(64) + 0.5, np.arange(48) + 0.5)
        np.testing.assert_allclose(part, ramp_at(x, y), atol=0.05)
    with rasterio.open(vrt) as ds, pytest.raises(rasterio.errors.RasterioIOError):
        ds.read(1)


@pytest.mark.parametrize("nodata", [None, 0])
def test_reduced_reads_of_warped_tiles_keep_their_footprint(tmp_path, nodata):
    """The global pass and the statistics read the mosaic reduced: the warped tile's pixels and
    validity there are those of the full-resolution read, averaged (with a nodata value through
    its view's overviews; without one, whose alpha band GDAL's overviews lose, at full size)."""
    n = 256
    ta = from_origin(X0, Y0, PX, PX)
    a = write(tmp_path / "a.tif", np.full((1, n, 64), 50, np.uint8), UTM33, ta, nodata=nodata)
    tb = from_origin(X0 + 64.5 * PX, Y0, PX, PX)
    b = write(tmp_path / "b.tif", np.full((1, n, n), 90, np.uint8), UTM33, tb, nodata=nodata)
    vrt = build_vrt([a, b], tmp_path / "m.vrt")
    with rasterio.open(tmp_path / "m_warped" / ("b.warp.vrt" if nodata is None else "b.vrt")) as ds:
        assert ds.overviews(1) == ([] if nodata is None else [2, 4])
    with open_scene(vrt) as sc:
        full, valid = sc.read()
        small, small_valid = sc.read(None, (sc.height // 4, sc.width // 4))
    assert valid[:, :64].all() and valid[:, 66:-2].all() and not valid[:, -1].any()
    assert abs(small_valid.mean() - valid.mean()) < 0.02
    with rasterio.open(vrt) as ds:  # decimated (nearest), as the statistics and the nodata check read
        assert abs((ds.read_masks(1, out_shape=(ds.height // 4, ds.width // 4)) > 0).mean() - valid.mean()) < 0.02
    np.testing.assert_allclose(small[small_valid].mean(), full[valid].mean(), rtol=0.02)


def test_tiles_that_no_grid_can_join_are_named(tmp_path):
    t = from_origin(X0, Y0, PX, PX)
    one = np.ones((3, 8, 8), np.uint8)
    a = write(tmp_path / "a.tif", one, UTM33, t)
    cases = [
        (write(tmp_path / "bands.tif", np.ones((4, 8, 8), np.uint8), UTM34, t), r"bands\.tif has 4 band\(s\)"),
        (write(tmp_path / "type.tif", one.astype(np.uint16), UTM34, t), r"type\.tif has data type\(s\) \['uint16'\]"),
        (write(tmp_path / "nodata.tif", one, UTM34, t, nodata=0), r"nodata\.tif has nodata 0\.0, .*one nodata value"),
        (write(tmp_path / "nocrs.tif", one, None, t), r"nocrs\.tif has no CRS"),
        (write(tmp_path / "nowhere.tif", one, None, Affine.identity()), r"nowhere\.tif has no placement"),
        (write(tmp_path / "twogcps.tif", one, UTM33, gcps=[GroundControlPoint(0, 0, X0, Y0),
                                                           GroundControlPoint(8, 8, X0 + 16, Y0 - 16)]),
         (r"twogcps\.tif: georeferenced by ground control points only, and 2 ground control point\(s\).*"
          r"a mosaic cannot place it")),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            build_vrt([a, bad], tmp_path / "m.vrt")
    assert not (tmp_path / "m.vrt").exists() and not (tmp_path / "m_warped").exists()
    b = write(tmp_path / "b.tif", one, UTM34, t)
    with pytest.raises(ValueError, match=r"resampling 'bilinar': one of .*did you mean 'bilinear'"):
        build_vrt([a, b], tmp_path / "m.vrt", resampling="bilinar")
    with pytest.raises(ValueError, match=r"crs 'EPSG:3263x': not a CRS"):
        build_vrt([a, b], tmp_path / "m.vrt", crs="EPSG:3263x")


def test_the_ground_area_chooses_the_crs(tmp_path):
    """Zone 34's one large tile outweighs zone 33's two small ones (more tiles, less area)."""
    px34 = 4.0
    small = np.ones((1, 16, 16), np.float32)
    a = write(tmp_path / "a.tif", small, UTM33, from_origin(X0, Y0, PX, PX))
    b = write(tmp_path / "b.tif", small, UTM33, from_origin(X0 + 16 * PX, Y0, PX, PX))
    t34, _, _ = calculate_default_transform(UTM33, UTM34, 16, 16, *array_bounds(16, 16, from_origin(X0, Y0, PX, PX)),
                                            resolution=px34)
    c = write(tmp_path / "c.tif", np.ones((1, 24, 24), np.float32), UTM34, t34)
    with rasterio.open(build_vrt([a, b, c], tmp_path / "m.vrt")) as ds:
        assert ds.crs == CRS.from_user_input(UTM34)
        # The finest pixels (zone 33's 2 m, measured in zone 34), not zone 34's own 4 m.
        assert math.isclose(ds.transform.a, PX, rel_tol=0.01) and not math.isclose(ds.transform.a, px34)
        assert (ds.transform.c / ds.transform.a).is_integer()  # whole multiples of it (no tile at that size)


# build_vrt's document for tiles on one grid before tiles off it could be warped (recorded from
# rrsis 01f11c2): such tiles keep exactly that document, nothing resampled, no _warped folder.
_SOURCE = """    <{kind}>
      <SourceFilename relativeToVRT="1">tiles/{name}.tif</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="8" ySize="6"/>
      <DstRect xOff="{x}" yOff="{y}" xSize="8" ySize="6"/>{nodata}
    </{kind}>
"""
BEFORE = {
    None: """<VRTDataset rasterXSize="20" rasterYSize="12">
  <SRS>{srs}</SRS>
  <GeoTransform>500000.0, 0.5, 0, 4000000.0, 0, -0.5</GeoTransform>
  <VRTRasterBand dataType="Byte" band="1">
    <ColorInterp>Gray</ColorInterp>
""" + _SOURCE.format(kind="SimpleSource", name="a", x=0, y=0, nodata="")
    + _SOURCE.format(kind="SimpleSource", name="b", x=12, y=6, nodata="") + """  </VRTRasterBand>
</VRTDataset>
""",
    "nan": """<VRTDataset rasterXSize="20" rasterYSize="12">
  <SRS>{srs}</SRS>
  <GeoTransform>500000.0, 0.5, 0, 4000000.0, 0, -0.5</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <NoDataValue>nan</NoDataValue>
    <ColorInterp>Gray</ColorInterp>
""" + _SOURCE.format(kind="ComplexSource", name="a", x=0, y=0, nodata="\n      <NODATA>nan</NODATA>")
    + _SOURCE.format(kind="ComplexSource", name="b", x=12, y=6, nodata="\n      <NODATA>nan</NODATA>") + """  </VRTRasterBand>
</VRTDataset>
"""}


@pytest.mark.parametrize("nodata", [None, "nan"])
def test_tiles_on_one_grid_keep_the_document_they_had(tmp_path, nodata):
    from xml.sax.saxutils import escape

    (tmp_path / "tiles").mkdir()
    dtype = np.uint8 if nodata is None else np.float32
    for name, col, row in (("a", 0, 0), ("b", 12, 6)):
        write(tmp_path / "tiles" / f"{name}.tif", np.ones((1, 6, 8), dtype), UTM33,
              from_origin(X0 + col * 0.5, Y0 - row * 0.5, 0.5, 0.5), nodata=None if nodata is None else float(nodata))
    for crs in (None, UTM33):  # the tiles' own CRS asked for changes nothing
        vrt = build_vrt(tmp_path / "tiles" / "*.tif", tmp_path / "m.vrt", crs=crs)
        assert vrt.read_text() == BEFORE[nodata].format(srs=escape(CRS.from_user_input(UTM33).to_wkt()))
    assert not (tmp_path / "m_warped").exists()
    # Another CRS asked for: every tile warped.
    build_vrt(tmp_path / "tiles" / "*.tif", tmp_path / "m.vrt", crs=UTM34)
    assert sorted(p.name for p in (tmp_path / "m_warped").glob("?.vrt")) == ["a.vrt", "b.vrt"]
