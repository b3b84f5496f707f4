"""save_pretrained writes only folders from_pretrained loads: a compiled model is saved as the
model it wraps; a state dict its config does not build is refused before anything is written."""

from __future__ import annotations

import pytest
import torch

import rrsis
from rrsis.hub import save_pretrained
from rrsis.registry import HEADS


def test_a_head_swapped_by_assignment_is_refused_before_writing(tmp_path):
    model = rrsis.create_model("gl-msin-tiny")
    model.classifier = HEADS.build("simple", in_channels=model.backbone.dims, hidden=8)
    target = tmp_path / "swapped"
    with pytest.raises(ValueError, match="not the one its config \\(its head: 'refine'\\) builds") as err:
        model.save_pretrained(target)
    msg = str(err.value)
    new_keys = sorted(k for k in model.state_dict() if k.startswith("classifier."))
    assert new_keys[0] in msg and "model tensors the config does not build" in msg
    assert "tensors the config builds that the model lacks" in msg and "head={...}" in msg
    assert list(tmp_path.iterdir()) == []  # not even a temporary folder


def test_a_new_head_through_the_config_saves_and_loads(tmp_path):
    rrsis.create_model("gl-msin-tiny").save_pretrained(tmp_path / "a")
    model = rrsis.from_pretrained(tmp_path / "a", head={"name": "simple", "hidden": 8}, strict=False)
    model.save_pretrained(tmp_path / "b")
    again = rrsis.from_pretrained(tmp_path / "b")
    assert again.config["head"] == {"name": "simple", "hidden": 8}
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("save", [save_pretrained, lambda m, d: m.save_pretrained(d)])
def test_torch_compile_wrapper_saves_the_model_it_wraps(tmp_path, save):
    model = rrsis.create_model("gl-msin-tiny")
    compiled = torch.compile(model)  # lazy: nothing is compiled unless it runs
    assert next(iter(compiled.state_dict())).startswith("_orig_mod.")
    save(compiled, tmp_path / "m")
    loaded = rrsis.from_pretrained(tmp_path / "m")
    assert set(loaded.state_dict()) == set(model.state_dict())
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_a_compiled_or_ddp_state_dict_loads_into_a_plain_model():
    torch.manual_seed(0)
    source = rrsis.create_model("gl-msin-tiny")
    compiled_state = torch.compile(source).state_dict()
    assert all(k.startswith("_orig_mod.") for k in compiled_state)
    for state in (compiled_state, {"module." + k: v for k, v in source.state_dict().items()}):
        torch.manual_seed(1)
        target = rrsis.create_model("gl-msin-tiny")
        assert not all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))
        target.load_state_dict(state)
        for (k, a), b in zip(source.state_dict().items(), target.state_dict().values()):
            assert torch.equal(a, b), k
    # Only a prefix every key shares is removed: a mixed dict is still refused, naming the keys.
    mixed = dict(source.state_dict())
    first = next(iter(mixed))
    mixed["module." + first] = mixed.pop(first)
    with pytest.raises(RuntimeError, match="module\\." + first.replace(".", "\\.")):
        rrsis.create_model("gl-msin-tiny").load_state_dict(mixed)
