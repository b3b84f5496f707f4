"""Config messages that point at the cause: a key in the wrong node says where it belongs, a node
of the wrong type says it must be a mapping, a flat keyword and its node may not disagree, and a
head's or neck's refused value names the node."""

import pytest
import torch

import rrsis


def meta(name="gl-msin-tiny", **kw):
    with torch.device("meta"):
        return rrsis.create_model(name, **kw)


@pytest.mark.parametrize("kw, message", [
    ({"fusion": {"pool": 2}}, (r"'pool' in model config\.fusion: pool is a key of fusion\.gem, not of fusion "
                               r"\(flat keyword: gem_pool=\)$")),
    ({"fusion": {"refine_steps": 1}}, r"refine_steps is a key of head, not of fusion \(flat keyword: refine_steps=\)"),
    ({"backbone": {"kernel": 5}}, r"'kernel' in model config\.backbone: kernel is a key of backbone\.elsa"),
    ({"backbone": {"max_tokens": 20}}, r"max_tokens is a key of text, not of backbone"),
    ({"head": {"gate_act": "tanh"}}, r"'gate_act' in model config\.head: gate_act is a key of fusion"),
])
def test_a_misplaced_key_says_which_node_it_belongs_to(kw, message):
    with pytest.raises(rrsis.ConfigError, match=message) as info:
        meta(**kw)
    assert "did you mean" not in str(info.value)


def test_a_misplaced_key_in_a_saved_tree_is_located_too():
    from rrsis.models.config import ModelConfig

    tree = meta().config
    tree["text"] = {**tree["text"], "embed_dim": 16}
    with pytest.raises(rrsis.ConfigError, match=r"'embed_dim' in model config\.text: embed_dim is a key of backbone"):
        ModelConfig.from_dict(tree)


@pytest.mark.parametrize("kw, message", [
    ({"backbone": [1, 2]}, r"model argument 'backbone' must be a mapping of its keys \(backbone=\{\.\.\.\}\), got \[1, 2\]"),
    ({"text": 5}, r"'text' must be a mapping of its keys \(text=\{\.\.\.\}\), got 5"),
    ({"head": 5}, r"'head' must be a mapping of its keys \(head=\{\.\.\.\}\) or a registered head's name, got 5"),
    ({"neck": True}, r"'neck' must be a mapping .* or False, got True"),
])
def test_a_node_of_the_wrong_type_must_be_a_mapping(kw, message):
    with pytest.raises(rrsis.ConfigError, match=message) as info:
        meta(**kw)
    assert "did you mean" not in str(info.value)


def test_a_flat_keyword_conflicting_with_its_node_is_refused():
    with pytest.raises(rrsis.ConfigError, match=r"embed_dim=32 conflicts with backbone\.embed_dim=16 given in the same call"):
        meta(embed_dim=32, backbone={"embed_dim": 16})
    with pytest.raises(rrsis.ConfigError, match=r"gem_pool=4 conflicts with fusion\.gem\.pool=2"):
        meta(gem_pool=4, fusion={"gem": {"pool": 2}})
    assert meta(embed_dim=16, backbone={"embed_dim": 16}).config["backbone"]["embed_dim"] == 16  # the same value


@pytest.mark.parametrize("kw", [{"mean": [0.5, 0.5]}, {"std": [0.2, 0.2]}, {"mean": [0.5] * 4, "std": [0.2] * 3}])
def test_statistics_of_the_wrong_length_say_so(kw):
    name = "mean" if "mean" in kw else "std"
    with pytest.raises(rrsis.ConfigError, match=rf"{name} has {len(kw[name])} values but in_chans=3: give one per input band"):
        meta(**kw)


@pytest.mark.parametrize("name, kw, message", [
    ("gl-msin-tiny", {"head": {"name": "refine", "hidden": "16"}},
     r"^model config\.head \(head 'refine'\): hidden must be an integer, got '16'$"),
    ("gl-msin-tiny", {"refine_steps": 1.5}, r"^model config\.head \(head 'refine'\): refine_steps must be an integer"),
    ("rmsin-tiny", {"neck": {"name": "cim", "grid": "4"}}, r"^model config\.neck \(neck 'cim'\): grid must be an integer"),
])
def test_a_head_or_neck_value_error_names_the_node(name, kw, message):
    with pytest.raises(rrsis.ConfigError, match=message):
        meta(name, **kw)
