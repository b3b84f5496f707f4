"""Checks of expressions: the one non-empty check, and what the model will not see of one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["check_expression", "check_expressions", "expression_problem"]


def check_expression(text: Any, what: str = "expression") -> str:
    """The one check of a referring expression: a non-blank string, returned as given.

    Args:
        text: the expression.
        what: how the caller names it (``"text 2"``, ``"--text"``, ``"expression"``), for the message.

    Raises:
        ValueError: a non-string, or an empty or blank string.
    """
    if not isinstance(text, str):  # bad input is a ValueError in rrsis, whatever its kind
        raise ValueError(f"{what} is a {type(text).__name__}, not text")
    if not text.strip():
        raise ValueError(f"{what} is empty: give the text that names the target")
    return text


def check_expressions(texts: str | Sequence[str], what: str = "expression", first: int = 0) -> list[str]:
    """:func:`check_expression` over one expression or several (``predict``, ``segment_scene``,
    the tokenizer, the datasets, the CLI and the app call it), returned as a list.

    Args:
        texts: one expression or several.
        what: how the caller names one (``"--text"`` in the CLI), for the message; several are
            named by number: their index from ``first`` (0, as the list indexes them, for the
            Python API: ``"text 0"``; 1 for the CLI, which counts ``--text`` values from 1).

    Raises:
        ValueError: no expression, a non-string, or an empty or blank one.
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


def expression_problem(tokenizer: Any, text: str) -> str | None:
    """Why the model would not see ``text`` as written, or ``None``.

    Two cases: every word piece is unknown to the vocabulary (``[UNK]``: the model reads no
    expression at all), or the text has more word pieces than ``max_tokens`` holds with
    ``[CLS]``/``[SEP]`` (the end is cut off). Tokenizers without ``tokenize``/``max_tokens``
    (plain callables) are not checked.

    Args:
        tokenizer: an :class:`rrsis.Tokenizer` or any callable tokenizer.
        text: the expression.
    """
    tokenize = getattr(tokenizer, "tokenize", None)
    if tokenize is None:
        return None
    pieces = tokenize(text)
    unk = getattr(tokenizer, "unk_token", "[UNK]")
    if not pieces or all(p == unk for p in pieces):
        return (f"no word of {text!r} is in the model's vocabulary (every token is {unk}): "
                "the model reads no expression")
    max_tokens = getattr(tokenizer, "max_tokens", None)
    if isinstance(max_tokens, int) and len(pieces) + 2 > max_tokens:
        return (f"expression of {len(pieces)} word pieces truncated to {max_tokens} tokens "
                f"(with [CLS]/[SEP]); the model does not see its end: {text!r}")
    return None
