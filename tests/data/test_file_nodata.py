"""A TIFF's declared nodata value (GDAL's tag 42113, or band 1's ``NoDataValue`` in the sidecar
``PATH.aux.xml``) is honoured by the file reader: a pixel is nodata when every band read holds it
(GDAL's rule, as rasterio's ``dataset_mask`` reads it), so ``model.predict`` masks it out,
``load_image`` shows it black and ``read_image``'s statistics leave it out."""

import warnings

import numpy as np
import pytest
from PIL import Image

from rrsis.data import read_image
from rrsis.data.bands import nodata_mask, scale_values
from rrsis.data.io import _load, _read_masked
from rrsis.data.tiff import _parse_nodata, read_tiff_info
from rrsis.models.base import load_image

rasterio = pytest.importorskip("rasterio")

H, W = 8, 10
BORDER = np.ones((H, W), bool)
BORDER[2:-2, 2:-2] = False


def _rgb8(border=0):
    """An 8-bit R, G, B orthophoto: a border of ``border`` in every band, and inside it pixels
    whose red alone is ``border`` (dark water, shadow: data)."""
    planes = np.stack([np.full((H, W), v, np.uint8) for v in (60, 120, 180)])
    planes[:, BORDER] = border
    planes[0, 3, 3:6] = border
    return planes


def _u16():
    planes = np.stack([np.linspace(1000 + 500 * k, 3000, H * W).reshape(H, W).astype(np.uint16) for k in range(3)])
    planes[:, BORDER] = 0
    return planes


def _write(path, planes, nodata=None, compress=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=len(planes),
                           dtype=planes.dtype, nodata=nodata, compress=compress) as ds:
            ds.write(planes)
    return str(path)


def _write_tag(path, planes, text):
    """An uncompressed TIFF whose tag 42113 holds ``text`` (rasterio refuses to write a value
    the data type cannot hold, or one that is not a number)."""
    Image.fromarray(np.moveaxis(planes, 0, 2)).save(path, tiffinfo={42113: text})
    return str(path)


def _dataset_nodata(path):
    """Where rasterio's (GDAL's) dataset mask says the pixels are nodata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.dataset_mask() == 0


def _mask(path, scale=None):
    mask = _read_masked(path, scale=scale)[1]
    return np.zeros((H, W), bool) if mask is None else mask


@pytest.mark.parametrize(("text", "value"), [
    (b"0\0", 0.0), (b"-9999\0", -9999.0), (b" 12.5 ", 12.5), (b"-3.4028234663852886e+38", -3.4028234663852886e38),
    (b"", None), (b"\0", None), (b"abc", None), (b"0x10", None), ("255", 255.0), (None, None),
])
def test_nodata_text(text, value):
    assert _parse_nodata(text) == value
    assert np.isnan(_parse_nodata(b"nan\0"))


@pytest.mark.parametrize("compress", [None, "deflate"])
def test_rgb_nodata_zero_masks_the_border_only(tmp_path, compress):
    path = _write(tmp_path / "ortho.tif", _rgb8(), nodata=0, compress=compress)
    info = read_tiff_info(path)
    assert info.nodata == 0 and info.numpy_readable == (compress is None)  # numpy path / PIL path
    assert _load(path).nodata == 0
    np.testing.assert_array_equal(_mask(path), BORDER)  # red alone 0: data
    np.testing.assert_array_equal(_dataset_nodata(path), BORDER)


def test_predict_masks_out_the_declared_nodata(tmp_path, tiny_model):
    path = _write(tmp_path / "ortho.tif", _rgb8(), nodata=0)
    # A threshold near 0: every pixel is foreground unless the nodata rule clears it.
    (mask,) = tiny_model.predict(path, "the building", threshold=1e-9, image_size=64)
    np.testing.assert_array_equal(mask, ~BORDER)
    plain = _write(tmp_path / "plain.tif", _rgb8(), nodata=None)
    assert tiny_model.predict(plain, "the building", threshold=1e-9, image_size=64)[0].all()


def test_nodata_pixels_are_black_and_left_out_of_the_statistics(tmp_path):
    path = _write(tmp_path / "white.tif", _rgb8(border=255), nodata=255)
    shown = load_image(path)
    assert (shown[BORDER] == 0).all() and shown[3, 3, 0] == 255  # red alone 255: data
    np.testing.assert_array_equal(read_image(path)[~BORDER], _rgb8(255).transpose(1, 2, 0)[~BORDER] / np.float32(255))


@pytest.mark.parametrize("compress", [None, "deflate"])
def test_minmax_statistics_come_from_valid_pixels(tmp_path, compress):
    planes = _u16()
    path = _write(tmp_path / "u16.tif", planes, nodata=0, compress=compress)
    got = read_image(path, scale="minmax")
    valid = planes.transpose(1, 2, 0)[~BORDER].astype(np.float64)
    lo, hi = valid.min(), valid.max()
    assert lo >= 1000  # not the border's 0
    np.testing.assert_allclose(got[~BORDER], (valid - lo) / (hi - lo), rtol=1e-6)
    assert (got[BORDER] == 0).all() and got.min() == 0 and got.max() == 1
    np.testing.assert_allclose(read_image(path, scale="max")[~BORDER], valid / hi, rtol=1e-6)
    np.testing.assert_array_equal(_mask(path, "dtype"), _dataset_nodata(path))


def test_without_a_declared_value_zero_is_data(tmp_path):
    path = _write(tmp_path / "u16.tif", _u16())
    assert read_tiff_info(path).nodata is None and _load(path).nodata is None
    assert read_image(path, scale="minmax")[~BORDER].min() > 0  # the border's 0 is the minimum
    png = tmp_path / "ortho.png"
    Image.fromarray(_rgb8().transpose(1, 2, 0)).save(png)
    assert _load(png).nodata is None and _read_masked(png)[1] is None


def test_a_value_the_type_cannot_hold_marks_nothing(tmp_path):
    path = _write_tag(tmp_path / "bytes.tif", _rgb8(), "-9999")
    assert read_tiff_info(path).nodata == -9999 and read_tiff_info(path).numpy_readable
    assert _read_masked(path)[1] is None
    np.testing.assert_array_equal(read_image(path), _rgb8().transpose(1, 2, 0) / np.float32(255))
    assert not _dataset_nodata(path).any()


def test_a_malformed_tag_declares_nothing(tmp_path):
    path = _write_tag(tmp_path / "bad.tif", _rgb8(), "zero")
    assert read_tiff_info(path).nodata is None and _read_masked(path)[1] is None
    # (GDAL reads such text with atof, as 0; rrsis does not guess a value.)


def test_the_sidecar_overrides_the_tag(tmp_path):
    planes = _rgb8()
    planes[:, 3, 6:8] = 7  # 7 in every band: nodata by the sidecar's value
    path = _write(tmp_path / "side.tif", planes, nodata=0)
    bands = "".join(f'<PAMRasterBand band="{k}"><NoDataValue>7</NoDataValue></PAMRasterBand>' for k in (1, 2, 3))
    (tmp_path / "side.tif.aux.xml").write_text(f"<PAMDataset>{bands}</PAMDataset>")
    assert read_tiff_info(path).nodata == 7
    expected = np.zeros((H, W), bool)
    expected[3, 6:8] = True
    np.testing.assert_array_equal(_mask(path), expected)
    np.testing.assert_array_equal(_dataset_nodata(path), expected)
    (tmp_path / "side.tif.aux.xml").write_text('<PAMDataset><PAMRasterBand band="1"><NoDataValue>x'
                                               '</NoDataValue></PAMRasterBand></PAMDataset>')
    assert read_tiff_info(path).nodata == 0  # no number in the sidecar: the tag's


def test_float_nodata_and_nan(tmp_path):
    planes = np.full((3, H, W), 0.5, np.float32)
    planes[:, BORDER] = -9999
    planes[1, 4, 4] = np.nan  # NaN in one band: nodata by the non-finite rule
    path = _write(tmp_path / "f32.tif", planes, nodata=-9999)
    got, mask = _read_masked(path)  # scale=None: the valid values lie in [0, 1]
    expected = BORDER.copy()
    expected[4, 4] = True
    np.testing.assert_array_equal(mask, expected)
    assert (got[expected] == 0).all() and (got[~expected] == 0.5).all()
    nan = _write(tmp_path / "nan.tif", planes, nodata=float("nan"))
    assert np.isnan(read_tiff_info(nan).nodata)
    np.testing.assert_array_equal(_mask(nan, "minmax"), np.isnan(planes).any(axis=0))


def test_an_image_of_nodata_only_raises(tmp_path):
    path = _write(tmp_path / "empty.tif", np.zeros((3, H, W), np.uint8), nodata=0)
    with pytest.raises(ValueError, match=r"empty.tif: every pixel is nodata"):
        read_image(path)
    with pytest.raises(ValueError, match="every pixel is NaN"):  # the non-finite case as before
        read_image(np.full((H, W, 3), np.nan, np.float32))


def test_scale_values_takes_a_nodata_mask():
    arr = np.stack([np.arange(H * W, dtype=np.uint16).reshape(H, W)] * 3, axis=2) + 10
    arr[0, 0] = 60000
    out = scale_values(arr, "max", "a", nodata=np.eye(H, W, dtype=bool))  # (0, 0) left out
    assert out[0, 0, 0] == 0 and out[H - 1, W - 1, 0] == 1
    np.testing.assert_array_equal(nodata_mask(arr, 60000), np.eye(H, W, dtype=bool) & (arr[:, :, 0] == 60000))
    assert nodata_mask(arr, None) is None and nodata_mask(arr, 5) is None
