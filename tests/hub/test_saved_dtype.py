"""A model's dtype in ``config.json`` ("torch_dtype", as transformers writes it): saved, kept in
the weights, loaded as float32 unless ``torch_dtype="auto"`` or a dtype is asked for; old
configs without the key load as before; a value rrsis does not know is refused."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from test_hub import populate_hf_cache

import rrsis
from rrsis.cli import main
from rrsis.hub import CheckpointError

SAFETENSORS_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


@pytest.fixture(scope="module")
def save(tiny_model, tmp_path_factory):
    """``save(dtype) -> (model in that dtype, its save_pretrained directory)``, once per dtype."""
    done = {}

    def save_as(dtype):
        if dtype not in done:
            model = copy.deepcopy(tiny_model).to(dtype)
            name = str(dtype).removeprefix("torch.")
            done[dtype] = model, model.save_pretrained(tmp_path_factory.mktemp(name) / "model")
        return done[dtype]
    return save_as


def _floats(model):
    return {k: t for k, t in model.state_dict().items() if t.is_floating_point()}


def _same_bits(a, b):
    if not a.is_floating_point():
        return torch.equal(a, b)
    bits = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and torch.equal(a.view(bits), b.view(bits))  # raw bits, not numbers


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_round_trip_records_the_dtype_loads_float32_and_auto_loads_it_bit_for_bit(save, dtype):
    model, directory = save(dtype)
    config = json.loads((directory / "config.json").read_text())
    assert config["torch_dtype"] == str(dtype).removeprefix("torch.")
    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        stored = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert stored & set(SAFETENSORS_NAMES.values()) == {SAFETENSORS_NAMES[dtype]}  # the weights keep it

    default = rrsis.from_pretrained(directory)
    assert {t.dtype for t in _floats(default).values()} == {torch.float32}
    for k, t in _floats(model).items():
        assert torch.equal(_floats(default)[k], t.float()), k  # widening is exact

    auto = rrsis.from_pretrained(directory, torch_dtype="auto")
    for k, t in model.state_dict().items():
        assert _same_bits(auto.state_dict()[k], t), k


def test_an_explicit_dtype_wins_over_the_saved_one(save):
    model, directory = save(torch.bfloat16)
    loaded = rrsis.from_pretrained(directory, torch_dtype=torch.float16)
    for k, t in _floats(model).items():
        assert torch.equal(_floats(loaded)[k], t.float().to(torch.float16)), k


def _without_key(directory, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for f in directory.iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    config = json.loads((old / "config.json").read_text())
    del config["torch_dtype"]
    (old / "config.json").write_text(json.dumps(config))
    return old


def test_an_old_config_without_the_key_loads_as_before(save, tmp_path):
    model, directory = save(torch.bfloat16)
    old = _without_key(directory, tmp_path)
    assert {t.dtype for t in _floats(rrsis.from_pretrained(old)).values()} == {torch.float32}
    # "auto" then reads the weights' own dtype.
    auto = rrsis.from_pretrained(old, torch_dtype="auto")
    assert all(_same_bits(auto.state_dict()[k], t) for k, t in model.state_dict().items())


@pytest.mark.parametrize(("value", "match"), [
    ("bfloat61", r"'bfloat61' is not a dtype a saved model can have; did you mean 'bfloat16'"),
    ("auto", r"'auto' is not a dtype a saved model can have"),
    (16, r"16 is not a dtype .*valid: float32, bfloat16, float16, float64"),
])
def test_an_unknown_saved_dtype_is_refused(save, tmp_path, value, match):
    old = _without_key(save(torch.float32)[1], tmp_path)
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "torch_dtype": value}))
    with pytest.raises(CheckpointError, match=rf'config\.json: "torch_dtype": {match}'):
        rrsis.from_pretrained(old)


def test_a_misspelt_dtype_argument_gets_a_suggestion(save):
    with pytest.raises(ValueError, match=r"torch_dtype='flaot16' is not a floating dtype; did you mean 'float16'"):
        rrsis.from_pretrained(save(torch.float32)[1], torch_dtype="flaot16")


def test_auto_from_the_hub_cache(save, tmp_path):
    _, directory = save(torch.bfloat16)
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/tiny", {p.name: p for p in directory.iterdir() if p.is_file()})
    loaded = rrsis.from_pretrained("org/tiny", cache_dir=cache, local_files_only=True, torch_dtype="auto")
    assert {t.dtype for t in _floats(loaded).values()} == {torch.bfloat16}


def test_predict_command_loads_a_bfloat16_save_as_float32_as_before(save, tmp_path, monkeypatch):
    _, directory = save(torch.bfloat16)
    seen = []
    real = rrsis.hub.load.load_full_state_dict

    def spy(model, *args, **kwargs):
        seen.append(next(model.parameters()).dtype)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(rrsis.hub.load, "load_full_state_dict", spy)
    image = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image)
    assert main(["predict", "--model", str(directory), "--image", str(image), "--text", "the roof",
                 "--out", str(tmp_path / "out" / "scene")]) == 0
    assert (tmp_path / "out" / "scene_mask.png").is_file() and seen == [torch.float32]
