"""The app's ranked mode (offered only with a scene ranker) and its CRS field (a GeoTIFF with a
transform but no CRS), both driven through :func:`rrsis.app.run` and the page's ``respond``."""

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.app import MODES, InputError, Limits, run
from rrsis.app.inference import model_modes
from rrsis.app.session import Workspace, respond
from rrsis.app.wording import page_words
from rrsis.cli import main
from rrsis.hub.ranker import attach_ranker
from rrsis.scene import segment_scene

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # comes with rasterio

TRANSFORM = Affine(2.0, 0.0, 440720.0, 0.0, -2.0, 3751320.0)
TEXT = "the red building"


def ranker_for(model, bias: float):
    """A ranker whose every score is sigmoid(bias): 10 picks every component, -10 none."""
    from rrsis.heads import SceneRanker
    from rrsis.scene.components import n_features

    r = SceneRanker(features=n_features(3), text_dim=model.text_encoder.hidden_size, bands=3, tile=64,
                    candidate_threshold=0.5, dim=16, heads=2, layers=1).eval()
    with torch.no_grad():
        r.score.weight.zero_()
        r.score.bias.fill_(bias)
    return r


@pytest.fixture()
def ranked(tiny_model):
    """``tiny_model`` with a ranker that picks every component (detached afterwards)."""
    attach_ranker(tiny_model, ranker_for(tiny_model, 10.0))
    yield tiny_model
    attach_ranker(tiny_model, None)


def scene_png(path, h=96, w=128):
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def rgb_tif(path, crs=None, h=48, w=64):
    data = np.random.default_rng(0).integers(0, 256, (3, h, w)).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8", crs=crs,
                       transform=TRANSFORM) as ds:
        ds.write(data)
    return path


def cli_error(argv, capsys) -> str:
    """``rrsis predict``'s one-line error, without its ``rrsis predict: error:`` prefix."""
    capsys.readouterr()
    assert main(["predict", "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rrsis predict: error: ")
    return err[len("rrsis predict: error: "):]


def app_error(response) -> str:
    assert not response.ok
    assert response.message.startswith("**Cannot run this request:** ")
    return response.message[len("**Cannot run this request:** "):]


# ------------------------------------------------------------------ ranked
def test_ranked_is_offered_only_with_a_scene_ranker(tiny_model):
    assert "ranked" in MODES and MODES[0] == "auto"  # the page's default: auto, as on the command line
    assert model_modes(tiny_model) == ("auto", "global", "global-local", "tiles", "object")
    attach_ranker(tiny_model, ranker_for(tiny_model, 0.0))
    try:
        assert model_modes(tiny_model) == ("auto", "global", "global-local", "tiles", "object", "ranked")
    finally:
        attach_ranker(tiny_model, None)


def test_ranked_without_a_ranker_is_an_input_error(tiny_model, tmp_path):
    image = scene_png(tmp_path / "s.png")
    with pytest.raises(InputError, match=r"'ranked' needs a model with a scene ranker.*this model has "
                                         r"none; choose one of auto, global, global-local, tiles, object$"):
        run(tiny_model, image, [TEXT], mode="ranked", workdir=tmp_path)
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(), str(image), TEXT, "ranked", 0.5)
    assert "needs a model with a scene ranker" in app_error(r)
    assert not list(tmp_path.glob("*mask*"))


def test_ranked_request_gives_the_components_the_ranker_picks(ranked, tmp_path):
    image = scene_png(tmp_path / "s.png")
    # Every component picked: the mask is the tiled pass's candidates (p > 0.5) themselves.
    (cand,) = segment_scene(ranked, str(image), TEXT, mode="tiles", threshold=0.5)
    assert cand.mask.any() and not cand.mask.all(), "the test needs candidates with structure"
    (tmp_path / "all").mkdir()
    (r,) = run(ranked, image, [TEXT], mode="ranked", workdir=tmp_path / "all")
    np.testing.assert_array_equal(np.asarray(Image.open(r.mask_png)) > 0, cand.mask)
    assert r.area_px == int(cand.mask.sum())
    attach_ranker(ranked, ranker_for(ranked, -10.0))  # none picked: an empty mask
    (tmp_path / "none").mkdir()
    (r,) = run(ranked, image, [TEXT], mode="ranked", workdir=tmp_path / "none")
    assert r.area_px == 0 and not np.asarray(Image.open(r.mask_png)).any()
    with Workspace() as ws:
        ok = respond(ranked, ws, Limits(), str(image), TEXT, "ranked", 0.5)
    assert ok.ok and "ranked mode" in ok.message and len(ok.files) == 1


def test_the_page_offers_ranked_only_for_a_model_with_a_ranker(tiny_model):
    pytest.importorskip("gradio")
    from rrsis.app.card import summarise
    from rrsis.app.page import build_app

    def radio_choices():
        with Workspace() as ws:
            app = build_app(tiny_model, card=summarise(tiny_model, "tiny"), workspace=ws)
            (radio,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "mode"]
            return [c[0] for c in radio.choices], radio.value

    assert radio_choices() == (["auto", "global", "global-local", "tiles", "object"], "auto")
    attach_ranker(tiny_model, ranker_for(tiny_model, 0.0))
    try:
        assert radio_choices() == (["auto", "global", "global-local", "tiles", "object", "ranked"], "auto")
    finally:
        attach_ranker(tiny_model, None)


# ------------------------------------------------------------------ CRS
@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("app-crs") / "model"
    save_pretrained(tiny_model, out)
    return out


def test_crs_field_gives_a_crs_to_a_raster_without_one(tiny_model, tmp_path):
    path = rgb_tif(tmp_path / "nocrs.tif")
    with Workspace() as ws:
        r = respond(tiny_model, ws, Limits(), str(path), TEXT, "global", 0.5, "", " EPSG:32633 ")
        assert r.ok and any(f.endswith(".geojson") for f in r.files) and "area (m²)" in r.table
        (tif,) = [f for f in r.files if f.endswith("_mask.tif")]
        with rasterio.open(tif) as ds:
            assert ds.crs == rasterio.crs.CRS.from_epsg(32633) and ds.transform == TRANSFORM
    (res,) = run(tiny_model, path, [TEXT], workdir=tmp_path, crs="EPSG:32633")
    with rasterio.open(res.mask_tif) as ds:
        area = int((ds.read(1) > 0).sum())
    assert res.area_px == area and res.area_m2 == pytest.approx(area * 4.0)  # 2 m pixels
    (tmp_path / "none").mkdir()
    (res,) = run(tiny_model, path, [TEXT], workdir=tmp_path / "none", crs="none")
    assert res.mask_png is not None and res.mask_tif is None and res.geojson is None
    assert np.asarray(Image.open(res.mask_png)).shape == (48, 64)


def test_crs_errors_are_the_command_lines_own(tiny_model, saved, tmp_path, capsys):
    """The same checks as ``rrsis predict --crs`` on the same file, in the same words but for the
    way to give a CRS: the page's CRS field, not ``crs=`` or ``--crs``."""
    path = rgb_tif(tmp_path / "nocrs.tif")
    own = rgb_tif(tmp_path / "own.tif", crs="EPSG:32611")
    base = ["--model", str(saved), "--text", TEXT, "--mode", "global"]
    cases = [(path, None, "transform but no CRS"), (path, "EPSG:nonsense", "not a CRS"),
             (own, "EPSG:32633", "has its own CRS")]
    with Workspace() as ws:
        for i, (image, crs, words) in enumerate(cases):
            flag = ["--crs", crs] if crs else []
            want = cli_error([*base, "--image", str(image), "--out", str(tmp_path / f"out{i}"), *flag], capsys)
            got = app_error(respond(tiny_model, ws, Limits(), str(image), TEXT, "global", 0.5, "", crs or ""))
            assert words in got and got == page_words(want)
            assert "crs=" not in got and "--crs" not in got
            with pytest.raises(InputError, match=words):
                run(tiny_model, image, [TEXT], workdir=tmp_path, crs=crs)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("*mask*"))


# ------------------------------------------------------------------ auto, the page's default
def test_auto_is_global_on_a_small_image_and_object_on_a_large_scene(tiny_model, tmp_path):
    with Workspace() as ws:
        small = respond(tiny_model, ws, Limits(), str(scene_png(tmp_path / "small.png", 96, 120)),
                        TEXT, "auto", 0.5)
        large = respond(tiny_model, ws, Limits(), str(scene_png(tmp_path / "large.png", 200, 260)),
                        TEXT, "auto", 0.5)
    assert small.ok and "auto mode (global)" in small.message, small.message
    assert large.ok and "auto mode (object)" in large.message, large.message
    (r,) = run(tiny_model, tmp_path / "large.png", [TEXT], workdir=tmp_path)  # run's default: auto
    assert r.mode == "object"
    (want,) = segment_scene(tiny_model, str(tmp_path / "large.png"), TEXT, mode="object", return_mask=True)
    np.testing.assert_array_equal(np.asarray(Image.open(r.mask_png)) > 0, want.mask)
