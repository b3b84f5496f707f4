"""What a model reference names, told without importing torch or the Hub client: a local path (or
a Hub repo id), a local model folder that is not there, and the names of a saved folder's files.
``from_pretrained`` and the commands (before they load the model stack) ask the same questions."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_NAME", "LEGACY_SUFFIXES", "SAFE_SUFFIXES", "TOKENIZER_CONFIG_NAME", "VOCAB_NAME",
           "check_local_folder", "looks_like_path"]

CONFIG_NAME = "config.json"
VOCAB_NAME = "vocab.txt"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
SAFE_SUFFIXES = (".safetensors",)
# Pickle-based formats: read with weights_only=True, never with a full unpickler.
LEGACY_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


def looks_like_path(text: str) -> bool:
    """Whether a string that is not an existing path was meant as one rather than a repo id.

    A Hub repo id is ``name`` or ``org/name``; anything with a second separator, a leading
    ``.``/``/``/``~``, a backslash or a weight-file suffix is a (mistyped) local path.
    """
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        return True
    return Path(text).suffix.lower() in SAFE_SUFFIXES + LEGACY_SUFFIXES + (".json",)


def check_local_folder(ref: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` when ``ref`` is meant as a local path (:func:`looks_like_path`)
    and is neither a folder nor a file; a Hub repo id, or anything that exists, passes."""
    path = Path(ref).expanduser()
    if not path.is_dir() and not path.is_file() and looks_like_path(str(ref)):
        raise FileNotFoundError(f"model directory not found: {path}")
