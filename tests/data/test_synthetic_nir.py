"""Near-infrared synthetic scenes: a fourth band that tells apart what R, G, B cannot, written in
a format the loaders read, and ``nir`` expressions that need it."""

import numpy as np
import pytest

from rrsis.data import RefSegRSDataset, RRSISDDataset, read_image
from rrsis.data.synthetic import (
    NIR_STATES,
    generate,
    generate_scene,
    render,
    sample_scene,
    vocabulary,
)
from rrsis.data.synthetic.writers import write_tiff
from rrsis.data.tiff import read_tiff_info


@pytest.fixture(scope="module")
def nir_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("nir")
    stats = generate(str(out), 12, seed=5, size=64, layout="both", nir=True, kind_weights={"nir": 3.0})
    return out, stats


def test_nir_off_keeps_the_rgb_scene_and_its_random_stream():
    a, b = np.random.default_rng([3, 1]), np.random.default_rng([3, 1])
    plain, off = sample_scene(a, 64), sample_scene(b, 64, nir=False)
    assert [o.category for o in plain.objects] == [o.category for o in off.objects]
    np.testing.assert_array_equal(render(plain, a), render(off, b))
    assert not any(o.state for o in plain.objects)
    assert "vegetated" not in vocabulary() and "vegetated" in vocabulary(nir=True)


def test_states_differ_in_nir_only():
    found = 0
    for index in range(20):
        gs = generate_scene(index, seed=2, size=64, nir=True)
        assert gs.image.shape == (64, 64, 4) and gs.image.dtype == np.uint8
        pairs = [o for o in gs.scene.objects if o.state]
        if len(pairs) < 2:
            continue  # the pair did not fit this scene
        a, b = pairs
        assert a.category == b.category and {a.state, b.state} == set(NIR_STATES[a.category])
        assert a.colour == b.colour
        rgb_a, rgb_b = (gs.image[o.mask, :3].astype(float).mean(0) for o in (a, b))
        nir_a, nir_b = (gs.image[o.mask, 3].astype(float).mean() for o in (a, b))
        assert np.abs(rgb_a - rgb_b).max() < 20  # same paint, jitter and texture alike
        bright = {"vegetated", "dry"}
        hi, lo = (nir_a, nir_b) if a.state in bright else (nir_b, nir_a)
        assert hi - lo > 50, (a.state, nir_a, b.state, nir_b)
        texts = {e.text: e for e in gs.expressions}
        for e in texts.values():
            if e.kind == "nir":
                state = e.text.split()[1]
                assert [gs.scene.objects[i].state for i in e.targets] == [state]
        found += 1
    assert found >= 10


def test_written_four_band_images_read_back_exactly(nir_set):
    out, stats = nir_set
    assert stats["kinds"].get("nir", 0) >= 6 and stats["config"]["nir"] is True
    gs = generate_scene(0, seed=5, size=64, split="train", nir=True)
    path = out / "rrsisd" / "JPEGImages" / "00000.tif"
    np.testing.assert_array_equal(np.rint(read_image(str(path), channels=4) * 255).astype(np.uint8), gs.image)
    info = read_tiff_info(str(path))
    assert info.samples == 4 and not info.alpha_last and info.compression == 1
    # photometric RGB declares bands 1-3 red, green, blue (GDAL reads them so): an RGB reader reads those
    assert info.rgb == (1, 2, 3)
    np.testing.assert_array_equal(np.rint(read_image(str(path)) * 255).astype(np.uint8), gs.image[..., :3])


@pytest.mark.parametrize("layout", ["rrsisd", "refsegrs"])
def test_datasets_read_four_bands_with_per_band_statistics(nir_set, layout):
    out, _ = nir_set
    cls = RRSISDDataset if layout == "rrsisd" else RefSegRSDataset
    mean, std = [0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.2, 0.1]
    ds = cls(str(out / layout), split="train", size=64, bands=(1, 2, 3, 4), mean=mean, std=std)
    sample = ds[0]
    raw = read_image(ds.entries[0].image_path, bands=(1, 2, 3, 4))  # 64 px: no resize
    want = (raw.transpose(2, 0, 1) - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(sample["pixel_values"].numpy(), want, atol=1e-5)
    texts = [t for e in ds.entries for _, t in e.sentences]
    assert any(w in t for t in texts for w in ("vegetated", "bare", "dry pond", "wet pond"))
    with pytest.raises(ValueError, match="4 bands but mean/std have 3"):
        cls(str(out / layout), split="train", size=64, bands=(1, 2, 3, 4))[0]


def test_write_tiff_round_trip_and_bad_input(tmp_path):
    for c in (1, 2, 5):
        arr = np.random.default_rng(c).integers(0, 256, (7, 9, c), dtype=np.uint8)
        write_tiff(str(tmp_path / f"{c}.tif"), arr)
        got = read_image(str(tmp_path / f"{c}.tif"), bands=tuple(range(1, c + 1)))
        np.testing.assert_array_equal(np.rint(got * 255).astype(np.uint8), arr)
    with pytest.raises(ValueError, match="uint8"):
        write_tiff(str(tmp_path / "f.tif"), np.zeros((2, 2, 4), np.float32))
