"""Folders as users have them: colour and alpha masks, ids written with their extension,
compressed 16-bit TIFFs, array and tensor layouts, and dataset options checked by name."""

import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis import ConfigError
from rrsis.data import FolderDataset, build_dataset, read_image, read_mask
from rrsis.data.base import check_dataset_options, dataset_options

H, W = 12, 20


def _shape():
    m = np.zeros((H, W), bool)
    m[3:8, 4:15] = True
    return m


def _folder(root, write_mask, *, image=None, image_name="0.png", mask_name="0.png", line="0 the roof"):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    if image is None:
        image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / image_name)
    else:
        image(root / "images" / image_name)
    write_mask(_shape(), root / "masks" / mask_name)
    (root / "output_phrase_train.txt").write_text(line + "\n")
    return str(root)


def _colour_mask(colour, alpha=None):
    def write(m, path):
        a = np.zeros((H, W, 3 if alpha is None else 4), np.uint8)
        a[m, :3] = colour
        if alpha is not None:
            a[..., 3] = np.where(m, 255, alpha)
        Image.fromarray(a).save(path)
    return write


@pytest.mark.parametrize("colour", [(255, 255, 255), (255, 0, 0)])
def test_colour_masks_whose_first_band_draws_the_shape_load(tmp_path, colour):
    root = _folder(tmp_path, _colour_mask(colour))
    assert np.array_equal(read_mask(f"{root}/masks/0.png"), _shape())
    ds = FolderDataset(root, size=(H, W))
    assert np.array_equal(ds[0]["mask"].numpy(), _shape().astype(np.int64))


@pytest.mark.parametrize(("write", "what"), [
    (_colour_mask((0, 255, 0)), "band 2 draws a shape"),        # green foreground on black
    (_colour_mask((0, 0, 0), alpha=0), "the alpha band draws a shape"),  # drawn in alpha only
])
def test_masks_drawn_outside_the_first_band_are_refused_at_construction(tmp_path, write, what):
    root = _folder(tmp_path, write)
    # Before: read as band 1 > 50, these trained on an empty target without a word.
    with pytest.raises(ValueError, match=rf"masks/0.png: band 1 of this \d-band mask is all background but {what}"):
        FolderDataset(root)


def test_an_empty_colour_mask_is_still_an_empty_target(tmp_path):
    """A no-target expression's black RGBA mask (opaque alpha) is not a shape drawn elsewhere."""
    root = _folder(tmp_path, _colour_mask((0, 0, 0), alpha=255))
    assert not FolderDataset(root, size=(H, W))[0]["mask"].any()


def test_ids_may_carry_their_extension(tmp_path):
    def mask_tif(m, path):
        Image.fromarray(m.astype(np.uint8) * 255).save(path)
    root = _folder(tmp_path, mask_tif, mask_name="0.tif", line="0.png the roof")
    ds = FolderDataset(root, size=(H, W))
    assert ds.entries[0].image_path.endswith("images/0.png")
    assert ds.entries[0].target.endswith("masks/0.tif")
    assert np.array_equal(ds[0]["mask"].numpy(), _shape().astype(np.int64))
    (tmp_path / "output_phrase_val.txt").write_text("0.jpg the roof\n1.png a road\n")
    with pytest.raises(FileNotFoundError, match=r"line 2: sample 1.png:2: image .*images/1.png not found"):
        FolderDataset(root, split="val")


def _tiff16(path, compress=None):
    rasterio = pytest.importorskip("rasterio")
    a = (np.arange(H * W * 3, dtype=np.uint16).reshape(3, H, W) * 97) % 65535
    kw = {"compress": compress} if compress else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a plain TIFF
        with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint16", **kw) as dst:
            dst.write(a)
    return np.moveaxis(a, 0, 2)


def test_deflate_16bit_tiff_reads_exactly_and_without_rasterio_names_the_extra(tmp_path, monkeypatch):
    expected = _tiff16(tmp_path / "a.tif", compress="deflate")
    got = read_image(str(tmp_path / "a.tif"), scale="dtype")
    np.testing.assert_array_equal(got, (expected / 65535.0).astype(np.float32))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W // 3)  # PIL's bomb limit holds for rasterio too
    with pytest.raises(ValueError, match="decompression bomb"):
        read_image(str(tmp_path / "a.tif"), scale="dtype")
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "rasterio", None)  # as if the geo extra were missing
    with pytest.raises(ValueError, match=r'a.tif: compressed 3-band 16-bit TIFF .*pip install "rrsis\[geo\]"'):
        read_image(str(tmp_path / "a.tif"), scale="dtype")


def test_a_setting_wrong_for_the_folder_fails_at_construction(tmp_path):
    def mask255(m, path):
        Image.fromarray(m.astype(np.uint8) * 255).save(path)
    root = _folder(tmp_path, mask255, image=lambda p: _tiff16(p), image_name="0.tif")
    with pytest.raises(ValueError, match=r"images/0.tif: uint16 image needs an explicit scale=.*\(dataset "
                                         r"options: data.options in a training recipe"):
        FolderDataset(root)
    ds = FolderDataset(root, scale="dtype", size=(H, W))
    assert np.array_equal(ds[0]["mask"].numpy(), _shape().astype(np.int64))


def test_channels_first_arrays_and_tensors_read_as_their_channels_last_twin():
    hwc = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    want = read_image(hwc)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    np.testing.assert_array_equal(read_image(chw), want)
    np.testing.assert_array_equal(read_image(torch.from_numpy(chw)), want)
    np.testing.assert_array_equal(read_image(torch.from_numpy(chw).float() / 255), want)
    np.testing.assert_array_equal(read_image(torch.from_numpy(hwc)), want)
    grey = np.arange(H * W, dtype=np.uint8).reshape(1, H, W)
    np.testing.assert_array_equal(read_image(grey), np.repeat(grey[0, :, :, None], 3, 2) / np.float32(255))
    with pytest.raises(ValueError, match=r"expected an \[H, W\], \[H, W, C\] or \[C, H, W\] tensor, got shape \(1, 3, 12, 20\)"):
        read_image(torch.zeros(1, 3, H, W))


def test_dataset_options_are_checked_by_name(tmp_path):
    assert {"mask_threshold", "image_dir", "scale", "skip_bad"} <= set(dataset_options("risbench"))
    assert "mask_threshold" not in dataset_options("rrsisd")
    with pytest.raises(ConfigError, match=r"'mask_treshold' in data.options \(dataset 'risbench'\); did you mean 'mask_threshold'"):
        check_dataset_options("risbench", {"mask_treshold": 0})
    with pytest.raises(ConfigError, match=r"unknown key 'image_dri' .*did you mean 'image_dir'"):
        build_dataset("folder", str(tmp_path), image_dri="x")


def test_a_mask_drawn_on_the_stored_side_of_an_exif_turned_image_is_named(tmp_path):
    def mask_stored(m, path):  # drawn on the image as stored (W x H), not as shown
        Image.fromarray(np.ascontiguousarray(m.T).astype(np.uint8) * 255).save(path)

    def jpeg_turned(path):
        im = Image.fromarray(np.zeros((W, H, 3), np.uint8))  # stored W x H, shown H x W
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(path, exif=exif)

    root = _folder(tmp_path, mask_stored, image=jpeg_turned, image_name="0.jpg")
    with pytest.raises(ValueError, match=rf"mask .*0.png is {W}x{H} but image .*0.jpg is {H}x{W} once its "
                                         "EXIF orientation turns it upright"):
        FolderDataset(root)


def test_a_folder_read_with_the_wrong_layout_says_which_it_has(tmp_path):
    def mask255(m, path):
        Image.fromarray(m.astype(np.uint8) * 255).save(path)
    folder = _folder(tmp_path / "data" / "mine", mask255)
    with pytest.raises(FileNotFoundError, match=r"mine/refs\(unc\).p: file not found; .*mine holds "
                                                r"output_phrase_train.txt, the risbench \(or refsegrs\) layout"):
        build_dataset("rrsisd", folder)
    with pytest.raises(FileNotFoundError, match=r"data/output_phrase_train.txt: phrase file for split 'train' "
                                                r"not found; splits found in .*data: \(none\); .*data/mine holds "
                                                r"output_phrase_train.txt: is that the root\?"):
        build_dataset("risbench", str(tmp_path / "data"))
