"""Issue 30, inference half: bounds, one nodata rule, no silent defaults or format changes, outputs
that are refused, named, all-or-nothing and cleaned up (model.predict, segment_scene, rrsis
predict, rrsis evaluate)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _limits import REPO, run_limited
from PIL import Image

import rrsis
from rrsis.cli import main
from rrsis.scene import open_scene, remove_stale_temporaries, segment_scene

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("shapely")
from _fixtures import WrappedModel
from affine import Affine

TRANSFORM = Affine(2.0, 0.0, 440720.0, 0.0, -2.0, 3751320.0)
CRS = "EPSG:32611"


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


class Everywhere(WrappedModel):
    """A model that names every pixel (foreground logit +20): what it leaves out is nodata."""

    def forward_with_text(self, pixels, text):
        from rrsis.models.base import SegmentationOutput

        b, _, h, w = pixels.shape
        return SegmentationOutput(logits=torch.stack([torch.zeros(b, h, w), torch.full((b, h, w), 20.0)], 1))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("limits_model")
    save_pretrained(model, out / "model")
    return out / "model"


def write_tif(path, data, crs=CRS, transform=TRANSFORM, nodata=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2],
                       count=data.shape[0], dtype=str(data.dtype), crs=crs, transform=transform,
                       nodata=nodata) as ds:
        ds.write(data)
    return path


def rgb_tif(path, h=48, w=64, **kw):
    data = np.random.default_rng(0).integers(0, 256, (3, h, w)).astype(np.uint8)
    return write_tif(path, data, **kw)


def cli(argv):
    return main(["predict", "--quiet", *argv])


def no_temporaries(folder):
    return [p.name for p in Path(folder).rglob(".*") if ".tmp" in p.name]


# ------------------------------------------------------------------ pixel bound
@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A small PNG (about 150 KB) that decodes to 12000² pixels (144 million)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("L", (12000, 12000)).save(path, optimize=True)
    assert path.stat().st_size < 1_000_000
    return path


def test_predict_refuses_a_decompression_bomb_quickly_under_a_memory_limit(saved, bomb):
    code = ("import sys, rrsis\n"
            "m = rrsis.from_pretrained(sys.argv[1])\n"
            "m.predict(sys.argv[2], 'the red building')\n")
    r = run_limited(code, args=[str(saved), str(bomb)])
    assert not r.timed_out and r.returncode == 1
    assert "ValueError" in r.last_line and "max_pixels" in r.last_line and "window by window" in r.last_line
    assert "12000x12000 = 144,000,000 pixels" in r.last_line


def test_cli_refuses_a_decompression_bomb_quickly_under_a_memory_limit(saved, bomb, tmp_path):
    code = "import sys\nfrom rrsis.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    r = run_limited(code, args=["predict", "--model", str(saved), "--image", str(bomb), "--text", "a tank",
                                "--out", str(tmp_path / "o"), "--quiet"])
    assert not r.timed_out and r.returncode == 2, r.stderr[-2000:]
    assert r.last_line.startswith("rrsis predict: error:") and "--max-pixels" in r.last_line
    assert "DecompressionBomb" not in r.stderr  # PIL's warning is replaced by the clear error
    assert not any(tmp_path.iterdir())


def test_max_pixels_is_a_named_default_with_an_override(model, tmp_path):
    from rrsis.data.io import MAX_PIXELS

    assert MAX_PIXELS == 40_000_000
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(img).save(path)
    for source in (str(path), img, Image.fromarray(img)):
        with pytest.raises(ValueError, match=r"50x40 = 2,000 pixels is over max_pixels=1,999"):
            model.predict(source, "the red building", max_pixels=1999)
        (m,) = model.predict(source, "the red building", max_pixels=2000)
        assert m.shape == (40, 50)
    (m,) = model.predict(str(path), "the red building", max_pixels=None)
    assert m.shape == (40, 50)
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        model.predict(img, "a tank", max_pixels=0)
    with pytest.raises(ValueError, match="max_pixels"):
        segment_scene(model, str(path), "a tank", mode="global", max_pixels=100)


def test_windowed_rasters_are_not_bounded_by_max_pixels(model, tmp_path):
    path = rgb_tif(tmp_path / "s.tif")
    (r,) = segment_scene(model, str(path), "the red building", mode="tiles", tile=64, max_pixels=100,
                         return_mask=True)
    assert r.mask.shape == (48, 64)


# ------------------------------------------------------------------ one nodata rule
def test_nan_is_nodata_in_scenes_without_a_nodata_tag(model, tmp_path):
    data = np.random.default_rng(2).random((3, 40, 60)).astype(np.float32)
    data[:, :, :20] = np.nan  # the left third has no data, and no nodata tag says so
    path = write_tif(tmp_path / "nan.tif", data)
    everywhere = Everywhere(model)
    for mode in ("global", "tiles"):
        (r,) = segment_scene(everywhere, str(path), "the red building", mode=mode, tile=64, return_mask=True)
        assert not r.mask[:, :20].any() and r.mask[:, 20:].all(), mode
        assert r.area_px == 40 * 40
    # the same rule for a float array held in memory, and for model.predict
    arr = np.moveaxis(data, 0, -1).copy()
    (r,) = segment_scene(everywhere, arr, "the red building", mode="global", return_mask=True)
    assert not r.mask[:, :20].any() and r.mask[:, 20:].all()
    (m,) = model.predict(arr, "the red building", threshold=0.01)
    assert not m[:, :20].any()
    (m,) = model.predict(np.nan_to_num(arr), "the red building", threshold=0.01)
    assert m[:, :20].any()  # the same pixels as numbers are predicted


def test_an_all_nan_raster_is_refused_as_predict_refuses_it(model, saved, tmp_path, capsys):
    path = write_tif(tmp_path / "allnan.tif", np.full((3, 32, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match="every pixel is nodata"):
        segment_scene(model, str(path), "a tank")
    with pytest.raises(ValueError, match="every pixel is NaN"):
        model.predict(np.full((32, 32, 3), np.nan, np.float32), "a tank")
    assert cli(["--model", str(saved), "--image", str(path), "--text", "a tank", "--out", str(tmp_path / "o")]) == 2
    assert "every pixel is nodata" in capsys.readouterr().err
    assert not list(tmp_path.glob("o*"))


# ------------------------------------------------------------------ no silent loss of georeference
def test_a_raster_with_a_transform_but_no_crs_needs_crs(model, saved, tmp_path, capsys):
    path = rgb_tif(tmp_path / "nocrs.tif", crs=None)
    base = ["--model", str(saved), "--image", str(path), "--text", "a tank", "--mode", "global"]
    assert cli([*base, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "transform but no CRS" in err and "--crs" in err
    assert not list(tmp_path.glob("a*"))
    assert cli([*base, "--out", str(tmp_path / "b"), "--crs", CRS]) == 0
    with rasterio.open(tmp_path / "b_mask.tif") as ds:
        assert ds.crs == rasterio.crs.CRS.from_user_input(CRS) and ds.transform == TRANSFORM
    assert json.loads((tmp_path / "b.geojson").read_text())["type"] == "FeatureCollection"
    assert cli([*base, "--out", str(tmp_path / "c"), "--crs", "none"]) == 0
    assert (tmp_path / "c_mask.png").is_file() and not (tmp_path / "c_mask.tif").exists()
    assert cli([*base, "--out", str(tmp_path / "d"), "--crs", "EPSG:nonsense"]) == 2
    assert "not a CRS" in capsys.readouterr().err
    with pytest.raises(ValueError, match="transform but no CRS"):
        segment_scene(model, str(path), "a tank", mode="global", out=tmp_path / "e")
    with_crs = rgb_tif(tmp_path / "crs.tif")
    with pytest.raises(ValueError, match="has its own CRS"):
        open_scene(str(with_crs), crs="EPSG:4326")
    # without outputs nothing is lost: the masks come back in memory
    (r,) = segment_scene(model, str(path), "a tank", mode="global")
    assert r.mask.shape == (48, 64)


# ------------------------------------------------------------------ warnings, silent defaults
def test_cli_prints_the_apis_warnings_on_expressions(saved, tmp_path, capsys):
    path = rgb_tif(tmp_path / "s.tif")
    base = ["--model", str(saved), "--image", str(path), "--mode", "global"]
    assert cli([*base, "--text", "zzzq qqxw", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "rrsis predict: warning: --text 1:" in err and "vocabulary" in err  # the 1st --text
    long = " ".join(["the red building"] * 8)
    assert cli([*base, "--text", long, "--out", str(tmp_path / "b")]) == 0
    assert "truncated" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="vocabulary"):
        segment_scene(rrsis.from_pretrained(saved), str(path), "zzzq", mode="global")


@pytest.mark.parametrize("flag", [["--tile", "0"], ["--image-size", "0"], ["--simplify", "-1"],
                                  ["--batch-size", "0"], ["--tile", "-32"], ["--max-pixels", "0"],
                                  ["--threshold", "1.5"]])
def test_cli_refuses_out_of_range_values(saved, tmp_path, capsys, flag):
    path = rgb_tif(tmp_path / "s.tif")
    with pytest.raises(SystemExit) as exc:
        cli(["--model", str(saved), "--image", str(path), "--text", "a", "--out", str(tmp_path / "o"), *flag])
    assert exc.value.code == 2
    assert flag[0] in capsys.readouterr().err
    assert not list(tmp_path.glob("o*"))


def test_api_refuses_zero_sizes_and_negative_simplify(model, tmp_path):
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="image_size 0 is not a positive multiple of 32"):
        model.predict(img, "a tank", image_size=0)
    with pytest.raises(ValueError, match="image_size 0"):
        model.preprocess(img, image_size=0)
    for key in ("tile", "global_size"):
        with pytest.raises(ValueError, match=rf"{key}=0 \(--[a-z-]+\) must be a positive multiple"):
            segment_scene(model, img, "a tank", mode="tiles", **{key: 0})
    with pytest.raises(ValueError, match="simplify"):
        segment_scene(model, img, "a tank", simplify=-1)
    with pytest.raises(ValueError, match="auto_max_global"):
        segment_scene(model, img, "a tank", auto_max_global=0)


def test_predict_with_a_number_for_texts_says_so(model):
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="texts must be a string or a list of strings.*int"):
        model.predict(img, 5)
    with pytest.raises(ValueError, match="text 0 is a int"):
        model.predict([img], [5])


def test_cli_asks_16_bit_images_for_its_own_scale_flag(saved, tmp_path, capsys):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((32, 32), 4000, np.uint16)).save(path)
    assert cli(["--model", str(saved), "--image", str(path), "--text", "a", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--scale" in err and err.count("\n") == 1


# ------------------------------------------------------------------ outputs: names, overwrite
def test_an_output_prefix_that_is_a_folder_names_files_inside_it(model, saved, tmp_path, capsys):
    path = rgb_tif(tmp_path / "field.tif")
    out = tmp_path / "results"
    assert cli(["--model", str(saved), "--image", str(path), "--text", "a", "--mode", "global",
                "--out", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["field.geojson", "field_mask.tif", "field_overlay.pgw",
                                                     "field_overlay.png", "field_overlay.png.aux.xml"]
    (r,) = segment_scene(model, np.zeros((40, 40, 3), np.uint8), "a", mode="global", out=out)
    assert Path(r.files["mask"]) == out / "scene_mask.png"
    assert not [p for p in out.iterdir() if p.name.startswith((".", "_"))]


def test_existing_outputs_are_refused_before_loading_the_model(model, saved, tmp_path, capsys):
    path = rgb_tif(tmp_path / "s.tif")
    argv = ["--image", str(path), "--text", "a", "--mode", "global", "--out", str(tmp_path / "o")]
    assert cli(["--model", str(saved), *argv]) == 0
    before = (tmp_path / "o.geojson").stat().st_mtime_ns
    # a model that does not exist: the refusal comes before it is looked for
    assert cli(["--model", str(tmp_path / "no-model"), *argv]) == 2
    err = capsys.readouterr().err
    assert ("already exist(s): pass resume=True (rrsis predict --resume) to keep the expressions done with the "
            "same model and settings and finish the others, overwrite=True (rrsis predict --overwrite) to "
            "replace, or choose another output prefix") in err
    assert (tmp_path / "o.geojson").stat().st_mtime_ns == before
    assert cli(["--model", str(saved), *argv, "--overwrite"]) == 0
    with pytest.raises(FileExistsError, match="overwrite=True"):
        segment_scene(model, str(path), "a", mode="global", out=tmp_path / "o")
    segment_scene(model, str(path), "a", mode="global", out=tmp_path / "o", overwrite=True)


def test_evaluate_checks_its_out_before_computing(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # a model that does not exist: the refusal comes before the model, the data, the work
    argv = ["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "data"),
            "--dataset", "folder"]
    assert main([*argv, "--out", str(blocker / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and "choose another --out" in err
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


# ------------------------------------------------------------------ all-or-nothing, cleanup
def test_disk_full_names_the_file_and_leaves_no_output_of_the_expression(model, tmp_path, monkeypatch):
    import errno

    path = rgb_tif(tmp_path / "s.tif")
    out = tmp_path / "o"
    (old,) = segment_scene(model, str(path), "a", mode="global", out=out)
    before = {k: Path(v).read_bytes() for k, v in old.files.items()}

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    def geojson_full(monkeypatch):  # the GeoJSON's text fails to go to disk, whichever writer writes it
        import rrsis.scene.api
        import rrsis.scene.write

        for module in (rrsis.scene.api, rrsis.scene.write):
            monkeypatch.setattr(module, "json_text", full)

    geojson_full(monkeypatch)
    with pytest.raises(OSError, match=r"o\.geojson: cannot write \(No space left on device\)") as exc:
        segment_scene(model, str(path), "the red building", mode="global", out=out, overwrite=True)
    assert exc.value.errno == errno.ENOSPC
    # the previous files are untouched (the new mask never replaced the old one), nothing half-written
    assert {k: Path(v).read_bytes() for k, v in old.files.items()} == before
    assert no_temporaries(tmp_path) == []
    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    geojson_full(monkeypatch)
    with pytest.raises(OSError, match="fresh.geojson"):
        segment_scene(model, str(path), "a", mode="global", out=fresh)
    assert not list(tmp_path.glob("fresh*")) and no_temporaries(tmp_path) == []


def test_the_next_predict_removes_what_a_killed_one_left(model, saved, tmp_path):
    path = rgb_tif(tmp_path / "s.tif")
    target = tmp_path / "o_mask.tif"
    # A real writer killed mid-write, through the one atomic write predict uses.
    code = ("import sys, time\nfrom rrsis._atomic import atomic_path\n"
            "with atomic_path(sys.argv[1], keep_suffix=True) as tmp:\n"
            "    open(tmp, 'wb').write(b'half a mask')\n"
            "    print(tmp, flush=True)\n    time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        left = Path(child.stdout.readline().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert left.is_file() and left.name.startswith(".o_mask.tif.") and not target.exists()
    legacy = tmp_path / f".o.geojson.tmp{child.pid}"  # the name rrsis 0.1 gave its temporaries
    legacy.write_text("{")
    nested = tmp_path / f"..o_overlay.png.{child.pid}-0123abcd.tmp.png.{child.pid}-4567cdef.tmp.png"
    nested.write_bytes(b"half a PNG")  # a PNG's own atomic temporary beside the staged one
    mine = tmp_path / f".o_overlay.png.{os.getppid()}-0123abcd.tmp.png"  # a live process's: kept
    mine.write_bytes(b"")
    assert cli(["--model", str(saved), "--image", str(path), "--text", "a", "--mode", "global",
                "--out", str(tmp_path / "o")]) == 0
    assert not left.exists() and not legacy.exists() and not nested.exists() and mine.exists()
    assert target.is_file() and (tmp_path / "o.geojson").is_file()
    assert remove_stale_temporaries(target) == []


@pytest.mark.slow  # 18 s; the default suite keeps test_the_next_predict_removes_what_a_killed_one_left and the region kill test
def test_a_killed_predict_leaves_nothing_under_the_final_names(saved, tmp_path):
    """A real ``rrsis predict`` killed while it computes: no output appears, and the next run of
    the same command cleans up and writes every file."""
    path = rgb_tif(tmp_path / "s.tif", h=200, w=260)
    argv = ["predict", "--model", str(saved), "--image", str(path), "--text", "a", "--mode", "tiles",
            "--tile", "64", "--overlap", "0.8", "--batch-size", "1", "--quiet", "--out", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "rrsis", *argv], env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not no_temporaries(tmp_path) and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    # Temporaries exist from the first strip to the last rename: the kill lands mid-run.
    assert child.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not list(tmp_path.glob("o*"))  # nothing under a final name
    assert subprocess.run([sys.executable, "-m", "rrsis", *argv], env=env, check=False).returncode == 0
    assert sorted(p.name for p in tmp_path.glob("o*")) == ["o.geojson", "o_mask.tif", "o_overlay.pgw", "o_overlay.png",
                                                           "o_overlay.png.aux.xml"]
    assert no_temporaries(tmp_path) == []
