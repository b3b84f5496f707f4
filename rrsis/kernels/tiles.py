"""Tile configurations of the Triton kernels as frozen dataclasses that cross the op boundary.

Plain Python (no Triton import), so the choice table can name and check a tile shape on a
machine without Triton.

A ``torch.library`` custom op takes no Python objects, so a config travels as ``int[]``: every
field, in declaration order, ``None`` written as 0 (no field has 0 as a meaningful value).
``to_list``/``from_list`` are derived from the fields, so a new field cannot be dropped on the
way (a hand-written list once lost the window backward's ``dq_num_warps``).
"""

from __future__ import annotations

import dataclasses
import difflib

__all__ = ["ELSA_FUSED_CANDIDATES", "ElsaFusedTiles", "TileConfig"]


@dataclasses.dataclass(frozen=True)
class TileConfig:
    """Base of the kernels' tile configs: strict keywords, a lossless ``int[]`` form."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{type(self).__name__}.{f.name} must be a positive int or "
                                 f"None, got {value!r}")

    @classmethod
    def from_kwargs(cls, **kwargs) -> TileConfig:
        """Build from keywords, naming the closest field for an unknown one."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{cls.__name__} has no field {key!r}{hint} "
                                 f"(fields: {', '.join(names)})")
        return cls(**kwargs)

    def to_list(self) -> list[int]:
        return [getattr(self, f.name) or 0 for f in dataclasses.fields(self)]

    @classmethod
    def from_list(cls, values) -> TileConfig:
        fields = dataclasses.fields(cls)
        values = [int(x) for x in values]
        if len(values) != len(fields):
            raise ValueError(f"{cls.__name__} takes {len(fields)} values "
                             f"({', '.join(f.name for f in fields)}), got {len(values)}")
        return cls(**{f.name: (v or None) for f, v in zip(fields, values)})


@dataclasses.dataclass(frozen=True)
class ElsaFusedTiles(TileConfig):
    """Tile shapes of the fused ELSA kernels.

    ``block_h × block_w`` pixels (powers of two) × every channel of one head per program. 8×8
    pixels × 32 channels on 4 warps: each float32 ``[C, P]`` tile is 16 registers per thread,
    and at sm_90 every kernel stays under 128 registers in the model's channels-last layout (at
    least 4 resident programs per SM). ``chunks``: programs per (batch, head) of the ghost
    reduction (``None``: about four resident programs per SM). Tiles larger than the map are
    shrunk to it. :data:`ELSA_FUSED_CANDIDATES` are the shapes the choice table may pick.
    """

    block_h: int = 8
    block_w: int = 8
    chunks: int | None = None
    num_warps: int = 4
    num_stages: int = 2
    bwd_num_warps: int = 4

    @property
    def label(self) -> str:
        """Short name, e.g. ``"8x8w4"`` (pixels, warps of the forward; the backward's when
        they differ, ``"8x8w4b8"``)."""
        back = "" if self.bwd_num_warps == self.num_warps else f"b{self.bwd_num_warps}"
        chunks = f"c{self.chunks}" if self.chunks else ""
        return f"{self.block_h}x{self.block_w}w{self.num_warps}{back}{chunks}"


# The fused ELSA kernel's tile shapes the choice table may name (benchmarks/dispatch_table.py
# times each at the models' shapes on the GPU). Every one compiles for sm_90 with 0 spills and at
# least 2 resident programs per SM in bf16 at the model's layout (tests/kernels/test_kernels_sm90.py);
# the first is the default.
ELSA_FUSED_CANDIDATES = (
    ElsaFusedTiles(),                                                       # 8×8 px, 4 warps
    ElsaFusedTiles(block_h=4, block_w=16),                                  # wider rows, same size
    ElsaFusedTiles(block_h=8, block_w=16, num_warps=8, bwd_num_warps=8),    # less halo per pixel
    ElsaFusedTiles(num_warps=2, bwd_num_warps=2),                           # 8×8 px, 2 warps
)
