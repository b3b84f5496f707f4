"""Checks of an expression against a tokenizer: what the model will not see of it."""

from __future__ import annotations

from typing import Any

__all__ = ["expression_problem"]


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
