"""Keywords as transformers / huggingface_hub users pass them: token= for part downloads, Hub-only
loading keywords refused by name (not blamed on config.json), save_pretrained's keywords on the
model method, transformers' save keywords refused saying why, num_parameters(). No network."""

from __future__ import annotations

import huggingface_hub
import pytest
from safetensors.torch import save_file
from test_hub import FULL_LAYOUT, bert_like, offline, populate_hf_cache, tiny, write_vocab

import rrsis

__all__ = ["offline"]  # the fixture, imported for the tests below


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny()
    return model, model.save_pretrained(tmp_path_factory.mktemp("saved") / "gl-msin-tiny")


def test_create_model_forwards_token_to_the_part_downloads(tmp_path, offline, monkeypatch):
    probe = rrsis.create_model("gl-msin-tiny", **FULL_LAYOUT["gl-msin-tiny"])
    (tmp_path / "bert").mkdir()
    save_file(bert_like(probe).state_dict(), tmp_path / "bert" / "model.safetensors")
    vocab = write_vocab(tmp_path / "bert", probe.config["text"]["vocab_size"])
    cache = tmp_path / "hub"
    populate_hf_cache(cache, "org/bert", {"model.safetensors": tmp_path / "bert" / "model.safetensors", "vocab.txt": vocab})
    tokens = []
    real = huggingface_hub.hf_hub_download

    def spy(repo_id, filename, **kwargs):
        tokens.append(kwargs.get("token"))
        return real(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    model = rrsis.create_model("gl-msin-tiny", pretrained=True, swin_weights=False, text_weights="org/bert",
                               cache_dir=cache, token="hf_secret", **FULL_LAYOUT["gl-msin-tiny"])
    assert model.tokenizer is not None
    assert tokens and set(tokens) == {"hf_secret"}


@pytest.mark.parametrize("kw", ["force_download", "proxies", "resume_download", "device_map", "trust_remote_code"])
def test_hub_only_keywords_are_refused_by_from_pretrained_by_name(saved, kw):
    with pytest.raises(TypeError, match=rf"^{kw}= is not supported by rrsis.from_pretrained.*It takes revision=, "
                                        r"cache_dir=, local_files_only=, token=") as info:
        rrsis.from_pretrained(saved[1], **{kw: True})
    assert "config.json" not in str(info.value)


def test_hub_only_keywords_are_refused_by_create_model_by_name():
    with pytest.raises(TypeError, match=r"^force_download= is not supported by rrsis.create_model.*token="):
        rrsis.create_model("gl-msin-tiny", force_download=True)
    with pytest.raises(TypeError, match=r"revision= is not supported by rrsis.create_model \(.*from_pretrained\(repo, "
                                        r"revision=\)"):
        rrsis.create_model("gl-msin-tiny", revision="main")


def test_model_save_pretrained_takes_what_hub_save_pretrained_takes(saved, tmp_path):
    model, _ = saved
    out = model.save_pretrained(tmp_path / "m", repo_id="org/tiny-model", metrics={"oIoU": 0.5}, origin="Made in a test.")
    card = (out / "README.md").read_text()
    assert 'from_pretrained("org/tiny-model")' in card
    assert "Made in a test." in card


@pytest.mark.parametrize(("kw", "says"), [
    ({"max_shard_size": "5GB"}, r"max_shard_size= not supported by rrsis \(max_shard_size: rrsis writes one model"),
    ({"safe_serialization": False}, r"safe_serialization= not supported by rrsis \(safe_serialization: rrsis always"),
    ({"colour": "red"}, r"colour= not supported by rrsis; it takes metrics=, dataset=, repo_id=, origin=, evaluation=, training="),
])
def test_transformers_save_keywords_are_refused_saying_why(saved, tmp_path, kw, says):
    model, _ = saved
    with pytest.raises(TypeError, match=says):
        model.save_pretrained(tmp_path / "m", **kw)
    assert not (tmp_path / "m").exists()


def test_safe_serialization_true_is_what_save_pretrained_does(saved, tmp_path):
    model, _ = saved
    out = model.save_pretrained(tmp_path / "m", safe_serialization=True)
    assert (out / "model.safetensors").is_file()


def test_num_parameters_counts_all_or_the_trainable_ones():
    model = tiny(tokenizer=False)
    total = sum(p.numel() for p in model.parameters())
    assert model.num_parameters() == model.num_parameters(only_trainable=False) == total
    model.requires_grad_(False)
    model.classifier.requires_grad_(True)
    head = sum(p.numel() for p in model.classifier.parameters())
    assert 0 < head < total
    assert model.num_parameters(only_trainable=True) == head
    assert model.num_parameters() == total


def test_force_download_advice_names_the_repo_or_says_a_folder_downloads_nothing(saved):
    with pytest.raises(TypeError) as info:
        rrsis.from_pretrained(saved[1], force_download=True)
    assert "nothing is downloaded" in str(info.value) and "ORG/NAME" not in str(info.value)
    with pytest.raises(TypeError) as info:
        rrsis.from_pretrained("acme/tiny-model", force_download=True)
    assert "`hf cache rm model/acme/tiny-model`" in str(info.value)
