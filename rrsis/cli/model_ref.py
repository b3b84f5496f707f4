"""``--model`` of the commands that run a model on expressions (predict, evaluate, app): checked
before the model stack is imported (a local folder that is not there, a saved folder without its
vocabulary), and the line that says a model is loading."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..hub.local import CONFIG_NAME, TOKENIZER_CONFIG_NAME, VOCAB_NAME, check_local_folder

__all__ = ["SLOW_LOAD_BYTES", "add_revision", "check_model_ref", "loading", "no_vocabulary", "revision_of"]

# Weights from which loading is announced: GL-MSIN-B's 850 MB took ~30 s on a busy laptop; the
# tiny models' few MB load at once, and their commands print nothing before their result.
SLOW_LOAD_BYTES = 100 * 2**20


def add_revision(p: argparse.ArgumentParser, flag: str = "--model") -> None:
    """``--revision REV``: the Hub revision of the repo ``flag`` names (``from_pretrained(revision=)``)."""
    p.add_argument("--revision", metavar="REV",
                   help=f"the branch, tag or commit of the Hub repo {flag} names (default: its main branch); "
                        f"an error with a local {flag} folder or file")


def revision_of(args: argparse.Namespace) -> dict[str, str]:
    """``revision=`` for ``from_pretrained``, when ``--revision`` was given."""
    revision = getattr(args, "revision", None)
    return {} if revision is None else {"revision": revision}


def check_model_ref(ref: str, command: str, revision: str | None = None, flag: str = "--model") -> None:
    """Refuse, before anything is loaded, a local path that is not there (as ``from_pretrained``
    words it), a folder written by ``save_pretrained`` without ``vocab.txt``, and ``--revision``
    with a local folder or file. Files (a checkpoint of ``rrsis train``) and Hub repo ids pass: the
    loading checks them."""
    check_local_folder(ref, flag)
    folder = Path(ref).expanduser()
    if revision is not None and (folder.is_dir() or folder.is_file()):
        kind = "folder" if folder.is_dir() else "file"
        raise ValueError(f"--revision {revision} chooses a revision of a Hub repo, but {flag} {ref} is a local {kind}; "
                         f"leave --revision out, or give the Hub repo id as {flag}")
    if folder.is_dir() and (folder / CONFIG_NAME).is_file() and not (folder / VOCAB_NAME).is_file():
        raise ValueError(no_vocabulary(ref, command))


def no_vocabulary(ref: str, command: str) -> str:
    """Why ``rrsis COMMAND`` cannot use the model ``ref``, which has no tokenizer, and what to do."""
    return (f"{ref} has no {VOCAB_NAME}: rrsis {command} needs the model's vocabulary to read the expressions; "
            f"put the vocabulary it was trained with ({VOCAB_NAME}, and {TOKENIZER_CONFIG_NAME} if there is one) "
            "in the model's folder, or save the model again with model.tokenizer set")


def loading(ref: str, quiet: bool) -> None:
    """``loading MODEL ...`` on stderr before a slow load: a local model folder (or checkpoint
    file) whose files hold :data:`SLOW_LOAD_BYTES` or more; not with ``--quiet``. (A Hub repo
    still to download shows the download's progress.)"""
    path = Path(ref).expanduser()
    try:
        files = [f for f in path.iterdir() if f.is_file()] if path.is_dir() else [path] if path.is_file() else []
        size = sum(f.stat().st_size for f in files)
    except OSError:  # the load says what is wrong
        return
    if not quiet and size >= SLOW_LOAD_BYTES:
        print(f"loading {ref} ...", file=sys.stderr, flush=True)
