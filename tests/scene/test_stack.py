"""``rrsis.scene.stack.build_stack`` and ``rrsis predict --stack``: one scene delivered as one file
per band (Landsat, Sentinel-2) read as one multi-band scene through a VRT."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.scene import build_stack, open_scene

rasterio = pytest.importorskip("rasterio")
from rasterio.enums import Resampling
from rasterio.transform import from_origin

CRS = "EPSG:32633"
X0, Y0, PX, N = 500000.0, 4000000.0, 10.0, 32  # the fine bands: N x N pixels of PX metres


def _band(path, data, px=PX, crs=CRS, nodata=None, x0=X0, y0=Y0, description=None):
    h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype=data.dtype, crs=crs,
                       transform=from_origin(x0, y0, px, px), nodata=nodata) as ds:
        ds.write(data, 1)
        if description:
            ds.set_band_description(1, description)
    return path


@pytest.fixture
def bands(tmp_path):
    """Sentinel-2-like band files: B04, B03, B02 at 10 m, B8A at 20 m over the same area."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "bands"
    folder.mkdir()
    data = {name: rng.integers(1, 255, (N, N), dtype=np.uint8) for name in ("B04", "B03", "B02")}
    data["B8A"] = rng.integers(1, 255, (N // 2, N // 2), dtype=np.uint8)
    for name, a in data.items():
        _band(folder / f"{name}.tif", a, px=PX if a.shape[0] == N else 2 * PX)
    return folder, data


def _files(folder, *names):
    return [folder / f"{n}.tif" for n in names]


def _pixels(scene):
    """The scene's bands as read, back to their 8-bit values ([bands, h, w])."""
    img, valid = scene.read()
    assert valid.all()
    return np.moveaxis(np.rint(img * 255).astype(np.uint8), -1, 0)


def test_bands_in_order_on_the_finest_grid_the_coarse_one_resampled(tmp_path, bands):
    folder, data = bands
    vrt = build_stack(_files(folder, "B04", "B03", "B02", "B8A"), tmp_path / "s.vrt", resampling="nearest")
    with open_scene(vrt, channels=4) as sc:
        assert (sc.height, sc.width, sc.bands) == (N, N, (1, 2, 3, 4))
        assert sc.transform == from_origin(X0, Y0, PX, PX) and sc.crs == rasterio.crs.CRS.from_user_input(CRS)
        got = _pixels(sc)
    for b, name in enumerate(("B04", "B03", "B02")):
        np.testing.assert_array_equal(got[b], data[name])
    np.testing.assert_array_equal(got[3], np.kron(data["B8A"], np.ones((2, 2), np.uint8)))  # 2x nearest
    assert 'resampling="nearest"' in vrt.read_text() and vrt.read_text().count("resampling=") == 1

    # Bilinear (the default): GDAL's own resampled read of the 20 m file, between its neighbours' values.
    vrt = build_stack(_files(folder, "B04", "B03", "B02", "B8A"), tmp_path / "b.vrt")
    with rasterio.open(vrt) as ds, rasterio.open(folder / "B8A.tif") as src:
        stacked = ds.read(4)
        expected = src.read(1, out_shape=(N, N), resampling=Resampling.bilinear)
    np.testing.assert_array_equal(stacked, expected)
    assert not np.array_equal(stacked, np.kron(data["B8A"], np.ones((2, 2), np.uint8)))
    # Each pixel lies between the values of its coarse pixel's 3 x 3 neighbourhood.
    pad, n = np.pad(data["B8A"], 1, mode="edge"), N // 2
    around = [pad[dy:dy + n, dx:dx + n] for dy in range(3) for dx in range(3)]
    lo, hi = (np.kron(f.reduce(around), np.ones((2, 2), np.uint8)) for f in (np.minimum, np.maximum))
    assert ((lo <= stacked) & (stacked <= hi)).all()


def test_the_order_given_is_kept_and_colours_declare_which_band_is_which(tmp_path, bands):
    folder, data = bands
    rgb = build_stack(_files(folder, "B04", "B03", "B02"), tmp_path / "rgb.vrt")
    bgr = build_stack(_files(folder, "B02", "B03", "B04"), tmp_path / "bgr.vrt")
    with open_scene(rgb) as a, open_scene(bgr) as b:
        np.testing.assert_array_equal(_pixels(a), _pixels(b)[::-1])
    # A glob is sorted by name (B02, B03, B04, B8A); never by size or resolution.
    with rasterio.open(build_stack(str(folder / "B*.tif"), tmp_path / "g.vrt")) as ds:
        assert ds.descriptions == ("B02", "B03", "B04", "B8A")
    declared = build_stack(_files(folder, "B02", "B03", "B04"), tmp_path / "d.vrt", colours=["blue", "green", "red"])
    with open_scene(declared) as sc:
        assert sc.bands == (3, 2, 1) and sc.declared == (3, 2, 1)
        np.testing.assert_array_equal(_pixels(sc), [data["B04"], data["B03"], data["B02"]])
    with rasterio.open(declared) as ds:
        assert [c.name for c in ds.colorinterp] == ["blue", "green", "red"]


def test_descriptions_default_to_the_file_stems_and_nodata_is_carried(tmp_path, bands):
    folder, data = bands
    _band(folder / "nir.tif", data["B04"], nodata=0, description="near infrared")
    vrt = build_stack(_files(folder, "B04", "nir", "B8A"), tmp_path / "s.vrt")
    with rasterio.open(vrt) as ds:
        assert ds.descriptions == ("B04", "near infrared", "B8A")
        assert ds.nodatavals == (None, 0.0, None)
        assert [c.name for c in ds.colorinterp] == ["gray"] * 3  # each file's own
    # A coarse band's nodata stays nodata when resampled (bilinear): no value blended with it.
    coarse = np.full((N // 2, N // 2), 200, np.uint8)
    coarse[:, : N // 4] = 0
    _band(folder / "B11.tif", coarse, px=2 * PX, nodata=0)
    with rasterio.open(build_stack(_files(folder, "B04", "B11"), tmp_path / "n.vrt")) as ds:
        assert ds.nodatavals == (None, 0.0) and set(np.unique(ds.read(2))) == {0, 200}
        assert (ds.read_masks(2) > 0).sum() == (ds.read(2) == 200).sum() > 0


def test_bands_are_named_by_what_their_stems_do_not_share(tmp_path, bands):
    """Landsat's and Sentinel-2's file names carry the product id: each date's stack names its bands
    alike (B4, not LC09_..._20240101_..._SR_B4), so a model recording them reads another date by name."""
    folder, data = bands
    named = {}
    for date in ("20240101", "20240117"):
        files = [_band(folder / f"LC09_L2SP_190030_{date}_02_T1_SR_{b}.TIF", data[s])
                 for b, s in (("B4", "B04"), ("B3", "B03"), ("B2", "B02"))]
        with rasterio.open(build_stack(files, tmp_path / f"{date}.vrt")) as ds:
            named[date] = ds.descriptions
    assert named["20240101"] == named["20240117"] == ("B4", "B3", "B2")
    s2 = [_band(folder / "T32TQM_20240101T101431_B04_10m.jp2.tif", data["B04"]),
          _band(folder / "T32TQM_20240101T101431_B8A_20m.jp2.tif", data["B8A"], px=2 * PX),
          _band(folder / "T32TQM_20240101T101431_B03_10m.jp2.tif", data["B03"], description="green")]
    with rasterio.open(build_stack(s2, tmp_path / "s2.vrt")) as ds:
        assert ds.descriptions == ("B04_10m", "B8A_20m", "green")  # a band's own description first
    with rasterio.open(build_stack(s2[:1], tmp_path / "one.vrt")) as ds:  # one file: its whole stem
        assert ds.descriptions == ("T32TQM_20240101T101431_B04_10m.jp2",)
    other = tmp_path / "other"
    other.mkdir()
    same = [folder / "B04.tif", _band(other / "B04.tif", data["B03"])]  # nothing differs: whole stems
    with rasterio.open(build_stack(same, tmp_path / "same.vrt")) as ds:
        assert ds.descriptions == ("B04", "B04")


@pytest.mark.parametrize("change, match", [
    ({"crs": "EPSG:32634"}, r"EPSG:32634.*one CRS"),
    ({"x0": X0 + 3 * PX}, r"same area.*--mosaic"),
    ({"dtype": np.uint16}, r"data type uint16.*uint8"),
    ({"crs": None}, r"has no CRS"),
])
def test_a_file_that_does_not_fit_is_named(tmp_path, bands, change, match):
    folder, data = bands
    dtype = change.pop("dtype", np.uint8)
    odd = _band(tmp_path / "odd.tif", data["B04"].astype(dtype), **change)
    with pytest.raises(ValueError, match=match) as err:
        build_stack([*_files(folder, "B04", "B03"), odd], tmp_path / "s.vrt")
    assert "odd.tif" in str(err.value)
    assert not (tmp_path / "s.vrt").exists()


def test_colours_must_name_every_band_and_the_output_is_a_vrt(tmp_path, bands):
    folder, _ = bands
    files = _files(folder, "B04", "B03", "B02", "B8A")
    with pytest.raises(ValueError, match=r"3 name\(s\) for a stack of 4 band\(s\)"):
        build_stack(files, tmp_path / "s.vrt", colours=["red", "green", "blue"])
    with pytest.raises(ValueError, match=r"'gren'.*did you mean 'green'"):
        build_stack(files, tmp_path / "s.vrt", colours=["red", "gren", "blue", "nir"])
    with pytest.raises(ValueError, match=r"written as a \.vrt file"):
        build_stack(files, tmp_path / "s.tif")
    with pytest.raises(ValueError, match=r"resampling 'bilinar'.*'bilinear'"):
        build_stack(files, tmp_path / "s.vrt", resampling="bilinar")
    with pytest.raises(ValueError, match="listed twice"):
        build_stack([files[0], files[0]], tmp_path / "s.vrt")


def test_the_stack_reads_after_its_folder_is_moved(tmp_path, bands):
    folder, data = bands
    vrt = build_stack(_files(folder, "B04", "B8A"), folder / "s.vrt")
    assert 'relativeToVRT="1">B04.tif<' in vrt.read_text()
    moved = shutil.move(str(folder), str(tmp_path / "moved"))
    with rasterio.open(f"{moved}/s.vrt") as ds:
        np.testing.assert_array_equal(ds.read(1), data["B04"])
        assert ds.read(2).shape == (N, N)



def test_predict_stack_writes_the_mask_on_the_stacks_grid(tmp_path, bands, saved_model, capsys):
    folder, _ = bands
    files = [str(f) for f in _files(folder, "B8A", "B04", "B03", "B02")]  # the coarse band first
    argv = ["predict", "--model", str(saved_model), "--image", *files, "--stack", "--stack-colours",
            "nir,red,green,blue", "--text", "the red building", "--out", str(tmp_path / "out" / "scene"), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert ("scene_stack.vrt: bands 1 B8A (nir), 2 B04 (red), 3 B03 (green), 4 B02 (blue); an RGB model without "
            "recorded band names reads B04, B03, B02 as red, green, blue; a model that records") in printed
    with rasterio.open(tmp_path / "out" / "scene_stack.vrt") as ds:
        assert [c.name for c in ds.colorinterp] == ["nir", "red", "green", "blue"]
    with rasterio.open(tmp_path / "out" / "scene_mask.tif") as ds:
        assert ds.shape == (N, N) and ds.transform == from_origin(X0, Y0, PX, PX)
    # Again without --overwrite: the VRT is refused before anything is computed.
    assert main(argv) == 2
    assert "scene_stack.vrt" in capsys.readouterr().err
    model, out = ["predict", "--model", str(saved_model)], ["--text", "x", "--out", str(tmp_path / "p")]
    assert main([*model, "--image", files[1], "--stack-colours", "red", *out]) == 2
    assert "give --stack too" in capsys.readouterr().err
    assert main([*model, "--image", *files, "--stack", "--mosaic", *out]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_the_printed_bands_say_what_an_rgb_model_reads(tmp_path, bands):
    """A quoted glob sorts B02, B03, B04: blue first. Undeclared, the line says an RGB model without
    recorded band names reads the first three as red, green, blue in that order, and how to change
    it; declared or not, that a model recording its bands' names reads them by name (it is printed
    before the model loads, so it holds for any model)."""
    from rrsis.cli.predict_sources import stack_bands

    folder, _ = bands
    vrt = build_stack(str(folder / "B0*.tif"), tmp_path / "s.vrt")
    named = "; a model that records its bands' names (backbone.band_names) reads them by name, in its own order"
    assert stack_bands(str(vrt)) == ("bands 1 B02, 2 B03, 3 B04; none declared red, green or blue, so an RGB "
                                     "model without recorded band names reads the first three as red, green, "
                                     "blue in this order (give the files in R, G, B order, or each band's colour "
                                     "in the stack's order, e.g. --stack-colours red,green,blue)" + named)
    declared = build_stack(str(folder / "B0*.tif"), tmp_path / "d.vrt", colours="blue,green,red")
    assert stack_bands(str(declared)) == ("bands 1 B02 (blue), 2 B03 (green), 3 B04 (red); an RGB model without "
                                          "recorded band names reads B04, B03, B02 as red, green, blue" + named)


def test_a_stack_of_two_or_one_bands_is_said_to_be_read_as_grey(tmp_path, bands):
    """Fewer than three bands: an RGB model reads band 1 as grey (as the scene's warning says), not
    "the first three as red, green, blue" with a --stack-colours example of two colours."""
    from rrsis.cli.predict_sources import stack_bands

    folder, _ = bands
    two = build_stack([str(folder / "B02.tif"), str(folder / "B03.tif")], tmp_path / "two.vrt")
    assert stack_bands(str(two)) == ("bands 1 B02, 2 B03; an RGB model without recorded band names reads B02 "
                                     "as grey, B03 not at all (a model built with in_chans=2 reads both); a model "
                                     "that records its bands' names (backbone.band_names) reads them by name, in "
                                     "its own order")
    alpha = build_stack([str(folder / "B02.tif"), str(folder / "B03.tif")], tmp_path / "alpha.vrt",
                        colours=["gray", "alpha"])
    assert "band names reads B02 as grey, B03 as its transparency; a model that records" in stack_bands(str(alpha))
    one = build_stack([str(folder / "B04.tif")], tmp_path / "one.vrt")
    assert stack_bands(str(one)).startswith("bands 1 B04; an RGB model without recorded band names reads B04 as "
                                            "grey; a model that records its bands' names")
    with open_scene(str(two)) as sc:  # what the scene reads: band 1, shown as grey
        assert sc.bands == (1,)


def test_an_undeclared_stack_is_told_to_declare_its_colours_with_stack_colours(tmp_path, bands):
    """The scene's note on an undeclared stack names --stack-colours (the VRT is rewritten each
    run), not rio edit-info, which a plain file gets."""
    from rasterio.enums import ColorInterp

    from rrsis.scene import open_scene

    folder, _ = bands
    files = [str(f) for f in _files(folder, "B04", "B03", "B02", "B8A")]
    vrt = build_stack(files, tmp_path / "s.vrt")
    with open_scene(str(vrt)) as sc:
        assert sc.bands == (1, 2, 3) and "--stack-colours red,green,blue,undefined" in sc.band_note
        assert "edit-info" not in sc.band_note
    with rasterio.open(vrt) as src:
        profile = {**src.profile, "driver": "GTiff"}
        with rasterio.open(tmp_path / "plain.tif", "w", **profile) as dst:
            dst.write(src.read())
            dst.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * 3  # not GDAL's default alpha
    with open_scene(str(tmp_path / "plain.tif")) as sc:
        assert "rio edit-info --colorinterp red,green,blue,undefined FILE" in sc.band_note


def test_a_region_of_one_scenes_band_files_names_stack(tmp_path, bands, saved_model, capsys):
    """Band files given without --stack are a region of one-band scenes: predict says that
    --stack reads them as one; files over other areas, or of several bands, get no such note."""
    from rrsis.cli.predict_sources import band_files_hint
    from rrsis.scene.region import SceneSource

    folder, _ = bands
    files = [str(f) for f in _files(folder, "B04", "B03", "B02")]
    argv = ["predict", "--model", str(saved_model), "--image", *files, "--text", "the red building",
            "--mode", "global", "--out", str(tmp_path / "region"), "--quiet"]
    assert main(argv) == 0
    assert ("one-band files over one area, each segmented on its own; if they are one scene's bands, --stack "
            "reads them as one") in capsys.readouterr().err
    scenes = [SceneSource(f"s{i}", f) for i, f in enumerate(files)]
    assert band_files_hint(scenes) is not None
    assert band_files_hint(scenes[:1]) is None
    assert band_files_hint([*scenes, SceneSource("n", str(_files(folder, "B8A")[0]))]) is not None  # same area
    other = tmp_path / "other.tif"
    _band(other, np.ones((N, N), np.uint8), px=PX, x0=X0 + N * PX)
    assert band_files_hint([*scenes, SceneSource("o", str(other))]) is None  # another area: tiles
    vrt = build_stack(files, tmp_path / "rgb.vrt")
    assert band_files_hint([*scenes, SceneSource("v", str(vrt))]) is None  # three bands: a scene


def test_the_band_files_check_says_nothing_of_plain_pictures(tmp_path):
    """A region of plain PNGs (no georeference: each a scene of its own) gets no note, and no raw
    rasterio NotGeoreferencedWarning on stderr: that they have none is what the check reads."""
    import warnings

    from PIL import Image

    from rrsis.cli.predict_sources import band_files_hint
    from rrsis.scene.region import SceneSource

    scenes = []
    for name in ("a", "b"):
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / f"{name}.png")
        scenes.append(SceneSource(name, str(tmp_path / f"{name}.png")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert band_files_hint(scenes) is None
    assert [str(w.message) for w in caught] == []


def test_a_relative_gdal_name_is_written_absolute_so_the_vrt_reads_from_anywhere(tmp_path, bands, monkeypatch):
    import gzip

    folder, data = bands
    with open(folder / "B03.tif", "rb") as src, gzip.open(folder / "B03.tif.gz", "wb") as dst:
        dst.write(src.read())
    monkeypatch.chdir(tmp_path)
    vrt = build_stack(["bands/B04.tif", "/vsigzip/bands/B03.tif.gz", "bands/B02.tif"], tmp_path / "s.vrt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the VRT is read from another folder, as a later run would
    with open_scene(vrt) as sc:
        np.testing.assert_array_equal(_pixels(sc), [data["B04"], data["B03"], data["B02"]])
    assert f"/vsigzip/{folder}/B03.tif.gz".replace("//", "/") in vrt.read_text().replace("//", "/")
