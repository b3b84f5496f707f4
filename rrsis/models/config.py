"""The model config tree and how keywords and old ``config.json`` files map onto it.

A model config is a small tree of part-owned nodes::

    {"image_size": 480,
     "backbone": BackboneConfig  (+ "elsa": ElsaConfig when a stage uses ELSA),
     "text":     TextConfig,
     "fusion":   FusionConfig    (+ "gem": GemConfig when GEM is on),
     "neck":     {"name": <registered neck>, ...its builder's keywords} or None,
     "head":     {"name": <registered head>, ...its builder's keywords}}

:func:`resolve` applies overrides to an architecture's defaults. Overrides are nested nodes
(``head={"name": "refine", "refine_steps": 1}``) or the flat keywords of :data:`ALIASES`
(``refine_steps=1``), each an alias of exactly one node key. ``None`` means "not given"; a part
is switched off with ``False`` (``neck=False``, ``use_gem=False``, ``visual_branch=False``).
Aliases are resolved here, once, where a config enters (``create_model``, ``from_pretrained``,
the trainer); the parts receive their validated nodes and ``model.config`` is the plain tree
(``model.config["head"]["refine_steps"]``, never ``model.config["refine_steps"]``).
:func:`migrate_flat` reads the flat ``model_args`` of rrsis 0.1 ``config.json`` files.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import heads  # noqa: F401  (registers the heads a config may name)
from .._config import (
    ConfigError,
    check_keys,
    check_size,
    node_from_dict,
    node_to_dict,
    suggest,
)
from ..backbones.config import BackboneConfig, ElsaConfig
from ..fusion.config import FusionConfig, GemConfig
from ..registry import FUSION, HEADS, NECKS, Registry
from ..text.config import TextConfig

__all__ = ["ALIASES", "ModelConfig", "activation_bytes", "migrate_flat", "resolve"]

NODES = ("backbone", "text", "fusion", "neck", "head")
MODEL_KEYS = ("image_size",)
# Keys a head/neck gets from the model, never from a config.
_PROVIDED = ("in_channels", "num_classes")

# flat keyword → the one node key it sets
ALIASES: dict[str, tuple] = {
    **{k: ("backbone", k) for k in (
        "embed_dim", "depths", "num_heads", "window_size", "patch_size", "stem", "mlp_ratio", "qkv_bias",
        "drop_path_rate", "local_attn", "in_chans", "mean", "std", "scale", "rgb", "band_names",
        "image_ratio", "gsd")},
    **{f"elsa_{k}": ("backbone", "elsa", k) for k in ("kernel", "dilation", "group_width", "qk_scale", "lam", "gamma")},
    "fusion_heads": ("fusion", "heads"),
    "fusion_drop": ("fusion", "dropout"),
    "gate_act": ("fusion", "gate_act"),
    "keep_final_gate": ("fusion", "keep_final_gate"),
    "visual_branch": ("fusion", "visual_branch"),
    "position": ("fusion", "position"),
    "use_gem": ("fusion", "gem", "stages"),
    "gem": ("fusion", "gem", "name"),
    "gem_pool": ("fusion", "gem", "pool"),
    "gem_heads": ("fusion", "gem", "heads"),
    **{f"text_{k}": ("text", k) for k in (
        "vocab_size", "hidden_size", "intermediate_size", "type_vocab_size", "layer_norm_eps", "dropout",
        "freeze_embeddings", "freeze_last_layers")},
    "text_layers": ("text", "num_layers"),
    "text_heads": ("text", "num_heads"),
    "text_max_positions": ("text", "max_positions"),
    "max_tokens": ("text", "max_tokens"),
    "head_hidden": ("head", "hidden"),
    "refine_steps": ("head", "refine_steps"),
    "neck_args": ("neck",),
    "head_args": ("head",),
}


def _named_node(registry: Registry, node: Any, where: str) -> dict[str, Any]:
    if not isinstance(node, Mapping) or "name" not in node:
        raise ConfigError(f"{where} must be a mapping with a 'name' (one of {registry.names()}), got {node!r}")
    if not isinstance(node["name"], str):
        raise ConfigError(f"{where}.name must be a string, got {node['name']!r}")
    registry.get(node["name"])  # unknown name: names the kind and the closest one
    args = {k: v for k, v in node.items() if k != "name"}
    registry.check_args(node["name"], args, where, provided=_PROVIDED)
    return {"name": node["name"], **args}


@dataclass
class ModelConfig:
    """The validated tree; ``node_to_dict`` of it is what ``config.json`` stores."""

    image_size: int = 480
    backbone: BackboneConfig = field(default_factory=BackboneConfig, metadata={"node": BackboneConfig})
    text: TextConfig = field(default_factory=TextConfig, metadata={"node": TextConfig})
    fusion: FusionConfig = field(default_factory=FusionConfig, metadata={"node": FusionConfig})
    neck: dict[str, Any] | None = None
    head: dict[str, Any] = field(default_factory=lambda: {"name": "simple"})

    def __post_init__(self) -> None:
        check_size("image_size", self.image_size, low=32)
        if self.image_size % 32:
            raise ConfigError(f"image_size must be a multiple of 32, got {self.image_size}")
        try:
            self.fusion.check_stages(len(self.backbone.depths))
        except ConfigError as exc:
            raise ConfigError(f"fusion: {exc}") from None
        if self.neck is not None:
            self.neck = _named_node(NECKS, self.neck, "neck")
        self.head = _named_node(HEADS, self.head, "head")

    @classmethod
    def from_dict(cls, tree: Mapping[str, Any]) -> ModelConfig:
        if isinstance(tree, Mapping):
            check_placement(tree)
        return node_from_dict(cls, tree, "model config")

    def to_dict(self) -> dict[str, Any]:
        return node_to_dict(self)


def _node_keys(tree: Mapping[str, Any]) -> dict[str, list[str]]:
    """The keys each node of ``tree`` accepts, by node path (a head/neck: its named part's)."""
    keys = {path: [f.name for f in dataclasses.fields(cls)] for path, cls in (
        ("backbone", BackboneConfig), ("backbone.elsa", ElsaConfig), ("text", TextConfig),
        ("fusion", FusionConfig), ("fusion.gem", GemConfig))}
    for node, registry in (("head", HEADS), ("neck", NECKS)):
        name = tree[node].get("name") if isinstance(tree.get(node), Mapping) else None
        accepted = registry.accepted(name, _PROVIDED) if isinstance(name, str) and name in registry else None
        if accepted is not None:
            keys[node] = ["name", *accepted]
    return keys


def _declared(registry: Registry, name: Any, key: str) -> bool:
    accepted = registry.accepted(name) if isinstance(name, str) and name in registry else []
    return accepted is not None and key in accepted


def check_placement(tree: Mapping[str, Any]) -> None:
    """Refuse a key given in the wrong node, saying where it belongs ("kernel is a key of
    backbone.elsa"), before the nodes' own checks guess the closest key of the wrong node."""
    keys = _node_keys(tree)
    flat = {".".join(path): alias for alias, path in ALIASES.items()}
    for path, valid in keys.items():
        node: Any = tree
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        for key in node if isinstance(node, Mapping) else ():
            if path == "fusion" and key not in valid and _declared(FUSION, node.get("name"), key):
                raise ConfigError(
                    f"unknown key {key!r} in model config.fusion: fusion {node['name']!r} declares it, but the "
                    f"fusion node has fixed keys ({', '.join(valid)}); a fusion builder's own keywords keep "
                    f"their defaults (docs/guides/compose.md, 'What a builder receives')")
            homes = [p for p, ks in keys.items() if p != path and key in ks and key != "name"]
            if key in valid or not homes:
                continue
            aliases = [f"{flat[f'{h}.{key}']}=" for h in homes if f"{h}.{key}" in flat]
            alias = f" (flat keyword: {' or '.join(aliases)})" if aliases else ""
            raise ConfigError(f"unknown key {key!r} in model config.{path}: {key} is a key of "
                              f"{' and '.join(homes)}, not of {path}{alias}")


def activation_bytes(tree: Mapping[str, Any], batch_size: int = 1) -> int:
    """Estimated activation memory of a training step (float32 tensors the forward keeps for the
    backward) for ``batch_size`` images at the config's ``image_size``: a per-block count of the
    maps each part writes, accurate to a small factor, used to refuse absurd configs before
    anything is allocated (``max_activation_gib``), not to plan a batch size.

    Args:
        tree: a model config tree (``model.config``).
        batch_size: images per step.
    """
    bb, text, head = tree["backbone"], tree["text"], tree["head"]
    fusion = tree.get("fusion") or {}
    gem = fusion.get("gem") or {}
    side = tree["image_size"] // bb["patch_size"]
    attn = bb["local_attn"] if isinstance(bb["local_attn"], list) else [bb["local_attn"]] * len(bb["depths"])
    k = (bb.get("elsa") or {}).get("kernel", 1)
    words = text["max_tokens"]
    floats = 0
    for i, (depth, nh) in enumerate(zip(bb["depths"], bb["num_heads"])):
        n = max(side >> i, 1) ** 2
        c = bb["embed_dim"] << i
        window = k * k if attn[i] == "elsa" else bb["window_size"] ** 2
        # norms, q/k/v, projection, residuals (8 maps) + the MLP's two hidden maps + scores and
        # probabilities per head
        per_block = n * (c * (8 + 2 * bb["mlp_ratio"]) + 2 * nh * window)
        # pixel-word fusion, gate and GEM: a few maps of the stage, word scores, pooled scores
        fuse = n * (c * 10 + 2 * words + 2 * nh * gem.get("pool", 0) ** 2)
        floats += depth * per_block + fuse
    hidden = head.get("hidden") or 256
    n0 = max(side, 1) ** 2
    steps = head.get("refine_steps", 0)
    # decoder maps on the 1/patch grid, and each step's logits (and probabilities) at full size
    floats += n0 * hidden * (6 + 6 * steps) + n0 * head.get("upscale", 1) ** 2 * 4 * (steps + 1)
    floats += words * text["hidden_size"] * text["num_layers"] * (8 + 2 * text["intermediate_size"] // text["hidden_size"])
    return int(4 * floats * batch_size)


# ---------------------------------------------------------------------------- overrides

_OFF = object()  # "switch this part off"


def _set(patch: dict, path: tuple, value: Any, key: str) -> None:
    node = patch
    for i, part in enumerate(path[:-1]):
        sub = node.setdefault(part, {})
        if sub is _OFF:
            raise ConfigError(f"{key} is set, but {'.'.join(path[: i + 1])} is switched off by another keyword")
        node = sub
    node[path[-1]] = value


_MISSING = object()


def _get(patch: dict, path: tuple) -> Any:
    node: Any = patch
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _patch_from_overrides(overrides: Mapping[str, Any]) -> dict:
    """Overrides (nested nodes and flat aliases) → one nested patch; ``_OFF`` removes a part."""
    patch: dict = {}
    # Node-level values first, so that an alias refines a node given in the same call.
    order = sorted(overrides, key=lambda k: k not in NODES)
    for key in order:
        value = overrides[key]
        if value is None:
            continue
        if key in MODEL_KEYS:
            patch[key] = value
        elif key in ("neck", "fusion", "head") and isinstance(value, str):
            _set(patch, (key, "name"), value, key)
        elif key in NODES and isinstance(value, Mapping):
            patch[key] = _deep_merge(patch.get(key, {}), dict(value))
        elif key in ("neck", "visual_branch", "use_gem") and value is False:
            if key == "neck":
                patch["neck"] = _OFF
            elif key == "visual_branch":
                _set(patch, ("fusion", "visual_branch"), None, key)
            else:
                patch.setdefault("fusion", {})["gem"] = _OFF
        elif key in ("neck_args", "head_args"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be a mapping, got {value!r}")
            for k, v in value.items():
                _set(patch, (ALIASES[key][0], k), v, key)
        elif key in NODES:
            how = {"neck": ", a registered neck's name or False", "head": " or a registered head's name",
                   "fusion": " or a registered fusion's name"}.get(key, "")
            raise ConfigError(f"model argument {key!r} must be a mapping of its keys ({key}={{...}}){how}, "
                              f"got {value!r}")
        elif key in ALIASES:
            given = _get(patch, ALIASES[key])
            if given is not _MISSING and given != value:
                raise ConfigError(f"{key}={value!r} conflicts with {'.'.join(ALIASES[key])}={given!r} given in "
                                  f"the same call: give one of them")
            _set(patch, ALIASES[key], value, key)
        else:
            known = list(MODEL_KEYS) + list(NODES) + list(ALIASES)
            raise ConfigError(f"unknown model argument {key!r}{suggest(key, known)} "
                              f"(model keys: {', '.join(MODEL_KEYS + NODES)}; flat aliases: rrsis.models.config.ALIASES)")
    return patch


def _deep_merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _merge_named(base: dict | None, patch: Any, registry: Registry, where: str) -> dict | None:
    """A head/neck node: changing its ``name`` keeps only the defaults the new part accepts."""
    if patch is _OFF:
        return None
    if base is None:
        if "name" not in patch:
            raise ConfigError(f"{where} is off for this model; give {where}=<name> to add one (keys given: {sorted(patch)})")
        return dict(patch)
    name = patch.get("name", base.get("name"))
    if name != base.get("name"):
        accepted = registry.accepted(name, _PROVIDED) if name in registry else []
        base = {k: v for k, v in base.items() if k != "name" and (accepted is None or k in accepted)}
    return {**base, **patch, "name": name}


def resolve(defaults: Mapping[str, Any], overrides: Mapping[str, Any], fixed: Mapping[str, Any] | None = None,
            arch: str = "model") -> ModelConfig:
    """The validated config of an architecture with ``defaults`` (a tree) and ``overrides``.

    Args:
        fixed: node paths (``"head.name"``) whose values define the architecture; an override
            that changes one raises.
    """
    patch = _patch_from_overrides(overrides)
    tree = copy.deepcopy(dict(defaults))
    for key, value in patch.items():
        if key in ("head", "neck"):
            tree[key] = _merge_named(tree.get(key), value, HEADS if key == "head" else NECKS, key)
        elif key in ("backbone", "text", "fusion"):
            node = dict(tree.get(key) or {})
            for k, v in value.items():
                if k in ("gem", "elsa") and isinstance(v, dict):
                    if node.get(k) is None and k == "gem" and not v.get("stages"):
                        raise ConfigError(f"GEM is off for this model; set use_gem=True to add it (keys given: {sorted(v)})")
                    node[k] = {**(node.get(k) or {}), **v}
                else:
                    node[k] = None if v is _OFF else v
            tree[key] = node
        else:
            tree[key] = value
    backbone = tree.get("backbone") or {}
    attn = backbone.get("local_attn", "swin")
    uses_elsa = "elsa" in (attn if isinstance(attn, list) else [attn])
    if not uses_elsa and backbone.get("elsa") is not None:
        if "elsa" in patch.get("backbone", {}):
            raise ConfigError(f"ELSA settings {sorted(patch['backbone']['elsa'])} are given, but no stage uses "
                              f"ELSA (local_attn={attn!r})")
        tree["backbone"] = {**backbone, "elsa": None}
    gem = (tree.get("fusion") or {}).get("gem")
    if isinstance(gem, dict) and gem.get("stages") is False:
        tree["fusion"] = {**tree["fusion"], "gem": None}
    cfg = ModelConfig.from_dict(tree)
    check_fixed(cfg, fixed or {}, arch)
    return cfg


def check_fixed(cfg: ModelConfig, fixed: Mapping[str, Any], arch: str) -> None:
    data = cfg.to_dict()
    for path, want in fixed.items():
        node: Any = data
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node != want:
            raise ConfigError(f"{arch} has {path}={want!r} by definition, got {node!r}; "
                              "build the architecture that has it (e.g. gl-msin for ELSA, GEM, the refine head)")


# ---------------------------------------------------------------------------- rrsis 0.1 files


def is_flat(args: Mapping[str, Any]) -> bool:
    """True for the flat ``model_args`` rrsis 0.1 wrote (no nested nodes)."""
    return not any(isinstance(args.get(n), Mapping) for n in ("backbone", "text", "fusion"))


def migrate_flat(args: Mapping[str, Any]) -> dict[str, Any]:
    """rrsis 0.1 flat ``model_args`` → overrides for :func:`resolve`.

    0.1 stored every constructor argument, including ones its parts ignored (ELSA knobs of
    Swin-only models, GEM knobs with GEM off, ``refine_steps`` of non-refining heads) and
    ``None`` for "the part's default" (``head_hidden``) or "no part" (``neck``,
    ``visual_branch``); those are translated, everything else is checked as usual.
    """
    out = {k: v for k, v in args.items() if k != "arch"}
    check_keys(out, list(ALIASES) + ["fusion", "head", "neck", "image_size"], "config.json model_args")
    for key in ("neck", "visual_branch"):
        if key in out and out[key] is None:
            out[key] = False
    out = {k: v for k, v in out.items() if v is not None}
    attn = out.get("local_attn", "swin")
    if "elsa" not in (attn if isinstance(attn, list) else [attn]):
        out = {k: v for k, v in out.items() if not k.startswith("elsa_")}
    use_gem = out.get("use_gem", False)
    if not any(use_gem if isinstance(use_gem, list) else [use_gem]):
        out = {k: v for k, v in out.items() if k not in ("gem", "gem_pool", "gem_heads")}
    if out.get("neck") is False:
        out.pop("neck_args", None)
    head = out.get("head", "simple")
    accepted = HEADS.accepted(head, _PROVIDED) if head in HEADS else None
    if accepted is not None:
        for flat, key in (("refine_steps", "refine_steps"), ("head_hidden", "hidden")):
            if key not in accepted:
                out.pop(flat, None)
    return out
