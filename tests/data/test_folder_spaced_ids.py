"""A folder dataset's phrase line whose image name has a space: the id is cut at the first space,
and the error says so when such a file exists."""

import numpy as np
import pytest
from PIL import Image

from rrsis.data import FolderDataset


def _folder(root, names, lines):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for n in names:
        Image.fromarray(np.full((16, 16, 3), 40, np.uint8)).save(root / "images" / f"{n}.png")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "masks" / f"{n}.png")
    (root / "output_phrase_train.txt").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")


def test_an_id_cut_at_a_space_is_explained(tmp_path):
    _folder(tmp_path, ["港口 1", "港口2"], ["港口2 红色的屋顶", "港口 1 红色的屋顶"])
    with pytest.raises(FileNotFoundError, match=r"line 2: sample 港口:2: image .*港口 not found; a line's id is its "
                                                r"first word \(cut at the first space.*'港口 1\.png' in .*images has a "
                                                r"space in its name: rename such files without spaces \('港口_1\.png'\)"):
        FolderDataset(str(tmp_path), split="train", size=16)


def test_a_missing_image_without_a_spaced_name_says_only_not_found(tmp_path):
    _folder(tmp_path, ["a"], ["a the roof", "b the roof"])
    with pytest.raises(FileNotFoundError, match=r"image .*b not found$"):
        FolderDataset(str(tmp_path), split="train", size=16)
