"""Hostile and malformed COCO annotations: refused with a clear error at dataset construction,
never handed to the rasteriser (issue 30)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from _limits import run_limited
from PIL import Image

from rrsis.data import RRSISDDataset
from rrsis.data.coco import decode_segmentation, rle_counts_to_string

GOOD = [2, 1, 6, 1, 6, 4, 2, 4]


def _refer(root, segmentation) -> None:
    """A REFER folder with one 10x12 image, ref 1 on a good polygon, ref 2 on ``segmentation``."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "JPEGImages" / "im1.png")
    anns = [{"id": 11, "image_id": 1, "segmentation": [GOOD]},
            {"id": 12, "image_id": 1, "segmentation": segmentation}]
    refs = [{"ref_id": r, "ann_id": a, "image_id": 1, "split": "val",
             "sentences": [{"raw": f"thing {r}", "sent_id": r}]} for r, a in ((1, 11), (2, 12))]
    coco = {"images": [{"id": 1, "file_name": "im1.png", "height": 10, "width": 12}], "annotations": anns}
    (root / "instances.json").write_text(json.dumps(coco))
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))


BAD = {
    "nan": ([[2, 1, float("nan"), 1, 6, 4]], "not finite"),
    "inf": ([[2, 1, float("inf"), 1, 6, 4]], "not finite"),
    "huge": ([[2, 1, 1e308, 1, 6, 4]], "far outside the 12x10 image"),
    "odd": ([[2, 1, 6, 1, 6]], "odd number of coordinates"),
    "string": (["2 1 6 1 6 4"], "flat list of numbers"),
    "four_numbers": ([[2, 1, 6, 4]], "2 point"),
    "bool": ([[True, 1, 6, 1, 6, 4]], "flat list of numbers"),
    "rle_huge_count": ({"size": [10, 12], "counts": [10**10, 120]}, "RLE runs cover"),
    "rle_negative": ({"size": [10, 12], "counts": [130, -10]}, "negative"),
    "rle_compressed_huge": ({"size": [10, 12], "counts": rle_counts_to_string([0, 10**12])}, "RLE runs cover"),
    "rle_size_huge": ({"size": [10**6, 10**6], "counts": [10**12]}, "out of range"),
    "rle_size_text": ({"size": ["10", "12"], "counts": [120]}, "two integers"),
    "not_a_list": (7, "list or a dict"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotation_refused_at_construction(tmp_path, case):
    seg, why = BAD[case]
    _refer(tmp_path, seg)
    with pytest.raises(ValueError, match=f"instances.json: sample ref 2: annotation 12 .*{why}"):
        RRSISDDataset(str(tmp_path), "val", coco_backend="numpy")
    # skip_bad drops exactly that sample and keeps the good one
    ds = RRSISDDataset(str(tmp_path), "val", coco_backend="numpy", skip_bad=True, return_native_mask=True)
    assert [sid for sid, _ in ds.skipped] == ["ref2/sent2"]
    assert len(ds) == 1 and ds[0]["native_mask"].sum() == 12  # the 4x3 rectangle


@pytest.mark.parametrize("case", sorted(BAD))
def test_decode_refuses_what_check_refuses(case):
    from rrsis.data.coco import check_segmentation

    seg, why = BAD[case]
    with pytest.raises(ValueError, match=why):
        check_segmentation(seg, 10, 12)
    with pytest.raises(ValueError, match=why):
        decode_segmentation(seg, 10, 12, backend="numpy")


def test_plausible_margins_still_decode():
    # Slightly outside the image is normal in real annotations: clipped, not refused.
    mask = decode_segmentation([[-3, -2, 14, -2, 14, 3, -3, 3]], 10, 12, backend="numpy")
    want = np.zeros((10, 12), bool)
    want[:3] = True
    np.testing.assert_array_equal(mask, want)


HOSTILE_COORDS = ["float('nan')", "1e308", "float('inf')", "-1e308"]


@pytest.fixture(scope="module")
def hostile_polygon_refusals():
    """``{coord: message}`` from one memory- and time-limited child (one interpreter start for
    every case): the ValueError of each polygon with ``coord`` in it, or ``"decoded"``."""
    code = (
        "import json, sys\n"
        "from rrsis.data.coco import decode_segmentation\n"
        "out = {}\n"
        f"for coord in {HOSTILE_COORDS!r}:\n"
        "    c = eval(coord)\n"
        "    try:\n"
        "        decode_segmentation([[0, 0, c, 5, 3, c, 7, 9]], 800, 800, backend='numpy')\n"
        "        out[coord] = 'decoded'\n"
        "    except ValueError as exc:\n"
        "        out[coord] = 'refused: ' + str(exc)\n"
        "print(json.dumps(out))\n"
    )
    r = run_limited(code)
    assert not r.timed_out
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("coord", HOSTILE_COORDS)
def test_hostile_polygon_under_memory_limit(hostile_polygon_refusals, coord):
    message = hostile_polygon_refusals[coord]
    assert message.startswith("refused:") and "polygon" in message, message
