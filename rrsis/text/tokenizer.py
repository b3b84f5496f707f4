"""BERT-uncased WordPiece tokenizer wrapper that yields fixed-length model inputs."""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from .._atomic import atomic_write, json_text
from .._config import SIZE_LIMITS
from ..data.expressions import check_expression, check_expressions, check_unicode

__all__ = ["MAX_TOKENS", "SPECIAL_TOKENS", "Tokenizer"]

# The one default of the tokenizer length (LAVT's and RMSIN's 20 tokens per expression, [CLS] and
# [SEP] included): a model's ``text.max_tokens`` and every tokenizer built without one use it.
MAX_TOKENS = 20
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"


class Tokenizer:
    """WordPiece tokenizer with BERT-uncased normalisation, owned by rrsis.

    Produces what LAVT/RMSIN feed their BERT: ``[CLS] tokens [SEP]`` truncated to
    ``max_tokens`` *after* the special tokens are added (so a long sentence loses its
    ``[SEP]``, as in the anchors' data pipeline), zero-padded, with a 0/1 mask.
    Call it on a text or a list of texts for a model's inputs:
    ``tokenizer(texts)`` → ``{"input_ids": [B, L], "attention_mask": [B, L]}`` (``L = max_tokens``).

    Args:
        vocab: token → id mapping (ids must be 0..V-1) or a path to a ``vocab.txt``
            (one token per line, id = line number).
        max_tokens: output length ``L`` (default :data:`MAX_TOKENS`).
        lowercase: BERT-uncased normalisation (lower-case, strip accents).
    """

    def __init__(
        self, vocab: Mapping[str, int] | str | os.PathLike, max_tokens: int = MAX_TOKENS, lowercase: bool = True
    ) -> None:
        if not isinstance(vocab, Mapping):
            vocab = _read_vocab(Path(vocab))
        vocab = dict(vocab)
        for tok in ("[UNK]", "[CLS]", "[SEP]"):
            if tok not in vocab:
                raise ValueError(f"vocabulary has no {tok} token")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocabulary ids must be exactly 0..V-1")
        if (isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral)
                or not 2 <= max_tokens <= SIZE_LIMITS["max_tokens"]):
            # Every expression is padded to max_tokens: 10**9 would be an 8 GB tensor per call.
            raise ValueError(f"max_tokens must be an integer from 2 to {SIZE_LIMITS['max_tokens']}, got {max_tokens!r}")
        self.vocab = vocab
        self.max_tokens = int(max_tokens)
        self.lowercase = bool(lowercase)
        self.pad_id = 0
        tok = _HFTokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=self.lowercase
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        self._tok = tok
        self._cls = vocab["[CLS]"]
        self._sep = vocab["[SEP]"]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_words(cls, words: Iterable[str], max_tokens: int = MAX_TOKENS, lowercase: bool = True) -> Tokenizer:
        """A whole-word vocabulary: the special tokens, then each distinct word once."""
        vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        for w in words:
            w = w.lower() if lowercase else w
            if w and w not in vocab:
                vocab[w] = len(vocab)
        return cls(vocab, max_tokens=max_tokens, lowercase=lowercase)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> Tokenizer:
        """Load ``vocab.txt`` (+ ``tokenizer_config.json`` when present) from a directory."""
        directory = Path(directory)
        cfg = {}
        if (directory / CONFIG_FILE).is_file():
            try:
                cfg = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise ValueError(f"{directory / CONFIG_FILE}: not valid JSON ({exc})") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"{directory / CONFIG_FILE}: expected a JSON object, got {type(cfg).__name__}")
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        return cls(directory / VOCAB_FILE, max_tokens=cfg.get("max_tokens", MAX_TOKENS),
                   lowercase=cfg.get("lowercase", True))

    def save_pretrained(self, directory: str | os.PathLike) -> list[Path]:
        """Write ``vocab.txt`` and ``tokenizer_config.json``; returns the written paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        inv = sorted(self.vocab.items(), key=lambda kv: kv[1])
        vocab_path = directory / VOCAB_FILE
        cfg_path = directory / CONFIG_FILE
        atomic_write(vocab_path, "".join(f"{t}\n" for t, _ in inv))
        cfg = {"tokenizer_class": "rrsis.Tokenizer", "max_tokens": self.max_tokens, "lowercase": self.lowercase}
        atomic_write(cfg_path, json_text(cfg, indent=2) + "\n")
        return [vocab_path, cfg_path]

    # ------------------------------------------------------------------ use
    def __len__(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text`` (``[UNK]`` for a word the vocabulary does not know)."""
        return self._tok.encode(check_unicode(text, "text"), add_special_tokens=False).tokens

    def tokenize_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """The word pieces of ``text`` with where each comes from: ``(piece, start, end)``,
        ``text[start:end]`` as written (before lower-casing, accent and zero-width character removal)."""
        enc = self._tok.encode(check_unicode(text, "text"), add_special_tokens=False)
        return [(t, a, b) for t, (a, b) in zip(enc.tokens, enc.offsets)]

    def encode(self, text: str) -> list[int]:
        """Token ids with ``[CLS]``/``[SEP]``, truncated to ``max_tokens`` (no padding)."""
        check_expression(text)
        ids = [self._cls] + self._tok.encode(text, add_special_tokens=False).ids + [self._sep]
        return ids[: self.max_tokens]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids if int(i) not in (self.pad_id, self._cls, self._sep)])

    def __call__(self, texts: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """Encode one text or a list of texts.

        Returns:
            ``{"input_ids": LongTensor[B, L], "attention_mask": LongTensor[B, L]}``.
        """
        texts = check_expressions(texts, what="text")
        ids = torch.zeros(len(texts), self.max_tokens, dtype=torch.long)
        mask = torch.zeros(len(texts), self.max_tokens, dtype=torch.long)
        for i, t in enumerate(texts):
            row = self.encode(t)
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={len(self)}, max_tokens={self.max_tokens}, lowercase={self.lowercase})"


def _read_vocab(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            tok = line.rstrip("\n")
            if tok in vocab:
                raise ValueError(f"{path}: token {tok!r} appears twice (lines {vocab[tok] + 1} and {i + 1})")
            vocab[tok] = i
    if not vocab:
        raise ValueError(f"{path}: empty vocabulary")
    return vocab

