"""RRSIS-D as its authors release it: the annotations in ``<release>/rrsisd/`` and the images in
``<release>/images/rrsisd/JPEGImages``. The images are found there when that is the only
candidate; otherwise the error names the ``image_dir`` option and how each command passes it."""

from __future__ import annotations

import logging
import shutil

import pytest

from rrsis.data import build_dataset
from rrsis.data.synthetic import generate
from rrsis.engine import load_config
from rrsis.engine.recipe import parse_override_args


def _release(tmp_path, name="rrsisd"):
    """A generated RRSIS-D folder laid out as the release: ``<tmp>/<name>`` and ``<tmp>/images/rrsisd``."""
    generate(str(tmp_path / "gen"), 4, seed=3, size=64, layout="rrsisd")
    (tmp_path / "images" / "rrsisd").mkdir(parents=True)
    shutil.move(tmp_path / "gen" / "rrsisd" / "JPEGImages", tmp_path / "images" / "rrsisd" / "JPEGImages")
    shutil.move(tmp_path / "gen" / "rrsisd", tmp_path / name)
    return tmp_path / name


def test_the_release_layout_reads_its_images_and_says_so(tmp_path, caplog):
    root = _release(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rrsis.data.rrsisd"):
        ds = build_dataset("rrsisd", str(root), "val", size=64)
    images = tmp_path / "images" / "rrsisd" / "JPEGImages"
    assert ds.image_dir == str(images) and len(ds) > 0
    assert ds[0]["pixel_values"].shape == (3, 64, 64)
    assert f"reading the images from {images}, where the RRSIS-D release keeps them" in caplog.text


def test_a_missing_image_folder_names_the_option_and_its_syntax(tmp_path):
    root = _release(tmp_path)
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(FileNotFoundError) as err:
        build_dataset("rrsisd", str(root), "val", size=64)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'JPEGImages'}: image folder not found")
    assert "dataset option image_dir: rrsis train --data.options.image_dir DIR" in msg
    assert "--data-option image_dir=DIR" in msg
    # the train syntax the message gives is one load_config reads
    cfg = load_config("gl-msin-tiny-synthetic", parse_override_args(["--data.options.image_dir", "/x/J"]))
    assert cfg["data"]["options"] == {"image_dir": "/x/J"}


def test_two_candidate_folders_are_not_guessed_between(tmp_path):
    root = _release(tmp_path, name="mine")
    shutil.copytree(tmp_path / "images" / "rrsisd", tmp_path / "images" / "mine")
    with pytest.raises(FileNotFoundError, match=r"both could be the images: give the folder as the dataset option"):
        build_dataset("rrsisd", str(root), "val", size=64)
    ds = build_dataset("rrsisd", str(root), "val", size=64, image_dir=str(tmp_path / "images" / "mine" / "JPEGImages"))
    assert len(ds) > 0
