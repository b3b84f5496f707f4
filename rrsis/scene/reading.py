"""What a referring expression says that a whole scene can answer: how many objects, where in
the scene, which extreme, and where from another object, read from its words.

Mode ``object`` cuts the tiles' foreground into components and keeps the ones the tiles are
surest of. The tiles know what a storage tank looks like, but no tile knows which tank is "the
largest" or lies "in the north-west", and none counts. :func:`read_expression` reads those
words, and :func:`choose` applies them to the components (``SceneOptions.read``: the count and
the place, the extreme and the relation by default). Nothing is learned. The rules read the
expression's *head*, the noun phrase before its first preposition, relative clause or verb, so
that words about another object ("the ship between the two bridges", "the house next to the
largest building") do not count:

- **How many** (:func:`objects_named`): a count word (``two`` ... ``twelve``, ``both``,
  ``pair``, ``couple``) in the head names that many, a numeral (``3``) only before a plural
  noun ("the 3 ships", not "the 747 plane"); ``all``, ``every``, ``each``, ``several``,
  ``many``, ``some``, ``few`` or a plural head noun ("the ships", "storage tanks along the
  river") every one; anything else one.
- **Where**: "in the north-west", "at the top", "on the left side of the image", "in the
  centre", or a place word before the head noun ("the top left building"), in the scene's ninths:
  "north" (or "top") is the northern third, "north-west" its western third. A place followed by
  "of" ("north of the road", "on the left of the bridge") is about another object and is not
  read, unless it is "of the image" (or scene, picture, map). North is the map's north for a
  georeferenced scene, however its pixel grid is turned, and the top row for a plain image.
- **Which extreme**: "the largest" / "biggest" / "smallest" (area), "the northernmost" (or
  topmost, uppermost), "southernmost" (bottommost), "westernmost" (leftmost), "easternmost"
  (rightmost), in the head or after "that is the" / "which is the". The tiles light look-alikes
  too, so the extreme is taken among the :data:`EXTREME_AMONG` surest components (the object
  mode applies it by default; ``read="place,relation"`` leaves it out).

- **Which other object, and where from it** (``Reading.relation``): "next to the white plane",
  "beside", "close to", "adjacent to", "near", "nearest the" (``near``); "north of the road",
  "to the left of", "on the eastern side of", "north-west of", "above" / "below" (a map
  direction), the first such words after the head's noun, with the words after them up to a
  relative clause as the other object (the *anchor*, kept as written). "Of the image" is a
  place, not a relation, and a place after a relation is the anchor's ("the ship beside the
  dock in the north"). The object mode applies it by default: a second tiled pass finds the
  anchor's candidates, and anchor and target are chosen together
  (:func:`rrsis.scene.rank.related_to_anchor`, :mod:`rrsis.scene.relation`).

A plural is read from the word's ending (``-s``, not ``-ss``, ``-us``, ``-is``, and not the
listed singulars such as "gas" or "lens") or from a short list of irregular plurals. English
has more than these rules know: what they do not read leaves the surest components, the
behaviour without any reading, and ``objects=`` set by hand always wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import reading_words as _w
from .colour import COLOUR_AMONG, COLOUR_MARGIN
from .reading_words import RELATIONS

__all__ = ["EVERY", "EXTREME_AMONG", "READS", "RELATIONS", "Reading", "choose", "objects_named", "parse_read", "read_expression"]

EVERY = "all"
"""The count of an expression that names every such object ("all ships")."""
READS = ("place", "extreme", "relation", "colour")
"""What the object mode may read from an expression besides the count (``SceneOptions.read``)."""
EXTREME_AMONG = 5
"""How many of the surest components an extreme is taken among (``benchmarks/extreme_choice.py``)."""


def _trail(word: str) -> bool:
    """A direction or place word that may trail a head ("north", "north-west", "left-hand")."""
    return word in _w.TRAIL or ("-" in word and all(p in _w.TRAIL or p == "hand" for p in word.split("-")))
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*'?")
_TOKEN_ANY_CASE = re.compile(_TOKEN.pattern, re.IGNORECASE)


def _plural(word: str) -> bool:
    if word in _w.IRREGULAR_PLURALS:
        return True
    if word.endswith("'"):  # "the ships' berths": a plural possessive
        return _plural(word[:-1])
    if word.endswith("'s") or word in _w.SINGULAR_S or len(word) <= 3 or word.isdigit():
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


@dataclass(frozen=True)
class Reading:
    """What :func:`read_expression` read.

    Attributes:
        objects: how many objects: a whole number, or :data:`EVERY` (``"all"``).
        place: ``(row, column)`` thirds of the scene the expression names (0: north or west,
            1: the middle, 2: south or east; ``None``: not said), or ``None`` for no place.
        extreme: ``(key, sign)``: ``key`` ``"area"``, ``"x"`` (eastwards) or ``"y"``
            (southwards), ``sign`` +1 for the most, -1 for the least; ``None`` for none.
        relation: ``(relation, anchor)``: one of :data:`RELATIONS` and the words naming the
            other object, as written ("the white plane"); ``None`` for none.
        colour: the colour the object is said to have, a key of
            :data:`rrsis.scene.colour.PROTOTYPES` ("white", "gray" for "grey"); ``None`` for none.
    """

    objects: int | str = 1
    place: tuple[int | None, int | None] | None = None
    extreme: tuple[str, int] | None = None
    relation: tuple[str, str] | None = None
    colour: str | None = None

    def describe(self) -> str:
        """What was read, in words: "2 objects, the north-west ninth of the scene, the largest"."""
        parts = ["every object" if self.objects == EVERY else f"{self.objects} object" + "s" * (self.objects != 1)]
        if self.place is not None:
            r, c = self.place
            if r is not None and c is not None:
                ns, we = ("north", "centre", "south")[r], ("west", "centre", "east")[c]
                name = "centre" if (r, c) == (1, 1) else f"{ns}-{we}"
                parts.append(f"the {name} ninth of the scene")
            elif r is not None:
                parts.append(f"the {('northern', 'middle', 'southern')[r]} third of the scene")
            else:
                parts.append(f"the {('western', 'middle', 'eastern')[c]} third of the scene")
        if self.colour is not None:
            parts.append(self.colour)
        if self.extreme is not None:
            parts.append("the " + next(w for w, v in _w.EXTREMES.items() if v == self.extreme))
        if self.relation is not None:
            how, anchor = self.relation
            parts.append(f'{"near" if how == "near" else how + " of"} "{anchor}"')
        return ", ".join(parts)


def _words(text: str) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"an expression is a str, got {type(text).__name__}")
    return _TOKEN.findall(text.lower())


def _spans(text: str) -> list[tuple[str, int, int]]:
    """Each word of ``text`` lower-cased, with where it stands in ``text``."""
    return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN_ANY_CASE.finditer(text)]


def _head(words: list[str]) -> tuple[list[str], int]:
    """The head's words and the index of the first word after it."""
    head: list[str] = []
    for i, w in enumerate(words):
        if w in _w.BOUNDARY and head:
            return head, i
        if w not in _w.BOUNDARY:
            head.append(w)
    return head, len(words)


def _place_of(words: list[str]) -> tuple[int | None, int | None] | None:
    """The scene thirds named by place words (split at hyphens), or ``None``."""
    row = col = None
    mid = False
    for w in (p for word in words for p in word.split("-")):
        for part in _w.COMPASS.get(w, (w,)):
            row = _w.ROW.get(part, row)
            col = _w.COL.get(part, col)
            mid |= part in _w.MID
    if row is None and col is None:
        return (1, 1) if mid else None
    if mid:  # "the middle left": the middle row of the western third
        row, col = (1 if row is None else row), (1 if col is None else col)
    return row, col


def _place(words: list[str], head: list[str]) -> tuple[int | None, int | None] | None:
    nouns = [w for w in head if not _trail(w)]
    if nouns:  # place words before the head noun: "the top left building"
        last = len(head) - 1 - head[::-1].index(nouns[-1])
        found = _place_of([w for w in head[:last] if w in _w.PLACE or ("-" in w and
                           all(p in _w.PLACE for p in w.split("-")))])
        if found is not None:
            return found
    for i, w in enumerate(words[:-2]):  # "in the north-west", "at the top left corner"
        if w not in ("in", "at", "on", "to", "towards", "toward") or words[i + 1] != "the":
            continue
        j = i + 2
        while j < len(words) and all(p in _w.PLACE for p in words[j].split("-")):
            j += 1
        found = _place_of(words[i + 2:j])
        if found is None:
            continue
        if j < len(words) and words[j] == "of" and not (j + 2 < len(words) and words[j + 2] in _w.WHOLE):
            continue  # "north of the road": about another object
        return found
    return None


def _extreme(words: list[str], head: list[str]) -> tuple[str, int] | None:
    for w in head:
        if w in _w.EXTREMES:
            return _w.EXTREMES[w]
    for i in range(len(words) - 3):  # "the tank that is the largest"
        if (words[i] in ("that", "which") and words[i + 1] in ("is", "are") and words[i + 2] == "the"
                and words[i + 3] in _w.EXTREMES):
            return _w.EXTREMES[words[i + 3]]
    return None


def _colour(words: list[str], head: list[str]) -> str | None:
    """The object's colour: a colour word in the head ("the white tank", "the red-roofed
    building"), or after "that is" / "which are", or "with a red roof" (top, deck, hull)."""
    for w in head:
        for part in w.split("-"):
            if part in _w.COLOUR_WORDS:
                return _w.COLOUR_WORDS[part]
    for i, w in enumerate(words[:-2]):
        if w in ("that", "which") and words[i + 1] in ("is", "are") and words[i + 2] in _w.COLOUR_WORDS:
            return _w.COLOUR_WORDS[words[i + 2]]
        rest = words[i + 1:i + 4]
        if w == "with" and rest and rest[0] in ("a", "an", "the"):
            rest = rest[1:]
        if w == "with" and len(rest) >= 2 and rest[0] in _w.COLOUR_WORDS and rest[1] in _w.COLOUR_PARTS:
            return _w.COLOUR_WORDS[rest[0]]
    return None


def _side(word: str) -> str | None:
    """The map direction a word names ("north-west", "left-hand": west), or ``None``."""
    parts = [_w.SIDES.get(p, p) for p in word.split("-") if p != "hand"]
    if not parts or not all(p in RELATIONS[1:] for p in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    name = "-".join(parts[:2])
    return name if name in RELATIONS else None


def _relation(text: str, words: list[str], head_end: int) -> tuple[tuple[str, str] | None, int]:
    """The first relation after the head's noun ("next to the white plane", "north of the
    road", "on the left side of the bridge", "above the river") as ``(relation, anchor words
    as written)``, and the index of its first word (``len(words)`` for none); places of the
    whole image ("on the left of the image") are not relations."""
    spans = _spans(text)
    nouns = [i for i in range(head_end) if words[i] not in _w.BOUNDARY and not _trail(words[i])]
    i = nouns[-1] + 1 if nouns else 0
    while i < len(words):
        how, start = None, None
        for pattern in _w.NEAR:
            if tuple(words[i:i + len(pattern)]) == pattern:
                follows = words[i + len(pattern)] if i + len(pattern) < len(words) else None
                if len(pattern) > 1 or pattern[0] not in ("nearest", "closest") or follows in ("the", "a", "an"):
                    how, start = "near", i + len(pattern)
                break
        if how is None and words[i] in _w.ABOVE:
            how, start = _w.ABOVE[words[i]], i + 1
        if how is None and _side(words[i]) is not None:
            j = i + 1
            while j < len(words) and words[j] in ("side", "hand", "part"):
                j += 1
            if j < len(words) and words[j] == "of":
                how, start = _side(words[i]), j + 1
        if how is not None and start < len(words):
            end = next((k for k in range(start, len(words)) if words[k] in _w.CLAUSE), len(words))
            anchor = words[start:end]
            nouns = [w for w in anchor if w not in ("the", "a", "an", "this")]
            if nouns and nouns[0] not in _w.WHOLE:
                first = i - 2 if i >= 2 and words[i - 2] in ("to", "on", "in") and words[i - 1] == "the" else i
                return (how, text[spans[start][1]:spans[end - 1][2]]), first
        i += 1
    return None, len(words)


def _count(head: list[str]) -> int | str:
    nouns = [w for w in head if not _trail(w)]
    last = nouns[-1] if nouns else ""
    plural = _plural(last)
    if any(w in _w.EVERY_WORDS for w in head):
        return EVERY
    counted = [_w.COUNT_WORDS[w] for w in head if w in _w.COUNT_WORDS]
    counted += [int(w) for w in head if w.isdigit() and plural and 0 < int(w) <= 1000]
    if last in ("pair", "couple"):  # "a pair of ships": the head ends at "of"
        return 2
    if counted and max(counted) > 1:
        return max(counted)
    if plural and not counted:
        return EVERY
    return 1


def read_expression(text: str) -> Reading:
    """How many objects ``text`` names, where in the scene, which extreme, its relation to
    another object and its colour (module rules).

    >>> read_expression("the two largest storage tanks in the north-west")
    Reading(objects=2, place=(0, 0), extreme=('area', 1), relation=None, colour=None)
    >>> read_expression("the storage tanks north of the road").relation
    ('north', 'the road')
    """
    words = _words(text)
    head, end = _head(words)
    relation, at = _relation(text, words, end)
    # A place after a relation is the other object's: "the ship beside the dock in the north".
    return Reading(objects=_count(head), place=_place(words[:at], head), extreme=_extreme(words, head),
                   relation=relation, colour=_colour(words[:at], head))


def objects_named(text: str) -> int | str:
    """How many objects ``text`` names: a whole number, or :data:`EVERY` (``"all"``) for
    every such object ("all ships", "the storage tanks"). See the module's rules.

    >>> objects_named("the two storage tanks north of the road"), objects_named("all white ships")
    (2, 'all')
    >>> objects_named("the ship between the two bridges"), objects_named("the sports court")
    (1, 1)
    """
    return _count(_head(_words(text))[0])


def choose(reading: Reading, mean_p: np.ndarray, x: np.ndarray, y: np.ndarray, area: np.ndarray,
           objects: int | str | None = None, related: tuple[np.ndarray, np.ndarray] | None = None,
           extreme_among: int | None = EXTREME_AMONG, colour_cost: np.ndarray | None = None,
           colour_among: int = COLOUR_AMONG, colour_margin: float = COLOUR_MARGIN) -> np.ndarray:
    """The components an expression's reading keeps, surest (or most extreme) first.

    Args:
        reading: what the expression says (:func:`read_expression`).
        mean_p: ``[n]`` each component's mean probability in the tiled pass.
        x, y: ``[n]`` each component's centre as a fraction of the scene, eastwards and
            southwards (map directions for a georeferenced scene).
        area: ``[n]`` each component's area.
        objects: how many to keep instead of ``reading.objects`` (a whole number or ``"all"``).
        related: ``(allowed [n] bool, cost [n])`` for an expression whose relation is read
            (:func:`rrsis.scene.rank.related_to_anchor`; the cost may be
            :func:`rrsis.scene.relation.relate`'s gap): only the allowed components, the
            cheapest (the nearest) first.
        extreme_among: for an expression naming an extreme, how many of the surest components
            (at least as many as it keeps) it is taken among (:data:`EXTREME_AMONG`); ``None``:
            among every one at least as sure as the median one (the first rule).
        colour_cost: ``[n]`` how far each component's colour is from ``reading.colour``
            (:func:`rrsis.scene.colour.colour_cost`); ``None``: the colour is not applied.
        colour_among, colour_margin: the colour is taken among the ``colour_among`` surest
            components (at least as many as it keeps; every one for "all"), and the ones within
            ``colour_margin`` of the nearest colour are kept (:mod:`rrsis.scene.colour`).

    Returns:
        Indices of the kept components: those in ``reading.place`` (none when no component lies
        there), allowed by ``related`` and of the colour, the ``objects`` most extreme among the
        ``extreme_among`` surest when ``reading.extreme`` is set, else the ``objects`` cheapest
        in the relation to its anchor (ties: the surest), else the ``objects`` of highest mean probability.
    """
    mean_p, x, y, area = (np.asarray(v, np.float64) for v in (mean_p, x, y, area))
    keep, n = np.arange(len(mean_p)), reading.objects if objects is None else objects
    if reading.place is not None:
        r, c = reading.place
        ok = np.ones(len(keep), bool)
        for k, v in ((r, y), (c, x)):
            if k is not None:
                third = np.clip(np.floor(v * 3), 0, 2)
                ok &= third == k
        keep = keep[ok]
    if related is not None:
        allowed, gap = (np.asarray(v) for v in related)
        keep = keep[allowed[keep]]
    if reading.colour is not None and colour_cost is not None and len(keep):
        if n != EVERY:
            keep = keep[np.argsort(-mean_p[keep], kind="stable")][:max(int(colour_among), int(n))]
        cost = np.asarray(colour_cost, np.float64)[keep]
        keep = keep[cost <= cost.min() + colour_margin]
    if reading.extreme is not None and len(keep):
        key, sign = reading.extreme
        if extreme_among is None:  # the rule before: every one at least as sure as the median one
            keep = keep[mean_p[keep] >= np.median(mean_p[keep])]
        else:
            among = len(keep) if n == EVERY else max(int(extreme_among), int(n))
            keep = keep[np.argsort(-mean_p[keep], kind="stable")][:among]
        value = {"area": area, "x": x, "y": y}[key][keep]
        keep = keep[np.argsort(-sign * value, kind="stable")]
    else:
        keep = keep[np.argsort(-mean_p[keep], kind="stable")]
        if related is not None:
            keep = keep[np.argsort(gap[keep], kind="stable")]
    return keep if n == EVERY else keep[:int(n)]


def parse_read(read) -> tuple[str, ...]:
    """``SceneOptions.read`` as a tuple of :data:`READS` (a comma-separated string, ``"none"``
    and an empty tuple accepted), or a ``ValueError`` naming the word that is not one."""
    if isinstance(read, str):
        read = () if read.strip().lower() in ("", "none") else tuple(w.strip() for w in read.split(","))
    if not isinstance(read, (tuple, list)) or not all(isinstance(w, str) for w in read):
        raise ValueError(f"read {read!r}: expected some of {', '.join(READS)} (a tuple, or a comma-separated "
                         "string), or 'none'")
    for w in read:
        if w not in READS:
            raise ValueError(f"read {w!r}: expected some of {', '.join(READS)}, or 'none'")
    return tuple(dict.fromkeys(read))
