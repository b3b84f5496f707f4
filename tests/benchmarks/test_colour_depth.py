"""benchmarks/colour_depth.py models a 16-bit scene read with a value scaling as the 8-bit scene
times a factor: its default row is what the object mode measures on such a scene, clouds or not."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rrsis.scene import open_scene
from rrsis.scene.colour import component_colours, display_range
from rrsis.scene.components import ComponentBuilder


def test_the_default_row_is_the_object_modes_on_the_16_bit_scene(tmp_path, benchmark_module):
    ls = benchmark_module("large_scene")
    cd = benchmark_module("colour_depth")
    (meta,) = ls.make_set(tmp_path, [192], 1, ls.HELD_OUT, 5, 64, 1)
    values = cd.scene_values([meta])[meta["image"]]
    # The same scene at 16 bits, times 12, read with scale="dtype" as a model trained so reads it.
    with rasterio.open(meta["path"]) as ds:
        profile, data = ds.profile, ds.read()
    deep = tmp_path / "deep.tif"
    with rasterio.open(deep, "w", **{**profile, "dtype": "uint16"}) as ds:
        ds.write(data.astype(np.uint16) * 12)
    k = 255.0 * 12 / 65535
    prob = np.zeros((8, 8), np.float32)
    prob[1:3, 1:3], prob[5:7, 4:8] = 0.9, 0.8
    image = np.zeros((8, 8, 3), np.float32)
    image[1:3, 1:3], image[5:7, 4:8] = (0.9, 0.2, 0.1), (0.3, 0.35, 0.8)
    b = ComponentBuilder(8, 3, 0.5)
    b.add(0, prob, image * k)
    comps = b.finish(8)
    with open_scene(str(deep), scale="dtype") as sc:
        comps.rgb_range = display_range(sc, sc.rgb)
    e = {"rgb": image[[1, 5], [1, 4]]}
    rows = cd.variants(e, values)
    default = rows[cd.DEFAULT]
    np.testing.assert_allclose(default["rgb"], component_colours(comps), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(default["rgb"], e["rgb"] / 0.9, rtol=1e-6)  # over the brightest band, 0.9
    np.testing.assert_allclose(rows[f"×{cd.FACTORS[1]:g} (16-bit at a value scaling), as it is"]["rgb"],
                               e["rgb"] * cd.FACTORS[1])
    # Clouds darken the scene-white rows, never the default's.
    cloudy = f"with {100 * cd.CLOUDS[-1]:g} % clouds, "
    assert np.array_equal(rows[cloudy + cd.DEFAULT]["rgb"], default["rgb"])
    plain, clouded = (rows[f"{w}over the scene's 99.9th percentile (the previous rule)"]["rgb"] for w in ("", cloudy))
    assert (clouded < plain).all()
    np.testing.assert_allclose(plain, np.clip(e["rgb"] / np.percentile(values, 99.9), 0, 1), rtol=1e-6)
    with_cloud = cd.clouded(values, 0.05)
    assert len(with_cloud) - len(values) == round(0.05 * len(with_cloud))
