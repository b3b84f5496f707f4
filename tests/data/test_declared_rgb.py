"""A TIFF that declares which bands are red, green and blue (GDAL's colour interpretation or band
descriptions, tag 42112) is read in R, G, B order by the file reader, its folder checks and the
in-memory scene path, as a GIS shows it and as rasterio reports it."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.data import FolderDataset, read_image
from rrsis.data.bands import declared_rgb, transparent_pixels
from rrsis.data.headers import option_problem, read_header
from rrsis.data.io import _load
from rrsis.data.synthetic.writers import write_tiff
from rrsis.data.tiff import _declared, read_tiff_info

rasterio = pytest.importorskip("rasterio")
from rasterio.enums import ColorInterp as CI

H, W = 6, 8
PLANES = np.stack([np.full((H, W), 10 * (k + 1), np.uint8) + np.arange(W, dtype=np.uint8) for k in range(4)])
U = CI.undefined
# name: (band count, colour interpretations, descriptions, the bands read as R, G, B (from 1))
DECLARED = {
    "bgr": (3, [CI.blue, CI.green, CI.red], None, (3, 2, 1)),
    "bgrn": (4, [CI.blue, CI.green, CI.red, U], [None, None, None, "nir"], (3, 2, 1)),
    "rgbn": (4, [CI.red, CI.green, CI.blue, U], None, (1, 2, 3)),
    "described": (4, [U, U, U, U], ["Blue", "Green", "Red", "NIR"], (3, 2, 1)),
    "gbrn-described": (4, None, ["green", "BLUE", "Red", "nir"], (3, 1, 2)),
}


def _geotiff(path, n, colours=None, descriptions=None, compress=None, planes=PLANES):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=n, dtype="uint8",
                           photometric="MINISBLACK", compress=compress) as ds:
            ds.write(planes[:n])
            if colours:
                ds.colorinterp = colours
            for i, d in enumerate(descriptions or []):
                if d:
                    ds.set_band_description(i + 1, d)
    return str(path)


def _rasterio_rgb(path):
    """What the whole-scene reader sees: rasterio's colour interpretations and descriptions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return declared_rgb([c.name for c in ds.colorinterp], ds.descriptions)


def _rgb_planes(rgb):
    return np.stack([PLANES[b - 1] for b in rgb], axis=2).astype(np.float32) / 255


@pytest.mark.parametrize("compress", [None, "deflate"])
@pytest.mark.parametrize("name", list(DECLARED))
def test_declared_bands_are_read_as_r_g_b(tmp_path, name, compress):
    n, colours, descriptions, rgb = DECLARED[name]
    path = _geotiff(tmp_path / f"{name}.tif", n, colours, descriptions, compress)
    info = read_tiff_info(path)
    assert info.rgb == rgb == _rasterio_rgb(path)
    assert info.numpy_readable == (compress is None) and not info.alpha_last
    np.testing.assert_array_equal(read_image(path), _rgb_planes(rgb))
    np.testing.assert_array_equal(read_image(path, channels=3), _rgb_planes(rgb))
    np.testing.assert_array_equal(read_image(path, bands=(1, 2, 3)), _rgb_planes((1, 2, 3)))  # bands= wins
    header = read_header(path)
    assert header.rgb == rgb and header.bands == n
    assert option_problem(header, None, None, None) is None
    assert option_problem(header, None, None, 3) is None


def test_descriptions_are_kept_and_colours_win(tmp_path):
    path = _geotiff(tmp_path / "x.tif", 4, [CI.red, CI.green, CI.blue, U], ["Blue", "Green", "Red", "NIR"])
    info = read_tiff_info(path)
    assert info.colours == ("red", "green", "blue", "undefined")
    assert info.descriptions == ("Blue", "Green", "Red", "NIR")
    assert info.rgb == (1, 2, 3) == _rasterio_rgb(path)


def test_uncompressed_and_compressed_declared_bgr_read_alike(tmp_path):
    plain = _geotiff(tmp_path / "plain.tif", 3, [CI.blue, CI.green, CI.red])
    packed = _geotiff(tmp_path / "packed.tif", 3, [CI.blue, CI.green, CI.red], compress="deflate")
    assert read_tiff_info(plain).numpy_readable and not read_tiff_info(packed).numpy_readable
    a, b = read_image(plain), read_image(packed)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, _rgb_planes((3, 2, 1)))


def test_an_undeclared_four_band_tiff_is_still_refused(tmp_path):
    path = _geotiff(tmp_path / "undeclared.tif", 4)
    assert read_tiff_info(path).rgb is None is _rasterio_rgb(path)
    with pytest.raises(ValueError, match="none declared alpha: pass bands="):
        read_image(path)
    problem = option_problem(read_header(path), None, None, None)
    assert problem is not None and "4 channels (bands), none declared alpha" in problem
    np.testing.assert_array_equal(read_image(path, bands=(3, 2, 1)), _rgb_planes((3, 2, 1)))


def test_an_undeclared_three_band_tiff_is_read_as_stored(tmp_path):
    path = _geotiff(tmp_path / "bgr-undeclared.tif", 3, [CI.gray, U, U])
    assert read_tiff_info(path).rgb is None
    np.testing.assert_array_equal(read_image(path), _rgb_planes((1, 2, 3)))


def test_photometric_rgb_declares_the_first_three_bands(tmp_path):
    # rrsis's own RGBN writer: photometric RGB and an unspecified 4th sample (GDAL: red, green, blue, undefined)
    path = str(tmp_path / "rgbn.tif")
    write_tiff(path, np.moveaxis(PLANES, 0, 2).copy())
    assert read_tiff_info(path).rgb == (1, 2, 3) == _rasterio_rgb(path)
    np.testing.assert_array_equal(read_image(path), _rgb_planes((1, 2, 3)))


def _patched(path, old, new):
    data = Path(path).read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    Path(path).write_bytes(data.replace(old, new))
    return path


@pytest.mark.parametrize("old, new", [
    (b"<GDALMetadata>", b"<GDALMetadata "),  # not XML
    (b"<GDALMetadata>", b"\xff\xfe\x00junk\x80\x81\x82\x83\x84\x85\x86"),  # not text
    (b'sample="2" role="colorinterp">Red', b'sample="x" role="colorinterp">Red'),  # a sample that is no number
    (b'sample="2" role="colorinterp">Red', b'sample="9" role="colorinterp">Red'),  # no such band
    (b'</GDALMetadata>', b'</GDALMetadata!'),  # unclosed
])
def test_a_malformed_tag_declares_nothing(tmp_path, old, new):
    path = _patched(_geotiff(tmp_path / "bad.tif", 4, [CI.blue, CI.green, CI.red, U]), old, new)
    info = read_tiff_info(path)
    assert info.rgb is None and info.samples == 4
    with pytest.raises(ValueError, match="none declared alpha: pass bands="):
        read_image(path)
    assert "pass bands=" in option_problem(read_header(path), None, None, None)


SUPERSCRIPT_TWO = "\u00b2"  # a digit to str.isdigit, not to int()


def _doc(sample=1, role="colorinterp", head="", tail=""):
    return (f'{head}<GDALMetadata><Item name="COLORINTERP" sample="0" role="colorinterp">Blue</Item>'
            f'<Item name="COLORINTERP" sample="{sample}" role="{role}">Green</Item>'
            f'<Item name="COLORINTERP" sample="2" role="colorinterp">Red</Item></GDALMetadata>{tail}')


@pytest.mark.parametrize("text, colours", [
    (_doc(), ("blue", "green", "red")),
    (_doc(role="ColorInterp", tail="\n\0"), ("blue", "green", "red")),
    (_doc(sample=SUPERSCRIPT_TWO), ("blue", None, "red")),
    (_doc(sample=-1), ("blue", None, "red")),
    (_doc(sample=3), ("blue", None, "red")),
    (_doc(role="other"), ("blue", None, "red")),
    (_doc(head="<!DOCTYPE GDALMetadata>"), ("gray", None, None)),  # declarations (entities): GDAL writes none
    ("", ("gray", None, None)),
    ("<GDALMetadata/>", ("gray", None, None)),
])
def test_tag_42112_parsing(text, colours):
    assert _declared(3, 1, (), text.encode())[0] == colours


def test_declared_rgba_transparent_pixels(tmp_path):
    planes = PLANES.copy()
    planes[3] = 255
    planes[3, :2, :3] = 0
    path = _geotiff(tmp_path / "bgra.tif", 4, [CI.blue, CI.green, CI.red, CI.alpha], planes=planes)
    info = read_tiff_info(path)
    assert info.alpha_last and info.rgb == (3, 2, 1) == _rasterio_rgb(path)
    arr, alpha, _, rgb = _load(path)[:4]
    assert alpha and rgb == (3, 2, 1)
    np.testing.assert_array_equal(transparent_pixels(arr, alpha, None, None, rgb), planes[3] == 0)
    assert transparent_pixels(arr, alpha, (1, 2, 4), None, rgb) is None  # alpha chosen as data
    np.testing.assert_array_equal(read_image(path), _rgb_planes((3, 2, 1)))
    assert read_header(path).alpha and option_problem(read_header(path), None, None, None) is None
    from rrsis.scene.read import _in_memory

    scene = _in_memory(path, None, None, path)
    np.testing.assert_array_equal(scene._array, np.stack([planes[b - 1] for b in (3, 2, 1)], axis=2))
    np.testing.assert_array_equal(scene._nodata, planes[3] == 0)


def _folder(root, write):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(3):
        write(root / "images" / f"{i}.tif", i)
        m = np.zeros((H, W), np.uint8)
        m[1:4, 2:6] = 255
        Image.fromarray(m).save(root / "masks" / f"{i}.png")
    (root / "output_phrase_train.txt").write_text("".join(f"{i} the roof {i}\n" for i in range(3)))
    return str(root)


def _raw(image, mask):
    return torch.from_numpy(image.copy()), torch.from_numpy(mask.astype(np.int64))


def test_a_folder_of_declared_bgrn_tiffs_is_read_as_rgb(tmp_path):
    root = _folder(tmp_path, lambda p, i: _geotiff(p, 4, [CI.blue, CI.green, CI.red, U]))
    ds = FolderDataset(root, size=(H, W), transform=_raw)
    assert len(ds) == 3 and ds.skipped == []
    assert torch.equal(ds[1]["pixel_values"], torch.from_numpy(_rgb_planes((3, 2, 1))))


def test_a_folder_with_an_undeclared_rgbn_tiff_names_it(tmp_path):
    def write(p, i):
        _geotiff(p, 4, None if i == 2 else [CI.blue, CI.green, CI.red, U])
    with pytest.raises(ValueError, match="sample 2:3") as info:
        FolderDataset(_folder(tmp_path, write), size=(H, W))
    assert "2.tif: 4 channels (bands), none declared alpha" in str(info.value)


@pytest.mark.parametrize("colours, descriptions, expected", [
    (["blue", "green", "red", "undefined"], None, (3, 2, 1)),
    (["RED", "Green", " blue ", None], None, (1, 2, 3)),  # any case, spaces aside
    (["red", "red", "blue"], None, None),  # a duplicate
    (["red", "green", "undefined"], None, None),  # blue missing
    (None, ["Blue", "Green", "Red", "NIR"], (3, 2, 1)),
    (["red", "green", "blue"], ["blue", "green", "red"], (1, 2, 3)),  # colour interpretations win
    (["gray", "undefined", "undefined"], ["blue", "green", "red"], (3, 2, 1)),  # else descriptions
    (["red", "red", "blue"], ["red", "green", "blue"], (1, 2, 3)),
    (["gray", None, None], ["B4", "B3", "B2"], None),  # sensor band names: not guessed
    ([], [], None),
    (None, None, None),
])
def test_declared_rgb_rule(colours, descriptions, expected):
    assert declared_rgb(colours, descriptions) == expected


def test_a_sidecar_aux_xml_declares_as_gdal_reads_it(tmp_path):
    """GDAL's PAM sidecar (``FILE.aux.xml``, written by software that leaves the file alone)
    declares colours over the file's own: the file reader agrees with rasterio."""
    import rasterio

    from rrsis.data import read_image

    planes = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 20, 30, 40)])
    path = tmp_path / "bgrn.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=4, dtype="uint8",
                       photometric="MINISBLACK") as ds:
        ds.write(planes)
    with pytest.raises(ValueError, match="4 channels"):
        read_image(str(path))  # nothing declared: an RGB model asks for bands=
    (tmp_path / "bgrn.tif.aux.xml").write_text(
        "<PAMDataset>\n" + "".join(f'  <PAMRasterBand band="{i}"><ColorInterp>{c}</ColorInterp></PAMRasterBand>\n'
                                   for i, c in enumerate(("Blue", "Green", "Red", "Undefined"), 1))
        + "</PAMDataset>\n")
    with rasterio.open(path) as ds:
        assert [c.name for c in ds.colorinterp] == ["blue", "green", "red", "undefined"]
    np.testing.assert_array_equal(read_image(str(path)) * 255, np.moveaxis(planes[[2, 1, 0]], 0, 2))
    (tmp_path / "bgrn.tif.aux.xml").write_text("<PAMDataset><PAMRasterBand band='1'>")  # malformed: nothing
    with pytest.raises(ValueError, match="4 channels"):
        read_image(str(path))
