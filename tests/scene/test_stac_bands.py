"""STAC items whose bands are separate assets (Earth Search's Sentinel-2 and Landsat: ``red``,
``green``, ``blue``, ``nir``), each read as one scene through a VRT stacking them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrsis.cli import main
from rrsis.scene import build_vrt, evaluate_scene, open_scene, resolve_scenes, segment_scenes

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pystac")
from rasterio.transform import from_origin
from test_scene import tiny  # noqa: F401  (the sharpened tiny model fixture)

CRS = "EPSG:32633"
N = 32
KEYS = ("red", "green", "blue", "nir")
S2 = {"red": "B04", "green": "B03", "blue": "B02", "nir": "B08"}  # Sentinel-2's band names


def _item(folder, item_id, seed, keys=KEYS, common=False):
    """A STAC item (dict) whose assets are single-band GeoTIFFs in ``folder/item_id/`` (relative
    hrefs), each band filled with its own values; ``common``: keyed B04, B03, ... with the
    colour in ``eo:bands[0].common_name``. Returns the item and its bands' arrays by key."""
    rng = np.random.default_rng(seed)
    (folder / item_id).mkdir(parents=True)
    assets, data = {}, {}
    for colour in keys:
        key = S2[colour] if common else colour
        a = rng.integers(1, 255, (N, N), dtype=np.uint8)
        with rasterio.open(folder / item_id / f"{key}.tif", "w", driver="GTiff", width=N, height=N, count=1,
                           dtype="uint8", crs=CRS, transform=from_origin(500000.0 + 400 * seed, 4e6, 10, 10)) as ds:
            ds.write(a, 1)
        assets[key] = {"href": f"{item_id}/{key}.tif", "type": "image/tiff; application=geotiff",
                       **({"eo:bands": [{"name": key, "common_name": colour}]} if common else {})}
        data[key] = a
    item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "links": [],
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "assets": assets}
    return item, data


def _write(path, *items):
    doc = items[0] if len(items) == 1 else {"type": "FeatureCollection", "features": list(items)}
    path.write_text(json.dumps(doc))
    return path


def _read(uri):
    with rasterio.open(uri) as ds:
        return ds.read(), [c.name for c in ds.colorinterp]


def test_several_assets_are_one_scene_of_those_bands_in_order(tmp_path):
    item, data = _item(tmp_path, "S2B_T33_0001", 0)
    scenes = resolve_scenes(_write(tmp_path / "item.json", item), asset="red,green,blue",
                            stack_dir=tmp_path / "stacks")
    assert [(s.id, s.uri) for s in scenes] == [("S2B_T33_0001", str(tmp_path / "stacks" / "S2B_T33_0001.vrt"))]
    pixels, colours = _read(scenes[0].uri)
    np.testing.assert_array_equal(pixels, np.stack([data["red"], data["green"], data["blue"]]))
    assert colours == ["red", "green", "blue"]
    with open_scene(scenes[0].uri) as scene:
        assert scene.declared == (1, 2, 3)
    # Another order, nir first, as a sequence: the bands and their colours follow it.
    (s,) = resolve_scenes(tmp_path / "item.json", asset=["nir", "blue", "green", "red"], stack_dir=tmp_path / "o")
    pixels, colours = _read(s.uri)
    np.testing.assert_array_equal(pixels[0], data["nir"])
    assert colours == ["nir", "blue", "green", "red"]
    with open_scene(s.uri) as scene:
        assert scene.declared == (4, 3, 2)
    # One asset: the file itself, as before, and nothing written.
    (one,) = resolve_scenes(tmp_path / "item.json", asset="green")
    assert one.uri == str(tmp_path / "S2B_T33_0001" / "green.tif")


def test_colours_come_from_eo_bands_common_names_else_undefined(tmp_path):
    item, data = _item(tmp_path, "s2", 1, common=True)  # keys B04, B03, B02, B08
    (tmp_path / "s2" / "B8A.tif").write_bytes((tmp_path / "s2" / "B08.tif").read_bytes())
    item["assets"]["B8A"] = {"href": "s2/B8A.tif", "eo:bands": [{"name": "B8A", "common_name": "nir08"}]}
    path = _write(tmp_path / "s2.json", item)
    (s,) = resolve_scenes(path, asset="B04,B03,B02", stack_dir=tmp_path / "stacks")
    pixels, colours = _read(s.uri)
    np.testing.assert_array_equal(pixels, np.stack([data["B04"], data["B03"], data["B02"]]))
    assert colours == ["red", "green", "blue"]
    with open_scene(s.uri) as scene:
        assert scene.declared == (1, 2, 3)
    (s,) = resolve_scenes(path, asset="B8A,B08", stack_dir=tmp_path / "stacks")
    assert _read(s.uri)[1] == ["undefined", "nir"]  # nir08 is none of red, green, blue, nir
    # The item's own eo:bands list, matched by name, when the assets carry none.
    for key in ("B04", "B03", "B02"):
        del item["assets"][key]["eo:bands"]
    item["properties"]["eo:bands"] = [{"name": "B02", "common_name": "blue"}, {"name": "B04", "common_name": "red"}]
    (s,) = resolve_scenes(_write(tmp_path / "s2b.json", item), asset="B02,B04,B03", stack_dir=tmp_path / "b")
    assert _read(s.uri)[1] == ["blue", "red", "undefined"]


def test_a_missing_asset_names_the_item_and_its_assets_and_writes_nothing(tmp_path):
    first, _ = _item(tmp_path, "a", 0)
    second, _ = _item(tmp_path, "b", 1, keys=("red", "green"))
    path = _write(tmp_path / "items.json", first, second)
    with pytest.raises(KeyError, match=r"item 'b' has no asset 'blue'; its assets: green, red"):
        resolve_scenes(path, asset="red,green,blue", stack_dir=tmp_path / "stacks")
    assert not (tmp_path / "stacks").exists()
    with pytest.raises(ValueError, match=r"several assets.*stack_dir=DIR"):
        resolve_scenes(path, asset="red,green,blue")
    with pytest.raises(ValueError, match=r"green named twice"):
        resolve_scenes(path, asset="red,green,green", stack_dir=tmp_path / "stacks")
    with pytest.raises(ValueError, match=r"build_vrt's asset= \(--mosaic --asset\) red,green,blue: several assets"):
        build_vrt(path, tmp_path / "m.vrt", asset="red,green,blue")
    with pytest.raises(ValueError, match=r"evaluate_scene's asset= red,green,blue: several assets"):
        evaluate_scene("unused", path, tmp_path / "labels.gpkg", asset="red,green,blue")
    (tmp_path / "b" / "blue.tif").write_bytes((tmp_path / "b" / "red.tif").read_bytes())
    second["assets"]["blue"] = {"href": "b/blue.tif"}
    with rasterio.open(tmp_path / "b" / "blue.tif", "r+") as ds:  # another area: the stack is refused
        ds.transform = from_origin(0.0, 4e6, 10, 10)
    with pytest.raises(ValueError, match=r"STAC item 'b': .*blue.tif covers"):
        resolve_scenes(_write(tmp_path / "items.json", first, second), asset="red,green,blue",
                       stack_dir=tmp_path / "stacks")


def test_an_item_collection_through_segment_scenes(tiny, tmp_path):  # noqa: F811
    items = [_item(tmp_path, f"scene{i}", i)[0] for i in range(2)]
    path = _write(tmp_path / "items.json", *items)
    out = tmp_path / "region"
    s = segment_scenes(tiny, str(path), "the red building", out=out, asset="red,green,blue", mode="global")
    assert (s.done, s.failed) == (["scene0", "scene1"], {})
    assert sorted(p.name for p in (out / "stacks").iterdir()) == ["scene0.vrt", "scene1.vrt"]
    for sid in ("scene0", "scene1"):
        with rasterio.open(out / sid / f"{sid}_mask.tif") as ds:
            assert ds.shape == (N, N) and ds.crs == CRS
        assert json.loads((out / sid / "done.json").read_text())["source"] == str(out / "stacks" / f"{sid}.vrt")



def test_predict_cli_reads_band_assets_as_one_scene_an_item(tmp_path, saved_model, capsys):
    path = _write(tmp_path / "items.json", _item(tmp_path, "x0", 0)[0], _item(tmp_path, "x1", 1)[0])
    out = tmp_path / "out"
    argv = ["predict", "--model", str(saved_model), "--image", str(path), "--asset", "red,green,blue",
            "--text", "the red building", "--out", str(out), "--mode", "global", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "2 scene(s): 2 segmented" in capsys.readouterr().out
    assert (out / "stacks" / "x0.vrt").is_file() and (out / "x1" / "x1_mask.tif").is_file()
    assert main([*argv[:6], "red,green,purple", *argv[7:]]) == 2
    assert "has no asset 'purple'; its assets: blue, green, nir, red" in capsys.readouterr().err
    assert main([*argv[:7], "--mosaic", *argv[7:9], "--out", str(tmp_path / "m")]) == 2
    assert "(--mosaic --asset) red,green,blue: several assets" in capsys.readouterr().err
