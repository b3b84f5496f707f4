"""How many objects a referring expression names, read from its words.

Mode ``object`` keeps the components the tiles are surest of, and ``objects="auto"`` (the
default) lets the expression say how many: "the two storage tanks north of the road" names two,
"all ships", "every vehicle" and "the ships in the harbour" name every one, "the largest
building" names one. Nothing is learned; the rules read only the expression's *head*, the noun
phrase before its first preposition, relative clause or verb, so that a count or a plural in a
modifier ("the ship between the two bridges", "the house next to the trees") does not count:

- a count word (``two`` ... ``twelve``, ``both``, ``pair``, ``couple``) in the head names that
  many; a numeral (``3``) only before a plural noun ("the 3 ships", not "the 747 plane");
- ``all``, ``every``, ``each``, ``several``, ``many``, ``multiple``, ``some``, ``few``, or a
  plural head noun ("the ships", "storage tanks along the river"), names every one;
- anything else names one: a referring expression's default.

A plural is read from the word's ending (``-s``, not ``-ss``, ``-us``, ``-is``, and not the
listed singulars such as "gas" or "lens") or from a short list of irregular plurals. English
has more than these rules know: an unread plural falls back to one object, the old behaviour,
and ``objects=`` set by hand always wins.
"""

from __future__ import annotations

import re

__all__ = ["EVERY", "objects_named"]

EVERY = "all"
"""What :func:`objects_named` returns for an expression that names every such object."""

_COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "both": 2, "pair": 2, "couple": 2,
                "one": 1, "single": 1, "a": 1, "an": 1}
_EVERY_WORDS = {"all", "every", "each", "several", "many", "multiple", "some", "few", "numerous", "various"}
# Words that end the head: prepositions, relative words, verbs and the start of a clause.
_BOUNDARY = {
    "of", "in", "on", "at", "near", "nearby", "next", "beside", "besides", "between", "among", "amid",
    "with", "without", "along", "alongside", "across", "by", "to", "from", "under", "over", "above",
    "below", "beneath", "behind", "before", "after", "around", "inside", "outside", "within", "into",
    "onto", "against", "towards", "toward", "beyond", "past", "through", "surrounding", "surrounded",
    "like", "than", "except", "that", "which", "who", "whose", "where", "while", "and", "or", "but",
    "is", "are", "was", "were", "be", "being", "has", "have", "located", "situated", "parked", "lying",
    "standing", "docked", "moored", "placed", "positioned", "closest", "nearest", "farthest", "furthest",
    "adjacent", "close", "opposite", "facing", "connected", "covered", "shown", "seen",
}
# Place words that may trail a head ("the ships north of the road"): skipped when finding the head.
_PLACE = {
    "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest",
    "north-east", "north-west", "south-east", "south-west", "northern", "southern", "eastern",
    "western", "left", "right", "top", "bottom", "upper", "lower", "middle", "center", "centre",
    "central", "here", "there", "side", "corner", "edge",
}
_IRREGULAR_PLURALS = {"people", "men", "women", "children", "cattle", "geese", "mice", "feet", "teeth",
                      "oxen"}
_SINGULAR_S = {"gas", "bus", "lens", "canvas", "series", "species", "chassis", "news", "physics",
               "athletics", "atlas", "its", "his", "this", "yes", "plus", "thus", "as", "was", "has",
               "does", "always", "perhaps", "across", "towards", "besides", "sometimes", "aircraft"}
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*'?")


def _plural(word: str) -> bool:
    if word in _IRREGULAR_PLURALS:
        return True
    if word.endswith("'"):  # "the ships' berths": a plural possessive
        return _plural(word[:-1])
    if word.endswith("'s") or word in _SINGULAR_S or len(word) <= 3 or word.isdigit():
        return False
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


def objects_named(text: str) -> int | str:
    """How many objects ``text`` names: a whole number, or :data:`EVERY` (``"all"``) for
    every such object ("all ships", "the storage tanks"). See the module's rules.

    >>> objects_named("the two storage tanks north of the road"), objects_named("all white ships")
    (2, 'all')
    >>> objects_named("the ship between the two bridges"), objects_named("the sports court")
    (1, 1)
    """
    if not isinstance(text, str):
        raise TypeError(f"an expression is a str, got {type(text).__name__}")
    words = _TOKEN.findall(text.lower())
    head: list[str] = []
    for w in words:
        if w in _BOUNDARY and head:
            break
        if w not in _BOUNDARY:
            head.append(w)
    nouns = [w for w in head if w not in _PLACE]
    last = nouns[-1] if nouns else ""
    plural = _plural(last)
    if any(w in _EVERY_WORDS for w in head):
        return EVERY
    counted = [_COUNT_WORDS[w] for w in head if w in _COUNT_WORDS]
    counted += [int(w) for w in head if w.isdigit() and plural and 0 < int(w) <= 1000]
    if last in ("pair", "couple"):  # "a pair of ships": the head ends at "of"
        return 2
    if counted and max(counted) > 1:
        return max(counted)
    if plural and not counted:
        return EVERY
    return 1
