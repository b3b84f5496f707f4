"""Config nodes: their annotations (``X | None`` strings under ``from __future__ import annotations``)
evaluate on the oldest supported Python and agree with the ``metadata={"node": Cls}`` that
:func:`rrsis._config.node_from_dict` reads; optional nodes build from ``None`` and from a mapping.
"""

import dataclasses
import types
import typing

import pytest

from rrsis._config import ConfigError, node_from_dict, node_to_dict
from rrsis.backbones.config import BackboneConfig, ElsaConfig
from rrsis.fusion.config import FusionConfig, GemConfig
from rrsis.models.config import ModelConfig
from rrsis.text.config import TextConfig

NODES = [ElsaConfig, BackboneConfig, GemConfig, FusionConfig, TextConfig, ModelConfig]


@pytest.mark.parametrize("cls", NODES, ids=lambda c: c.__name__)
def test_annotations_evaluate_and_name_the_node_they_hold(cls):
    hints = typing.get_type_hints(cls)
    assert set(hints) == {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        sub = f.metadata.get("node")
        if sub is None:
            continue
        hint = hints[f.name]
        if f.default is None:  # an optional node: `Cls | None`, a types.UnionType on 3.10+
            assert isinstance(hint, types.UnionType) and set(typing.get_args(hint)) == {sub, type(None)}
        else:
            assert hint is sub


def test_the_optional_nodes_are_the_ones_expected():
    optional = {(cls.__name__, f.name) for cls in NODES for f in dataclasses.fields(cls)
                if "node" in f.metadata and f.default is None}
    assert optional == {("BackboneConfig", "elsa"), ("FusionConfig", "gem")}


@pytest.mark.parametrize("cls, key, sub, data, beside", [
    (BackboneConfig, "elsa", ElsaConfig, {"kernel": 5}, {"local_attn": "elsa"}),  # ELSA needs a stage
    (FusionConfig, "gem", GemConfig, {"pool": 4}, {}),
])
def test_an_optional_node_builds_from_none_and_from_a_mapping(cls, key, sub, data, beside):
    assert getattr(node_from_dict(cls, {key: None}, "cfg"), key) is None
    built = getattr(node_from_dict(cls, {key: data, **beside}, "cfg"), key)
    assert isinstance(built, sub)
    assert {k: node_to_dict(built)[k] for k in data} == data
    with pytest.raises(ConfigError, match=rf"unknown key 'no_such_knob' in cfg\.{key}"):
        node_from_dict(cls, {key: {"no_such_knob": 1}, **beside}, "cfg")
