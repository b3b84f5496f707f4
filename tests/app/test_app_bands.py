"""The app with a 4-band model: uploads of its band count pass through, the Bands field chooses
bands (counted from 1), and a wrong count comes back as a message naming both counts."""

import numpy as np
import pytest
import torch
from PIL import Image

import rrsis
from rrsis.app import Limits, run
from rrsis.app.session import Workspace, respond
from rrsis.data.synthetic.writers import write_tiff


@pytest.fixture(scope="module")
def model4(tiny_tokenizer):
    torch.manual_seed(0)
    m = rrsis.create_model("gl-msin-tiny", in_chans=4, mean=[0.5] * 4, std=[0.25] * 4,
                           text_vocab_size=len(tiny_tokenizer)).eval()
    m.tokenizer = tiny_tokenizer
    return m


def test_four_band_upload_and_band_choice(model4, tmp_path):
    pytest.importorskip("rasterio")  # a .tif scene is opened through rasterio
    image = np.random.default_rng(1).integers(0, 256, (40, 56, 5), dtype=np.uint8)
    write_tiff(str(tmp_path / "four.tif"), image[..., :4])
    write_tiff(str(tmp_path / "five.tif"), image)
    want = model4.predict(image[..., :4], "the red building")[0]
    for name, bands in (("four.tif", None), ("five.tif", "1,2,3,4")):
        work = tmp_path / name.split(".")[0]
        work.mkdir()
        r = run(model4, tmp_path / name, ["the red building"], workdir=work, bands=bands)[0]
        np.testing.assert_array_equal(np.asarray(Image.open(r.mask_png)) > 0, want)
    with Workspace() as ws:
        bad = respond(model4, ws, Limits(), str(tmp_path / "five.tif"), "the red building", "global", 0.5, "1,2,3")
        assert not bad.ok and "names 3 band(s) but the model takes 4" in bad.message
        bad = respond(model4, ws, Limits(), str(tmp_path / "five.tif"), "the red building", "global", 0.5)
        assert not bad.ok and "5 band(s)" in bad.message and "takes 4" in bad.message
        ok = respond(model4, ws, Limits(), str(tmp_path / "five.tif"), "the red building", "global", 0.5, "1,2,3,4")
        assert ok.ok and len(ok.files) == 1
