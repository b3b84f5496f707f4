"""What a model reference names, told without importing torch or the Hub client: a local path (or
a Hub repo id), a local model folder that is not there, and the names of a saved folder's files.
``from_pretrained`` and the commands (before they load the model stack) ask the same questions."""

from __future__ import annotations

import difflib
import errno
import os
from pathlib import Path

__all__ = ["CONFIG_NAME", "LEGACY_SUFFIXES", "SAFE_SUFFIXES", "TOKENIZER_CONFIG_NAME", "VOCAB_NAME",
           "check_local_folder", "check_not_a_loop", "local_folder_note", "looks_like_path", "similar_folders"]

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


def similar_folders(ref: str | os.PathLike) -> list[str] | None:
    """The folders beside the local path ``ref`` whose names are close to its last part (``out/best``
    for ``out/bset``, ``./out/bset`` or ``out/bset/``), as paths, closest first; ``None`` where the
    folder it would lie in cannot be listed (it does not exist either)."""
    path = Path(ref).expanduser()
    try:
        names = [p.name for p in path.parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return None
    return [str(path.parent / n) for n in difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)]


def _did_you_mean(near: list[str] | None) -> str:
    return f"; did you mean {' or '.join(repr(p) for p in near)}?" if near else ""


def local_folder_note(ref: str) -> str:
    """For a repo id that could be a mistyped local folder (``out/bset``, ``bset``): a sentence saying
    no such folder exists, with the folders of similar names beside it (:func:`similar_folders`);
    ``""`` where its parent folder does not exist either."""
    near = similar_folders(ref)
    if near is None:
        return ""
    path = Path(ref).expanduser()
    where = f"the current folder ({os.getcwd()})" if str(path.parent) == "." else f"{path.parent}/"
    return f"No local folder {ref!r}: {where} has no {path.name!r}" + (_did_you_mean(near) or ".")


def check_local_folder(ref: str | os.PathLike, what: str = "model") -> None:
    """Raise ``FileNotFoundError`` when ``ref`` is meant as a local path (:func:`looks_like_path`)
    and is neither a folder nor a file, naming the folders of similar names beside it
    (:func:`similar_folders`), and a ``ValueError`` (:func:`check_not_a_loop`, ``what`` naming the
    setting) when it is a symbolic link loop; a Hub repo id, or anything that exists, passes."""
    path = Path(ref).expanduser()
    check_not_a_loop(path, what)
    if not path.is_dir() and not path.is_file() and looks_like_path(str(ref)):
        raise FileNotFoundError(f"model directory not found: {path}{_did_you_mean(similar_folders(ref))}")


def check_not_a_loop(path: Path, what: str, fix: str = "Point the link at the model directory, or pass the "
                     "directory itself") -> None:
    """Raise a ``ValueError`` naming the loop when ``path`` (or a folder on the way to it) is a
    symbolic link that leads back to itself; the system's own word for it is "Not a directory"
    or "Too many levels of symbolic links". ``fix``: the sentence saying what to do."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            return
        link = next((p for p in [path, *path.parents] if p.is_symlink() and _loops(p)), path)
        target = os.readlink(link) if link.is_symlink() else "?"
        raise ValueError(
            f"{what}: {path} cannot be opened: the symbolic link {link} -> {target} is a loop (following "
            f"it leads back to itself). {fix}"
        ) from None


def _loops(link: Path) -> bool:
    try:
        os.stat(link)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False
