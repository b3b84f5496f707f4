"""One odd file in a training folder is named when the dataset is built, from headers alone:
a 16-bit or 4-band image among 8-bit RGB ones (a grey or paletted one is read as RGB), a paletted mask, and a divisor
scale that does not fit the files' dtype."""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from rrsis.data import FolderDataset, RRSISDDataset, load_raster
from rrsis.data.bands import check_divisor
from rrsis.data.headers import read_header
from rrsis.data.io import _load

H, W = 12, 20
N = 4  # files per folder; the odd one is number 2


def _rgb(seed):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _tiff(path, arr, compress=None, **options):
    rasterio = pytest.importorskip("rasterio")
    arr = arr if arr.ndim == 3 else arr[:, :, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # plain TIFFs
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                           count=arr.shape[2], dtype=arr.dtype, compress=compress, **options) as dst:
            dst.write(np.moveaxis(arr, 2, 0))


def _mask(path):
    m = np.zeros((H, W), np.uint8)
    m[2:6, 3:12] = 255
    Image.fromarray(m).save(path)


def _folder(root, write_odd=None, ext=".png", write=None):
    """N samples ``0..N-1`` of 8-bit RGB PNGs with grey masks; sample 2 written by ``write_odd``
    (``write_odd(path_without_extension) -> the file's name``)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(N):
        stem = root / "images" / str(i)
        if i == 2 and write_odd is not None:
            write_odd(stem)
        elif write is not None:
            write(stem, i)
        else:
            Image.fromarray(_rgb(i)).save(f"{stem}{ext}")
        _mask(root / "masks" / f"{i}.png")
    (root / "output_phrase_train.txt").write_text("".join(f"{i} the roof {i}\n" for i in range(N)))
    return str(root)


def _png(arr, mode=None):
    def write(stem):
        im = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
        im.save(f"{stem}.png")
        return f"{stem.name}.png"
    return write


def _uint16_png(stem):
    Image.fromarray(np.full((H, W), 40000, np.uint16)).save(f"{stem}.png")  # PNG mode I;16


def _rgbn_tiff(stem):
    # MINISBLACK: GDAL would otherwise declare an 8-bit 4th band alpha (an RGBA, not an RGBN).
    _tiff(f"{stem}.tif", np.random.default_rng(5).integers(0, 256, (H, W, 4), dtype=np.uint8),
          photometric="MINISBLACK")


ODD = {
    "16-bit": (_uint16_png, "2.png is uint16, 1 band (grey)", "needs an explicit scale"),
    "4-band": (_rgbn_tiff, "2.tif: 4 channels (bands), none declared alpha", "pass bands="),
}
# Read as RGB (grey repeated, palette expanded), as PIL's convert("RGB") reads them.
READ_AS_RGB = {"grey": _png(_rgb(2)[:, :, 0]), "paletted": _png(_rgb(2), "P")}


@pytest.mark.parametrize("kind", list(ODD))
def test_one_odd_image_is_named_at_construction(tmp_path, kind):
    write, what, how = ODD[kind]
    root = _folder(tmp_path, write)
    with pytest.raises(ValueError, match="sample 2:3") as info:
        FolderDataset(root, size=(H, W))
    msg = str(info.value)
    assert what in msg and how in msg
    if kind == "16-bit":  # another dtype: named beside the common kind
        assert "unlike the other 3 images of this dataset, which are uint8, 3 bands (RGB)" in msg
        assert "skip_bad=True skips it" in msg


@pytest.mark.parametrize("kind", list(READ_AS_RGB))
def test_a_grey_or_paletted_image_among_rgb_ones_is_read_as_rgb_with_a_note(tmp_path, kind, caplog):
    root = _folder(tmp_path, READ_AS_RGB[kind])
    with caplog.at_level("WARNING", logger="rrsis.data.base"):
        ds = FolderDataset(root, size=(H, W), transform=_raw)
    assert len(ds) == N and ds.skipped == []
    expected = np.asarray(Image.open(tmp_path / "images" / "2.png").convert("RGB"), np.float32) / 255
    assert torch.equal(ds[2]["pixel_values"], torch.from_numpy(expected))
    note = [r.getMessage() for r in caplog.records if "differ from the others" in r.getMessage()]
    assert len(note) == 1 and "2.png" in note[0] and ("grey" if kind == "grey" else "paletted") in note[0]


@pytest.mark.parametrize("kind", list(ODD))
def test_skip_bad_skips_the_odd_image_and_lists_it(tmp_path, kind):
    root = _folder(tmp_path, ODD[kind][0])
    ds = FolderDataset(root, size=(H, W), skip_bad=True)
    assert [sid for sid, _ in ds.skipped] == ["2:3"]
    assert ODD[kind][1] in ds.skipped[0][1]
    assert [ds[i]["sample_id"] for i in range(len(ds))] == ["0:1", "1:2", "3:4"]


def test_a_paletted_mask_among_grey_masks_is_named(tmp_path):
    root = _folder(tmp_path)
    m = np.zeros((H, W), np.uint8)
    m[2:6, 3:12] = 1
    im = Image.fromarray(m, "P")
    im.putpalette([0, 0, 0, 255, 255, 255])
    im.save(tmp_path / "masks" / "1.png")
    with pytest.raises(ValueError, match=r"sample 1:2: mask .*1\.png is uint8, 1 band \(paletted\), "
                                         r"unlike the other 3 masks of this dataset, which are uint8, 1 band \(grey\)"):
        FolderDataset(root, size=(H, W))


def test_a_mask_of_another_size_is_named_from_headers(tmp_path):
    root = _folder(tmp_path)
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(tmp_path / "masks" / "3.png")
    with pytest.raises(ValueError, match=rf"sample 3:4: mask .*3\.png is {H + 1}x{W} but image .*3\.png is {H}x{W}"):
        FolderDataset(root, size=(H, W))


def test_a_clean_folder_builds_as_before(tmp_path):
    # RGBA images (a declared alpha, dropped when read) are not odd among RGB ones.
    def rgba(stem):
        Image.fromarray(np.dstack([_rgb(2), np.full((H, W), 255, np.uint8)])).save(f"{stem}.png")

    root = _folder(tmp_path, rgba)
    checked = FolderDataset(root, size=(H, W))
    unchecked = FolderDataset(root, size=(H, W), check_headers=False, check_sizes=False)
    assert len(checked) == len(unchecked) == N and checked.skipped == []
    for i in range(N):
        assert torch.equal(checked[i]["pixel_values"], unchecked[i]["pixel_values"])
        assert torch.equal(checked[i]["mask"], unchecked[i]["mask"])


def test_check_headers_false_reads_a_deliberate_mix(tmp_path):
    # A 16-bit file among 8-bit ones, each scaled by its own dtype: refused unless asked for.
    root = _folder(tmp_path, _uint16_png)
    with pytest.raises(ValueError, match=r"2\.png is uint16"):
        FolderDataset(root, size=(H, W), scale="dtype")
    ds = FolderDataset(root, size=(H, W), scale="dtype", check_headers=False, transform=_raw)
    expected = np.full((H, W, 3), 40000 / 65535, np.float32)
    assert torch.allclose(ds[2]["pixel_values"], torch.from_numpy(expected))


def _raw(image, mask):
    return torch.from_numpy(image.copy()), torch.from_numpy(mask.astype(np.int64))


def _refer(root, odd):
    (root / "JPEGImages").mkdir(parents=True)
    for i in (1, 2, 3):
        arr = np.full((H, W), 40000, np.uint16) if (i == 2 and odd) else _rgb(i)
        Image.fromarray(arr).save(root / "JPEGImages" / f"im{i}.png")
    images = [{"id": i, "file_name": f"im{i}.png", "height": H, "width": W} for i in (1, 2, 3)]
    anns = [{"id": 10 + i, "image_id": i, "category_id": 1, "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]}
            for i in (1, 2, 3)]
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": anns}))
    refs = [{"ref_id": r, "ann_id": 10 + i, "image_id": i, "split": "train",
             "sentences": [{"raw": f"the roof {r}", "sent_id": r}]}
            for r, i in enumerate((1, 1, 2, 3, 3))]
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return str(root)


def test_rrsisd_names_a_16_bit_image_among_8_bit_ones(tmp_path):
    root = _refer(tmp_path / "odd", odd=True)
    with pytest.raises(ValueError, match=r"ref 2: image .*im2\.png is uint16, 1 band \(grey\), unlike the "
                                         r"other 2 images"):
        RRSISDDataset(root, "train", mode="eval")
    ds = RRSISDDataset(root, "train", mode="eval", skip_bad=True)
    assert [sid for sid, _ in ds.skipped] == ["ref2/sent2"]
    assert len(RRSISDDataset(_refer(tmp_path / "clean", odd=False), "train", mode="eval")) == 5


# ---- a divisor scale against the files' dtype -------------------------------------------------

@pytest.mark.parametrize(("dtype", "scale"), [
    ("uint16", 4095), ("uint16", 1023), ("uint16", 10000), ("uint16", 65535), ("uint16", 256),
    ("uint8", 255), ("uint8", 1), ("int16", 10000), ("float32", 255), ("float32", 10000),
    ("uint16", "dtype"), ("uint16", "max"), ("uint8", None),
])
def test_divisors_that_fit_the_dtype_pass(dtype, scale):
    check_divisor(dtype, scale, "f.tif")


@pytest.mark.parametrize(("dtype", "scale", "match"), [
    ("uint16", 255, r"f\.tif: scale=255 is for data up to 255 or less, but the file is uint16 .*up to 257"),
    ("uint16", 100, r"scale=100 .* saved as uint8"),
    ("uint8", 4095, r"f\.tif: scale=4095 is above the largest uint8 value \(255\).* at most 0\.0623"),
    ("int16", 127, r"scale=127 is for data up to 127 or less, but the file is int16"),
])
def test_divisors_that_do_not_fit_the_dtype_are_refused(dtype, scale, match):
    with pytest.raises(ValueError, match=match):
        check_divisor(dtype, scale, "f.tif")


def _uint16_folder(root, odd=None):
    def write(stem, i):
        _tiff(f"{stem}.tif", np.random.default_rng(i).integers(0, 4096, (H, W, 3), dtype=np.uint16))
    return _folder(root, odd, write=write)


def test_twelve_bit_data_in_uint16_files_with_scale_4095_reads_as_such(tmp_path):
    root = _uint16_folder(tmp_path)
    ds = FolderDataset(root, size=(H, W), scale=4095, transform=_raw)
    expected = np.random.default_rng(1).integers(0, 4096, (H, W, 3), dtype=np.uint16) / 4095
    assert np.allclose(ds[1]["pixel_values"].numpy(), expected, atol=1e-7)


def test_an_eight_bit_scale_on_uint16_files_is_refused_at_construction(tmp_path):
    root = _uint16_folder(tmp_path)
    with pytest.raises(ValueError, match=r"sample 0:1: .*0\.tif: scale=255 is for data up to 255 or less, but "
                                         r"the file is uint16.*\(dataset options: data\.options"):
        FolderDataset(root, size=(H, W), scale=255)


def test_one_uint16_file_among_uint8_ones_under_scale_255_is_named(tmp_path):
    def odd(stem):
        _tiff(f"{stem}.tif", np.full((H, W, 3), 3000, np.uint16))
    root = _folder(tmp_path, odd)
    with pytest.raises(ValueError, match=r"sample 2:3: image .*2\.tif is uint16, 3 bands \(RGB\), unlike the other "
                                         r"3 images .*: .*scale=255 is for data up to 255 or less"):
        FolderDataset(root, size=(H, W), scale=255)


def test_one_float_file_under_dtype_scaling_is_named(tmp_path):
    def odd(stem):
        _tiff(f"{stem}.tif", np.full((H, W, 3), 0.5, np.float32))
    root = _uint16_folder(tmp_path, odd)
    with pytest.raises(ValueError, match=r"2\.tif is float32, 3 bands \(RGB\), unlike the other 3 images .*"
                                         r"scale='dtype' needs integer data"):
        FolderDataset(root, size=(H, W), scale="dtype")


# ---- the header says what the readers return --------------------------------------------------

def _p_with_transparency(path):
    im = Image.fromarray(_rgb(0)).convert("P")
    im.info["transparency"] = 0
    im.save(path, transparency=0)


WRITERS = {
    "L.png": lambda p: Image.fromarray(_rgb(0)[:, :, 0]).save(p),
    "LA.png": lambda p: Image.fromarray(_rgb(0)[:, :, :2].copy(), "LA").save(p),
    "RGBA.png": lambda p: Image.fromarray(np.dstack([_rgb(0), _rgb(1)[:, :, 0]])).save(p),
    "P.png": lambda p: Image.fromarray(_rgb(0)).convert("P").save(p),
    "Pt.png": _p_with_transparency,
    "1.png": lambda p: Image.fromarray(_rgb(0)[:, :, 0] > 128).save(p),
    "I16.png": lambda p: Image.fromarray(np.full((H, W), 999, np.uint16)).save(p),
    "F.tif": lambda p: _tiff(p, np.full((H, W), 0.25, np.float32)),
    "rgb.jpg": lambda p: Image.fromarray(_rgb(0)).save(p),
    "cmyk.jpg": lambda p: Image.fromarray(_rgb(0)).convert("CMYK").save(p),
    "u16x5.tif": lambda p: _tiff(p, np.ones((H, W, 5), np.uint16)),
    "u8x4.tif": lambda p: _tiff(p, np.ones((H, W, 4), np.uint8)),  # GDAL declares the 4th band alpha
    "u16deflate.tif": lambda p: _tiff(p, np.ones((H, W, 3), np.uint16), compress="deflate"),
    "i16.tif": lambda p: _tiff(p, np.ones((H, W, 2), np.int16)),
}


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("palette_to_rgb", [True, False])
def test_header_matches_the_decoded_array(tmp_path, name, palette_to_rgb):
    path = tmp_path / name
    WRITERS[name](str(path))
    header = read_header(path, palette_to_rgb)
    arr, alpha = _load(str(path), palette_to_rgb)[:2]
    if palette_to_rgb:
        arr = load_raster(path)  # bool (1-bit) arrays come back as uint8
    assert (header.height, header.width, header.bands) == arr.shape
    assert (header.dtype, header.alpha) == (arr.dtype.name, alpha)
    assert header.palette == name.startswith("P")


def test_headers_are_read_without_decoding_a_pixel(tmp_path, monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: read upright as W x H
    Image.fromarray(_rgb(0)).save(tmp_path / "turned.png", exif=exif)
    Image.fromarray(_rgb(0)).save(tmp_path / "turned.jpg", exif=exif)
    root = _folder(tmp_path / "folder", ODD["16-bit"][0])

    def no_decoding(self):
        raise AssertionError(f"{self.filename} was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert read_header(tmp_path / "turned.png").hw == read_header(tmp_path / "turned.jpg").hw == (W, H)
    with pytest.raises(ValueError, match=r"2\.png is uint16, 1 band \(grey\)"):
        FolderDataset(root, size=(H, W), check_sizes=False)  # sizes aside: no first-sample decode
    assert len(FolderDataset(root, size=(H, W), check_sizes=False, check_headers=False)) == N
