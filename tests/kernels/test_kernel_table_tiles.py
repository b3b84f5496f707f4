"""The choice table names the fused ELSA kernel's tile shape: ``"triton:<label>"``.

The table is checked strictly when it is read (an unknown shape, a shape on a provider or an op
that has none: an error naming the entry), and the dispatcher hands the named shape to the kernel.
The candidates' results are checked against the reference in tests/kernels/test_kernels.py and
their sm_90 compile in tests/kernels/test_kernels_sm90.py.
"""

from __future__ import annotations

import json

import pytest
import torch

import rrsis.kernels as dispatch
from rrsis.kernels import table
from rrsis.kernels.tiles import ELSA_FUSED_CANDIDATES, ElsaFusedTiles

SHAPE = (1, 8, 11, 19, 2, False, True)  # v [B, C, H, W], heads, ghost_mul, ghost_add


def _table(tmp_path, monkeypatch, entries, device="cpu"):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"devices": {device: entries}}))
    monkeypatch.setenv("RRSIS_KERNEL_TABLE", str(path))
    table.reset()
    return path


@pytest.fixture(autouse=True)
def _fresh_table():
    table.reset()
    yield
    table.reset()


def test_candidates_are_distinct_power_of_two_tiles_and_the_first_is_the_default():
    labels = [c.label for c in ELSA_FUSED_CANDIDATES]
    assert len(set(labels)) == len(labels)
    assert ELSA_FUSED_CANDIDATES[0] == ElsaFusedTiles()
    for c in ELSA_FUSED_CANDIDATES:
        pixels = c.block_h * c.block_w
        assert pixels & (pixels - 1) == 0, c  # tl.arange needs a power of two
    assert ElsaFusedTiles().label == "8x8w4"
    assert ElsaFusedTiles(block_h=8, block_w=16, num_warps=8, bwd_num_warps=4, chunks=3).label == "8x16w8b4c3"


def test_a_tile_entry_is_read_and_split(tmp_path, monkeypatch):
    key = table.key("elsa_attention", torch.float32, SHAPE)
    _table(tmp_path, monkeypatch, {key: "triton:4x16w4"})
    assert table.choose("elsa_attention", torch.device("cpu"), torch.float32, SHAPE) == "triton:4x16w4"
    how, tiles = table.split("elsa_attention", "triton:4x16w4")
    assert how == "triton" and tiles == ElsaFusedTiles(block_h=4, block_w=16)
    assert table.split("elsa_attention", "compiled") == ("compiled", None)
    assert table.split("window_attention", "triton") == ("triton", None)


@pytest.mark.parametrize(("op", "provider", "message"), [
    ("elsa_attention", "triton:8x16w4", r"unknown tile shape '8x16w4'.*did you mean 'triton:8x16w8'"),
    ("elsa_attention", "eager:8x8w4", r"elsa_attention's eager provider names no tile shape"),
    ("window_attention", "triton:8x8w4", r"window_attention's triton provider names no tile shape"),
    ("elsa_attention", "cudnn", r"provider 'cudnn'.*elsa_attention has triton, compiled, eager"),
])
def test_a_bad_entry_is_an_error_naming_it(tmp_path, monkeypatch, op, provider, message):
    shape = SHAPE if op == "elsa_attention" else (1, 4, 4, 1, 16, 0)
    path = _table(tmp_path, monkeypatch, {table.key(op, torch.float32, shape): provider})
    with pytest.raises(ValueError, match=message) as err:
        table.load()
    assert str(path) in str(err.value)


def test_the_dispatcher_passes_the_named_tiles_to_the_kernel(tmp_path, monkeypatch):
    """With the table naming ``triton:4x16w4`` for this shape, the fused kernel gets that tile
    shape; another shape (not in the table) gets the default (``None`` → 8×8). On the CPU only
    an explicit ``RRSIS_KERNELS=triton`` reaches the kernels; the table applies as on a GPU."""
    ops = dispatch._triton_module()
    key = table.key("elsa_attention", torch.float32, SHAPE)
    _table(tmp_path, monkeypatch, {key: "triton:4x16w4"})
    monkeypatch.setenv("RRSIS_KERNELS", "triton")
    seen = []

    def spy(v, logits, mul, add, ks, dil, config=None):
        seen.append(config)
        return v.permute(0, 2, 3, 1)

    monkeypatch.setattr(ops, "elsa_attention", spy)
    g = torch.Generator().manual_seed(0)
    b, c, h, w, heads = SHAPE[:5]
    v, lg = torch.randn(b, c, h, w, generator=g), torch.randn(b, heads, 9, h, w, generator=g)
    add = torch.randn(c, 9, generator=g)
    dispatch.elsa_attention(v, lg, None, add, 3, 1)
    dispatch.elsa_attention(v[..., :10], lg[..., :10], None, add, 3, 1)
    assert seen == [ElsaFusedTiles(block_h=4, block_w=16), None]


def test_a_missing_or_malformed_table_file_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("RRSIS_KERNEL_TABLE", str(tmp_path / "tabel.json"))  # a typo: no such file
    with pytest.raises(FileNotFoundError, match=rf"RRSIS_KERNEL_TABLE={tmp_path / 'tabel.json'}: no such file;"):
        table.load()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    monkeypatch.setenv("RRSIS_KERNEL_TABLE", str(bad))
    with pytest.raises(ValueError, match=rf"RRSIS_KERNEL_TABLE={bad}: not a kernel table, the file is not valid JSON"):
        table.load()
    bad.write_text("[]")
    with pytest.raises(ValueError, match=r"a JSON object with \"devices\" expected"):
        table.load()
    with pytest.raises(FileNotFoundError, match=rf"kernel table {tmp_path / 'none.json'}: no such file"):
        table.load(tmp_path / "none.json")
    monkeypatch.delenv("RRSIS_KERNEL_TABLE")
    assert table.load() is not None  # the committed table
