"""What :func:`rrsis.hub.save_pretrained` checks before it writes anything.

A saved folder is rebuilt from its ``config.json`` and then filled with its weights, so the
model's state dict must be the one its config builds. A part replaced by assignment
(``model.classifier = HEADS.build(...)``) is not recorded in ``model.config``; such a model is
refused here, naming the differing keys, instead of writing a folder ``from_pretrained``
refuses. The config is built on PyTorch's ``meta`` device (shapes only, no memory).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from .report import format_keys, format_mismatches

__all__ = ["refuse_save_kwargs", "saveable_model", "unwrap_compiled", "unwrapped_state"]

logger = logging.getLogger("rrsis.hub.save")

_HOW = ("A part replaced by assignment (model.classifier = ...) is not recorded in model.config: build the model "
        "with that part in its config instead, e.g. rrsis.create_model(name, head={...}) or "
        "rrsis.from_pretrained(folder, head={...}, strict=False) (docs/guides/compose.md, \"Changing a model's head\").")


def unwrap_compiled(model: nn.Module) -> nn.Module:
    """The module ``torch.compile(model)`` wraps (its ``OptimizedModule`` keeps it as
    ``_orig_mod`` and prefixes every state-dict key with ``_orig_mod.``); other models as they are."""
    while type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod
    return model


def unwrapped_state(state: Mapping[str, object], own: Mapping[str, object] | None = None) -> dict:
    """``state`` with the key prefixes of wrappers removed: ``_orig_mod.`` (``torch.compile``) and
    ``module.`` (``DistributedDataParallel``, ``DataParallel``), each only where every key has it and
    ``own`` (the receiving model's state dict, when given) has no key that starts with it."""
    state = dict(state)
    for prefix in ("_orig_mod.", "module.", "_orig_mod."):
        if state and all(str(k).startswith(prefix) for k in state) and not any(
                str(k).startswith(prefix) for k in (own or {})):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def saveable_model(model: nn.Module) -> nn.Module:
    """``model`` (unwrapped from ``torch.compile``) once it is known to save as a folder that
    loads: an rrsis model whose state dict has the keys and shapes its config builds.

    Raises:
        TypeError: not an rrsis model (no ``arch`` / ``config``).
        ValueError: the state dict differs from the config's build; nothing was written.
    """
    model = unwrap_compiled(model)
    arch = getattr(model, "arch", "")
    config = getattr(model, "config", None)
    if not arch or not isinstance(config, Mapping):
        raise TypeError(f"save_pretrained needs an rrsis model with .arch and .config, got {type(model).__name__}")
    from ..registry import is_model, model_entrypoint

    if not is_model(arch):
        logger.warning(
            "architecture %r is not registered: from_pretrained can rebuild this directory only once an "
            "entrypoint of that name is registered (rrsis.register_model)", arch,
        )
        return model
    with torch.device("meta"):
        built = model_entrypoint(arch)(dict(config))
    expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    extra = sorted(k for k in state if k not in expected)
    absent = sorted(k for k in expected if k not in state)
    shapes = [(k, state[k], expected[k]) for k in sorted(state) if k in expected and state[k] != expected[k]]
    if not (extra or absent or shapes):
        return model
    parts = []
    if extra:
        parts.append(f"{len(extra)} model tensors the config does not build:\n{format_keys(extra, 8)}")
    if absent:
        parts.append(f"{len(absent)} tensors the config builds that the model lacks:\n{format_keys(absent, 8)}")
    if shapes:
        parts.append(f"{len(shapes)} tensors of other shapes (model vs config):\n"
                     + format_mismatches(shapes, 8).replace("checkpoint ", "model "))
    head = config.get("head")
    named = f" (its head: {head.get('name')!r})" if isinstance(head, Mapping) else ""
    raise ValueError(
        f"save_pretrained: this {arch} model's state dict is not the one its config{named} builds, so "
        f"from_pretrained would refuse the folder; nothing was written. {_HOW}\n" + "\n".join(parts)
    )


_SAVE_ARGS = "metrics=, dataset=, repo_id=, origin=, evaluation=, training="
# transformers' save_pretrained keywords, and why rrsis has no use for each.
_NOT_SUPPORTED = {
    "max_shard_size": "rrsis writes one model.safetensors (from_pretrained reads sharded folders, an index and its "
                      "shards as transformers writes them, but save_pretrained does not write them)",
    "safe_serialization": "rrsis always writes safetensors (safe_serialization=True is what it does)",
    "push_to_hub": "use model.push_to_hub(repo_id) (rrsis.hub.push_to_hub)",
    "variant": "rrsis writes one model.safetensors; use torch_dtype= when loading to change the dtype",
    "state_dict": "the model's own state dict is saved; load other weights into it first",
}


def refuse_save_kwargs(kwargs: Mapping[str, object]) -> None:
    """A ``TypeError`` for keywords :func:`rrsis.hub.save_pretrained` does not take, saying why for
    the ones transformers' ``save_pretrained`` has; ``safe_serialization=True`` passes."""
    rest = {k: v for k, v in kwargs.items() if not (k == "safe_serialization" and v is True)}
    if not rest:
        return
    why = "; ".join(f"{k}: {_NOT_SUPPORTED[k]}" for k in rest if k in _NOT_SUPPORTED)
    raise TypeError(
        f"save_pretrained: {', '.join(f'{k}=' for k in rest)} not supported by rrsis"
        + (f" ({why})" if why else "") + f"; it takes {_SAVE_ARGS}"
    )

