"""A model folder's scene ranker: saved beside the model, attached on load, never in its state dict."""

from __future__ import annotations

import json

import pytest
import torch

from rrsis.heads import SceneRanker
from rrsis.hub import from_pretrained, save_pretrained
from rrsis.hub.files import CheckpointError
from rrsis.hub.ranker import RANKER_CONFIG_NAME, RANKER_WEIGHTS_NAME, attach_ranker, build_ranker


def _ranker(text_dim):
    torch.manual_seed(1)
    r = SceneRanker(features=20, text_dim=text_dim, tile=64, candidate_threshold=0.4, dim=16, heads=2, layers=1)
    r.feature_mean.normal_()
    return r


def test_save_and_load_round_trip_the_ranker_outside_the_state_dict(tiny_model, tmp_path):
    keys = set(tiny_model.state_dict())
    ranker = _ranker(tiny_model.text_encoder.hidden_size)
    attach_ranker(tiny_model, ranker)
    try:
        assert set(tiny_model.state_dict()) == keys  # not a submodule
        save_pretrained(tiny_model, tmp_path / "m")
    finally:
        attach_ranker(tiny_model, None)
    assert json.loads((tmp_path / "m" / RANKER_CONFIG_NAME).read_text())["candidate_threshold"] == 0.4
    loaded = from_pretrained(tmp_path / "m")
    assert isinstance(loaded.scene_ranker, SceneRanker) and not loaded.scene_ranker.training
    for k, v in ranker.state_dict().items():
        torch.testing.assert_close(loaded.scene_ranker.state_dict()[k], v, rtol=0, atol=0)
    assert loaded.scene_ranker.config == ranker.config
    # Saved again without a ranker over the same folder: the old ranker's files go.
    attach_ranker(loaded, None)
    save_pretrained(loaded, tmp_path / "m")
    assert not (tmp_path / "m" / RANKER_CONFIG_NAME).exists()
    assert not (tmp_path / "m" / RANKER_WEIGHTS_NAME).exists()
    assert from_pretrained(tmp_path / "m").scene_ranker is None


def test_a_broken_ranker_is_a_clear_error(tiny_model, tmp_path):
    attach_ranker(tiny_model, _ranker(tiny_model.text_encoder.hidden_size))
    try:
        save_pretrained(tiny_model, tmp_path / "m")
    finally:
        attach_ranker(tiny_model, None)
    cfg = tmp_path / "m" / RANKER_CONFIG_NAME
    good = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**good, "layerz": 2}))
    with pytest.raises(CheckpointError, match="layerz.*layers"):
        from_pretrained(tmp_path / "m")
    cfg.write_text(json.dumps({**good, "dim": 32}))
    with pytest.raises(CheckpointError, match="does not fit"):
        from_pretrained(tmp_path / "m")
    cfg.write_text(json.dumps(good))
    (tmp_path / "m" / RANKER_WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        from_pretrained(tmp_path / "m")


def test_ranker_config_is_strict():
    with pytest.raises(Exception, match="unknown scene ranker 'set-transformr'.*set-transformer"):
        build_ranker({"name": "set-transformr", "features": 20, "text_dim": 8, "tile": 64})
    with pytest.raises(Exception, match="multiple of heads"):
        SceneRanker(features=20, text_dim=8, tile=64, dim=10, heads=4)
    with pytest.raises(Exception, match="candidate_threshold"):
        SceneRanker(features=20, text_dim=8, tile=64, candidate_threshold=1.5)


def test_hub_cache_with_and_without_the_ranker(tiny_model, tmp_path, monkeypatch):
    """From a hand-built Hub cache, offline: the ranker comes with the model when the snapshot
    has it; a snapshot without it (and no record that the repo lacks it) loads without one."""
    import huggingface_hub
    from huggingface_hub import constants as hf_constants
    from test_hub import populate_hf_cache

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert huggingface_hub.is_offline_mode()
    ranker = _ranker(tiny_model.text_encoder.hidden_size)
    attach_ranker(tiny_model, ranker)
    try:
        save_pretrained(tiny_model, tmp_path / "m")
    finally:
        attach_ranker(tiny_model, None)
    files = {p.name: p for p in (tmp_path / "m").iterdir() if p.is_file()}
    cache = tmp_path / "cache"
    populate_hf_cache(cache, "org/with-ranker", files)
    populate_hf_cache(cache, "org/without", {k: v for k, v in files.items() if not k.startswith("scene_ranker")})
    got = from_pretrained("org/with-ranker", cache_dir=cache, local_files_only=True)
    torch.testing.assert_close(got.scene_ranker.feature_mean, ranker.feature_mean, rtol=0, atol=0)
    assert from_pretrained("org/without", cache_dir=cache, local_files_only=True).scene_ranker is None
