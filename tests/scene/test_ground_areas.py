"""Areas in a CRS that distorts them (Web Mercator): ``SceneResult.area_m2`` is the ellipsoidal
area with or without ``out=``, and ``evaluate_scene`` reports the same m² as ``segment_scene``
(not scene pixels)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
shapely = pytest.importorskip("shapely")
pyogrio = pytest.importorskip("pyogrio")

from affine import Affine
from pyogrio.raw import write as write_vector
from shapely.geometry import box

from rrsis.scene import evaluate_scene, segment_scene
from rrsis.scene.vector import geodesic_area

X0, Y0 = 1491000.0, 6894000.0  # Web Mercator near 52° N: a metre of the map is about 0.6 m of ground
T = Affine(2.0, 0, X0, 0, -2.0, Y0)


@pytest.fixture(scope="module")
def mercator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("merc")
    data = np.random.default_rng(0).integers(60, 120, (3, 48, 64)).astype(np.uint8)
    with rasterio.open(folder / "s.tif", "w", driver="GTiff", height=48, width=64, count=3, dtype="uint8",
                       crs="EPSG:3857", transform=T) as ds:
        ds.write(data)
    return folder


def test_area_m2_without_out_is_the_ellipsoidal_area_out_gives(mercator, tiny_model, tmp_path):
    path = str(mercator / "s.tif")
    (bare,) = segment_scene(tiny_model, path, "the red building", mode="global", threshold=1e-6)
    (written,) = segment_scene(tiny_model, path, "the red building", mode="global", threshold=1e-6,
                               out=tmp_path / "o")
    whole = geodesic_area(box(X0, Y0 - 96, X0 + 128, Y0), "EPSG:3857")
    assert bare.area_px == written.area_px == 48 * 64
    assert bare.area_m2 == pytest.approx(written.area_m2, rel=1e-6)
    assert bare.area_m2 == pytest.approx(whole, rel=1e-6) and bare.area_m2 < 0.5 * 128 * 96  # not the map's m²


def test_evaluate_gives_the_m2_predict_gives_on_web_mercator(mercator, tiny_model):
    target = box(X0 + 20, Y0 - 40, X0 + 60, Y0 - 10)  # on pixel edges: the rasterised truth is the box
    labels = str(mercator / "l.gpkg")
    write_vector(labels, np.array([shapely.to_wkb(target)], dtype=object),
                 [np.array(["the red building"], dtype=object)], ["expression"], driver="GPKG",
                 crs="EPSG:3857", geometry_type="Polygon")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "areas are given in scene pixels"
        ev = evaluate_scene(tiny_model, str(mercator / "s.tif"), labels, text_field="expression",
                            modes=("global",), threshold=1e-6)
    assert ev.area_unit == "m²"
    row = ev.modes[0].expressions[0]
    assert row.true_px == 20 * 15
    assert row.true_area == pytest.approx(geodesic_area(target, "EPSG:3857"), rel=1e-6)
    (pred,) = segment_scene(tiny_model, str(mercator / "s.tif"), "the red building", mode="global", threshold=1e-6)
    assert row.predicted_area == pytest.approx(pred.area_m2, rel=1e-6)
