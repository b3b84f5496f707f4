"""Checks of expressions: the one non-empty check, and what the model will not see of one."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "check_expression",
    "check_expressions",
    "check_unicode",
    "expression_problem",
    "unknown_words",
    "unreadable_expressions",
]

logger = logging.getLogger(__name__)
# Zero-width characters: BERT's normaliser removes them (as every format character), not a space.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# How many sample ids of unreadable expressions a dataset's count names.
UNREADABLE_EXAMPLES = 5


def check_unicode(text: str, what: str = "expression") -> str:
    """``text`` if it is valid Unicode text, one that can be written as UTF-8: no lone surrogate
    (half of a character outside the Basic Multilingual Plane, an emoji cut in two by a tool that
    counts UTF-16 units, or a byte that was not UTF-8 kept by Python's ``surrogateescape``).

    Raises:
        ValueError: naming the character and where it is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid Unicode text: character {exc.start + 1} is a lone surrogate "
            f"(U+{ord(text[exc.start]):04X}, e.g. half of an emoji, or a byte that was not UTF-8): "
            f"{text!r}") from None
    return text


def check_expression(text: Any, what: str = "expression") -> str:
    """The one check of a referring expression: a non-blank string, returned as given.

    Args:
        text: the expression.
        what: how the caller names it (``"text 2"``, ``"--text"``, ``"expression"``), for the message.

    Raises:
        ValueError: a non-string, an empty or blank string, or one that is not valid Unicode
            text (:func:`check_unicode`).
    """
    if not isinstance(text, str):  # bad input is a ValueError in rrsis, whatever its kind
        raise ValueError(f"{what} is a {type(text).__name__}, not text")
    if not text.strip():
        raise ValueError(f"{what} is empty: give the text that names the target")
    return check_unicode(text, what)


def check_expressions(texts: str | Sequence[str], what: str = "expression", first: int = 0) -> list[str]:
    """:func:`check_expression` over one expression or several (``predict``, ``segment_scene``,
    the tokenizer, the datasets, the CLI and the app call it), returned as a list.

    Args:
        texts: one expression or several.
        what: how the caller names one (``"--text"`` in the CLI), for the message; several are
            named by number: their index from ``first`` (0, as the list indexes them, for the
            Python API: ``"text 0"``; 1 for the CLI, which counts ``--text`` values from 1).

    Raises:
        ValueError: no expression, a non-string, an empty or blank one, or one that is not
            valid Unicode text.
    """
    if isinstance(texts, str):
        return [check_expression(texts, what)]
    try:
        items = list(texts)
    except TypeError:
        raise ValueError(f"{what}: expected a string or a list of strings, got {type(texts).__name__}") from None
    if not items:
        raise ValueError(f"no {what} given: give the text that names the target")
    return [check_expression(t, f"{what} {i}") for i, t in enumerate(items, first)]


def unknown_words(tokenizer: Any, text: str) -> list[str]:
    """The words of ``text`` the tokenizer's vocabulary does not know (their word pieces are
    ``[UNK]``: the model does not read them), as written in ``text``, each once, in order.

    A word is what the tokenizer splits off (BERT's normalisation and pre-tokenizer: spaces,
    punctuation, each CJK character); unknown neighbours with no space between them (the
    characters of ``"最小的"``) are named together; punctuation or a math, currency or modifier
    sign alone is not named (an emoji is). Zero-width
    characters (U+200B to U+200D, U+2060, U+FEFF) are removed as BERT's normaliser removes them,
    so ``"the\u200bsmallest"`` is one word. ``[]`` for a tokenizer without offsets (not an
    :class:`rrsis.Tokenizer`).
    """
    with_offsets = getattr(tokenizer, "tokenize_offsets", None)
    if with_offsets is None:
        return []
    unk = getattr(tokenizer, "unk_token", "[UNK]")
    spans: list[list[int]] = []
    for token, start, end in with_offsets(text):
        piece = text[start:end]
        if token != unk or not piece or all(unicodedata.category(c)[0] == "P" or unicodedata.category(c)
                                            in ("Sm", "Sc", "Sk") for c in piece):
            continue
        if spans and spans[-1][1] == start:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return list(dict.fromkeys(text[a:b] for a, b in spans))


def expression_problem(tokenizer: Any, text: str, words: bool = False) -> str | None:
    """Why the model would not see ``text`` as written, or ``None``.

    Two cases: every word piece is unknown to the vocabulary (``[UNK]``: the model reads no
    expression at all), or the text has more word pieces than ``max_tokens`` holds with
    ``[CLS]``/``[SEP]`` (the end is cut off); with ``words=True`` (``predict`` and the app, once
    per expression) also the words the vocabulary does not know when others are known
    (:func:`unknown_words`). Tokenizers without ``tokenize``/``max_tokens`` (plain callables)
    are not checked.

    Args:
        tokenizer: an :class:`rrsis.Tokenizer` or any callable tokenizer.
        text: the expression.
        words: name the unknown words of an expression the model reads in part.
    """
    tokenize = getattr(tokenizer, "tokenize", None)
    if tokenize is None:
        return None
    pieces = tokenize(text)
    unk = getattr(tokenizer, "unk_token", "[UNK]")
    if _reads_nothing(pieces, unk):
        return (f"no word of {text!r} is in the model's vocabulary (every token is {unk}): "
                "the model reads no expression")
    problems = []
    unknown = unknown_words(tokenizer, text) if words and unk in pieces else []
    if unknown:
        hidden = sorted({f"U+{ord(c):04X}" for w in unknown for c in w if c in ZERO_WIDTH})
        problems.append(f"words not in the model's vocabulary: {', '.join(map(repr, unknown))}; "
                        f"the model does not read them ({text!r})" + (
                            f"; {', '.join(hidden)}: an invisible character, removed as BERT's tokenizer removes "
                            "it, which joins the words on either side" if hidden else ""))
    max_tokens = getattr(tokenizer, "max_tokens", None)
    if isinstance(max_tokens, int) and len(pieces) + 2 > max_tokens:
        problems.append(f"expression of {len(pieces)} word pieces truncated to {max_tokens} tokens "
                        f"(with [CLS]/[SEP]); the model does not see its end: {text!r}")
    return "; ".join(problems) or None


def _reads_nothing(pieces: Sequence[str], unk: str) -> bool:
    return not pieces or all(p == unk for p in pieces)


def unreadable_expressions(dataset: Any, log: bool = True) -> dict[str, Any] | None:
    """How many of a dataset's expressions have no word its tokenizer knows (every word piece
    ``[UNK]``: the model reads no expression for them), and how many are cut at ``max_tokens``
    (the model does not see their end), counted once over them all (tokenization only) and kept
    on the dataset; each logged once as a warning when there are any.

    Args:
        dataset: an rrsis dataset (``entries`` of ``sentences``) with a ``tokenizer``.
        log: log the warnings (``False`` on the ranks but the first of a distributed run).

    Returns:
        ``{"count": N, "of": M, "sample_ids": [a few of them], "truncated": {"count": K,
        "sample_ids": [...]}}``, or ``None`` for a dataset without a tokenizer or ``entries``.
    """
    tokenizer, entries = getattr(dataset, "tokenizer", None), getattr(dataset, "entries", None)
    if getattr(tokenizer, "tokenize", None) is None or entries is None:
        return None
    found = getattr(dataset, "_unreadable", None)
    if found is not None and found[0] is tokenizer:
        return found[1]
    texts: Iterable[tuple[str, str]] = (s for e in entries for s in e.sentences)
    unk, max_tokens = getattr(tokenizer, "unk_token", "[UNK]"), getattr(tokenizer, "max_tokens", None)
    total, ids, cut = 0, [], []
    for sid, text in texts:
        total += 1
        pieces = tokenizer.tokenize(text)
        if _reads_nothing(pieces, unk):
            ids.append(str(sid))
        elif isinstance(max_tokens, int) and len(pieces) + 2 > max_tokens:
            cut.append(str(sid))
    result = {"count": len(ids), "of": total, "sample_ids": ids[:UNREADABLE_EXAMPLES],
              "truncated": {"count": len(cut), "sample_ids": cut[:UNREADABLE_EXAMPLES]}}
    dataset._unreadable = (tokenizer, result)
    name = type(dataset).__name__
    if ids and log:
        logger.warning("%s: %d of %d expressions have no word the model knows (every token is [UNK]; the model "
                       "reads no expression for them): samples %s", name, len(ids), total, _some(ids))
    if cut and log:
        logger.warning("%s: %d of %d expressions are truncated to %d tokens (with [CLS]/[SEP]); the model does "
                       "not see their end: samples %s", name, len(cut), total, max_tokens, _some(cut))
    return result


def _some(ids: list[str]) -> str:
    return ", ".join(ids[:UNREADABLE_EXAMPLES]) + (", ..." if len(ids) > UNREADABLE_EXAMPLES else "")
