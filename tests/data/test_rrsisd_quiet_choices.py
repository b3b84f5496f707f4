"""What the RRSIS-D reader used to decide without a word: the numpy polygon rasteriser standing in
for a missing pycocotools (masks unlike the published ones), and refs with no sentences left out."""

from __future__ import annotations

import json
import logging
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from rrsis.data import RRSISDDataset
from rrsis.data import coco as coco_module
from rrsis.data.coco import decode_segmentation, polygon_to_mask, rle_encode

OBLIQUE = [1.3, 0.7, 10.2, 2.1, 8.5, 8.9, 2.2, 7.4]  # oblique edges: the two rasterisers differ here


def _refer(root, segmentation, sentences=None) -> None:
    """A REFER folder with one 10x12 image and refs 1-4 on one annotation; ``sentences`` maps a
    ref id to its sentence list (default: one sentence)."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "JPEGImages" / "im1.png")
    anns = [{"id": 11, "image_id": 1, "segmentation": segmentation}]
    sentences = sentences or {}
    refs = [{"ref_id": r, "ann_id": 11, "image_id": 1, "split": split,
             "sentences": sentences.get(r, [{"raw": f"thing {r}", "sent_id": r}])}
            for r, split in ((1, "val"), (2, "val"), (3, "val"), (4, "train"))]
    coco = {"images": [{"id": 1, "file_name": "im1.png", "height": 10, "width": 12}], "annotations": anns}
    (root / "instances.json").write_text(json.dumps(coco))
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))


@pytest.fixture
def no_pycocotools(monkeypatch):
    """As if the ``coco`` extra were not installed, with the once-per-process warning not yet given."""
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.mask", None)
    monkeypatch.setattr(coco_module, "_fallback_warned", False)


def _fallback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "pycocotools is not installed" in r.getMessage()]


def test_auto_without_pycocotools_warns_once_on_polygons(tmp_path, no_pycocotools, caplog):
    _refer(tmp_path, [OBLIQUE])
    with caplog.at_level(logging.WARNING):
        ds = RRSISDDataset(str(tmp_path), "val", return_native_mask=True)
        mask = ds[0]["native_mask"].numpy().astype(bool)
        RRSISDDataset(str(tmp_path), "val")  # a second dataset (say val after train): no second warning
        decode_segmentation([OBLIQUE], 10, 12)
    assert ds.coco_backend == "auto" and ds.coco_backend_used == "numpy"
    np.testing.assert_array_equal(mask, polygon_to_mask(OBLIQUE, 10, 12))  # the numpy rule's mask
    told = _fallback_warnings(caplog)
    assert len(told) == 1
    assert 'pip install "rrsis[coco]"' in told[0] and "published" in told[0]


def test_decode_auto_without_pycocotools_warns_on_polygons_only(no_pycocotools, caplog):
    rle = rle_encode(polygon_to_mask(OBLIQUE, 10, 12))
    with caplog.at_level(logging.WARNING):
        decode_segmentation(rle, 10, 12)  # RLE: both decoders agree exactly, nothing to tell
        decode_segmentation([OBLIQUE], 10, 12, backend="numpy")  # chosen, not a fallback
        assert _fallback_warnings(caplog) == []
        decode_segmentation([OBLIQUE], 10, 12)
        decode_segmentation([OBLIQUE], 10, 12)
    assert len(_fallback_warnings(caplog)) == 1


def test_rle_only_dataset_or_chosen_numpy_is_not_warned(tmp_path, no_pycocotools, caplog):
    _refer(tmp_path, rle_encode(polygon_to_mask(OBLIQUE, 10, 12)))
    with caplog.at_level(logging.WARNING):
        assert RRSISDDataset(str(tmp_path), "val").coco_backend_used == "numpy"
    _refer(tmp_path, [OBLIQUE])
    with caplog.at_level(logging.WARNING):
        RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")
    assert _fallback_warnings(caplog) == []


def test_unknown_backend_refused_at_construction(tmp_path):
    _refer(tmp_path, [OBLIQUE])
    with pytest.raises(ValueError, match="unknown COCO backend 'pycoco'"):
        RRSISDDataset(str(tmp_path), "val", coco_backend="pycoco")


def test_refs_without_sentences_are_told_once_per_split(tmp_path, caplog):
    # Refs 1 and 3 of val have an empty sentence list; train's only ref has its sentence.
    _refer(tmp_path, [[2, 1, 6, 1, 6, 4, 2, 4]], sentences={1: [], 3: []})
    with caplog.at_level(logging.WARNING, logger="rrsis.data.rrsisd"):
        val = RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")
    told = [r.getMessage() for r in caplog.records if "no sentences" in r.getMessage()]
    assert [e.name for e in val.entries] == ["ref 2"]
    assert len(told) == 1
    assert "2 ref(s) of split 'val'" in told[0] and "(e.g. ref 1)" in told[0] and "refs(unc).p" in told[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rrsis.data.rrsisd"):
        train = RRSISDDataset(str(tmp_path), "train", coco_backend="numpy")
    assert len(train) == 1
    assert not [r for r in caplog.records if "no sentences" in r.getMessage()]


def test_empty_sentence_text_is_still_an_error(tmp_path):
    _refer(tmp_path, [[2, 1, 6, 1, 6, 4, 2, 4]], sentences={2: [{"raw": "  ", "sent_id": 5}]})
    with pytest.raises(ValueError, match=r"refs\(unc\).p: sample ref2/sent5"):
        RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")


@pytest.mark.parametrize("key", ["ann_id", "split"])
def test_a_ref_missing_its_target_or_split_is_malformed_not_silent(tmp_path, key):
    # Without ann_id the ref used to become an empty ("no target") mask; without split it was in no
    # split, dropped unseen. Both are named, as a missing image_id or sentences are.
    _refer(tmp_path, [[2, 1, 6, 1, 6, 4, 2, 4]])
    refs = pickle.loads((tmp_path / "refs(unc).p").read_bytes())
    del refs[1][key]  # ref 2 (val)
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    with pytest.raises(ValueError, match=rf"refs\(unc\).p: ref 2: malformed ref \(KeyError\('{key}'\)\)"):
        RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")
    skipped = RRSISDDataset(str(tmp_path), "val", coco_backend="numpy", skip_bad=True)
    assert [e.name for e in skipped.entries] == ["ref 1", "ref 3"]
    assert [sid for sid, _ in skipped.skipped] == ["ref 2"]
    refs[1][key] = -1 if key == "ann_id" else "val"  # -1 is "no target", said on purpose
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    ds = RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")
    assert [e.name for e in ds.entries] == ["ref 1", "ref 2", "ref 3"]
