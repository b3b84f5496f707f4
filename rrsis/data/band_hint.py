"""What a refusal of a raster's band count says to do: the bands to choose, spelt the way the
caller passes them (``bands=`` and ``--bands`` for ``model.predict``, the scene reader and
``rrsis predict``; ``data.options`` and ``--data-option`` for a dataset), with an example drawn
from the model's band names (``backbone.band_names``) when it records them."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["band_count_problem", "bands_option"]


def bands_option(numbers: Sequence[int], dataset: bool = False) -> str:
    """``bands=`` of ``numbers`` (counted from 1) as a reader takes it: ``bands=(4, 3, 2, 8)`` (the
    refusal has named ``--bands`` already), or for a dataset ``--data-option 'bands=[4,3,2,8]'`` and
    its recipe spelling."""
    csv = ",".join(str(int(b)) for b in numbers)
    if dataset:
        return f"--data-option 'bands=[{csv}]' (rrsis evaluate; data.options.bands in a training recipe)"
    return f"bands={tuple(int(b) for b in numbers)}"


def _numbers(names: Sequence[str], have: int) -> list[int] | None:
    """The number each name ends in (``B04`` → 4), when every name has one, all differ and lie
    among the ``have`` bands: an example only, stated with the condition it rests on."""
    found = [re.search(r"(\d+)\s*$", str(n)) for n in names]
    nums = [int(m.group(1)) for m in found if m]
    if len(nums) != len(names) or len(set(nums)) != len(nums) or not all(1 <= b <= have for b in nums):
        return None
    return nums


def band_count_problem(where: str, what: str, have: int, channels: int, aside: str = "",
                       names: Sequence[str] | None = None, dataset: bool = False) -> str:
    """Why a model of ``channels`` bands refuses an image or raster of ``have`` (``aside``: the
    alpha band left out), and the way out: a file with those bands when it has fewer (none can be
    chosen), a choice of bands when it has more, spelt as :func:`bands_option` spells it
    (``dataset``: a dataset's option). ``names``: the model's band names (``backbone.band_names``),
    which the example follows: the bands whose numbers the names end in, said as a condition
    (``B04`` is band 4 of a full Sentinel-2 stack, not of every raster)."""
    head = (f"{where}: the {what} has {have} band(s){aside} but the model takes {channels} (it was "
            f"trained on {channels}-band images; in_chans={channels})")
    if have < channels:
        return (f"{head}: give it {'an' if what[0] in 'aeiou' else 'a'} {what} with those {channels} bands, in the order it was trained on "
                "(a model's band count is fixed when it is built)")
    how = "--data-option 'bands=[...]'" if dataset else "bands= (--bands)"
    text = (f"{head}: pass {how} with {channels} band numbers counted from 1, the model's bands in the "
            "order it was trained on")
    if names and len(names) == channels:
        listed = ", ".join(map(str, names))
        nums = _numbers(names, have)
        if nums is None:
            return f"{text}: the numbers of the bands that hold {listed}, in that order"
        return (f"{text}, e.g. {bands_option(nums, dataset)} if its bands {', '.join(map(str, nums))} "
                f"hold {listed}")
    return f"{text}, e.g. {bands_option(range(1, channels + 1), dataset)}"
