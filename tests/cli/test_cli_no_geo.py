"""The command line without the ``geo`` extra (rasterio, shapely, pyogrio, pystac): what needs it
is refused naming ``pip install "rrsis[geo]"``, never with a bare "No module named ...", and a
plain TIFF (no GeoTIFF tags) is segmented as ``model.predict`` reads it."""

import sys

import numpy as np
import pytest
from PIL import Image

from rrsis.cli import main

GEO = ("rasterio", "shapely", "pyogrio", "pystac")


@pytest.fixture()
def no_geo(monkeypatch):
    """The geo extra's modules made unimportable, as in an install without it."""
    for name in [m for m in sys.modules if m.split(".")[0] in GEO]:
        monkeypatch.delitem(sys.modules, name)
    for name in GEO:
        monkeypatch.setitem(sys.modules, name, None)  # import rasterio → ImportError


def _png(path, value=100):
    Image.fromarray(np.full((48, 64, 3), value, np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("form", ["files", "glob", "list"])
def test_region_without_geo_names_the_extra(form, saved_model, tmp_path, capsys, no_geo):
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", 150)
    (tmp_path / "list.txt").write_text(f"{a}\n{b}\n")
    images = {"files": [a, b], "glob": [str(tmp_path / "*.png")], "list": [f"@{tmp_path / 'list.txt'}"]}[form]
    out = tmp_path / "region"
    for extra in ([], ["--merged", str(tmp_path / "m.parquet")]):
        argv = ["predict", "--model", str(saved_model), "--image", *images, "--text", "the red building",
                "--out", str(out), "--quiet", *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert 'pip install "rrsis[geo]"' in err and "No module named" not in err, err
        assert not out.exists()  # refused before any scene was segmented


def test_merged_file_needs_the_geo_extra_for_either_format(monkeypatch):
    pytest.importorskip("pyarrow")
    from rrsis.scene.region import check_merged_path

    assert check_merged_path("m.parquet") == "parquet"
    for name in [m for m in sys.modules if m.split(".")[0] == "shapely"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "shapely", None)
    with pytest.raises(ImportError, match=r'GeoParquet needs shapely: pip install "rrsis\[geo\]"'):
        check_merged_path("m.parquet")


def test_crs_without_geo_names_the_extra(saved_model, tmp_path, capsys, no_geo):
    argv = ["predict", "--model", str(saved_model), "--image", _png(tmp_path / "a.png"), "--text", "the ship",
            "--out", str(tmp_path / "p"), "--crs", "EPSG:32633", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "crs 'EPSG:32633' needs rasterio: pip install \"rrsis[geo]\"" in err, err


def test_plain_tiff_without_geo_is_read_as_model_predict_reads_it_and_a_geotiff_refused(saved_model, tmp_path, capsys, monkeypatch):
    rasterio = pytest.importorskip("rasterio")

    import rrsis

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 56, 3), np.uint8)
    plain = tmp_path / "rgb8.tif"
    Image.fromarray(pixels).save(plain)  # no georeference, as PIL writes it
    geo = tmp_path / "geo.tif"
    with rasterio.open(geo, "w", driver="GTiff", width=56, height=40, count=3, dtype="uint8", compress="deflate",
                       crs="EPSG:32633", transform=rasterio.Affine(0.5, 0, 500000, 0, -0.5, 4500000)) as ds:
        ds.write(np.moveaxis(pixels, 2, 0))
    model = rrsis.from_pretrained(saved_model)
    for name in [m for m in sys.modules if m.split(".")[0] in GEO]:
        monkeypatch.delitem(sys.modules, name)
    for name in GEO:
        monkeypatch.setitem(sys.modules, name, None)
    # A threshold at which the (nearly constant) tiny model's mask is neither empty nor full.
    threshold = next(t for t in np.linspace(0.02, 0.98, 49)
                     if 0.1 < model.predict([str(plain)], ["the red building"], threshold=t)[0].mean() < 0.9)
    expected = model.predict([str(plain)], ["the red building"], threshold=threshold)[0]
    out = tmp_path / "plain"
    argv = ["predict", "--model", str(saved_model), "--image", str(plain), "--text", "the red building",
            "--out", str(out), "--mode", "global", "--threshold", f"{threshold}", "--quiet"]
    assert main(argv) == 0
    mask = np.asarray(Image.open(f"{out}_mask.png")) > 0
    np.testing.assert_array_equal(mask, np.asarray(expected, bool))
    # A GeoTIFF is refused: its outputs would lose their place on the map (as the app refuses it).
    argv[argv.index(str(plain))], argv[argv.index(str(out))] = str(geo), str(tmp_path / "geo")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'geo.tif is a GeoTIFF: reading it needs rasterio: pip install "rrsis[geo]"' in err, err
