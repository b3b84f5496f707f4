"""Rasters no reading has a meaning for: refused at open with one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")


def _write(path, data, dtype):
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=dtype, crs="EPSG:32633", transform=Affine(1, 0, 500000, 0, -1, 5000000)) as ds:
        ds.write(data.astype(dtype) if dtype != "complex_int16" else data)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_refused_at_open(tmp_path, dtype):
    from rrsis.scene import open_scene

    path = tmp_path / "c.tif"
    _write(path, np.ones((3, 16, 16)) * (1 + 2j), dtype)
    with pytest.raises(ValueError, match=rf"^{path}: {dtype} pixels, which rrsis cannot read"):
        open_scene(str(path))


def test_complex_refused_by_the_cli(tmp_path, saved_model, capsys):
    from rrsis.cli import main

    path = tmp_path / "c.tif"
    _write(path, np.ones((3, 16, 16)) * (1 + 2j), "complex64")
    assert main(["predict", "--model", str(saved_model), "--image", str(path), "--text", "x",
                 "--out", str(tmp_path / "out/"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rrsis predict: error: {path}: complex64 pixels, which rrsis cannot read")
    assert "\n" not in err


@pytest.mark.parametrize("scale", [None, "max", "minmax"])
def test_values_beyond_float32_refused_without_numpy_warnings(tmp_path, scale):
    import warnings

    from rrsis.scene import open_scene

    path = tmp_path / "huge.tif"
    _write(path, np.full((3, 16, 16), 1e308), "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in divide" came first
        with pytest.raises(ValueError, match=rf"^{path}: .* spans \[.*1e\+308\], beyond float32's range"):
            open_scene(str(path), scale=scale)


def test_constant_band_at_float32_max_reads_without_warnings(tmp_path):
    import warnings

    from rrsis.scene import open_scene

    path = tmp_path / "flat.tif"
    _write(path, np.full((3, 16, 16), 3e38), "float32")  # a + 1.0 == a: the stretch divided 0 by 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels, valid = open_scene(str(path)).read((0, 0, 16, 16))
    assert valid.all() and np.isfinite(pixels).all() and (pixels == 0).all()


def test_outliers_beyond_float32_within_the_stretch_are_clipped(tmp_path):
    import warnings

    from rrsis.scene import open_scene

    path = tmp_path / "spikes.tif"
    data = np.random.default_rng(0).random((3, 16, 16))
    data[:, 0, 0] = 1e308
    _write(path, data, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels, _ = open_scene(str(path)).read((0, 0, 16, 16))
    assert pixels[0, 0].tolist() == [1.0, 1.0, 1.0] and 0 < pixels[5, 5, 0] < 1
