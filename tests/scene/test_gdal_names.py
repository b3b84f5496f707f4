"""Rasters GDAL names beyond a file on disk: a container of several rasters (a GeoPackage's raster
tables, a netCDF file's variables) refused with its subdatasets' GDAL names, one such name read as a
raster everywhere a path is, and the output stem a subdataset or a ``/vsigzip/`` path gives."""

import gzip
import os
import shutil

import numpy as np
import pytest
import torch

import rrsis
from rrsis.cli import main
from rrsis.scene import area_of_interest, open_aoi_scene, open_scene, output_prefixes, segment_scene
from rrsis.scene.gdal_names import is_gdal_url, is_subdataset, name_stem
from rrsis.scene.region import resolve_scenes, scene_id

rasterio = pytest.importorskip("rasterio")
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.shutil import copy as gdal_copy

CRS = "EPSG:32633"
T = Affine(1, 0, 500000, 0, -1, 4000000)


def pixels(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(30, 90, (3, 64, 80)).astype(np.uint8)
    a[:, 16:32, 20:40] = 220
    return a


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory):
    """A GeoPackage with two raster tables, ``first`` and ``second`` (different pixels)."""
    path = tmp_path_factory.mktemp("gdal_names") / "two.gpkg"
    for seed, table in enumerate(("first", "second")):
        with rasterio.open(path, "w", driver="GPKG", height=64, width=80, count=3, dtype="uint8", crs=CRS,
                           transform=T, RASTER_TABLE=table, APPEND_SUBDATASET="YES") as ds:
            ds.write(pixels(seed))
    return path


@pytest.fixture(scope="module")
def netcdf(tmp_path_factory):
    """A netCDF file with three variables (a 3-band GeoTIFF's bands, as gdal_translate writes it)."""
    folder = tmp_path_factory.mktemp("gdal_names_nc")
    with rasterio.open(folder / "one.tif", "w", driver="GTiff", height=64, width=80, count=3, dtype="uint8",
                       crs=CRS, transform=T) as ds:
        ds.write(pixels(2))
    try:
        gdal_copy(folder / "one.tif", folder / "vars.nc", driver="netCDF")
    except (ValueError, RasterioError) as exc:  # a GDAL built without netCDF
        pytest.skip(f"no netCDF driver: {exc}")
    return folder / "vars.nc"


def test_a_container_is_refused_naming_its_subdatasets(gpkg, netcdf):
    with pytest.raises(ValueError) as err:
        open_scene(gpkg)
    msg = str(err.value)
    assert "\n" not in msg and "2 raster(s)" in msg and "GDAL name" in msg
    assert f"GPKG:{gpkg}:first" in msg and f"GPKG:{gpkg}:second" in msg
    with pytest.raises(ValueError) as err:
        open_scene(netcdf)
    assert "3 raster(s)" in str(err.value) and all(f'NETCDF:"{netcdf}":Band{i}' in str(err.value) for i in (1, 2, 3))


def test_a_subdataset_name_is_read_as_a_raster(gpkg, netcdf):
    name = f"GPKG:{gpkg}:second"
    assert is_subdataset(name) and is_gdal_url(name) and not is_subdataset(str(gpkg))
    with open_scene(name) as sc:
        img = sc.read()[0]
        assert sc.georeferenced and sc.crs == rasterio.crs.CRS.from_user_input(CRS)
    np.testing.assert_allclose(img, np.moveaxis(pixels(1), 0, -1) / np.float32(255), atol=1e-6)
    with open_scene(f'NETCDF:"{netcdf}":Band2') as sc:  # one band: grey
        np.testing.assert_allclose(sc.read()[0][..., 0], pixels(2)[1] / np.float32(255), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="missing.tif: file not found"):
        open_scene(gpkg.parent / "missing.tif")
    # An area of interest reads the window through vrt://NAME: the name kept as GDAL's.
    sc, _ = open_aoi_scene(name, area_of_interest("500010,3999940,500030,3999960", CRS))
    with sc:
        assert sc.name == name and (sc.height, sc.width) == (20, 20)
        np.testing.assert_allclose(sc.read()[0], np.moveaxis(pixels(1)[:, 40:60, 10:30], 0, -1) / np.float32(255),
                                   atol=1e-6)


def test_outputs_and_scene_ids_are_named_after_the_file_and_the_subdataset(gpkg, netcdf, tiny_model, tmp_path):
    assert name_stem(f"GPKG:{gpkg}:second") == "two_second"
    assert name_stem(f'NETCDF:"{netcdf}":Band1') == "vars_Band1"
    assert name_stem("netcdf:/data/vars.nc:Band1") == "vars_Band1"  # rasterio's spelling
    assert output_prefixes(f"{tmp_path}/", 1, f"GPKG:{gpkg}:first") == [str(tmp_path / "two_first")]
    ids = {s.id: s.uri for s in resolve_scenes([f"GPKG:{gpkg}:first", f"GPKG:{gpkg}:second"])}
    assert ids == {"two_first": f"GPKG:{gpkg}:first", "two_second": f"GPKG:{gpkg}:second"}
    segment_scene(tiny_model, f"GPKG:{gpkg}:second", "the building", mode="global", out=f"{tmp_path}/")
    with rasterio.open(tmp_path / "two_second_mask.tif") as ds:
        assert ds.shape == (64, 80) and ds.transform == T
    assert (tmp_path / "two_second.geojson").is_file()


def test_a_vsigzip_raster_outputs_drop_the_raster_suffix_too(tmp_path, tiny_model):
    assert name_stem("/vsigzip//data/area.tif.gz") == "area" and scene_id("/vsigzip//data/area.tif.gz") == "area"
    assert name_stem("/data/area.tif") == "area" and name_stem("https://host/a/area.tif?sig=1") == "area"
    with rasterio.open(tmp_path / "area.tif", "w", driver="GTiff", height=64, width=80, count=3, dtype="uint8",
                       crs=CRS, transform=T) as ds:
        ds.write(pixels(0))
    with open(tmp_path / "area.tif", "rb") as src, gzip.open(tmp_path / "area.tif.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "out").mkdir()
    segment_scene(tiny_model, f"/vsigzip/{tmp_path}/area.tif.gz", "the building", mode="global",
                  out=f"{tmp_path}/out/")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix in (".tif", ".geojson")) == [
        "area.geojson", "area_mask.tif"]


def test_predict_takes_a_subdataset_name_and_refuses_a_container(gpkg, tmp_path, tiny_tokenizer, capsys):
    from rrsis.hub import save_pretrained

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, tmp_path / "model")
    argv = ["predict", "--model", str(tmp_path / "model"), "--text", "the building", "--quiet", "--mode", "global",
            "--out", f"{tmp_path}/o/"]
    assert main([*argv, "--image", f"GPKG:{gpkg}:first"]) == 0
    assert (tmp_path / "o" / "two_first_mask.tif").is_file()
    assert main([*argv, "--image", str(gpkg)]) == 2
    assert f"GPKG:{gpkg}:second" in capsys.readouterr().err
    assert main([*argv, "--image", str(tmp_path / "nope.tif")]) == 2
    assert "nope.tif: file not found" in capsys.readouterr().err


def test_a_subdataset_or_vsigzip_name_is_recorded_with_its_file_absolute(gpkg, tiny_model, tmp_path, monkeypatch):
    import json

    from rrsis.scene.gdal_names import absolute_name
    from rrsis.scene.outputs import read_record
    from rrsis.scene.region import segment_scenes

    folder = gpkg.parent
    with rasterio.open(folder / "area.tif", "w", driver="GTiff", height=64, width=80, count=3, dtype="uint8",
                       crs=CRS, transform=T) as ds:
        ds.write(pixels(0))
    with open(folder / "area.tif", "rb") as src, gzip.open(folder / "area.tif.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    monkeypatch.chdir(folder)
    assert absolute_name("GPKG:two.gpkg:second") == f"GPKG:{gpkg}:second"
    assert absolute_name("/vsigzip/area.tif.gz") == f"/vsigzip/{folder}/area.tif.gz"
    assert absolute_name('NETCDF:"two.gpkg":x') == f'NETCDF:"{gpkg}":x'
    for kept in ("https://host/a.tif", "/vsicurl/https://host/a.tif", "/vsis3/bucket/a.tif", "GPKG:none.gpkg:t"):
        assert absolute_name(kept) == kept
    # One scene: recorded absolute, so --resume naming it absolutely keeps the files.
    kw = {"mode": "global", "out": f"{tmp_path}/one/"}
    segment_scene(tiny_model, "GPKG:two.gpkg:second", "the building", **kw)
    assert read_record(str(tmp_path / "one" / "two_second_mask.tif"))["source"] == f"GPKG:{gpkg}:second"
    again = segment_scene(tiny_model, f"GPKG:{gpkg}:second", "the building", resume=True, **kw)
    assert again[0].already_done
    # A region: region.json records them absolute; a rerun naming them absolutely skips them.
    names = ["GPKG:two.gpkg:second", "/vsigzip/area.tif.gz"]
    first = segment_scenes(tiny_model, names, "the building", out=tmp_path / "reg", mode="global")
    region = json.loads((tmp_path / "reg" / "region.json").read_text())
    assert sorted(s["source"] for s in region["scenes"]) == [f"/vsigzip/{folder}/area.tif.gz", f"GPKG:{gpkg}:second"]
    monkeypatch.chdir(tmp_path)
    rerun = segment_scenes(tiny_model, [f"GPKG:{gpkg}:second", f"/vsigzip/{folder}/area.tif.gz"], "the building",
                           out=tmp_path / "reg", mode="global")
    assert first.done == ["area", "two_second"] and rerun.skipped == ["area", "two_second"]


def test_a_labels_template_stem_is_the_stem_the_outputs_take(gpkg, tmp_path):
    from rrsis.scene.evaluate_labels import labels_for

    with rasterio.open(tmp_path / "area.tif", "w", driver="GTiff", height=64, width=80, count=3, dtype="uint8",
                       crs=CRS, transform=T) as ds:
        ds.write(pixels(0))
    with open(tmp_path / "area.tif", "rb") as src, gzip.open(tmp_path / "area.tif.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    names = [f"/vsigzip/{tmp_path}/area.tif.gz", f"GPKG:{gpkg}:first", f"GPKG:{gpkg}:second"]
    stems = [os.path.basename(output_prefixes(f"{tmp_path}/", 1, n)[0]) for n in names]
    assert stems == ["area", "two_first", "two_second"]
    for stem in stems:
        (tmp_path / f"{stem}.geojson").write_text("{}")
    sources = resolve_scenes(names)
    files = labels_for(sources, f"{tmp_path}/{{stem}}.geojson")
    assert {s.uri: os.path.basename(f) for s, f in zip(sources, files)} == {
        n: f"{stem}.geojson" for n, stem in zip(names, stems)}
