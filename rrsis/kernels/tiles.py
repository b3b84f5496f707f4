"""Tile configurations of the Triton kernels as frozen dataclasses that cross the op boundary.

A ``torch.library`` custom op takes no Python objects, so a config travels as ``int[]``: every
field, in declaration order, ``None`` written as 0 (no field has 0 as a meaningful value).
``to_list``/``from_list`` are derived from the fields, so a new field cannot be dropped on the
way (a hand-written list once lost the window backward's ``dq_num_warps``).
"""

from __future__ import annotations

import dataclasses
import difflib

__all__ = ["TileConfig"]


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
