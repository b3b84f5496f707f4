"""Rasters given as http URLs, read through GDAL's /vsicurl/ from a local range-serving HTTP server
(tests/scene/_http.py): one COG, STAC items whose asset hrefs are URLs (one asset; band assets
stacked in a VRT), a region of URLs, a mosaic of URL tiles, an area of interest read as a window,
and the errors of a missing file and of a server without byte ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.scene import resolve_scenes, segment_scene, segment_scenes

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pystac")
from _fixtures import merged_against_scenes, write_small_geotiff
from _http import RangeServer
from rasterio.transform import from_origin
from test_scene import (
    CRS,
    tiny,  # noqa: F401  (the sharpened tiny model fixture)
    write_scene,
)

TEXT = "the red building"
SIGNED = "?st=2024-01-01&sig=a%2Fb"  # a signed URL's query (Planetary Computer's SAS tokens): '&' in XML


def _cog(src, dst, blocksize=64):
    """``src`` rewritten as a Cloud-Optimized GeoTIFF (tiles of ``blocksize``, overviews)."""
    with rasterio.open(src) as ds:
        profile, data = ds.profile, ds.read()
    for key in ("blockxsize", "blockysize", "tiled", "interleave", "compress"):
        profile.pop(key, None)
    with rasterio.open(dst, "w", **{**profile, "driver": "COG", "blocksize": blocksize}) as ds:
        ds.write(data)
    return dst


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A folder of rasters behind a range-serving HTTP server: ``scene.tif`` (a 4-band COG),
    ``t0.tif``/``t1.tif`` (two small scenes side by side), ``red/green/blue.tif`` (one band each)."""
    root = tmp_path_factory.mktemp("www")
    write_scene(root / "plain.tif")
    _cog(root / "plain.tif", root / "scene.tif")
    for i in range(2):
        write_small_geotiff(root / f"t{i}.tif", seed=i, x0=440720.0 + 48 * i)
    rng = np.random.default_rng(3)
    for colour in ("red", "green", "blue"):
        with rasterio.open(root / f"{colour}.tif", "w", driver="GTiff", width=48, height=32, count=1,
                           dtype="uint8", crs=CRS, transform=from_origin(440720.0, 3751320.0, 2, 2)) as ds:
            ds.write(rng.integers(1, 255, (1, 32, 48), dtype=np.uint8))
    with RangeServer(root) as srv:
        yield root, srv


def _mask(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.crs


def test_a_cog_url_gives_the_mask_of_the_same_file_on_disk(tiny, served, tmp_path):  # noqa: F811
    root, srv = served
    kw = {"mode": "tiles", "tile": 64, "overlap": 0.25, "return_mask": True}
    (remote,) = segment_scene(tiny, srv.url("scene.tif"), TEXT, out=tmp_path / "u" / "scene", **kw)
    (local,) = segment_scene(tiny, root / "scene.tif", TEXT, out=tmp_path / "l" / "scene", **kw)
    assert all(str(tmp_path / "u") in f for f in remote.files.values())
    assert 0.02 < local.mask.mean() < 0.98
    np.testing.assert_array_equal(remote.mask, local.mask)
    got, want = _mask(remote.files["mask"]), _mask(local.files["mask"])
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]


def test_predict_reads_a_url_and_a_stac_item_of_url_hrefs(saved_model, served, tmp_path, capsys):
    root, srv = served
    base = ["predict", "--model", str(saved_model), "--text", TEXT, "--mode", "global", "--quiet"]
    assert main([*base, "--image", str(root / "scene.tif"), "--out", str(tmp_path / "l" / "s")]) == 0
    assert main([*base, "--image", srv.url("scene.tif"), "--out", str(tmp_path / "u" / "s")]) == 0
    want = _mask(tmp_path / "l" / "s_mask.tif")
    got = _mask(tmp_path / "u" / "s_mask.tif")
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]
    # A signed URL ('?' in it) is one image too, not a glob of a region.
    assert main([*base, "--image", srv.url("scene.tif") + SIGNED, "--out", str(tmp_path / "q" / "s")]) == 0
    np.testing.assert_array_equal(_mask(tmp_path / "q" / "s_mask.tif")[0], want[0])
    # A STAC item on disk whose assets are URLs: one asset (Earth Search's "visual") is that URL.
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "item1", "geometry": None, "links": [],
            "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "assets": {"visual": {"href": srv.url("scene.tif"), "type": "image/tiff; application=geotiff"},
                       **{c: {"href": srv.url(f"{c}.tif"), "type": "image/tiff; application=geotiff"}
                          for c in ("red", "green", "blue")}}}
    (tmp_path / "item.json").write_text(json.dumps(item))
    (scene,) = resolve_scenes(tmp_path / "item.json", asset="visual")
    assert (scene.id, scene.uri) == ("item1", srv.url("scene.tif"))
    assert main([*base, "--image", str(tmp_path / "item.json"), "--asset", "visual",
                 "--out", str(tmp_path / "stac")]) == 0
    np.testing.assert_array_equal(_mask(tmp_path / "stac" / "item1" / "item1_mask.tif")[0], want[0])
    capsys.readouterr()


def test_band_assets_at_urls_are_stacked_in_a_vrt_of_urls(tiny, served, tmp_path):  # noqa: F811
    root, srv = served
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "s2", "geometry": None, "links": [],
            "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "assets": {c: {"href": srv.url(f"{c}.tif") + SIGNED, "type": "image/tiff; application=geotiff"}
                       for c in ("red", "green", "blue")}}
    (tmp_path / "item.json").write_text(json.dumps(item))
    (scene,) = resolve_scenes(tmp_path / "item.json", asset="red,green,blue", stack_dir=tmp_path / "stacks")
    assert f"/vsicurl/{srv.url('red.tif')}{SIGNED.replace('&', '&amp;')}<" in Path(scene.uri).read_text()
    with rasterio.open(scene.uri) as ds:
        pixels = ds.read()
    for i, colour in enumerate(("red", "green", "blue")):
        with rasterio.open(root / f"{colour}.tif") as ds:
            np.testing.assert_array_equal(pixels[i], ds.read(1))
    s = segment_scenes(tiny, tmp_path / "item.json", TEXT, asset="red,green,blue", out=tmp_path / "r",
                       mode="global")
    assert (s.done, s.failed) == (["s2"], {})
    assert (tmp_path / "r" / "s2" / "s2_mask.tif").is_file()


def test_a_region_of_urls_and_a_mosaic_of_url_tiles(tiny, saved_model, served, tmp_path, capsys):  # noqa: F811
    root, srv = served
    urls = [srv.url("t0.tif") + SIGNED, srv.url("t1.tif") + SIGNED]
    s = segment_scenes(tiny, urls, TEXT, out=tmp_path / "region", mode="global")
    assert (sorted(s.done), s.failed) == (["t0", "t1"], {})
    assert s.merged == str(tmp_path / "region" / "merged.gpkg")
    got, want = merged_against_scenes(tmp_path / "region", s.merged)
    assert got == want and s.n_polygons > 0
    local = segment_scenes(tiny, [root / "t0.tif", root / "t1.tif"], TEXT, out=tmp_path / "local", mode="global")
    assert merged_against_scenes(tmp_path / "local", local.merged)[0] == got
    argv = ["predict", "--model", str(saved_model), "--text", TEXT, "--mode", "global", "--quiet", "--mosaic"]
    assert main([*argv, "--image", *urls, "--out", str(tmp_path / "m" / "area")]) == 0
    assert "/vsicurl/" in (tmp_path / "m" / "area_mosaic.vrt").read_text()
    assert main([*argv, "--image", *(str(root / f"t{i}.tif") for i in range(2)),
                 "--out", str(tmp_path / "n" / "area")]) == 0
    got, want = _mask(tmp_path / "m" / "area_mask.tif"), _mask(tmp_path / "n" / "area_mask.tif")
    assert got[0].shape == (1, 64, 192)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]
    capsys.readouterr()


def test_an_aoi_on_a_url_reads_only_its_window(tiny, served, tmp_path):  # noqa: F811
    root, srv = served
    with rasterio.open(root / "scene.tif") as ds:
        t = ds.transform
    x0, y0 = t * (150, 20)  # a box of about 60 x 50 pixels near the top right
    box = (x0, y0 - 75, x0 + 90, y0)
    kw = {"mode": "global", "aoi": box, "aoi_crs": CRS, "return_mask": True}
    srv.reset()
    (remote,) = segment_scene(tiny, srv.url("scene.tif"), TEXT, out=tmp_path / "u", **kw)
    sent = srv.sent().get("scene.tif", 0)
    size = (root / "scene.tif").stat().st_size
    assert 0 < sent < size / 2, (sent, size)
    (local,) = segment_scene(tiny, root / "scene.tif", TEXT, out=tmp_path / "l", **kw)
    assert remote.window == local.window
    np.testing.assert_array_equal(remote.mask, local.mask)


def test_a_missing_url_and_a_server_without_ranges_are_named(tiny, saved_model, served, tmp_path, capsys):  # noqa: F811
    root, srv = served

    def refused(url, why, api_out, cli_out):  # segment_scene raises naming it; rrsis predict exits 2
        with pytest.raises(ValueError, match=f"{url}.*{why}"):
            segment_scene(tiny, url, TEXT, out=tmp_path / api_out)
        assert main(["predict", "--model", str(saved_model), "--text", TEXT, "--image", url,
                     "--out", str(tmp_path / cli_out)]) == 2
        err = capsys.readouterr().err
        assert url in err and "Traceback" not in err

    missing = srv.url("nothere.tif")
    refused(missing, "404", "a", "b")
    with RangeServer(root, ranges=False) as plain:
        refused(plain.url("scene.tif"), "[Rr]ange", "c", "d")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
    # In a region, a missing URL is a failed scene, named, and the others are done.
    with pytest.warns(UserWarning, match=r"scene nothere .*404"):
        s = segment_scenes(tiny, [srv.url("t0.tif"), missing], TEXT, out=tmp_path / "r", mode="global")
    assert s.done == ["t0"] and list(s.failed) == ["nothere"] and missing in s.failed["nothere"]


def test_evaluate_scene_and_chips_read_a_url_scene_and_url_labels(tiny, served, tmp_path):  # noqa: F811
    from rrsis.scene import evaluate_scene

    root, srv = served
    with rasterio.open(root / "scene.tif") as ds:
        x, y = ds.transform * (140, 80)  # the bright blob of write_scene
    square = [[x - 20, y - 20], [x + 20, y - 20], [x + 20, y + 20], [x - 20, y + 20], [x - 20, y - 20]]
    (root / "labels.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": CRS}},
        "features": [{"type": "Feature", "properties": {"text": TEXT},
                      "geometry": {"type": "Polygon", "coordinates": [square]}}]}))
    kw = {"text_field": "text", "modes": ("global",)}
    remote = evaluate_scene(tiny, srv.url("scene.tif"), srv.url("labels.geojson"), **kw)
    local = evaluate_scene(tiny, root / "scene.tif", root / "labels.geojson", **kw)
    assert [(m.mode, m.miou) for m in remote.modes] == [(m.mode, m.miou) for m in local.modes]
    # Training chips cut from the same URLs: the same chips as from the files.
    from rrsis.scene import write_chips

    kw = {"text_field": "text", "size": 64, "val": 0, "test": 0}
    a = write_chips(srv.url("scene.tif"), srv.url("labels.geojson"), tmp_path / "cu", **kw)
    b = write_chips(root / "scene.tif", root / "labels.geojson", tmp_path / "cl", **kw)
    assert a.counts == b.counts and sum(a.counts.values()) == 1
    for name in ("images", "masks"):
        got, want = sorted((tmp_path / "cu" / name).iterdir()), sorted((tmp_path / "cl" / name).iterdir())
        assert [p.name for p in got] == [p.name for p in want]
        assert all(g.read_bytes() == w.read_bytes() for g, w in zip(got, want))


def test_opening_a_url_does_not_probe_for_side_car_files(served, monkeypatch):
    from rrsis.scene.rectify import open_raster

    root, srv = served
    monkeypatch.delenv("GDAL_DISABLE_READDIR_ON_OPEN", raising=False)
    srv.reset()
    with open_raster(srv.url("scene.tif") + "?fresh=1") as ds, rasterio.open(root / "scene.tif") as local:
        assert ds.count == local.count  # a URL GDAL has not cached, read
    probes = [r for r in srv.requests() if not r[1].split("?")[0].endswith("scene.tif")]
    assert probes == []
    assert len(srv.requests()) <= 6
