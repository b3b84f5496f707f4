"""Paths made to fail, each a one-line message of rrsis's: a protocol-4 pickle refused without
torch's warning first, an --image or @text that is a folder or a device, and an --out name too
long for the files made from it."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings

import numpy as np
import pytest

from rrsis.cli import main


def test_protocol_4_pickle_refused_without_torchs_warning(saved_model, tmp_path):
    import rrsis
    from rrsis.hub import CheckpointError

    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"x": [1, 2, 3]}, fh, protocol=4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="holds Python objects besides tensors and plain data"):
            rrsis.from_pretrained(folder)
    assert not [w for w in seen if "pickle protocol" in str(w.message)]


def test_weights_only_load_loads_and_leaves_the_filters_as_they_were(tmp_path):
    import torch

    from rrsis._torch_load import weights_only_load

    torch.save({"w": torch.ones(2)}, tmp_path / "w.pt")
    before = list(warnings.filters)
    assert weights_only_load(tmp_path / "w.pt")["w"].tolist() == [1.0, 1.0]
    assert warnings.filters == before


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "i.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize(("which", "expected"), [
    ("folder", "is a directory, not a file"),
    ("/dev/zero", "is not a regular file (a device, FIFO or socket)"),
    ("absent", "file not found"),
])
def test_image_and_text_file_say_what_the_path_is(tmp_path, saved_model, image, capsys, which, expected):
    if which == "/dev/zero" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    path = {"folder": str(tmp_path), "absent": str(tmp_path / "nope.png")}.get(which, which)
    base = ["predict", "--model", str(saved_model), "--out", str(tmp_path / "out/"), "--quiet"]
    assert main([*base, "--image", path, "--text", "red"]) == 2
    assert capsys.readouterr().err.strip() == f"rrsis predict: error: --image {path}: {expected}"
    assert main([*base, "--image", str(image), "--text", f"@{path}"]) == 2
    assert capsys.readouterr().err.strip().startswith(f"rrsis predict: error: --text @{path}: {expected}")


def test_open_scene_says_what_the_path_is(tmp_path):
    from rrsis.scene import open_scene

    with pytest.raises(ValueError, match=f"^{tmp_path}: is a directory, not a file$"):
        open_scene(str(tmp_path))


def test_out_name_too_long_named_before_anything(tmp_path, saved_model, image, capsys):
    from rrsis.scene.outputs import NAME_MAX, NAME_ROOM, output_prefixes

    ok = "x" * (NAME_MAX - NAME_ROOM)
    assert output_prefixes(str(tmp_path / ok), 1) == [str(tmp_path / ok)]
    out = tmp_path / ("x" * 300)
    assert main(["predict", "--model", str(saved_model), "--image", str(image), "--text", "red", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rrsis predict: error: output prefix '{str(out)[:40]}…")
    assert ("its file name is 300 bytes; the files made from it (NAME_overlay.png.aux.xml, temporary and lock "
            f"files) need it at most {NAME_MAX - NAME_ROOM}") in err
    assert "Errno" not in err and os.listdir(tmp_path) == ["i.png"]
    with pytest.raises(ValueError, match=r"its file name \(from the scene\) is 300 bytes"):
        output_prefixes(str(tmp_path) + "/", 1, "y" * 300 + ".tif")
