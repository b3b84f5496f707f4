"""``--model`` of the commands that run a model on expressions (predict, evaluate, app): checked
before the model stack is imported (a local folder that is not there, a saved folder without its
vocabulary), and the line that says a model is loading."""

from __future__ import annotations

import sys
from pathlib import Path

from ..hub.local import CONFIG_NAME, TOKENIZER_CONFIG_NAME, VOCAB_NAME, check_local_folder

__all__ = ["check_model_ref", "loading", "no_vocabulary"]


def check_model_ref(ref: str, command: str) -> None:
    """Refuse, before anything is loaded, a local path that is not there (as ``from_pretrained``
    words it) and a folder written by ``save_pretrained`` without ``vocab.txt``. Files (a
    checkpoint of ``rrsis train``) and Hub repo ids pass: the loading checks them."""
    check_local_folder(ref)
    folder = Path(ref).expanduser()
    if folder.is_dir() and (folder / CONFIG_NAME).is_file() and not (folder / VOCAB_NAME).is_file():
        raise ValueError(no_vocabulary(ref, command))


def no_vocabulary(ref: str, command: str) -> str:
    """Why ``rrsis COMMAND`` cannot use the model ``ref``, which has no tokenizer, and what to do."""
    return (f"{ref} has no {VOCAB_NAME}: rrsis {command} needs the model's vocabulary to read the expressions; "
            f"put the vocabulary it was trained with ({VOCAB_NAME}, and {TOKENIZER_CONFIG_NAME} if there is one) "
            "in the model's folder, or save the model again with model.tokenizer set")


def loading(ref: str, quiet: bool) -> None:
    """``loading MODEL ...`` on stderr (not with ``--quiet``): a full-size model takes a while."""
    if not quiet:
        print(f"loading {ref} ...", file=sys.stderr, flush=True)
