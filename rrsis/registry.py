"""Name tables, the ground floor: models and the parts they are composed of register here.

This is the public way to extend rrsis (``rrsis._registry``, its name before 0.2, still works
until 0.3.0 with a deprecation warning)::

    from rrsis.registry import HEADS

    @HEADS.register("center")
    def build_center_head(*, in_channels, width: int = 8): ...

- Parts live in :class:`Registry` tables (:data:`LOCAL_ATTENTION`, :data:`FUSION`,
  :data:`GLOBAL_ENHANCEMENT`, :data:`VISUAL_BRANCH`, :data:`NECKS`, :data:`HEADS`...), so a
  config names a part by string and a user can add one; what each builder receives is in
  docs/guides/compose.md. :data:`CHECKPOINT_FORMATS` holds the layouts ``rrsis convert`` reads.
- Models register an entrypoint with :func:`register_model` (timm-style); an entrypoint is
  ``fn(config=None, **overrides) -> nn.Module`` and is the one place a config tree becomes a
  model (:func:`build_from_config`).
- Pretrained configurations register under ``arch.tag`` with :func:`register_pretrained`.

Nothing here imports a part, a model or the weights code: everything above looks names up here.
The one exception is deliberate and invisible to the import graph: **built-ins register on first
lookup**. The first question about models or tags (:func:`list_models`, :func:`model_entrypoint`,
:func:`pretrained_cfg`, ...) imports ``rrsis.models`` by name (:func:`_register_builtins`), so
``rrsis.hub.from_pretrained`` works in a fresh interpreter; part tables do the same on every
lookup and registration. It is a run-time lookup of a module by name, like a plugin entry
point, not an import arrow: a model module may still import this one.
"""

from __future__ import annotations

import fnmatch
import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import plugins as _plugins
from ._config import (
    MAX_ACTIVATION_ENV,
    MAX_PARAMS_ENV,
    SIZE_LIMITS,
    ConfigError,
    check_keys,
    resource_limits,
    suggest,
)

__all__ = [
    "CHECKPOINT_FORMATS",
    "FUSION",
    "GLOBAL_ENHANCEMENT",
    "HEADS",
    "LOCAL_ATTENTION",
    "NECKS",
    "POSITION_ENCODING",
    "SCENE_RANKER",
    "SIZE_LIMITS",
    "VISUAL_BRANCH",
    "ConfigError",
    "ModelEstimate",
    "PretrainedCfg",
    "Registry",
    "build_from_config",
    "estimate_model",
    "is_model",
    "list_models",
    "list_pretrained",
    "model_entrypoint",
    "pretrained_cfg",
    "probe_model",
    "register_model",
    "register_pretrained",
    "split_model_name_tag",
]


class Registry:
    """A named mapping from string keys to builders (classes or functions).

    Builders take keyword arguments; :meth:`check_args` validates a config node against the
    builder's explicit signature, so a misspelt key raises instead of being swallowed.

    Args:
        kind: what the registry holds, used in error messages ("head", "fusion", ...).
        builtins: every lookup, and every registration from outside rrsis, first imports the
            built-ins (:func:`_register_builtins`): the table is full in a fresh interpreter
            and a clash with a built-in name is refused at the user's own ``register`` line.
    """

    def __init__(self, kind: str, *, builtins: bool = False) -> None:
        self.kind = kind
        self._builtins = builtins
        self._entries: dict[str, Callable[..., Any]] = {}

    def _table(self) -> dict[str, Callable[..., Any]]:
        if self._builtins:
            _plugins._load_builtin_parts()  # the models' names, then the parts they are built from
        return self._entries

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            # A built-in registers as its own module is imported (loading the built-ins from
            # there would import that half-run module again); anything else loads them first.
            builtin = str(getattr(fn, "__module__", "")).startswith("rrsis.")
            entries = self._entries if builtin else self._table()
            old = entries.get(name, fn)  # the same owner again (a cell re-run, a reload) replaces its own
            if old is not fn and not _plugins._reregistration(self.kind, name, _plugins._owner(old), _plugins._owner(fn)):
                raise ValueError(f"{self.kind} {name!r} is already registered by {_plugins._owner(old)}: choose another "
                                 f"name (registered names: {', '.join(sorted(entries))})")
            entries[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        entries = self._table()
        if name not in entries:
            raise ConfigError(_unknown_message(self.kind, name, list(entries)) + _plugins.PLUGIN_HINT)
        return entries[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        builder = self.get(name)
        try:
            inspect.signature(builder).bind(**kwargs)
        except TypeError as exc:  # a builder that does not take what rrsis passes every such builder
            raise TypeError(f"the {self.kind} builder registered as {name!r} is called with {', '.join(kwargs)}: "
                            f"{exc} (docs/guides/compose.md, 'What a builder receives')") from None
        part = builder(**kwargs)
        if part is None:  # a builder whose body is still `...` or lacks its return
            raise TypeError(f"the {self.kind} builder registered as {name!r} returned None: a builder must "
                            f"return the part it builds (an nn.Module)")
        return part

    def accepted(self, name: str, provided: tuple = ()) -> list[str] | None:
        """Keyword arguments a config may set for ``name`` (``None``: any), leaving out the
        ones the caller ``provided`` itself (``in_channels``, ``dim``...)."""
        params = inspect.signature(self.get(name)).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return [p.name for p in params if p.name not in provided and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def check_args(self, name: str, args: Mapping[str, Any], where: str, provided: tuple = ()) -> None:
        """Raise :class:`ConfigError` for a key of ``args`` the builder of ``name`` does not take."""
        known = self.accepted(name, provided)
        if known is not None:
            check_keys(args, known, f"{where} ({self.kind} {name!r})")

    def names(self) -> list[str]:
        return sorted(self._table())

    def __contains__(self, name: object) -> bool:
        return name in self._table()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def _unknown_message(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {name!r}{suggest(name, known) or '.'} Known: {', '.join(sorted(known)) or '(none)'}"


# ---------------------------------------------------------------------------- models

_model_entrypoints: dict[str, Callable[..., Any]] = {}
_register_builtins = _plugins.load_builtins  # the built-ins, then installed plugins


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model entrypoint under ``name`` (hyphens allowed, e.g. ``"gl-msin"``).

    The entrypoint is ``fn(config=None, **overrides) -> nn.Module``: it builds the model a
    saved ``config`` tree describes (else its own defaults) with ``overrides`` applied.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not str(getattr(fn, "__module__", "")).startswith("rrsis."):
            _register_builtins()  # a clash with a built-in name is refused here, not at first use
        old = _model_entrypoints.get(name, fn)  # the same owner again (a cell re-run, a reload) replaces its own
        if old is not fn and not _plugins._reregistration("model", name, _plugins._owner(old), _plugins._owner(fn)):
            raise ValueError(f"model {name!r} is already registered")
        _model_entrypoints[name] = fn
        return fn

    return deco


def split_model_name_tag(name: str) -> tuple[str, str]:
    """``"gl-msin.in22k"`` → ``("gl-msin", "in22k")``; no tag gives ``""``."""
    arch, _, tag = name.partition(".")
    return arch, tag


def list_models(pattern: str | Sequence[str] = "*", pretrained: bool = False,
                exclude_filters: str | Sequence[str] = ()) -> list[str]:
    """Registered model names matching an ``fnmatch`` pattern or any of a list of them, sorted,
    as timm's ``list_models``: ``pretrained=True`` lists the ``arch.tag`` names of the matching
    architectures instead (:func:`list_pretrained`); names matching ``exclude_filters`` are left out."""
    _register_builtins()
    include = [pattern] if isinstance(pattern, str) else list(pattern)
    exclude = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)

    def matches(name: str, patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in {name, split_model_name_tag(name)[0]})

    names = sorted(_pretrained) if pretrained else sorted(_model_entrypoints)
    return [n for n in names if matches(n, include) and not matches(n, exclude)]


def is_model(name: str) -> bool:
    _register_builtins()
    arch, tag = split_model_name_tag(name)
    return arch in _model_entrypoints and (not tag or f"{arch}.{tag}" in _pretrained)


def model_entrypoint(name: str) -> Callable[..., Any]:
    _register_builtins()
    arch, tag = split_model_name_tag(name)
    if arch not in _model_entrypoints:
        raise ConfigError(_unknown_message("model", arch, list(_model_entrypoints)) + _plugins.PLUGIN_HINT)
    if tag:
        pretrained_cfg(name)  # an unknown tag is an error, not a no-op
    return _model_entrypoints[arch]


@dataclass(frozen=True)
class ModelEstimate:
    """What a configuration costs, known before anything is allocated.

    Attributes:
        params: parameter count; buffers: buffer elements (position tables, norms' statistics).
        param_bytes: bytes of parameters and buffers as built (float32).
        activation_bytes: estimated activation memory of one training image at the model's
            ``image_size`` (float32, the forward tensors autograd keeps); ``None`` for models
            that do not estimate it.
    """

    params: int
    buffers: int
    param_bytes: int
    activation_bytes: int | None


def probe_model(name: str, config: Mapping[str, Any] | None = None, *, max_params: Any = None,
                max_activation_gib: Any = None, **overrides: Any):
    """Build ``name`` on PyTorch's ``meta`` device (shapes only, no memory), estimate its cost and
    refuse it over the limits; returns ``(meta model, ModelEstimate)``.

    Args:
        max_params: largest parameter count accepted (default ``RRSIS_MAX_PARAMS`` or
            :data:`~rrsis._config.DEFAULT_MAX_PARAMS`, 2·10⁹).
        max_activation_gib: largest estimated activation memory of one training image, in GiB
            (default ``RRSIS_MAX_ACTIVATION_GIB`` or 64).

    Raises:
        ConfigError: a size above its bound (:data:`~rrsis._config.SIZE_LIMITS`), or an estimate
            above a limit; the message names the limit and how to raise it.
    """
    import torch

    limit_params, limit_gib = resource_limits(max_params, max_activation_gib)
    fn = model_entrypoint(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    with torch.device("meta"):
        probe = fn(config, **kwargs)
    params = sum(p.numel() for p in probe.parameters())
    buffers = sum(b.numel() for b in probe.buffers())
    nbytes = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))
    estimate_fn = getattr(probe, "estimate_activation_bytes", None)
    act = int(estimate_fn()) if callable(estimate_fn) else None
    est = ModelEstimate(params=params, buffers=buffers, param_bytes=nbytes, activation_bytes=act)
    if params > limit_params:
        raise ConfigError(f"{name}: this configuration has {params:,} parameters ({nbytes / 2**30:.1f} GiB), above "
                          f"the limit max_params={int(limit_params):,}. Check the sizes for a typo, or raise the limit: "
                          f"max_params=... (create_model, from_pretrained), --max-params (rrsis commands) or "
                          f"${MAX_PARAMS_ENV}")
    if act is not None and act > limit_gib * 2**30:
        raise ConfigError(f"{name}: this configuration needs about {act / 2**30:.1f} GiB of activations per training "
                          f"image, above the limit max_activation_gib={limit_gib:g}. Check image_size and the sizes "
                          f"for a typo, or raise the limit: max_activation_gib=... (create_model, from_pretrained), "
                          f"--max-activation-gib (rrsis commands) or ${MAX_ACTIVATION_ENV}")
    return probe, est


def estimate_model(name: str, config: Mapping[str, Any] | None = None, **overrides: Any) -> ModelEstimate:
    """The :class:`ModelEstimate` of a configuration (checked against no limit), without
    allocating it: ``estimate_model("gl-msin", embed_dim=192).params``."""
    return probe_model(name, config, max_params=math.inf, max_activation_gib=math.inf, **overrides)[1]


def build_from_config(name: str, config: Mapping[str, Any] | None = None, *, max_params: Any = None,
                      max_activation_gib: Any = None, **overrides: Any):
    """The one builder: the model ``name`` with a saved ``config`` tree (or the architecture's
    defaults) and ``overrides`` applied. ``None`` overrides mean "not given" and are dropped.
    Used by :func:`rrsis.create_model`, :func:`rrsis.from_pretrained` and the trainer.

    The configuration is first built on the ``meta`` device and refused when it is larger than
    ``max_params`` / ``max_activation_gib`` (see :func:`probe_model`), so that a hostile or
    mistyped config fails at once instead of exhausting memory."""
    probe_model(name, config, max_params=max_params, max_activation_gib=max_activation_gib, **overrides)
    return _build_checked(name, config, **overrides)


def _build_checked(name: str, config: Mapping[str, Any] | None = None, **overrides: Any):
    """:func:`build_from_config` for a configuration :func:`probe_model` has accepted. The model
    carries the name of the entrypoint that built it (``arch``: what it is saved and rebuilt as),
    also when that entrypoint composes another registered model."""
    fn = model_entrypoint(name)
    model = fn(config, **{k: v for k, v in overrides.items() if v is not None})
    if isinstance(getattr(model, "arch", None), str):
        model.arch = split_model_name_tag(name)[0]
    return model


# ---------------------------------------------------------------------------- pretrained tags


@dataclass(frozen=True)
class PretrainedCfg:
    """What ``arch.tag`` means: where the weights come from and how inputs must look.

    Attributes:
        swin: backbone weights (a timm tag, a Hub repo, or a URL of an official checkpoint
            that is downloaded by hand and passed as ``swin_weights=``).
        text: text-encoder weights (a Hub repo).
        hub_id: a Hub repo holding the whole model (``from_pretrained``), when one exists.
        image_size: input side the weights expect.
        mean, std: input normalisation.
        tokenizer: vocabulary the text encoder was trained with.
        license: licence of the weights.
        notes: what stays random, and anything else a user must know.
    """

    swin: str | None = None
    text: str | None = None
    hub_id: str | None = None
    image_size: int = 480
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    tokenizer: str = "bert-base-uncased"
    license: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_pretrained: dict[str, PretrainedCfg] = {}
_pretrained_owners: dict[str, str] = {}  # the module that registered each tag


def register_pretrained(name: str, cfg: PretrainedCfg) -> PretrainedCfg:
    """Register the pretrained configuration ``arch.tag``; the first tag of an arch is its default.
    The module that registered a tag may register it again (a notebook cell re-run, a reload)."""
    if not split_model_name_tag(name)[1]:
        raise ValueError(f"pretrained configurations are named arch.tag, got {name!r}")
    owner = str(sys._getframe(1).f_globals.get("__name__", "?"))
    if name in _pretrained and _pretrained[name] != cfg and not _plugins._reregistration(
            "pretrained configuration", name, _pretrained_owners[name], owner):
        raise ValueError(f"pretrained configuration {name!r} is already registered")
    _pretrained[name] = cfg
    _pretrained_owners.setdefault(name, owner)
    return cfg


def list_pretrained(pattern: str = "*") -> list[str]:
    """Registered ``arch.tag`` names matching an ``fnmatch`` pattern, in registration order per arch."""
    _register_builtins()
    return [n for n in _pretrained if fnmatch.fnmatchcase(n, pattern)]


def pretrained_cfg(name: str) -> PretrainedCfg:
    """The configuration of ``arch.tag``, or of ``arch``'s default tag when none is given."""
    _register_builtins()
    arch, tag = split_model_name_tag(name)
    tags = [n for n in _pretrained if split_model_name_tag(n)[0] == arch]
    if not tag:
        if not tags:
            raise ConfigError(f"{arch!r} has no pretrained configuration: pass swin_weights= / text_weights= (files, "
                              f"directories or Hub repos), or use one of {', '.join(_pretrained) or '(none)'}")
        return _pretrained[tags[0]]
    if name not in _pretrained:
        if not tags:  # another architecture's tag would be no answer
            raise ConfigError(f"unknown pretrained tag {name!r}: {arch!r} has no pretrained tags; build it by "
                              f"its bare name {arch!r}, or use one of {', '.join(_pretrained) or '(none)'}")
        raise ConfigError(f"unknown pretrained tag {name!r}{suggest(name, tags) or '.'} Known for {arch!r}: {', '.join(tags)}")
    return _pretrained[name]


# Part tables. Each part module registers its builders here at import time.
LOCAL_ATTENTION = Registry("local attention block", builtins=True)
FUSION = Registry("pixel-word fusion", builtins=True)
GLOBAL_ENHANCEMENT = Registry("global enhancement", builtins=True)
POSITION_ENCODING = Registry("position encoding", builtins=True)
# The second stage of the ranked whole-scene mode (rrsis.scene.rank): scores a scene's components.
SCENE_RANKER = Registry("scene ranker", builtins=True)
VISUAL_BRANCH = Registry("visual branch", builtins=True)
NECKS = Registry("neck", builtins=True)
HEADS = Registry("head", builtins=True)
# Official checkpoint layouts a model module knows how to read (``rrsis convert``).
CHECKPOINT_FORMATS = Registry("official checkpoint format", builtins=True)
