"""Name → builder registries for models and for the parts models are composed of.

Models are registered with :func:`register_model` (timm-style entrypoints); parts
(local attention, fusion, global enhancement, heads, ...) live in :class:`Registry`
instances so that a model config can name a part by string and a user can swap it.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable, Dict, List

__all__ = [
    "Registry",
    "register_model",
    "create_model",
    "list_models",
    "is_model",
    "model_entrypoint",
    "split_model_name_tag",
]


class Registry:
    """A named mapping from string keys to builders (classes or functions).

    Args:
        kind: what the registry holds, used in error messages ("head", "fusion", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise KeyError(_unknown_message(self.kind, name, list(self._entries)))
        return self._entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> List[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _unknown_message(kind: str, name: str, known: List[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known)) or '(none)'}"


_model_entrypoints: Dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model entrypoint under ``name`` (hyphens allowed, e.g. ``"gl-msin"``).

    The entrypoint is ``fn(**overrides) -> nn.Module``; it merges ``overrides`` into the
    architecture's defaults.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _model_entrypoints and _model_entrypoints[name] is not fn:
            raise ValueError(f"model {name!r} is already registered")
        _model_entrypoints[name] = fn
        return fn

    return deco


def split_model_name_tag(name: str) -> tuple[str, str]:
    """``"gl-msin.rrsisd"`` → ``("gl-msin", "rrsisd")``; no tag gives ``""``."""
    arch, _, tag = name.partition(".")
    return arch, tag


def list_models(pattern: str = "*") -> List[str]:
    """Registered model names matching an ``fnmatch`` pattern, sorted."""
    return sorted(n for n in _model_entrypoints if fnmatch.fnmatchcase(n, pattern))


def is_model(name: str) -> bool:
    return split_model_name_tag(name)[0] in _model_entrypoints


def model_entrypoint(name: str) -> Callable[..., Any]:
    arch, _ = split_model_name_tag(name)
    if arch not in _model_entrypoints:
        raise ValueError(_unknown_message("model", arch, list(_model_entrypoints)))
    return _model_entrypoints[arch]


def create_model(
    name: str,
    pretrained: bool = False,
    *,
    swin_weights: Any = None,
    text_weights: Any = None,
    cache_dir: Any = None,
    local_files_only: bool = False,
    **overrides: Any,
):
    """Build a registered model by name.

    Args:
        name: a registered name (``rrsis.list_models()``).
        pretrained: load ImageNet Swin and BERT part weights from the Hub (or from the
            local paths given as ``swin_weights=`` / ``text_weights=``). Fusion, ELSA and head
            parameters stay randomly initialised; the load report lists them.
        swin_weights, text_weights: where the part weights come from (see
            :func:`rrsis.hub.load_pretrained_parts`): a local file or directory, a Hub repo id
            (a timm tag for Swin), or ``False`` to skip that part; ``None``: the default.
        cache_dir, local_files_only: forwarded to the Hub downloads of part weights.
        **overrides: architecture arguments; ``None`` values are dropped so that CLI
            defaults never override model defaults.
    """
    if "/" in name or "\\" in name or ":" in name:
        raise ValueError(
            f"{name!r} looks like a path or Hub repo id, not a registered model name; "
            "use rrsis.from_pretrained() to load a saved model"
        )
    if not pretrained and (swin_weights is not None or text_weights is not None):
        raise ValueError("swin_weights= / text_weights= are only used with pretrained=True")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    fn = model_entrypoint(name)
    model = fn(**overrides)
    if pretrained:
        from .hub import load_pretrained_parts

        report = load_pretrained_parts(
            model, swin=swin_weights, text=text_weights, cache_dir=cache_dir, local_files_only=local_files_only
        )
        model.load_report = report
    return model


# Part registries. Each part module registers its builders here at import time.
LOCAL_ATTENTION = Registry("local attention block")
FUSION = Registry("pixel-word fusion")
GLOBAL_ENHANCEMENT = Registry("global enhancement")
VISUAL_BRANCH = Registry("visual branch")
NECKS = Registry("neck")
HEADS = Registry("head")
