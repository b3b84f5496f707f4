"""Tests for rrsis.data: readers (TIFF, COCO masks, pickles), transforms and the dataset loaders."""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from rrsis.data import (
    DATASETS,
    FolderDataset,
    RefSegRSDataset,
    ResizeNormalize,
    RRSISDDataset,
    build_dataset,
    collate_fn,
    load_plain_pickle,
    read_image,
    read_mask,
    resize_mask,
)
from rrsis.data.coco import (
    decode_segmentation,
    have_pycocotools,
    mask_to_polygons,
    polygon_to_mask,
    rle_counts_from_string,
    rle_counts_to_string,
    rle_decode,
    rle_encode,
)
from rrsis.data.io import image_size, load_raster

needs_coco = pytest.mark.skipif(not have_pycocotools(), reason="pycocotools not installed")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def tiny_tokenizer(texts):
    """Stand-in for the model tokenizer: [CLS] word ids [SEP], padded to the longest text."""
    rows = [[101] + [1000 + sum(map(ord, w)) % 500 for w in t.split()] + [102] for t in texts]
    length = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    att = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        att[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": att}


def write_raw_tiff(path, arr, planar=False, photometric=None):
    """Minimal uncompressed little-endian TIFF writer (1 or >= 3 bands, integer depth); photometric
    RGB (which declares bands 1-3 red, green, blue) from three bands on unless ``photometric`` says."""
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, c = arr.shape
    bps = arr.dtype.itemsize * 8
    le = arr.astype(arr.dtype.newbyteorder("<"))
    data = (le.transpose(2, 0, 1) if planar else le).tobytes()
    entries = []
    extra = b""
    n_entries = 10 + (1 if c not in (1, 3) else 0)
    extra_off = 8 + 2 + 12 * n_entries + 4
    if c > 2:
        bps_field = extra_off
        extra += struct.pack(f"<{c}H", *([bps] * c))
    else:
        bps_field = bps
    if planar:
        band = h * w * arr.dtype.itemsize
        offs_off = extra_off + len(extra)
        data_off = offs_off + 8 * c
        offsets = [data_off + k * band for k in range(c)]
        extra += struct.pack(f"<{c}I", *offsets) + struct.pack(f"<{c}I", *([band] * c))
        strip_off, strip_cnt, n_strips = offs_off, offs_off + 4 * c, c
    else:
        data_off = extra_off + len(extra)
        strip_off, strip_cnt, n_strips = data_off, len(data), 1
    entries += [
        (256, 4, 1, w), (257, 4, 1, h), (258, 3, c, bps_field), (259, 3, 1, 1),
        (262, 3, 1, photometric or (2 if c >= 3 else 1)), (273, 4, n_strips, strip_off), (277, 3, 1, c),
        (278, 4, 1, h), (279, 4, n_strips, strip_cnt), (284, 3, 1, 2 if planar else 1),
    ]
    if c not in (1, 3):
        entries.append((338, 3, 1, 0))
    entries.sort()
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0) + extra + data
    with open(path, "wb") as f:
        f.write(out)


def _write_png(path, arr):
    Image.fromarray(arr).save(path)


# ----------------------------------------------------------------------------------------------
# image and mask reading
# ----------------------------------------------------------------------------------------------


def test_read_image_8bit_rgb(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    for name in ("a.png", "a.tif"):
        Image.fromarray(arr).save(tmp_path / name)
        img = read_image(str(tmp_path / name))
        assert img.dtype == np.float32 and img.shape == (7, 9, 3)
        np.testing.assert_allclose(img, arr / 255.0, atol=1e-7)
    # PIL-compressed TIFF goes through PIL, uncompressed through the numpy reader: same pixels.
    Image.fromarray(arr).save(tmp_path / "c.tif", compression="tiff_adobe_deflate")
    np.testing.assert_array_equal(load_raster(str(tmp_path / "c.tif")), arr)
    np.testing.assert_array_equal(load_raster(str(tmp_path / "a.tif")), arr)


def test_grayscale_becomes_three_channels(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    _write_png(tmp_path / "g.png", arr)
    img = read_image(str(tmp_path / "g.png"))
    assert img.shape == (3, 4, 3)
    for k in range(3):
        np.testing.assert_allclose(img[..., k], arr / 255.0)


def test_16bit_tiff_needs_explicit_scale(tmp_path):
    arr = np.array([[0, 1000], [30000, 65535]], dtype=np.uint16)
    path = tmp_path / "d16.tif"
    Image.fromarray(arr).save(path)  # PIL mode I;16
    with pytest.raises(ValueError, match="d16.tif.*scale"):
        read_image(str(path))
    np.testing.assert_allclose(read_image(str(path), scale="dtype")[..., 0], arr / 65535.0,
                               rtol=1e-6)
    np.testing.assert_allclose(read_image(str(path), scale=1000.0)[..., 1], arr / 1000.0,
                               rtol=1e-6)
    mm = read_image(str(path), scale="minmax")
    assert mm.min() == 0.0 and mm.max() == 1.0
    np.testing.assert_allclose(read_image(str(path), scale="max")[..., 2], arr / 65535.0,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="unknown scale"):
        read_image(str(path), scale="bogus")


@pytest.mark.parametrize("planar", [False, True])
def test_multiband_16bit_tiff(tmp_path, planar):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 4096, (5, 6, 4), dtype=np.uint16)
    path = tmp_path / "ms.tif"
    write_raw_tiff(path, arr, planar=planar)
    np.testing.assert_array_equal(load_raster(str(path)), arr)
    assert image_size(str(path)) == (5, 6)
    img = read_image(str(path), bands=(4, 3, 2), scale=4095.0)  # counted from 1
    np.testing.assert_allclose(img, arr[..., [3, 2, 1]] / 4095.0, rtol=1e-6)
    # minmax statistics are shared by the selected bands
    sel = arr[..., [0, 1, 2]].astype(np.float64)
    np.testing.assert_allclose(
        read_image(str(path), bands=(1, 2, 3), scale="minmax"),
        (sel - sel.min()) / (sel.max() - sel.min()), rtol=1e-6,
    )
    # Photometric RGB declares bands 1-3 red, green, blue (as GDAL reads the file): those are read.
    np.testing.assert_array_equal(read_image(str(path), scale="minmax"),
                                  read_image(str(path), bands=(1, 2, 3), scale="minmax"))
    # Four bands, none declared a colour or alpha: no silent choice of three.
    write_raw_tiff(tmp_path / "grey.tif", arr, planar=planar, photometric=1)
    with pytest.raises(ValueError, match=r"grey.tif: 4 channels.*bands=\(1, 2, 3\)"):
        read_image(str(tmp_path / "grey.tif"), scale="minmax")
    with pytest.raises(ValueError, match=r"ms.tif.*bands \[5\] out of range.*4 band"):
        read_image(str(path), bands=(1, 2, 5), scale="dtype")
    with pytest.raises(ValueError, match=r"count from 1"):
        read_image(str(path), bands=(0, 1, 2), scale="dtype")


def test_four_and_five_band_8bit_tiff(tmp_path):
    rng = np.random.default_rng(2)
    for c in (4, 5):
        arr = rng.integers(0, 256, (4, 3, c), dtype=np.uint8)
        path = tmp_path / f"b{c}.tif"
        write_raw_tiff(path, arr)
        got = read_image(str(path), bands=(c, 1, 2))
        np.testing.assert_allclose(got, arr[..., [c - 1, 0, 1]] / 255.0)
    # A PIL-written (compressed) RGBA TIFF keeps its four bands.
    rgba = rng.integers(0, 256, (4, 3, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.tif", compression="tiff_adobe_deflate")
    np.testing.assert_array_equal(load_raster(str(tmp_path / "rgba.tif")), rgba)


def test_read_mask_threshold(tmp_path):
    arr = np.array([[0, 50, 51], [255, 10, 200]], dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "m.tif")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "m.tif")), arr > 50)
    np.testing.assert_array_equal(read_mask(str(tmp_path / "m.tif"), threshold=0), arr > 0)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(str(tmp_path / "nope.png"))


# ----------------------------------------------------------------------------------------------
# COCO masks
# ----------------------------------------------------------------------------------------------


def test_rle_hand_example():
    # 3x2 mask, column-major: col0 = [0,1,1], col1 = [1,0,0] -> runs 1 zero, 3 ones, 2 zeros.
    mask = np.array([[0, 1], [1, 0], [1, 0]], dtype=bool)
    enc = rle_encode(mask, compressed=False)
    assert enc == {"size": [3, 2], "counts": [1, 3, 2]}
    np.testing.assert_array_equal(rle_decode(enc), mask)
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)
    # A mask starting with foreground begins with a zero-length run.
    assert rle_encode(~mask, compressed=False)["counts"] == [0, 1, 3, 2]
    with pytest.raises(ValueError, match="cover"):
        rle_decode({"size": [3, 3], "counts": [1, 3, 2]})


def test_compressed_rle_roundtrip_with_large_and_negative_deltas():
    counts = [0, 5, 100000, 3, 1, 70000, 2, 2, 40, 1]
    s = rle_counts_to_string(counts)
    assert rle_counts_from_string(s) == counts
    assert rle_counts_from_string(s.encode()) == counts


@needs_coco
def test_rle_matches_pycocotools():
    from pycocotools import mask as cocomask

    rng = np.random.default_rng(3)
    for _ in range(50):
        h, w = rng.integers(1, 30, 2)
        m = rng.random((h, w)) > rng.random()
        ref = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle_encode(m)["counts"] == ref["counts"].decode()
        np.testing.assert_array_equal(rle_decode({"size": ref["size"], "counts": ref["counts"]}), m)


def test_polygon_to_mask_hand_example():
    # Square with corners on pixel corners (1,1)-(4,3): pixels x 1..3, y 1..2 (centres inside).
    mask = polygon_to_mask([1, 1, 4, 1, 4, 3, 1, 3], 5, 6)
    expect = np.zeros((5, 6), dtype=bool)
    expect[1:3, 1:4] = True
    np.testing.assert_array_equal(mask, expect)
    # Triangle x + y < 2.9: centres (0.5, 0.5), (1.5, 0.5), (0.5, 1.5) in; (1.5, 1.5) out.
    tri = polygon_to_mask([0, 0, 2.9, 0, 0, 2.9], 3, 3)
    np.testing.assert_array_equal(tri, [[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert not polygon_to_mask([0, 0, 5, 5], 4, 4).any()  # degenerate


def _random_masks(seed, n=60):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = rng.integers(2, 30, 2)
        coarse = rng.random((h // 2 + 1, w // 2 + 1)) > 0.5
        yield np.kron(coarse, np.ones((2, 2), dtype=bool))[:h, :w]


def test_mask_to_polygons_roundtrip_numpy():
    n_holes = 0
    for m in _random_masks(4):
        polys = mask_to_polygons(m)
        if polys is None:
            n_holes += 1
            continue
        np.testing.assert_array_equal(decode_segmentation(polys, *m.shape, backend="numpy"), m)
    ring = np.ones((5, 5), dtype=bool)
    ring[2, 2] = False
    assert mask_to_polygons(ring) is None
    assert mask_to_polygons(np.zeros((3, 3), bool)) == []
    assert n_holes < 60


@needs_coco
def test_traced_polygons_and_rle_decode_identically_with_pycocotools():
    for m in _random_masks(5):
        polys = mask_to_polygons(m)
        seg = polys if polys else rle_encode(m)
        h, w = m.shape
        a = decode_segmentation(seg, h, w, backend="numpy")
        b = decode_segmentation(seg, h, w, backend="pycocotools")
        np.testing.assert_array_equal(a, m)
        np.testing.assert_array_equal(b, m)
        lst = rle_encode(m, compressed=False)
        np.testing.assert_array_equal(decode_segmentation(lst, h, w, backend="pycocotools"), m)
        np.testing.assert_array_equal(decode_segmentation([lst], h, w, backend="numpy"), m)


def test_decode_segmentation_errors():
    with pytest.raises(ValueError, match="size"):
        decode_segmentation({"size": [4, 4], "counts": [16]}, 5, 5, backend="numpy")
    with pytest.raises(ValueError, match="odd"):
        decode_segmentation([[1, 2, 3]], 5, 5, backend="numpy")


# ----------------------------------------------------------------------------------------------
# plain-data pickles
# ----------------------------------------------------------------------------------------------


class _Evil:
    pass


def test_plain_pickle_accepts_plain_data(tmp_path):
    for protocol in (0, 2, 3, 4, 5):
        data = [{"a": (1, 2.5, None), "c": ["s", True], "d": {"n": -3}}]
        if protocol >= 3:  # earlier protocols store bytes through a function call
            data[0]["b"] = b"x"
        path = tmp_path / f"p{protocol}.p"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        assert load_plain_pickle(str(path)) == data


@pytest.mark.parametrize("obj", [_Evil(), OrderedDict(a=1), np.int64(3)])
def test_plain_pickle_refuses_objects(tmp_path, obj):
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "x": obj}]))
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p.*plain data"):
        load_plain_pickle(str(path))


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hw,size", [((37, 53), 48), ((512, 512), 480), ((100, 60), (33, 47)),
                                     ((13, 7), (40, 30))])
def test_resize_mask_matches_pil_nearest(hw, size):
    rng = np.random.default_rng(6)
    m = rng.integers(0, 255, hw).astype(np.uint8)
    h, w = (size, size) if isinstance(size, int) else size
    ref = np.asarray(Image.fromarray(m).resize((w, h), Image.NEAREST))
    got = resize_mask(torch.from_numpy(m), size).numpy()
    np.testing.assert_array_equal(got, ref)


def test_resize_normalize():
    img = np.full((10, 20, 3), 0.5, dtype=np.float32)
    mask = np.zeros((10, 20), dtype=bool)
    mask[:, :10] = True
    t = ResizeNormalize((6, 8))
    x, m = t(img, mask)
    assert x.shape == (3, 6, 8) and x.dtype == torch.float32
    assert m.shape == (6, 8) and m.dtype == torch.long
    expect = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[:, 0, 0], expect)
    assert m[:, :4].all() and not m[:, 4:].any()
    with pytest.raises(ValueError, match="bands"):
        t(np.zeros((4, 4, 4), np.float32), np.zeros((4, 4), bool))


# ----------------------------------------------------------------------------------------------
# a tiny RefSegRS folder
# ----------------------------------------------------------------------------------------------


def _make_folder(root, lines=None, size=(12, 16), split="train"):
    rng = np.random.default_rng(7)
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    h, w = size
    masks = {}
    for i, kind in enumerate(["one", "multi", "none"]):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "images" / f"{i}.tif")
        m = np.zeros((h, w), np.uint8)
        if kind == "one":
            m[2:5, 3:9] = 255
        elif kind == "multi":
            m[1:3, 1:3] = 255
            m[8:11, 10:15] = 255
        masks[str(i)] = m > 50
        Image.fromarray(m).save(root / "masks" / f"{i}.tif")
    if lines is None:
        lines = ["0 the red building", "1 all two storage tanks", "2 the ship", "0 the big one"]
    (root / f"output_phrase_{split}.txt").write_text("\n".join(lines) + "\n")
    return masks


def test_refsegrs_samples(tmp_path):
    masks = _make_folder(tmp_path)
    ds = RefSegRSDataset(str(tmp_path), "train", size=8, tokenizer=tiny_tokenizer,
                         return_native_mask=True)
    assert len(ds) == 4 and ds.skipped == []
    s = ds[1]
    assert s["text"] == "all two storage tanks" and s["image_id"] == "1"
    assert s["sample_id"] == "1:2" and s["orig_size"] == (12, 16)
    assert s["pixel_values"].shape == (3, 8, 8) and s["pixel_values"].dtype == torch.float32
    assert s["mask"].shape == (8, 8) and s["mask"].dtype == torch.long
    assert set(s["mask"].unique().tolist()) <= {0, 1}
    np.testing.assert_array_equal(s["native_mask"].numpy(), masks["1"])  # union of two parts
    assert ds[2]["native_mask"].sum() == 0 and ds[2]["mask"].sum() == 0  # no target
    assert s["input_ids"].shape == (6,) and s["input_ids"][0] == 101
    assert s["attention_mask"].tolist() == [1] * 6
    ref = np.asarray(Image.fromarray(masks["1"].astype(np.uint8)).resize((8, 8), Image.NEAREST))
    np.testing.assert_array_equal(s["mask"].numpy(), ref)
    batch = collate_fn([ds[0], ds[1], ds[2]])
    assert batch["pixel_values"].shape == (3, 3, 8, 8) and batch["mask"].shape == (3, 8, 8)
    assert batch["input_ids"].shape == (3, 6) and batch["attention_mask"][0].tolist() == [
        1, 1, 1, 1, 1, 0]
    assert batch["text"][2] == "the ship" and len(batch["native_mask"]) == 3
    assert isinstance(build_dataset("refsegrs", str(tmp_path), "train"), RefSegRSDataset)
    assert {"refsegrs", "rrsisd", "risbench", "folder"} <= set(DATASETS.names())


def test_folder_options(tmp_path):
    (tmp_path / "img_rgb").mkdir()
    (tmp_path / "mask").mkdir()
    img = np.zeros((6, 6, 3), np.uint8)
    Image.fromarray(img).save(tmp_path / "img_rgb" / "a.png")
    m = np.zeros((6, 6), np.uint8)
    m[:3] = 1  # 0/1 mask
    Image.fromarray(m).save(tmp_path / "mask" / "a.png")
    (tmp_path / "phrases_val.txt").write_text("a the top half\n")
    ds = FolderDataset(str(tmp_path), "val", image_dir="img_rgb", mask_dir="mask",
                       phrase_file="phrases_{split}.txt", mask_threshold=0, size=6)
    assert ds[0]["mask"].sum() == 18


def test_folder_errors_name_file_and_sample(tmp_path, caplog):
    _make_folder(tmp_path, lines=["0 ok", "9 missing image", "1   ", "2 fine"])
    # A mask whose size differs from its image.
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "masks" / "2.tif")
    with pytest.raises(FileNotFoundError, match=r"output_phrase_train.txt.*sample 9:2.*9"):
        RefSegRSDataset(str(tmp_path), "train")
    with caplog.at_level(logging.WARNING):
        ds = RefSegRSDataset(str(tmp_path), "train", skip_bad=True)
    assert len(ds) == 1 and ds[0]["text"] == "ok"
    ids = [sid for sid, _ in ds.skipped]
    assert ids == ["9:2", "1:3", "2:4"]
    reasons = dict(ds.skipped)
    assert "not found" in reasons["9:2"] and "expression is empty" in reasons["1:3"]
    assert "masks/2.tif" in reasons["2:4"] and "5x5" in reasons["2:4"] and "12x16" in reasons[
        "2:4"]
    assert "skipped 3 bad sample" in caplog.text
    # Each case alone, without skip_bad.
    for lines, exc, pattern in [
        (["1   "], ValueError, r"output_phrase_train.txt line 1: sample 1:1: expression is empty"),
        (["2 x"], ValueError, r"sample 2:1: mask .*2.tif is 5x5 but image .*2.tif is 12x16"),
        (["0 x", "7 y"], FileNotFoundError, r"line 2: sample 7:2: image .*7.tif not found"),
    ]:
        (tmp_path / "output_phrase_train.txt").write_text("\n".join(lines) + "\n")
        with pytest.raises(exc, match=pattern):
            RefSegRSDataset(str(tmp_path), "train")


def test_folder_unknown_split(tmp_path):
    _make_folder(tmp_path)
    with pytest.raises(ValueError, match=r"unknown split 'tran'.*output_phrase_tran.txt.*train"):
        RefSegRSDataset(str(tmp_path), "tran")
    with pytest.raises(FileNotFoundError, match="output_phrase_test.txt"):
        RefSegRSDataset(str(tmp_path), "test")


def test_mask_size_checked_at_load_time_too(tmp_path):
    _make_folder(tmp_path, lines=["2 x"])
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "masks" / "2.tif")
    ds = RefSegRSDataset(str(tmp_path), "train", check_sizes=False)
    with pytest.raises(ValueError, match=r"sample 2:1: mask is 5x5 but image .*2.tif is 12x16"):
        ds[0]


# ----------------------------------------------------------------------------------------------
# a tiny REFER (RRSIS-D) folder
# ----------------------------------------------------------------------------------------------


def _make_refer(root, refs=None, anns=None, coco_text=None):
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(8)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
            root / "JPEGImages" / f"im{i}.png")
    blob = np.zeros((10, 12), bool)
    blob[6:9, 1:5] = True
    blob[7, 8:11] = True
    if anns is None:
        anns = [
            # polygon (rectangle on pixel corners: x 2..5, y 1..3)
            {"id": 11, "image_id": 1, "category_id": 1, "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]},
            # compressed RLE
            {"id": 12, "image_id": 1, "category_id": 2, "segmentation": rle_encode(blob)},
            # uncompressed RLE in a list
            {"id": 13, "image_id": 2, "category_id": 2,
             "segmentation": [rle_encode(blob[::-1], compressed=False)]},
        ]
    if refs is None:
        def sents(*texts, start=0):
            return [{"raw": t, "sent": t, "tokens": t.split(), "sent_id": start + k}
                    for k, t in enumerate(texts)]

        refs = [
            {"ref_id": 1, "ann_id": 11, "image_id": 1, "category_id": 1, "split": "train",
             "sentences": sents("the house", "the building at the top", start=0)},
            {"ref_id": 2, "ann_id": [11, 12], "image_id": 1, "category_id": 2, "split": "train",
             "sentences": sents("both things", start=2)},
            {"ref_id": 3, "ann_id": -1, "image_id": 2, "category_id": 2, "split": "train",
             "sentences": sents("the plane", start=3)},
            {"ref_id": 4, "ann_id": [], "image_id": 2, "category_id": 2, "split": "val",
             "sentences": sents("the ship", start=4)},
            {"ref_id": 5, "ann_id": 13, "image_id": 2, "category_id": 2, "split": "testA",
             "sentences": sents("the flipped blob", "the blob", "a blob", start=5)},
        ]
    images = [{"id": i, "file_name": f"im{i}.png", "height": 10, "width": 12} for i in (1, 2)]
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}
    (root / "instances.json").write_text(coco_text if coco_text is not None else json.dumps(coco))
    (root / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return blob


@pytest.mark.parametrize("backend", ["numpy", pytest.param("pycocotools", marks=needs_coco)])
def test_rrsisd_masks(tmp_path, backend):
    blob = _make_refer(tmp_path)
    ds = RRSISDDataset(str(tmp_path), "train", mode="eval", size=(10, 12),
                       return_native_mask=True, coco_backend=backend)
    assert [s["sample_id"] for s in ds] == ["ref1/sent0", "ref1/sent1", "ref2/sent2", "ref3/sent3"]
    rect = np.zeros((10, 12), bool)
    rect[1:4, 2:6] = True
    np.testing.assert_array_equal(ds[0]["native_mask"].numpy(), rect)
    np.testing.assert_array_equal(ds[2]["native_mask"].numpy(), rect | blob)  # multi-target
    assert ds[3]["native_mask"].sum() == 0  # ann_id -1
    assert ds[0]["image_id"] == 1 and ds[0]["orig_size"] == (10, 12)
    np.testing.assert_array_equal(ds[2]["mask"].numpy(), (rect | blob).astype(np.int64))
    val = RRSISDDataset(str(tmp_path), "val", coco_backend=backend, return_native_mask=True)
    assert len(val) == 1 and val[0]["native_mask"].sum() == 0  # ann_id []
    test = RRSISDDataset(str(tmp_path), "test", coco_backend=backend, return_native_mask=True)
    assert len(test) == 3  # "test" matches "testA", every sentence is a sample
    np.testing.assert_array_equal(test[1]["native_mask"].numpy(), blob[::-1])


def test_rrsisd_train_mode_random_sentence_per_epoch(tmp_path):
    _make_refer(tmp_path)
    ds = RRSISDDataset(str(tmp_path), "testA", mode="train", seed=3, size=8)
    assert len(ds) == 1
    seen = []
    for epoch in range(12):
        ds.set_epoch(epoch)
        seen.append(ds[0]["text"])
    assert set(seen) == {"the flipped blob", "the blob", "a blob"}
    again = RRSISDDataset(str(tmp_path), "testA", mode="train", seed=3, size=8)
    for epoch in range(12):
        again.set_epoch(epoch)
        assert again[0]["text"] == seen[epoch]
    assert RRSISDDataset(str(tmp_path), "train").train  # train split defaults to train mode
    assert len(RRSISDDataset(str(tmp_path), "train")) == 3


def test_rrsisd_errors_name_file_and_sample(tmp_path, caplog):
    _make_refer(tmp_path)
    os.remove(tmp_path / "JPEGImages" / "im2.png")
    with pytest.raises(FileNotFoundError, match=r"refs\(unc\)\.p: sample ref 3: image .*im2.png"):
        RRSISDDataset(str(tmp_path), "train")
    with caplog.at_level(logging.WARNING):
        ds = RRSISDDataset(str(tmp_path), "train", mode="eval", skip_bad=True)
    assert len(ds) == 3 and ds.skipped[0][0] == "ref3/sent3"
    assert "im2.png" in ds.skipped[0][1] and "skipped 1 bad sample" in caplog.text


def test_rrsisd_mask_size_and_missing_annotation(tmp_path):
    bad = [{"id": 11, "image_id": 1, "category_id": 1,
            "segmentation": rle_encode(np.zeros((9, 12), bool))}]
    refs = [{"ref_id": 1, "ann_id": 11, "image_id": 1, "category_id": 1, "split": "train",
             "sentences": [{"raw": "x", "sent": "x", "sent_id": 0}]},
            {"ref_id": 2, "ann_id": 99, "image_id": 1, "category_id": 1, "split": "train",
             "sentences": [{"raw": "y", "sent": "y", "sent_id": 1}]}]
    _make_refer(tmp_path, refs=refs, anns=bad)
    with pytest.raises(ValueError, match=r"instances.json: sample ref 1: annotation 11 \(image "
                                         r".*im1.png, 10x12\): RLE size \[9, 12\] does not match"):
        RRSISDDataset(str(tmp_path), "train", mode="eval")
    ds = RRSISDDataset(str(tmp_path), "train", mode="eval", skip_bad=True)
    assert len(ds) == 0
    assert "annotation id(s) [99] not found" in dict(ds.skipped)["ref2/sent1"]


def test_rrsisd_declared_size_mismatch(tmp_path):
    _make_refer(tmp_path)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "JPEGImages" / "im1.png")
    with pytest.raises(ValueError, match=r"sample ref 1: image .*im1.png is 9x9 but is declared "
                                         r"10x12"):
        RRSISDDataset(str(tmp_path), "train")


def test_rrsisd_empty_sentence(tmp_path):
    refs = [{"ref_id": 7, "ann_id": 11, "image_id": 1, "category_id": 1, "split": "train",
             "sentences": [{"raw": "  ", "sent": "", "sent_id": 0},
                           {"raw": "fine", "sent": "fine", "sent_id": 1}]}]
    _make_refer(tmp_path, refs=refs)
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: sample ref7/sent0: expression is empty"):
        RRSISDDataset(str(tmp_path), "train")
    ds = RRSISDDataset(str(tmp_path), "train", mode="eval", skip_bad=True)
    assert [s["text"] for s in ds] == ["fine"] and ds.skipped[0][0] == "ref7/sent0"


def test_rrsisd_file_level_errors(tmp_path):
    _make_refer(tmp_path, coco_text='{"images": [')
    with pytest.raises(ValueError, match=r"instances.json: malformed JSON"):
        RRSISDDataset(str(tmp_path), "train", skip_bad=True)
    _make_refer(tmp_path)
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: unknown split 'trian'.*testA, train"):
        RRSISDDataset(str(tmp_path), "trian")
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps([{"ref_id": 1, "x": _Evil()}]))
    with pytest.raises(ValueError, match=r"refs\(unc\)\.p: the pickle holds more than plain data"):
        RRSISDDataset(str(tmp_path), "train")
