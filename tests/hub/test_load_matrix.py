"""from_pretrained as users meet it: a Hub that cannot be reached, a dtype on load, a typo in a
keyword argument; ``rrsis convert`` with a head count that is not one.

The Hub cases run the real ``hf_hub_download`` against a cache laid out on disk the way
huggingface_hub writes it, with every outgoing connection refused and offline mode OFF: what a
user on a machine without network sees when they did not set ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import sys

import huggingface_hub
import pytest
import torch
from _fixtures import FIXTURES, REPO
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file
from test_hub import FULL_LAYOUT, batch, bert_like, logits, populate_hf_cache, tiny, write_vocab

import rrsis
from rrsis.hub import CheckpointError


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt is counted and refused; offline mode stays off."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    assert not huggingface_hub.is_offline_mode()
    return attempts


@pytest.fixture
def download_calls(monkeypatch):
    calls = []
    real = huggingface_hub.hf_hub_download

    def spy(repo_id, filename, **kwargs):
        calls.append((filename, kwargs["local_files_only"]))
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    return calls


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny()
    directory = model.save_pretrained(tmp_path_factory.mktemp("saved") / "gl-msin-tiny")
    return model, directory


def test_unreachable_hub_loads_from_the_cache_after_one_request(saved, tmp_path, no_network,
                                                                          download_calls, caplog):
    model, directory = saved
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/tiny", {p.name: p for p in directory.iterdir() if p.is_file()})
    with caplog.at_level(logging.WARNING, logger="rrsis.hub.load"):
        loaded = rrsis.from_pretrained("org/tiny", cache_dir=cache)
    # One HEAD request (the transport may try its connection twice). Without the check each file
    # made its own, and the uncached optional scene_ranker.json six with back-off (about 23 s).
    assert 1 <= len(no_network) <= 2
    assert download_calls and all(lfo for _, lfo in download_calls)
    assert "could not be reached" in caplog.text
    assert loaded.tokenizer is not None and loaded.scene_ranker is None
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_unreachable_hub_and_a_cache_miss_says_why_at_once(tmp_path, no_network):
    with pytest.raises(LocalEntryNotFoundError, match="could not be reached .*ConnectError"):
        rrsis.from_pretrained("org/not-cached", cache_dir=tmp_path / "hub")
    assert 1 <= len(no_network) <= 2


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bfloat16", torch.float16])
def test_torch_dtype_casts_the_loaded_weights(saved, dtype):
    model, directory = saved
    loaded = rrsis.from_pretrained(directory, torch_dtype=dtype)
    want = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    assert {t.dtype for t in loaded.state_dict().values() if t.is_floating_point()} == {want}
    # Independent reference: the float32 weights cast once, in the original model.
    for name, tensor in model.state_dict().items():
        got = loaded.state_dict()[name]
        assert torch.equal(got, tensor.to(want) if tensor.is_floating_point() else tensor), name


def test_bfloat16_model_predicts(saved):
    _, directory = saved
    loaded = rrsis.from_pretrained(directory, torch_dtype="bfloat16")
    masks = loaded.predict([torch.zeros(40, 48, 3, dtype=torch.uint8).numpy()], ["the storage tank"])
    assert masks[0].shape == (40, 48) and masks[0].dtype == bool


@pytest.mark.parametrize("bad", [torch.int8, "half", "bf16", 16])
def test_torch_dtype_must_be_a_floating_dtype(saved, bad):
    with pytest.raises(ValueError, match="torch_dtype=.*not a floating dtype"):
        rrsis.from_pretrained(saved[1], torch_dtype=bad)


def test_a_keyword_typo_is_blamed_on_the_keyword_not_the_file(saved):
    with pytest.raises(CheckpointError, match=r"with the keyword arguments \['dtype'\].*unknown model argument 'dtype'"):
        rrsis.from_pretrained(saved[1], dtype=torch.bfloat16)


needs_fixtures = pytest.mark.skipif(not (FIXTURES / "lavt" / "checkpoint.pth").exists(),
                                    reason="official-format fixtures not found")


@needs_fixtures
@pytest.mark.parametrize("heads", [0, -4])
def test_convert_refuses_a_non_positive_head_count(tmp_path, heads):
    from rrsis.convert import convert_checkpoint

    with pytest.raises(ValueError, match=f"text_heads must be a positive integer.*got {heads}"):
        convert_checkpoint(FIXTURES / "lavt" / "checkpoint.pth", tmp_path / "out", arch="lavt", text_heads=heads)
    assert not (tmp_path / "out").exists()


@needs_fixtures
@pytest.mark.parametrize("flag", ["--text-heads", "--max-tokens"])
def test_convert_cli_non_positive_counts_exit_2_naming_the_flag(tmp_path, flag):
    out = subprocess.run(
        [sys.executable, "-m", "rrsis", "convert", "--arch", "lavt", str(FIXTURES / "lavt" / "checkpoint.pth"),
         str(tmp_path / "out"), flag, "0"],
        check=False, capture_output=True, text=True, cwd=REPO,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert f"argument {flag}: '0': expected a positive integer" in out.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def test_a_pickle_holding_code_is_refused_naming_the_object_not_the_unsafe_retry(saved, tmp_path):
    _, directory = saved
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (folder / name).write_bytes((directory / name).read_bytes())
    marker = tmp_path / "ran"
    torch.save({"weight": _RunsCode(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        rrsis.from_pretrained(folder)
    assert not marker.exists()
    message = str(info.value)
    assert "GLOBAL" in message and "system" in message
    # torch's own first line advises weights_only=False, the very load that would run the code.
    assert "set to `False`" not in message


@pytest.mark.parametrize(("location", "says"), [
    ("nope", "map_location='nope' is not a device"),
    ("meta", "map_location='meta' holds no values"),
    pytest.param("cuda:7", "map_location='cuda:7' but this process sees",
                 marks=pytest.mark.skipif(torch.cuda.device_count() > 7, reason="has a CUDA device 7")),
])
def test_a_bad_map_location_is_named_and_the_file_is_not_blamed(saved, location, says):
    # Before, safetensors' "device nope is invalid" came back as "truncated or corrupt: delete it".
    with pytest.raises(ValueError, match=says) as info:
        rrsis.from_pretrained(saved[1], map_location=location)
    assert "corrupt" not in str(info.value)


def test_map_location_places_every_tensor(saved):
    model, directory = saved
    loaded = rrsis.from_pretrained(directory, map_location=torch.device("cpu"))
    assert {t.device for t in loaded.state_dict().values()} == {torch.device("cpu")}
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_part_weights_with_an_unreachable_hub_come_from_the_cache_after_one_request(tmp_path, no_network,
                                                                                  download_calls):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    bert = bert_like(probe).state_dict()
    (tmp_path / "bert").mkdir()
    save_file(bert, tmp_path / "bert" / "model.safetensors")
    vocab = write_vocab(tmp_path / "bert", probe.config["text"]["vocab_size"])
    cache = tmp_path / "hub"
    # No config.json in the cache: the optional sibling cost ~23 s of retries before.
    populate_hf_cache(cache, "org/bert", {"model.safetensors": tmp_path / "bert" / "model.safetensors",
                                          "vocab.txt": vocab})
    model = rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=False, text_weights="org/bert",
                               cache_dir=cache, **FULL_LAYOUT["gl-msin-tiny"])
    assert 1 <= len(no_network) <= 2
    assert download_calls and all(lfo for _, lfo in download_calls)
    assert model.tokenizer is not None
    state = model.state_dict()
    for k, v in bert.items():
        if not k.startswith("pooler."):
            assert torch.equal(state["text_encoder.bert." + k], v), k


def test_an_uncached_part_with_an_unreachable_hub_fails_at_once_saying_why(tmp_path, no_network):
    with pytest.raises(LocalEntryNotFoundError, match="could not be reached .*text_weights="):
        rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=False, text_weights="org/not-cached",
                           cache_dir=tmp_path / "hub")
    assert 1 <= len(no_network) <= 2


@pytest.mark.parametrize(("version", "upgrade"), [("99.1.0", True), ("0.1.0", False), ("unknown", False)])
def test_a_knob_from_a_newer_rrsis_says_to_upgrade(saved, tmp_path, version, upgrade):
    _, directory = saved
    folder = tmp_path / "newer"
    folder.mkdir()
    for f in directory.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    config["rrsis_version"] = version
    config["model_args"]["head"]["future_knob"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"unknown key 'future_knob' in head.*written by rrsis {version}") as info:
        rrsis.from_pretrained(folder)
    assert ("pip install -U rrsis" in str(info.value)) is upgrade
