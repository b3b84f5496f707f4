"""Weights (rrsis/hub/): save / load / push of whole models, part weights, safety.

No test reaches the network. Hub loading runs through the real ``hf_hub_download`` against a
cache laid out on disk the way huggingface_hub writes it, with sockets blocked and offline
mode on; only ``push_to_hub`` replaces the upload API (there is nothing local to upload to).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import logging
import os
import re
import socket
import tokenize
from pathlib import Path

import huggingface_hub
import pytest
import timm
import torch
import yaml
from _fixtures import ASSETS, REPO
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import load_file, save_file
from timm.layers import resize_rel_pos_bias_table
from transformers import BertConfig, BertModel

import rrsis
from rrsis.hub import (
    CheckpointError,
    default_swin_weights,
    load_pretrained_parts,
    model_from_config,
)

TINY = rrsis.list_models("*tiny*")
WORDS = [
    "the", "a", "storage", "tank", "north", "south", "of", "road", "largest", "small", "white", "building",
    "ship", "harbour", "near", "left",
]
TEXTS = ["the storage tank north of the road", "a small white ship near the harbour"]


# ------------------------------------------------------------------------------------ helpers
def tiny(name: str = "gl-msin-tiny", tokenizer: bool = True, seed: int = 0, **kw):
    torch.manual_seed(seed)
    model = rrsis.create_model(name, **kw).eval()
    with torch.no_grad():
        # Non-default buffers (BatchNorm statistics), so a round trip must carry them too.
        for buf in model.buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    if tokenizer:
        model.tokenizer = rrsis.Tokenizer.from_words(WORDS, max_tokens=model.config["text"]["max_tokens"])
    return model


def batch(model):
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(2, 3, 64, 64, generator=g)  # every tiny model takes 64 px, whatever its image_size
    if model.tokenizer is not None:
        tokens = model.tokenizer(TEXTS)
    else:
        ids = torch.randint(5, model.config["text"]["vocab_size"], (2, 8), generator=g)
        tokens = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return pixels, tokens["input_ids"], tokens["attention_mask"]


@torch.no_grad()
def logits(model, inputs):
    return model(*inputs).logits


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def populate_hf_cache(cache: Path, repo_id: str, files: dict, ref: str = "main") -> str:
    """Lay files out as huggingface_hub's cache does: content-addressed blobs (sha256 for
    LFS files, the git blob sha1 for small ones), one snapshot folder per commit of relative
    symlinks into blobs, and refs/<branch> holding the commit hash. Returns the commit."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    for name, src in files.items():
        data = Path(src).read_bytes()
        lfs = name.endswith((".safetensors", ".bin", ".pth"))
        blob = repo_dir / "blobs" / (hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo_dir / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / ref).write_text(commit)
    return commit


class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise OSError("network access is blocked in this test")


def _refuse(*args, **kwargs):
    raise OSError("network access is blocked in this test")


@pytest.fixture
def offline(monkeypatch):
    """No sockets, and huggingface_hub in offline mode (HF_HUB_OFFLINE is read at import time,
    so the module constant that ``is_offline_mode()`` returns is patched)."""
    monkeypatch.setattr(socket, "socket", _NoSocket)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert huggingface_hub.is_offline_mode()


@pytest.fixture
def download_calls(monkeypatch):
    """Records every hf_hub_download call (and still performs it)."""
    calls = []
    real = huggingface_hub.hf_hub_download

    def spy(repo_id, filename, **kwargs):
        calls.append({"repo_id": repo_id, "filename": filename, **kwargs})
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    return calls


def timm_swin_like(model, window: int, seed: int = 1):
    """A randomly initialised timm Swin with the rrsis model's stage sizes and the given window."""
    cfg = model.config["backbone"]
    torch.manual_seed(seed)
    return timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, embed_dim=cfg["embed_dim"], depths=tuple(cfg["depths"]),
        num_heads=tuple(cfg["num_heads"]), window_size=window, num_classes=7,
        # Every stage map must be at least a window wide, or timm clamps the window (and its table).
        img_size=32 * window,
    ).eval()


def bert_like(model, seed: int = 2) -> BertModel:
    cfg = model.config["text"]
    torch.manual_seed(seed)
    return BertModel(BertConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_layers"],
        num_attention_heads=cfg["num_heads"], intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=cfg["max_positions"],
    )).eval()


def write_vocab(directory: Path, size: int) -> Path:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokens += [f"tok{i}" for i in range(size - len(tokens))]
    path = directory / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens))
    return path


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("name", TINY)
def test_round_trip_is_bit_identical(name, tmp_path):
    model = tiny(name)
    inputs = batch(model)
    expected = logits(model, inputs)
    out = model.save_pretrained(tmp_path / "saved")
    assert sorted(os.listdir(out)) == sorted(
        ["config.json", "model.safetensors", "README.md", "vocab.txt", "tokenizer_config.json"]
    )
    loaded = rrsis.from_pretrained(out)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    assert torch.equal(logits(loaded, inputs), expected)
    assert loaded.tokenizer.vocab == model.tokenizer.vocab
    assert loaded.tokenizer.max_tokens == model.tokenizer.max_tokens
    assert loaded.load_report.missing == [] and loaded.load_report.unexpected == {}


def test_config_json_alone_rebuilds_the_architecture(tmp_path):
    model = rrsis.create_model("gl-msin-tiny", use_gem=False, refine_steps=1)
    model.save_pretrained(tmp_path / "a")
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config == {"architecture": "gl-msin-tiny", "model_args": model.config, "torch_dtype": "float32",
                      "rrsis_version": rrsis.__version__}
    rebuilt = model_from_config(tmp_path / "a" / "config.json")
    assert rebuilt.config == model.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_none_valued_arguments_survive_the_config(tmp_path):
    # create_model drops None overrides (CLI defaults) and switches a part off with False; the
    # stored tree then holds None (RMSIN without CIM), which must come back as None, not the default.
    model = rrsis.create_model("rmsin-tiny", neck=False, visual_branch=False)
    assert model.config["neck"] is None and model.config["fusion"]["visual_branch"] is None
    model.save_pretrained(tmp_path / "m")
    loaded = rrsis.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_class_methods_delegate_to_the_hub(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path / "m", metrics={"oIoU": 0.5})
    loaded = rrsis.ReferringSegmenter.from_pretrained(tmp_path / "m")
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_missing_tokenizer_is_optional(tmp_path):
    model = tiny(tokenizer=False)
    model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "vocab.txt").exists()
    loaded = rrsis.from_pretrained(tmp_path / "m")
    assert loaded.tokenizer is None
    assert torch.equal(logits(loaded, batch(model)), logits(model, batch(model)))
    with pytest.raises(ValueError, match="vocabulary"):
        loaded.predict([torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()], ["the tank"])


def test_model_card(tmp_path):
    model = tiny()
    out = model.save_pretrained(tmp_path / "m", metrics={"oIoU": 0.6125, "mIoU": 0.58}, dataset="RRSIS-D")
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["library_name"] == "rrsis" and header["pipeline_tag"] == "image-segmentation"
    assert {"rrsis", "gl-msin-tiny"} <= set(header["tags"]) and header["datasets"] == ["RRSIS-D"]
    n_params = sum(p.numel() for p in model.parameters())
    assert f"{n_params:,}" in card and "0.6125" in card and "0.58" in card
    assert "rrsis.from_pretrained(" in card and "not the paper's" in card
    # the facts table reads the config tree: every part named, not a raw dict
    cfg = model.config
    assert f"embed {cfg['backbone']['embed_dim']}" in card and "local attention [elsa" in card
    assert f"vocabulary {cfg['text']['vocab_size']}" in card
    assert "| fusion | pwam; global enhancement gem; visual branch none; neck none |" in card
    assert f"| head | refine (refinement steps {cfg['head']['refine_steps']}) |" in card


def test_card_metrics_are_data_in_the_header_exactly_as_saved(tmp_path):
    from rrsis.hub.card import card_metrics

    metrics = {"oIoU": 0.61234567891, "mIoU": 0.58, "P@0.5": 0.5, "n": 40}
    out = tiny().save_pretrained(tmp_path / "m", metrics=metrics, dataset="RRSIS-D")
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    (entry,) = header["model-index"]
    assert entry["name"] == "gl-msin-tiny"
    (result,) = entry["results"]
    assert result["dataset"]["name"] == "RRSIS-D"
    assert {m["type"]: m["value"] for m in result["metrics"]} == metrics
    read = card_metrics(card)
    assert read == metrics and list(read) == list(metrics) and isinstance(read["n"], int)
    # No metrics: no model-index, and nothing read back.
    plain = (tiny().save_pretrained(tmp_path / "p") / "README.md").read_text()
    assert "model-index" not in plain and card_metrics(plain) is None


def test_the_app_panel_reads_metrics_from_the_header_not_the_markdown(tmp_path):
    from rrsis.app.card import summarise

    model = tiny()
    out = model.save_pretrained(tmp_path / "m", metrics={"oIoU": 0.6125, "mIoU": 0.58}, dataset="RRSIS-D")
    card = out / "README.md"
    # A person edits the table's text: the panel still shows the stored numbers.
    edited = card.read_text().replace("| oIoU | 0.6125 |", "| oIoU | 0.99 |")
    assert "| oIoU | 0.99 |" in edited
    card.write_text(edited)
    summary = summarise(model, out)
    assert summary.metrics == {"oIoU": "0.6125", "mIoU": "0.58"} and summary.training_data == "RRSIS-D"


def test_a_card_written_by_rrsis_0_1_still_shows_its_metrics(tmp_path):
    from rrsis.app.card import summarise
    from rrsis.hub.card import card_metrics

    legacy = (ASSETS / "cards" / "gl-msin-tiny-0.1.0.md").read_text()
    assert card_metrics(legacy) is None  # written before metrics were stored as data
    (tmp_path / "README.md").write_text(legacy)
    summary = summarise(tiny(), tmp_path)
    assert summary.metrics == {"oIoU": "0.6125", "mIoU": "0.58", "P@0.5": "0.5", "n": "40"}
    assert summary.training_data == "synthetic-scenes"


# ------------------------------------------------------------------------------------ atomic saving
def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    first = tiny(seed=0)
    target = first.save_pretrained(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("rrsis.hub.save.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        tiny(seed=1).save_pretrained(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert os.listdir(tmp_path) == ["m"]  # no temporary directory left behind


def test_resave_replaces_rrsis_files_and_keeps_the_rest(tmp_path):
    target = tiny().save_pretrained(tmp_path / "m")
    (target / "notes.txt").write_text("mine")
    (target / "runs").mkdir()
    (target / "runs" / "log.jsonl").write_text("{}\n")
    model = tiny(tokenizer=False, seed=3)
    model.save_pretrained(target)
    assert (target / "notes.txt").read_text() == "mine" and (target / "runs" / "log.jsonl").exists()
    assert not (target / "vocab.txt").exists()  # stale tokenizer of the previous save is gone
    assert torch.equal(logits(rrsis.from_pretrained(target), batch(model)), logits(model, batch(model)))
    # A hand-edited card is kept; an untouched generated one is regenerated.
    (target / "README.md").write_text((target / "README.md").read_text().replace("# gl-msin-tiny", "# My model"))
    model.save_pretrained(target)
    assert "# My model" in (target / "README.md").read_text()


# ------------------------------------------------------------------------------------ Hub cache, offline
def test_load_by_repo_id_from_the_hf_cache_offline(tmp_path, offline, download_calls):
    model = tiny()
    saved = model.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hf-cache"
    commit = populate_hf_cache(cache, "org/gl-msin-tiny-test", {p.name: p for p in saved.iterdir()})

    loaded = rrsis.from_pretrained("org/gl-msin-tiny-test", cache_dir=cache)
    assert torch.equal(logits(loaded, batch(model)), logits(model, batch(model)))
    assert loaded.tokenizer.vocab == model.tokenizer.vocab
    assert {c["repo_id"] for c in download_calls} == {"org/gl-msin-tiny-test"}  # no part weights
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {c["filename"] for c in download_calls}
    assert all(c["cache_dir"] == cache and c["local_files_only"] is False for c in download_calls)

    download_calls.clear()
    pinned = rrsis.from_pretrained("org/gl-msin-tiny-test", revision=commit, cache_dir=cache, local_files_only=True)
    assert torch.equal(logits(pinned, batch(model)), logits(model, batch(model)))
    assert all(c["revision"] == commit and c["local_files_only"] is True for c in download_calls)


def test_offline_cache_without_tokenizer_files(tmp_path, offline, caplog):
    model = tiny()
    saved = model.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "org/weights-only", {n: saved / n for n in ("config.json", "model.safetensors")})
    with caplog.at_level(logging.WARNING, logger="rrsis.hub"):
        loaded = rrsis.from_pretrained("org/weights-only", cache_dir=cache)
    assert loaded.tokenizer is None and "vocab.txt" in caplog.text
    inputs = batch(model)
    assert torch.equal(logits(loaded, inputs), logits(model, inputs))


def test_cache_miss_offline_says_what_was_looked_for(tmp_path, offline):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    with pytest.raises(LocalEntryNotFoundError) as err:
        rrsis.from_pretrained("org/not-cached", revision="v1", cache_dir=cache)
    msg = str(err.value)
    for part in ("'config.json'", "'org/not-cached'", "'v1'", str(cache), "HF_HUB_OFFLINE", "local directory"):
        assert part in msg, part


def test_a_mistyped_local_folder_is_said_first_with_the_folders_beside_it(tmp_path, offline, monkeypatch):
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    (tmp_path / "out" / "best").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LocalEntryNotFoundError) as err:
        rrsis.from_pretrained("out/bset", cache_dir=cache)
    msg = str(err.value)
    assert msg.startswith("No local folder 'out/bset': out/ has no 'bset'; did you mean 'out/best'? As a Hub repo id:")
    assert "'config.json' of Hub repo 'out/bset'" in msg
    with pytest.raises(LocalEntryNotFoundError) as err:  # nothing alike here: the Hub's words first
        rrsis.from_pretrained("zzz", cache_dir=cache)
    msg = str(err.value)
    assert msg.startswith("'config.json' of Hub repo 'zzz'")
    assert msg.endswith(f"No local folder 'zzz': the current folder ({tmp_path}) has no 'zzz'.")


@pytest.mark.parametrize(("ref", "near"), [("./out/bset", "out/best"), ("out/bset/", "out/best"),
                                           ("runs/t1/bset", "runs/t1/best"), ("out/bset/model.safetensors", None)])
def test_a_mistyped_local_path_is_told_with_the_folders_beside_it(tmp_path, monkeypatch, ref, near):
    from rrsis.hub.local import check_local_folder

    for parent in ("out", "runs/t1"):
        (tmp_path / parent / "best").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    want = f"model directory not found: {Path(ref)}" + (f"; did you mean '{near}'?" if near else "")
    for load in (rrsis.from_pretrained, check_local_folder):  # the command's early check is the latter
        with pytest.raises(FileNotFoundError) as err:
            load(ref)
        assert str(err.value) == want


def test_full_model_load_fetches_no_part_weights(tmp_path, monkeypatch):
    saved = tiny().save_pretrained(tmp_path / "m")

    def forbidden(*args, **kwargs):
        raise AssertionError(f"unexpected download {args}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)
    monkeypatch.setattr("rrsis.hub.parts.load_pretrained_parts", forbidden)
    monkeypatch.setattr("rrsis.hub.load_pretrained_parts", forbidden)
    assert rrsis.from_pretrained(saved).tokenizer is not None


# ------------------------------------------------------------------------------------ part weights
def _swin_file(model, tmp_path, window, name="swin.safetensors"):
    swin = timm_swin_like(model, window)
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in swin.state_dict().items()}, path)
    return swin.state_dict(), path


def _bert_dir(model, tmp_path):
    bert = bert_like(model)
    out = tmp_path / "bert"
    bert.save_pretrained(out)
    write_vocab(out, model.config["text"]["vocab_size"])
    return bert.state_dict(), out


def _is_elsa_stage(model, i) -> bool:
    kinds = model.config["backbone"]["local_attn"]
    return (kinds[i] if isinstance(kinds, list) else kinds) == "elsa"


# gl-msin-tiny trains from scratch with a conv stem, no language gate and a full-resolution
# head; these tests load ImageNet parts into the layout of the full models, so they ask for it.
FULL_LAYOUT = {"gl-msin-tiny": {"stem": "patch", "gate_act": "tanh", "head": {"name": "refine", "upscale": 1}}}


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")  # inside timm's resampling
@pytest.mark.parametrize("name", TINY)
def test_part_weights_from_local_files(name, tmp_path):
    probe = rrsis.create_model(name, **FULL_LAYOUT.get(name, {}))
    window = probe.config["backbone"]["window_size"] - 1  # another window: the bias tables must be resampled
    swin_sd, swin_path = _swin_file(probe, tmp_path, window)
    bert_sd, bert_dir = _bert_dir(probe, tmp_path)

    model = rrsis.create_model(name, pretrained=True, swin_weights=swin_path, text_weights=bert_dir,
                               **FULL_LAYOUT.get(name, {}))
    state, report = model.state_dict(), model.load_report
    n_stages = len(model.config["backbone"]["depths"])
    for key, value in swin_sd.items():
        target = "backbone." + key
        stage = int(key.split(".")[1]) if key.startswith("layers.") else None
        if key.startswith(("norm.", "head.")) or (".attn." in key and _is_elsa_stage(model, stage)):
            assert key in report.unexpected["swin"], key
        elif key.endswith("relative_position_bias_table"):
            want = resize_rel_pos_bias_table(value, (window + 1,) * 2, tuple(state[target].shape))
            assert torch.equal(state[target], want) and target in report.resized
            # Resampling keeps the zero-offset entry (the table's centre).
            centre_old, centre_new = (value.shape[0] - 1) // 2, (state[target].shape[0] - 1) // 2
            assert torch.allclose(state[target][centre_new], value[centre_old], atol=1e-5)
        else:
            assert torch.equal(state[target], value), key
    for key, value in bert_sd.items():
        if key.startswith("pooler."):
            assert key in report.unexpected["text"]
        else:
            assert torch.equal(state["text_encoder.bert." + key], value), key
    assert len(model.tokenizer) == model.config["text"]["vocab_size"]
    assert model.tokenizer.max_tokens == model.config["text"]["max_tokens"]
    # Everything without an ImageNet counterpart is reported as left at initialisation.
    missing = set(report.missing)
    assert not any(k.startswith("text_encoder.") for k in missing)
    assert {f"backbone.out_norms.{i}.weight" for i in range(n_stages)} <= missing
    assert any(k.startswith("classifier.") for k in missing)
    assert any(".fusion." in k for k in missing) and any(".res_gate." in k for k in missing)
    if _is_elsa_stage(model, 0):
        assert "backbone.layers.0.blocks.0.attn.pre_proj.weight" in missing
        assert "backbone.layers.0.blocks.0.norm1.weight" not in missing
    assert "backbone.patch_embed.proj.weight" not in missing
    assert set(report.loaded["swin"]) | set(report.loaded["text"]) | missing == set(state)


def test_part_weights_same_window_and_microsoft_layout(tmp_path):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    swin = timm_swin_like(probe, probe.config["backbone"]["window_size"])
    timm_sd = swin.state_dict()
    # The original Microsoft .pth: {"model": ...}, downsample owned by the end of the previous stage.
    ms = {}
    for k, v in timm_sd.items():
        parts = k.split(".")
        if parts[0] == "layers" and parts[2] == "downsample":
            parts[1] = str(int(parts[1]) - 1)
        ms[".".join(parts)] = v
    torch.save({"model": ms, "epoch": 300}, tmp_path / "swin_ms.pth")
    model = rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=tmp_path / "swin_ms.pth", text_weights=False,
                               **FULL_LAYOUT["gl-msin-tiny"])
    state = model.state_dict()
    for k in ("layers.1.downsample.reduction.weight", "layers.3.blocks.1.attn.relative_position_bias_table",
              "layers.3.blocks.0.attn.qkv.weight", "layers.2.blocks.1.mlp.fc2.weight"):
        assert torch.equal(state["backbone." + k], timm_sd[k]), k
    assert model.load_report.resized == {} and "text" not in model.load_report.loaded


def test_part_weights_through_the_hub_cache_offline(tmp_path, offline, download_calls):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    swin_sd, swin_path = _swin_file(probe, tmp_path, probe.config["backbone"]["window_size"], name="model.safetensors")
    bert_sd = bert_like(probe).state_dict()
    # bert-base-uncased's own file: BertForPreTraining keys, LayerNorm gamma/beta, MLM heads.
    legacy = {"bert." + k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in bert_sd.items()}
    legacy["cls.predictions.bias"] = torch.zeros(probe.config["text"]["vocab_size"])
    legacy["bert.embeddings.position_ids"] = torch.arange(probe.config["text"]["max_positions"])[None]
    (tmp_path / "bert").mkdir()
    save_file(legacy, tmp_path / "bert" / "model.safetensors")
    vocab = write_vocab(tmp_path / "bert", probe.config["text"]["vocab_size"])
    cache = tmp_path / "hf-cache"
    tag = "swin_tiny_patch4_window7_224.ms_in22k"
    populate_hf_cache(cache, "timm/" + tag, {"model.safetensors": swin_path})
    populate_hf_cache(cache, "bert-base-uncased", {"model.safetensors": tmp_path / "bert" / "model.safetensors",
                                                   "vocab.txt": vocab})

    # A timm tag resolves to timm's Hub repo, exactly as the default does for full-size models.
    model = rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=tag, text_weights="bert-base-uncased",
                               cache_dir=cache, **FULL_LAYOUT["gl-msin-tiny"])
    state = model.state_dict()
    assert torch.equal(state["backbone.patch_embed.proj.weight"], swin_sd["patch_embed.proj.weight"])
    for k, v in bert_sd.items():
        if not k.startswith("pooler."):
            assert torch.equal(state["text_encoder.bert." + k], v), k
    assert "cls.predictions.bias" in model.load_report.unexpected["text"]
    assert model.tokenizer is not None
    assert {(c["repo_id"], c["filename"]) for c in download_calls} >= {
        ("timm/" + tag, "model.safetensors"), ("bert-base-uncased", "model.safetensors"),
        ("bert-base-uncased", "vocab.txt"),
    }
    assert all(c["cache_dir"] == cache for c in download_calls)


def test_default_part_sources_match_the_model_size():
    from rrsis.models import gl_msin

    expected = {
        "swin_base_patch4_window12_384.ms_in22k": ("gl-msin", gl_msin.GL_MSIN),
        "swin_small_patch4_window7_224.ms_in22k": ("gl-msin-s", gl_msin.GL_MSIN_S),
        "swin_tiny_patch4_window7_224.ms_in22k": ("gl-msin-t", gl_msin.GL_MSIN_T),
    }
    published = set(timm.list_pretrained("swin_*"))
    for tag, (arch, tree) in expected.items():
        assert default_swin_weights(tree["backbone"]) == tag and tag in published
        assert rrsis.pretrained_cfg(arch).swin == tag  # the default tag names the same weights
        assert timm.models.get_pretrained_cfg(tag).hf_hub_id == "timm/" + tag
    with pytest.raises(ValueError, match="swin_weights="):
        rrsis.create_model("gl-msin-tiny", pretrained=True)  # no ImageNet Swin of that size
    with pytest.raises(ValueError, match="pretrained=True"):
        rrsis.create_model("gl-msin-tiny", swin_weights="x.safetensors")


def test_part_shape_mismatch_loads_nothing(tmp_path):
    probe = rrsis.create_model("gl-msin-tiny")
    _, swin_path = _swin_file(probe, tmp_path, probe.config["backbone"]["window_size"])
    bad_bert = BertModel(BertConfig(vocab_size=128, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=32))
    bad_bert.save_pretrained(tmp_path / "bert48")
    model = rrsis.create_model("gl-msin-tiny")
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=r"text_encoder\.bert\.embeddings\.word_embeddings\.weight.*\[128, 48\]"):
        load_pretrained_parts(model, swin=swin_path, text=tmp_path / "bert48")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the fitting Swin part was not applied either
    assert model.tokenizer is None


# ------------------------------------------------------------------------------------ clear errors
def test_truncated_weights_raise_naming_the_file(tmp_path):
    saved = tiny().save_pretrained(tmp_path / "m")
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        rrsis.from_pretrained(saved)
    assert str(weights) in str(err.value)


def test_unknown_architecture_lists_the_known_ones(tmp_path):
    saved = tiny().save_pretrained(tmp_path / "m")
    cfg = json.loads((saved / "config.json").read_text())
    cfg["architecture"] = "gl-msin-huge"
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="gl-msin-huge") as err:
        rrsis.from_pretrained(saved)
    assert all(name in str(err.value) for name in rrsis.list_models())


def test_wrong_shapes_raise_with_keys_and_shapes(tmp_path):
    saved = tiny().save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"classifier\.\S+: checkpoint \[16, .*\] vs model \[8, "):
        rrsis.from_pretrained(saved, head_hidden=8)


def test_missing_and_unexpected_keys(tmp_path, caplog):
    model = tiny()
    saved = model.save_pretrained(tmp_path / "m")
    tensors = load_file(saved / "model.safetensors")
    dropped = "backbone.out_norms.3.weight"
    del tensors[dropped]
    tensors["backbone.extra.weight"] = torch.ones(3)
    save_file(tensors, saved / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        rrsis.from_pretrained(saved)
    assert dropped in str(err.value) and "backbone.extra.weight" in str(err.value) and "strict=False" in str(err.value)
    with caplog.at_level(logging.WARNING, logger="rrsis.hub"):
        loaded = rrsis.from_pretrained(saved, strict=False)
    assert loaded.load_report.missing == [dropped]
    assert loaded.load_report.unexpected == {"model": ["backbone.extra.weight"]}
    assert dropped in caplog.text
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in tensors.items() if k in state)


def test_legacy_pickle_weights_load_safely(tmp_path):
    model = tiny(tokenizer=False)
    saved = model.save_pretrained(tmp_path / "m")
    os.remove(saved / "model.safetensors")
    torch.save(model.state_dict(), saved / "pytorch_model.bin")
    loaded = rrsis.from_pretrained(saved)
    assert torch.equal(logits(loaded, batch(model)), logits(model, batch(model)))
    torch.save({"model": model.state_dict(), "args": _Opaque()}, saved / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="will not unpickle"):
        rrsis.from_pretrained(saved)


class _Opaque:
    """Stands for the argparse.Namespace and other objects training scripts pickle."""


def test_paths_and_repo_ids_are_told_apart(tmp_path):
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        rrsis.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        rrsis.from_pretrained("./runs/best")


# ------------------------------------------------------------------------------------ push
def test_push_to_hub_uploads_the_saved_folder(monkeypatch):
    captured = {}

    def create_repo(self, repo_id, **kwargs):
        captured["create_repo"] = (repo_id, kwargs)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        captured["upload"] = (repo_id, kwargs)
        captured["files"] = {p.name: p.read_bytes() for p in folder.iterdir()}
        return "https://huggingface.co/org/name/commit/abc"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    model = tiny()
    url = model.push_to_hub("org/name", private=True, metrics={"oIoU": 0.5}, commit_message="first")
    assert url.endswith("commit/abc")
    assert captured["create_repo"] == ("org/name", {"private": True, "exist_ok": True, "repo_type": "model"})
    repo, kwargs = captured["upload"]
    assert repo == "org/name" and kwargs["commit_message"] == "first" and kwargs["repo_type"] == "model"
    files = captured["files"]
    assert set(files) == {"config.json", "model.safetensors", "README.md", "vocab.txt", "tokenizer_config.json"}
    assert json.loads(files["config.json"])["model_args"] == model.config
    assert 'rrsis.from_pretrained("org/name")' in files["README.md"].decode()


# ------------------------------------------------------------------------------------ safety
def _calls(tree, module: str, attr: str):
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and func.attr == attr and isinstance(func.value, ast.Name) \
                and func.value.id == module:
            yield node


def unsafe_loads(source: str, where: str = "<src>") -> list:
    """Every way ``source`` could unpickle arbitrary objects: ``torch.load`` without
    ``weights_only=True``, ``pickle.load(s)``, a plain ``pickle.Unpickler``, an Unpickler
    subclass that keeps the permissive ``find_class``."""
    tree = ast.parse(source)
    problems = []
    for call in _calls(tree, "torch", "load"):
        safe = any(kw.arg == "weights_only" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                   for kw in call.keywords)
        if not safe:
            problems.append(f"{where}:{call.lineno}: torch.load without weights_only=True")
    for attr in ("load", "loads", "Unpickler"):
        problems += [f"{where}:{c.lineno}: pickle.{attr}(...)" for c in _calls(tree, "pickle", attr)]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = {a.name for a in node.names}
            if node.module in ("torch", "pickle", "_pickle") and names & {"load", "loads"}:
                problems.append(f"{where}:{node.lineno}: from {node.module} import {sorted(names)}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in ("dill", "joblib", "cloudpickle") for m in modules):
                problems.append(f"{where}:{node.lineno}: imports a general-purpose unpickler")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Unpickler":
            problems.append(f"{where}:{node.lineno}: plain Unpickler(...)")
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(b, ast.Attribute) and b.attr == "Unpickler") or (isinstance(b, ast.Name) and b.id == "Unpickler")
            for b in node.bases
        ):
            methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
            if "find_class" not in methods:
                problems.append(f"{where}:{node.lineno}: Unpickler subclass {node.name} keeps find_class")
    # A textual backstop for spellings the checks above do not model (aliases, getattr),
    # over the code with strings and comments blanked out.
    seen = [c for m, a in (("torch", "load"), ("pickle", "load"), ("pickle", "loads")) for c in _calls(tree, m, a)]
    covered = {i for c in seen for i in range(c.lineno, (c.end_lineno or c.lineno) + 1)}
    code_lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.string in ("load", "loads"):
            code_lines.add(tok.start[0])
    for i in sorted(code_lines - covered):
        line = source.splitlines()[i - 1]
        if re.search(r"\b(torch|pickle)\s*\.\s*loads?\b", line):
            problems.append(f"{where}:{i}: {line.strip()}")
    return problems


def test_the_unpickling_check_is_not_vacuous():
    assert unsafe_loads("import torch\nx = torch.load(f)\n")
    assert unsafe_loads("import torch\nx = torch.load(f, weights_only=False)\n")
    assert unsafe_loads("import pickle\nx = pickle.load(f)\n")
    assert unsafe_loads("import pickle\nx = pickle.loads(b)\n")
    assert unsafe_loads("from pickle import load\n")
    assert unsafe_loads("import joblib\n")
    assert unsafe_loads("import torch\nx = (torch\n     .load)(f)\n")
    assert unsafe_loads("import torch\nread = torch.load\nx = read(f)\n")
    assert not unsafe_loads('"""Read with ``torch.load(weights_only=True)`` only, never pickle.load(f)."""\n')
    assert unsafe_loads("import pickle\nclass U(pickle.Unpickler):\n    pass\n")
    assert not unsafe_loads("import torch\nx = torch.load(f, map_location='cpu', weights_only=True)\n")
    assert not unsafe_loads(
        "import pickle\nclass U(pickle.Unpickler):\n    def find_class(self, m, n):\n        raise pickle.UnpicklingError\n"
    )


def test_nothing_in_rrsis_unpickles_arbitrary_objects():
    package = Path(rrsis.__file__).parent
    problems = []
    for path in sorted(package.rglob("*.py")):
        problems += unsafe_loads(path.read_text(encoding="utf-8"), str(path.relative_to(package.parent)))
    assert not problems, "\n".join(problems)


def test_swin_weights_do_not_fit_the_conv_stem_and_nothing_is_loaded(tmp_path):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    _, swin_path = _swin_file(probe, tmp_path, probe.config["backbone"]["window_size"])
    with pytest.raises(CheckpointError, match="patch_embed"):
        rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=swin_path, text_weights=False)


def test_from_pretrained_in_a_fresh_interpreter_registers_the_built_ins():
    """``rrsis.hub.from_pretrained`` needs nothing imported first: the registry imports the
    built-in models on the first lookup of a name."""
    import os
    import subprocess
    import sys

    saved = ASSETS / "saved-0.2" / "lavt-tiny"
    code = (
        "import sys\n"
        "from rrsis.hub.load import from_pretrained\n"
        "assert 'rrsis.models' not in sys.modules and 'rrsis.factory' not in sys.modules\n"
        f"m = from_pretrained({str(saved)!r})\n"
        "assert 'rrsis.factory' not in sys.modules\n"
        "print(type(m).__name__, m.arch, m.tokenizer.max_tokens)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ReferringSegmenter", "lavt-tiny", "12"]
