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
