"""Which weight files load: pytorch_model.bin where a Hub cache holds nothing else (as `hf download`
leaves it, with no record of absent files), and sharded weights as transformers writes them
(an index JSON naming the shard of each tensor), from a folder and from the Hub cache. No network."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import load_file, save_file
from test_hub import (
    FULL_LAYOUT,
    batch,
    bert_like,
    logits,
    offline,
    populate_hf_cache,
    tiny,
    write_vocab,
)

import rrsis
from rrsis.hub import CheckpointError

__all__ = ["offline"]  # the fixture, imported for the tests below


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny()
    directory = model.save_pretrained(tmp_path_factory.mktemp("saved") / "gl-msin-tiny")
    return model, directory


def _copy_without_weights(directory, target):
    target.mkdir()
    for p in directory.iterdir():
        if p.is_file() and p.name != "model.safetensors":
            (target / p.name).write_bytes(p.read_bytes())
    return target


def _shard(directory, target, fmt="safetensors", parts=3):
    """transformers' layout: model-0000i-of-0000n.<fmt> shards and <weights name>.index.json."""
    state = load_file(directory / "model.safetensors")
    keys = sorted(state)
    weight_map = {}
    for i in range(parts):
        name = f"model-{i + 1:05d}-of-{parts:05d}.{fmt}" if fmt == "safetensors" else \
            f"pytorch_model-{i + 1:05d}-of-{parts:05d}.bin"
        chunk = {k: state[k].contiguous() for k in keys[i::parts]}
        if fmt == "safetensors":
            save_file(chunk, target / name, metadata={"format": "pt"})
        else:
            torch.save(chunk, target / name)
        weight_map.update(dict.fromkeys(chunk, name))
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    (target / index).write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return target


def test_a_cache_holding_only_pytorch_model_bin_loads_offline(saved, tmp_path, offline):
    model, directory = saved
    folder = _copy_without_weights(directory, tmp_path / "bin")
    torch.save(load_file(directory / "model.safetensors"), folder / "pytorch_model.bin")
    cache = tmp_path / "hub"
    # As snapshot_download leaves it: no .no_exist marker saying the repo lacks model.safetensors.
    populate_hf_cache(cache, "org/binonly", {p.name: p for p in folder.iterdir()})
    loaded = rrsis.from_pretrained("org/binonly", cache_dir=cache, local_files_only=True)
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))
    assert loaded.tokenizer is not None


def test_a_cache_with_no_weight_file_names_every_name_looked_for(saved, tmp_path, offline):
    _, directory = saved
    folder = _copy_without_weights(directory, tmp_path / "none")
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/noweights", {p.name: p for p in folder.iterdir()})
    with pytest.raises(LocalEntryNotFoundError, match=r"no weight file is in the cache \(looked for "
                       r"model.safetensors, .*pytorch_model.bin.*is not in the Hugging Face cache"):
        rrsis.from_pretrained("org/noweights", cache_dir=cache)


def test_part_weights_from_a_cache_holding_only_pytorch_model_bin(tmp_path, offline):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    bert = bert_like(probe).state_dict()
    (tmp_path / "bert").mkdir()
    torch.save(bert, tmp_path / "bert" / "pytorch_model.bin")
    vocab = write_vocab(tmp_path / "bert", probe.config["text"]["vocab_size"])
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/bert", {"pytorch_model.bin": tmp_path / "bert" / "pytorch_model.bin",
                                          "vocab.txt": vocab})
    model = rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=False, text_weights="org/bert",
                               cache_dir=cache, local_files_only=True, **FULL_LAYOUT["gl-msin-tiny"])
    state = model.state_dict()
    assert model.load_report.sources["text"] == "org/bert/pytorch_model.bin"
    for k, v in bert.items():
        if not k.startswith("pooler."):
            assert torch.equal(state["text_encoder.bert." + k], v), k


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_sharded_weights_load_from_a_folder(saved, tmp_path, fmt):
    model, directory = saved
    folder = _shard(directory, _copy_without_weights(directory, tmp_path / "sharded"), fmt)
    loaded = rrsis.from_pretrained(folder)
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_sharded_weights_load_from_the_hub_cache(saved, tmp_path, offline):
    model, directory = saved
    folder = _shard(directory, _copy_without_weights(directory, tmp_path / "sharded"))
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/sharded", {p.name: p for p in folder.iterdir()})
    loaded = rrsis.from_pretrained("org/sharded", cache_dir=cache)
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_a_sharded_checkpoint_is_checked_from_its_headers(saved, tmp_path):
    _, directory = saved
    folder = _shard(directory, _copy_without_weights(directory, tmp_path / "sharded"))
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    key, shard = next(iter(index["weight_map"].items()))
    state = load_file(folder / shard)
    state[key] = torch.zeros(3, 3, 3)
    save_file(state, folder / shard)
    with pytest.raises(CheckpointError, match=rf"(?s)model.safetensors.index.json does not fit .*{key}: checkpoint \[3, 3, 3\]"):
        rrsis.from_pretrained(folder)


@pytest.mark.parametrize(("edit", "says"), [
    (lambda m: m.update({next(iter(m)): "../elsewhere.safetensors"}), "shards must be .safetensors files beside"),
    (lambda m: m.update({next(iter(m)): "model-00009-of-00009.safetensors"}), "names shards that are not beside it"),
    (lambda m: m.update({"not.a.tensor": next(iter(m.values()))}), "1 tensors it lists are in none of its shards"),
])
def test_a_broken_index_is_refused_naming_it(saved, tmp_path, edit, says):
    _, directory = saved
    folder = _shard(directory, _copy_without_weights(directory, tmp_path / "sharded"))
    path = folder / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    edit(index["weight_map"])
    path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=says):
        rrsis.from_pretrained(folder)
