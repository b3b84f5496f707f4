"""rrsis/scene: georeferenced rasters through every mode, seamless tiling, GeoJSON round trips."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import rrsis
from rrsis.models.base import IMAGENET_MEAN, IMAGENET_STD, SegmentationOutput, TextFeatures
from rrsis.scene import SceneOptions, open_scene, segment_scene
from rrsis.scene.infer import blend_window, resample_rows, tile_starts

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
from _fixtures import WrappedModel
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import shape

H, W = 150, 230
TRANSFORM = Affine(1.5, 0.25, 440720.0, 0.1, -1.5, 3751320.0)  # rotated/sheared, UTM metres
CRS = "EPSG:32611"
MODES = ["global", "tiles", "global-local", "object", "auto"]


class Sharpened(WrappedModel):
    """A tiny GL-MSIN whose foreground logit is stretched around ``centre`` so that a random
    model's nearly constant probabilities give a mask with structure."""

    def __init__(self, model, centre: float, gain: float = 40.0) -> None:
        super().__init__(model)
        self.centre, self.gain = centre, gain

    def forward_with_text(self, pixels, text):
        logits = self.model.forward_with_text(pixels, text).logits
        d = self.gain * (logits[:, 1] - logits[:, 0] - self.centre)
        return SegmentationOutput(logits=torch.stack([torch.zeros_like(d), d], 1))


def write_scene(path, nodata_corner=True, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    blob = ((yy - 80) ** 2 + (xx - 140) ** 2 < 35 ** 2) | ((abs(yy - 40) < 15) & (abs(xx - 60) < 30))
    data = rng.integers(800, 1200, (4, H, W)).astype(np.uint16)
    data[0][blob] += 9000  # a bright red object on the first band
    if nodata_corner:
        data[:, 110:, :50] = 0
    with rasterio.open(path, "w", driver="GTiff", height=H, width=W, count=4, dtype="uint16",
                       crs=CRS, transform=TRANSFORM, nodata=0) as ds:
        ds.write(data)
    return data


@pytest.fixture(scope="module")
def tiny(tiny_model, tiny_tokenizer):
    m = tiny_model
    pix = torch.randn(1, 3, 64, 64)
    tok = tiny_tokenizer(["the red building"])
    with torch.no_grad():
        lg = m(pix, tok["input_ids"], tok["attention_mask"]).logits
    return Sharpened(m, float((lg[:, 1] - lg[:, 0]).median()))


@pytest.fixture(scope="module")
def scene_tif(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    write_scene(path)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_georeferenced_scene_through_every_mode(tiny, scene_tif, tmp_path, mode):
    # The colour is not read: on this random scene it keeps a sliver, and the test needs structure.
    (res,) = segment_scene(tiny, scene_tif, "the red building", mode=mode, out=tmp_path / "pred",
                           tile=64, overlap=0.25, return_mask=True, simplify=0.0, read="place,relation,extreme")
    assert res.mode == ("object" if mode == "auto" else mode)  # a scene over 2 tiles a side
    with rasterio.open(scene_tif) as src, rasterio.open(res.files["mask"]) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert (dst.height, dst.width, dst.count, dst.dtypes[0]) == (H, W, 1, "uint8")
        out = dst.read(1)
        valid = dst.dataset_mask()
    mask = res.mask
    assert 0.02 < mask.mean() < 0.98, "the test needs a mask with structure"
    np.testing.assert_array_equal(out, np.where(mask, 255, 0))
    assert set(np.unique(out)) <= {0, 255}
    # nodata stays 0 and is marked as nodata
    assert not out[110:, :50].any() and not valid[110:, :50].any() and valid[:100].all()
    assert res.area_px == int(mask.sum())
    assert res.area_m2 == pytest.approx(mask.sum() * abs(TRANSFORM.a * TRANSFORM.e - TRANSFORM.b * TRANSFORM.d))
    # GeoJSON: valid, WGS 84 (RFC 7946: no crs member), rasterises back to the mask.
    fc = json.loads(Path(res.files["geojson"]).read_text())
    assert fc["type"] == "FeatureCollection" and "crs" not in fc and len(fc["features"]) == res.n_polygons
    geoms = [shape(f["geometry"]) for f in fc["features"]]
    assert all(g.is_valid for g in geoms)
    lon = [x for g in geoms for x in g.exterior.coords.xy[0]]
    lat = [y for g in geoms for y in g.exterior.coords.xy[1]]
    assert -118 < min(lon) and max(lon) < -116 and 33 < min(lat) and max(lat) < 35  # UTM 11N near LA
    assert sum(f["properties"]["area_px"] for f in fc["features"]) == res.area_px
    from rasterio.warp import transform_geom

    native = [transform_geom("EPSG:4326", CRS, f["geometry"]) for f in fc["features"]]
    back = rasterize([(g, 1) for g in native], out_shape=(H, W), transform=TRANSFORM, dtype="uint8") > 0
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou >= 0.99
    overlay = np.asarray(Image.open(res.files["overlay"]))
    assert overlay.shape == (H, W, 4)  # RGBA: the scene's nodata corner is transparent, not black
    np.testing.assert_array_equal(overlay[..., 3] > 0, valid > 0)


def test_geojson_native_crs_and_simplified_polygons(tiny, scene_tif, tmp_path):
    (res,) = segment_scene(tiny, scene_tif, "the red building", mode="global", out=tmp_path / "p",
                           geojson_crs="native", simplify=1.0, return_mask=True)
    fc = json.loads(Path(res.files["geojson"]).read_text())
    assert fc["crs"]["properties"]["name"].endswith("32611")
    geoms = [shape(f["geometry"]) for f in fc["features"]]
    back = rasterize([(g, 1) for g in geoms], out_shape=(H, W), transform=TRANSFORM) > 0
    assert (back & res.mask).sum() / (back | res.mask).sum() >= 0.95
    for f in fc["features"]:
        assert f["properties"]["expression"] == "the red building" and f["properties"]["area_m2"] > 0


def test_several_expressions_write_numbered_outputs(tiny, scene_tif, tmp_path):
    res = segment_scene(tiny, scene_tif, ["the red building", "the largest tank"], mode="global",
                        out=tmp_path / "multi")
    assert [r.text for r in res] == ["the red building", "the largest tank"]
    assert res[0].files["mask"].endswith("multi_1_mask.tif") and res[1].files["geojson"].endswith("multi_2.geojson")
    assert all(r.mask is None and r.seconds > 0 for r in res)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


class PerPixel(nn.Module):
    """Exactly translation-equivariant stub: a 1×1 convolution of the image plus a text bias."""

    image_size, size_divisor = 32, 32
    preprocess, postprocess = rrsis.RRSISModel.preprocess, rrsis.RRSISModel.postprocess

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 2, 1)
        self.tokenizer = lambda texts: {"input_ids": torch.ones(1, 3, dtype=torch.long),
                                        "attention_mask": torch.ones(1, 3)}

    def encode_text(self, ids, mask):
        return TextFeatures(words=torch.ones(1, 3, 4), mask=mask)

    def forward_with_text(self, pixels, text):
        return SegmentationOutput(logits=self.conv(pixels) + text.words.mean())


@pytest.mark.parametrize("tile, overlap, ratio", [(32, 0.25, 1.0), (64, 0.5, 1.0), (32, 0.0, 1.0), (32, 0.3, 2.0)])
def test_tiling_is_seamless(tmp_path, tile, overlap, ratio):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (97, 141, 3), dtype=np.uint8)
    stub = PerPixel()
    (res,) = segment_scene(stub, img, "x", mode="tiles", tile=tile, overlap=overlap, pixel_ratio=ratio,
                           return_mask=True, strip_rows=17)
    # The probability map, from the same tiles, against one pass over the whole image.
    sc = open_scene(img)
    from rrsis.scene.infer import predict_strips

    text = stub.encode_text(None, torch.ones(1, 3))
    opt = SceneOptions(mode="tiles", tile=tile, overlap=overlap, pixel_ratio=ratio, strip_rows=17).resolved(stub, 97, 141)
    tiled = np.concatenate([p for _, p, _ in predict_strips(sc, stub, text, opt)])
    if ratio == 1.0:
        x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) \
            / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.no_grad():
            lg = stub.forward_with_text(x, text).logits
        ref = torch.sigmoid(lg[0, 1] - lg[0, 0]).numpy()
    else:
        # At ratio 2 the one pass runs on the whole image resized to the 48×70 work grid (the
        # model's antialiased resize), its logits resampled back; tile edges resample slightly apart.
        small = torch.nn.functional.interpolate(torch.from_numpy(img[:96, :140]).permute(2, 0, 1)[None].float() / 255,
                                                size=(48, 70), mode="bilinear", antialias=True)[0]
        small = small.permute(1, 2, 0).numpy()
        opt2 = SceneOptions(mode="tiles", tile=96, overlap=0.0).resolved(stub, 48, 70)
        one = np.concatenate([p for _, p, _ in predict_strips(open_scene(small), stub, text, opt2)])
        d = np.log(one) - np.log1p(-one)
        ref = 1 / (1 + np.exp(-resample_rows(d, 0, 48, (0, 96), 140, (0.5, -0.25), (0.5, -0.25))))
        tiled, ref = tiled[4:92, 4:136], ref[4:92, 4:136]
        np.testing.assert_allclose(tiled, ref, atol=2e-2)
        return
    np.testing.assert_allclose(tiled, ref, atol=1e-5)
    np.testing.assert_array_equal(res.mask, ref > 0.5)


def test_tiling_helpers():
    assert tile_starts(100, 32, 24) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 24) == [0]
    w = blend_window(8)
    assert w.shape == (8, 8) and w.min() > 0 and np.allclose(w, w.T) and w[3, 3] == w.max()
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    # identity mapping, and strips from a partial buffer agree with the whole
    np.testing.assert_array_equal(resample_rows(src, 0, 3, (0, 3), 4, (1, 0), (1, 0)), src)
    whole = resample_rows(src, 0, 3, (0, 9), 8, (0.25, 0.1), (0.5, 0.0))
    part = resample_rows(src[1:], 1, 3, (5, 9), 8, (0.25, 0.1), (0.5, 0.0))
    np.testing.assert_allclose(whole[5:], part)


def _inputs(tmp_path):
    """``name -> (image, predict/segment_scene keywords)``: the five kinds of ordinary input."""
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (45, 77), dtype=np.uint8)
    rgb = rng.integers(0, 256, (150, 90, 3), dtype=np.uint8)
    rgba = np.dstack([rng.integers(0, 256, (61, 70, 3), dtype=np.uint8), rng.integers(0, 256, (61, 70), dtype=np.uint8)])
    d16 = rng.integers(0, 65536, (70, 130, 3), dtype=np.uint16)
    four = rng.integers(0, 256, (80, 66, 4), dtype=np.uint8)
    four16 = rng.integers(0, 4096, (66, 80, 4), dtype=np.uint16)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rng.integers(0, 65536, (50, 40), dtype=np.uint16)).save(tmp_path / "grey16.png")
    return {
        "grey": (grey, {}),
        "rgb": (rgb, {}),
        "rgb-png": (str(tmp_path / "rgb.png"), {}),
        "rgba": (rgba, {}),
        "16-bit dtype": (d16, {"scale": "dtype"}),
        "16-bit minmax": (d16, {"scale": "minmax"}),
        "16-bit grey png": (str(tmp_path / "grey16.png"), {"scale": 65535.0}),
        "4-band": (four, {"bands": (4, 1, 2)}),
        "4-band 16-bit": (four16, {"bands": "3,2,1", "scale": "max"}),
    }


def test_global_mode_equals_model_predict(tiny_tokenizer, tmp_path):
    """One inference path: segment_scene's global mode reads, resizes, normalises and resizes
    back through the model's own preprocess/postprocess, so the masks are equal, not close."""
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    text = "the red building"
    tok = tiny_tokenizer([text])
    for name, (image, kw) in _inputs(tmp_path).items():
        # A threshold at the median probability, so the mask has structure to compare.
        pix, sizes = m.preprocess(image, image_size=64, **kw)
        with torch.no_grad():
            logits = m(pix, tok["input_ids"], tok["attention_mask"]).logits
        (prob,) = m.postprocess(logits, sizes, output="probability")
        thr = float(np.median(prob))
        (res,) = segment_scene(m, image, text, mode="global", threshold=thr, global_size=64, **kw)
        (ref,) = m.predict(image, text, threshold=thr, image_size=64, **kw)
        assert res.mask.shape == ref.shape == sizes[0], name
        assert 0.05 < ref.mean() < 0.95, f"{name}: the test needs a mask with structure"
        np.testing.assert_array_equal(res.mask, ref, err_msg=name)


def test_scene_reads_what_read_image_reads(tmp_path):
    from rrsis.data import read_image

    for name, (image, kw) in _inputs(tmp_path).items():
        got, valid = open_scene(image, **kw).read()
        np.testing.assert_array_equal(got, read_image(image, **kw), err_msg=name)
        assert valid.all()


def test_scene_band_numbers_count_from_one_and_old_scale_keyword_is_refused(tiny):
    four = np.random.default_rng(0).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="count from 1"):
        open_scene(four, bands=(0, 1, 2))
    np.testing.assert_array_equal(open_scene(four, bands="4,3,2").read()[0], four[..., [3, 2, 1]] / np.float32(255))
    with pytest.raises(TypeError, match="pixel_ratio"):
        SceneOptions(scale=2.0)
    with pytest.raises(ValueError, match="pixel_ratio"):
        segment_scene(tiny, four[..., :3], "the red building", scale=2.0)


def test_bands_and_stretch(scene_tif):
    sc = open_scene(scene_tif, bands="4,3,2")
    assert sc.bands == (4, 3, 2) and len(sc.stretch_range) == 3
    img, valid = sc.read((100, 30, 140, 90))
    assert img.dtype == np.float32 and img.shape == (40, 60, 3) and 0 <= img.min() and img.max() <= 1
    assert not valid[10:, :20].any() and not img[10:, :20].any()
    # Value scaling instead of a stretch, with read_image's meaning (float64 division, as it does).
    with rasterio.open(scene_tif) as ds:
        raw = ds.read([4, 3, 2])
    img, valid = open_scene(scene_tif, bands="4,3,2", scale="dtype").read()
    want = (np.moveaxis(raw, 0, -1).astype(np.float64) / 65535).astype(np.float32)
    np.testing.assert_array_equal(img[valid], want[valid])
    img, _ = open_scene(scene_tif, bands="4,3,2", scale=1000.0).read((0, 0, 10, 10))
    np.testing.assert_allclose(img, np.moveaxis(raw[:, :10, :10], 0, -1) / 1000.0, rtol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        open_scene(scene_tif, scale="dtype", stretch=(2, 98))
    sc = open_scene(scene_tif, bands="1", stretch=(2, 98))
    img, _ = sc.read(None)
    assert (img[..., 0] == img[..., 1]).all()
    lo, _hi = sc.stretch_range[0]
    with rasterio.open(scene_tif) as ds:
        data = ds.read(1)
    assert lo == pytest.approx(np.percentile(data[data > 0], 2), rel=0.05)


@pytest.mark.parametrize("kwargs, message", [
    ({"bands": "5,3,2"}, r"bands \[5\] out of range"),
    ({"bands": "a,b"}, "band numbers counted from 1"),
    ({"bands": "1,2"}, "give 3 bands"),
    ({"mode": "fast"}, "mode 'fast'"),
    ({"tile": 50}, "multiple of 32"),
    ({"overlap": 0.95}, "overlap"),
    ({"pixel_ratio": 0.5}, "pixel_ratio must be >= 1"),
    ({"bands": "0,1,2"}, "count from 1"),
    ({"scale": "bogus"}, "unknown scale"),
    ({"local_rule": "min"}, "local_rule 'min': expected one of mean, max"),
    ({"threshold": 1.0}, "threshold"),
    ({"texts": " "}, "expression is empty"),
    ({"geojson_crs": "EPSG:nope", "out": "x"}, "geojson_crs"),
])
def test_bad_input_is_named(tiny, scene_tif, tmp_path, kwargs, message):
    texts = kwargs.pop("texts", "the red building")
    if "out" in kwargs:
        kwargs["out"] = tmp_path / kwargs["out"]
    with pytest.raises(ValueError, match=message):
        segment_scene(tiny, scene_tif, texts, **kwargs)
    assert not list(tmp_path.iterdir())


def test_missing_file_and_unreadable_raster(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        segment_scene(tiny, tmp_path / "nope.tif", "the red building")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="cannot read raster"):
        segment_scene(tiny, bad, "the red building")


def test_without_rasterio_geotiff_names_the_extra_and_png_still_works(tiny, scene_tif, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "rasterio" or m.startswith("rasterio.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio → ImportError
    with pytest.raises(ImportError, match=r'pip install "rrsis\[geo\]"'):
        segment_scene(tiny, scene_tif, "the red building")
    png = tmp_path / "plain.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(png)
    (res,) = segment_scene(tiny, png, "the red building", out=tmp_path / "plain")
    assert set(res.files) == {"mask", "overlay"} and res.mode == "global"  # auto, small image
    assert np.asarray(Image.open(res.files["mask"])).shape == (40, 50)


def test_geographic_crs_areas_in_square_metres(tiny, tmp_path):
    path = tmp_path / "wgs84.tif"
    write_scene(path, nodata_corner=False)
    step = 1e-4  # degrees per pixel near 45° N
    with rasterio.open(path, "r+") as ds:
        ds.crs = "EPSG:4326"
        ds.transform = Affine(step, 0, 10.0, 0, -step, 45.0)
    (res,) = segment_scene(tiny, path, "the red building", mode="global", out=tmp_path / "g",
                           simplify=0.0, return_mask=True)
    assert res.area_px == int(res.mask.sum()) > 0
    # A pixel is about (step · 111.32 km · cos(lat)) × (step · 111.1 km) here.
    lat = np.radians(45.0 - step * H / 2)
    px_m2 = (step * 111_320 * np.cos(lat)) * (step * 111_130)
    assert res.area_m2 == pytest.approx(res.area_px * px_m2, rel=0.01)
    fc = json.loads(Path(res.files["geojson"]).read_text())
    assert sum(f["properties"]["area_m2"] for f in fc["features"]) == pytest.approx(res.area_m2)


def test_uint8_arrays_are_read_in_place_and_resampled_in_bounded_memory():
    import tracemalloc

    import torch.nn.functional as F

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (4096, 1024, 3), dtype=np.uint8)
    sc = open_scene(a)
    assert np.shares_memory(sc._array, a)  # no whole-scene copy
    tracemalloc.start()
    img, valid = sc.read(None, (96, 96))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The bound of resize_image_bands: an [C, H, 96] float buffer plus a few float bands of
    # 32 rows, far below the whole image as floats (4x the array).
    bound = a.shape[0] * 96 * 3 * 4 + 8 * 32 * a.shape[1] * 3 * 4
    assert peak < min(bound, 0.65 * a.nbytes), f"global read of an array allocated {peak / a.nbytes:.2f}x the array"
    assert valid.all() and img.dtype == np.float32
    ref = F.interpolate(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255, size=(96, 96), mode="bilinear",
                        align_corners=False, antialias=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(img, ref)  # the model's resize, computed in bands of rows

    # A window reaching outside the scene: zero padding resized; pixels outside are invalid and black.
    win = (-512, -256, 1536, 768)
    img, valid = sc.read(win, (64, 64))
    pad = np.zeros((2048, 1024, 3), np.uint8)
    pad[512:, 256:] = a[:1536, :768]
    ref = F.interpolate(torch.from_numpy(pad).permute(2, 0, 1)[None].float() / 255, size=(64, 64), mode="bilinear",
                        align_corners=False, antialias=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(img[valid], ref[valid])
    assert not valid[:16].any() and valid[16:, 16:].all() and (img[~valid] == 0).all()

    # Grey and RGBA arrays are read in place too, as load_image reads them.
    grey = a[:, :, 0]
    g_img, _ = open_scene(grey).read((0, 0, 64, 64))
    assert np.shares_memory(open_scene(grey)._array, grey) and (g_img == grey[:64, :64, None] / np.float32(255)).all()
    rgba = np.dstack([a[:64, :64], np.full((64, 64), 7, np.uint8)])
    assert (open_scene(rgba).read()[0] == a[:64, :64] / np.float32(255)).all()
