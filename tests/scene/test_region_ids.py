"""Region scene ids: letters and digits of any script kept (NFC), nothing a file system refuses,
ASCII ids as before, names differing only in case told apart, and a scene done under an id it
no longer has found again on a rerun (not redone) or listed in region.json."""

import json
import random
import re
import unicodedata
import warnings

import pytest

from rrsis.scene.gdal_names import name_stem
from rrsis.scene.region import resolve_scenes, scene_id
from rrsis.scene.region.entries import id_key


def _old_rule(name: str) -> str:
    """The ids rrsis gave before: ASCII letters, digits, ``._-``; every other run one ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name_stem(name)).strip("._") or "scene"


def test_ids_keep_every_scripts_letters_and_nothing_a_file_system_refuses():
    assert scene_id("/d/北京.tif") == "北京" and scene_id("/d/上海.tif") == "上海"
    assert scene_id("scène 场景 #2.tif") == "scène_场景_2" and scene_id("नगर.tif") == "नगर"
    decomposed = unicodedata.normalize("NFD", "scène.tif")
    assert decomposed != "scène.tif" and scene_id(decomposed) == "scène"
    for name in ['a<b>:c"d|e?f*g.tif', "a\tb\x00c\x1fd.tif", "a\u200bb\u202ec.tif", "x .tif", "x..tif", "．..tif"]:
        sid = scene_id(name)
        assert sid and not set(sid) & set('<>:"/\\|?* \t\x00\x1f\u200b\u202e') and not sid.endswith((".", " "))
    # long names: at most 200 bytes of UTF-8, each its own hash
    long_a, long_b = "北" * 120 + "a.tif", "北" * 120 + "b.tif"
    assert len(scene_id(long_a).encode()) <= 200 and scene_id(long_a) != scene_id(long_b)
    assert scene_id(long_a) == scene_id(long_a)


def test_ascii_names_keep_their_ids():
    rng = random.Random(3)
    chars = "abcXYZ019._- #%&()[]{}!@$+=,;'~"
    names = ["Tile.tif", "a b.tif", "y 1.tif", "-x-.tif", "..tif", "#.tif", "S2A_MSIL2A_20240101.jp2"]
    names += ["".join(rng.choice(chars) for _ in range(rng.randint(1, 30))) + ".tif" for _ in range(300)]
    for name in names:
        assert scene_id(name) == _old_rule(name), name


def test_ids_do_not_change_when_scenes_are_added(tmp_path):
    for name in ["北京.tif", "上海.tif", "Tile.tif", "tile.tif", "a.tif"]:
        (tmp_path / name).write_bytes(b"")
    one = resolve_scenes(str(tmp_path / "北京.tif"))
    both = resolve_scenes([str(tmp_path / "北京.tif"), str(tmp_path / "上海.tif")])
    assert [s.id for s in one] == ["北京"] and [s.id for s in both] == ["上海", "北京"]
    # names differing only in case: ids that differ on a case-insensitive file system too
    case = {s.uri.rsplit("/", 1)[1]: s.id for s in resolve_scenes(str(tmp_path / "*ile.tif"))}
    assert len({id_key(i) for i in case.values()}) == 2
    assert all(re.fullmatch(rf"{n[:-4]}-[0-9a-f]{{8}}", i) for n, i in case.items())


def test_a_pattern_with_brackets_that_matches_nothing_says_how_to_escape_them(tmp_path):
    folder = tmp_path / "survey [2024] 调查"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"matches no file; \[ and \] are pattern characters.*\[\[\] "
                                                r"and \[\]\].*@list\.txt"):
        resolve_scenes(str(folder / "*.tif"))
    assert [s.id for s in resolve_scenes(str(tmp_path / "survey [[]2024[]] 调查" / "*.tif"))] == ["a"]
    with pytest.raises(FileNotFoundError, match=r"matches no file$"):  # no brackets: no hint
        resolve_scenes(str(tmp_path / "*.jp2"))


rasterio = pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
from _fixtures import write_small_geotiff
from test_scene import tiny  # noqa: F401  (the sharpened tiny model fixture)

from rrsis.scene.region import read_record, segment_scenes

KW = {"mode": "global", "threshold": 0.5}


def test_a_scene_done_under_an_older_id_is_kept_not_redone(tiny, tmp_path):  # noqa: F811
    write_small_geotiff(tmp_path / "北京.tif", seed=0)
    write_small_geotiff(tmp_path / "Tile.tif", seed=1, x0=440780.0)
    write_small_geotiff(tmp_path / "tile.tif", seed=2, x0=440840.0)
    out = tmp_path / "out"
    first = segment_scenes(tiny, [str(tmp_path / "北京.tif"), str(tmp_path / "Tile.tif")], "the red building",
                           out=out, **KW)
    assert first.done == ["Tile", "北京"]
    # UTF-8 JSON: region.json, done.json and the GeoJSON name the scene's file as it is
    for path in (out / "region.json", out / "北京" / "done.json", out / "北京" / "北京.geojson"):
        raw = path.read_text(encoding="utf-8")
        assert "北京.tif" in raw and "\\u" not in raw, path
    (out / "北京").rename(out / "scene")  # as an earlier rrsis named it, its record ASCII JSON
    rec = read_record(out / "scene")
    (out / "scene" / "done.json").write_text(json.dumps(rec, indent=1), encoding="utf-8")
    files = sorted(p.name for p in (out / "scene").iterdir())
    mtime = (out / "scene" / "done.json").stat().st_mtime_ns
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = segment_scenes(tiny, [str(tmp_path / n) for n in ("北京.tif", "Tile.tif", "tile.tif")],
                               "the red building", out=out, **KW)
    assert not [w for w in seen if "older_folders" in str(w.message)]
    tile_id = next(i for i in again.done if i.startswith("tile-"))
    assert sorted(again.skipped) == ["Tile", "scene"] and again.done == [tile_id] and not again.failed
    assert (out / "scene" / "done.json").stat().st_mtime_ns == mtime and not (out / "北京").exists()
    assert sorted(p.name for p in (out / "scene").iterdir()) == files
    region = json.loads((out / "region.json").read_text(encoding="utf-8"))
    assert {s["id"]: s["status"] for s in region["scenes"]} == {"scene": "skipped", "Tile": "skipped", tile_id: "done"}
    assert region["older_folders"] == []
    # --overwrite: each scene redone under its id now; the older folders are said and listed
    with pytest.warns(UserWarning, match=r"2 folder\(s\) hold a scene of this list under an id it no longer has"):
        redo = segment_scenes(tiny, [str(tmp_path / n) for n in ("北京.tif", "Tile.tif", "tile.tif")],
                              "the red building", out=out, overwrite=True, **KW)
    assert "北京" in redo.done and read_record(out / "北京")["source"] == str(tmp_path / "北京.tif")
    region = json.loads((out / "region.json").read_text(encoding="utf-8"))
    ids = {s["source"].rsplit("/", 1)[1]: s["id"] for s in region["scenes"]}
    assert sorted(region["older_folders"], key=lambda e: e["folder"]) == [
        {"folder": "Tile", "source": str(tmp_path / "Tile.tif"), "id": ids["Tile.tif"]},
        {"folder": "scene", "source": str(tmp_path / "北京.tif"), "id": "北京"}]
