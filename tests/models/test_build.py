"""The one builder: strict nested configs, flat aliases, old config.json files, tags, CLI errors."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from _fixtures import ASSETS
from safetensors.torch import load_file

import rrsis
from rrsis.cli import main
from rrsis.hub import CheckpointError, model_from_config

LEGACY = ASSETS / "legacy-0.1.0"
SAVED_02 = ASSETS / "saved-0.2"
RECIPES = Path(rrsis.__file__).parent / "configs"


def meta(name, **kw):
    with torch.device("meta"):
        return rrsis.create_model(name, **kw)


# ---------------------------------------------------------------- unknown and misplaced keys


@pytest.mark.parametrize("name, kw, message", [
    ("gl-msin-tiny", {"use_gemm": False}, r"unknown model argument 'use_gemm'; did you mean 'use_gem'"),
    ("gl-msin-tiny", {"backbone": {"embed_dimm": 8}}, r"'embed_dimm' in model config\.backbone; did you mean 'embed_dim'"),
    ("gl-msin-tiny", {"backbone": {"elsa": {"kernal": 5}}}, r"'kernal' in model config\.backbone\.elsa; did you mean 'kernel'"),
    ("gl-msin-tiny", {"text": {"hiden_size": 32}}, r"'hiden_size' in model config\.text; did you mean 'hidden_size'"),
    ("gl-msin-tiny", {"fusion": {"head": 2}}, r"'head' in model config\.fusion; did you mean 'heads'"),
    ("gl-msin-tiny", {"fusion": {"gem": {"pol": 2}}}, r"'pol' in model config\.fusion\.gem; did you mean 'pool'"),
    ("gl-msin-tiny", {"head": {"refine_step": 1}}, r"'refine_step' in head \(head 'refine'\); did you mean 'refine_steps'"),
    ("rmsin-tiny", {"neck_args": {"gird": 15}}, r"'gird' in neck \(neck 'cim'\); did you mean 'grid'"),
    ("gl-msin-tiny", {"head": "refin"}, r"unknown head 'refin'; did you mean 'refine'"),
    ("gl-msin-tiny", {"local_attn": "elsaa"}, r"unknown local attention block 'elsaa'; did you mean 'elsa'"),
    ("gl-msin-tiny", {"gem": "gem-linar"}, r"'gem-linar' is not one of .*did you mean 'gem-linear'"),
])
def test_unknown_keys_name_the_key_and_the_closest_one(name, kw, message):
    with pytest.raises(rrsis.ConfigError, match=message):
        meta(name, **kw)


@pytest.mark.parametrize("kw, message", [
    ({"refine_steps": 7}, r"'refine_steps' in head \(head 'simple'\)"),  # LAVT's decoder does not refine
    ({"elsa_kernel": 5}, r"ELSA settings \['kernel'\] are given, but no stage uses ELSA"),
    ({"gem_pool": 4}, r"GEM is off for this model; set use_gem=True"),
    ({"neck_args": {"grid": 4}}, r"neck is off for this model"),
    ({"backbone": {"refine_steps": 2}}, r"'refine_steps' in model config\.backbone"),
])
def test_misplaced_keys_raise(kw, message):
    with pytest.raises(rrsis.ConfigError, match=message):
        meta("lavt", **kw)


def test_a_baseline_keeps_its_parts():
    with pytest.raises(rrsis.ConfigError, match=r"lavt has head\.name='simple' by definition"):
        meta("lavt", head="refine")
    with pytest.raises(rrsis.ConfigError, match=r"fusion\.gem=None by definition"):
        meta("rmsin", use_gem=True)
    assert meta("rmsin-tiny", neck=False).neck is None  # RMSIN's CIM is an ablation knob


@pytest.mark.parametrize("kw, message", [
    ({"image_size": 0}, r"image_size must be >= 32, got 0"),
    ({"image_size": -64}, r"image_size must be >= 32"),
    ({"image_size": 100}, r"image_size must be a multiple of 32"),
    ({"depths": [0, 0, 0, 0]}, r"depths\[0\] must be >= 1, got 0"),
    ({"patch_size": 3}, r"patch_size must be a power of two"),
    ({"drop_path_rate": 2.0}, r"drop_path_rate must be < 1\.0, got 2\.0"),
    ({"embed_dim": 0}, r"embed_dim must be >= 1, got 0"),
    ({"embed_dim": "16"}, r"embed_dim must be an integer, got '16'"),
    ({"qkv_bias": 1}, r"qkv_bias must be true or false"),
    ({"elsa_kernel": 4}, r"kernel must be odd"),
    ({"text_heads": 5}, r"hidden_size 32 is not divisible by num_heads=5"),
    ({"max_tokens": 40}, r"max_tokens must be <= 32"),
    ({"refine_steps": -1}, r"refine_steps must be >= 0"),
    ({"fusion_heads": [1, 1]}, r"heads has 2 entries; expected one per stage \(4\)"),
    ({"num_heads": [1, 3, 4, 8]}, r"num_heads\[1\]=3 does not divide stage 1's 32 channels"),
])
def test_values_are_checked_by_type_and_range(kw, message):
    with pytest.raises(rrsis.ConfigError, match=message):
        meta("gl-msin-tiny", **kw)


# ---------------------------------------------------------------- one tree, aliases, one rule for None


def test_flat_alias_and_nested_node_build_the_same_model():
    a = meta("gl-msin-tiny", refine_steps=1, elsa_kernel=5, use_gem=False, text_layers=1)
    b = meta("gl-msin-tiny", head={"refine_steps": 1}, backbone={"elsa": {"kernel": 5}},
             fusion={"gem": None}, text={"num_layers": 1})
    assert a.config == b.config
    assert a.config["head"] == {"name": "refine", "hidden": 16, "refine_steps": 1, "upscale": 4}
    assert a.config["fusion"]["gem"] is None and a.config["backbone"]["elsa"]["kernel"] == 5


def test_config_tree_is_json_and_rebuilds_every_model():
    for name in rrsis.list_models():
        model = meta(name)
        tree = json.loads(json.dumps(model.config))
        assert set(tree) == {"image_size", "backbone", "text", "fusion", "neck", "head"}
        assert meta(name, **tree).config == model.config


def test_switching_a_part_drops_only_defaults_it_does_not_take():
    model = meta("gl-msin-tiny", local_attn="swin", head="simple")
    assert model.config["backbone"]["elsa"] is None  # defaults of an unused part go
    assert model.config["head"] == {"name": "simple", "hidden": 16}  # ... those the new part takes stay


# ---------------------------------------------------------------- config.json of rrsis 0.1


def test_legacy_config_json_loads_with_identical_outputs(tmp_path):
    shutil.copytree(LEGACY / "gl-msin-tiny", tmp_path / "m")
    model = rrsis.from_pretrained(tmp_path / "m")
    io = load_file(LEGACY / "gl-msin-tiny-io.safetensors")
    with torch.no_grad():
        out = model(io["pixel_values"], io["input_ids"], io["attention_mask"])
    # Same weights, same computation; GEM now projects q/k/v in a channels-last layout (a unit last
    # stride for SDPA's fused kernels), which changes float32 summation order: ~1e-7, not 0.
    close = {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(out.logits, io["logits"], **close)
    for i, a in enumerate(out.aux_logits):
        torch.testing.assert_close(a, io[f"aux_{i}"], **close)
    assert model.config["backbone"]["embed_dim"] == 8 and model.config["head"]["refine_steps"] == 2
    # Saving migrates it: the new file holds the tree and loads to the same outputs.
    model.save_pretrained(tmp_path / "new")
    assert "backbone" in json.loads((tmp_path / "new" / "config.json").read_text())["model_args"]
    again = rrsis.from_pretrained(tmp_path / "new")
    with torch.no_grad():
        torch.testing.assert_close(again(io["pixel_values"], io["input_ids"], io["attention_mask"]).logits,
                                   out.logits, rtol=0, atol=0)


# ---------------------------------------------------------------- nested config.json (tests/assets/saved-0.2)


@pytest.mark.parametrize("name", ["gl-msin-tiny", "lavt-tiny", "rmsin-tiny"])
def test_nested_config_json_loads_with_identical_logits(tmp_path, name, monkeypatch):
    """Models saved by the release that introduced the nested tree (make.py there) rebuild
    exactly: same tokenizer ids, and fp32 CPU logits with that release's ELSA loop equal to float
    rounding (bit-identical on the CPU kind that wrote them; another CPU's vector kernels round
    differently, 1.5e-7–2.9e-7 on an AMD EPYC against logits up to 0.37). The no-grad path now
    sums its taps in another order: equal to ~1e-7, checked after."""
    from rrsis.kernels import eager, reference

    fast = eager.elsa_aggregate_no_grad
    monkeypatch.setattr(eager, "elsa_aggregate_no_grad", reference.elsa_aggregate)
    shutil.copytree(SAVED_02 / name, tmp_path / "m")
    # make.py ran with 2 torch threads (this suite's default): the same split of every reduction
    # (conftest's guard restores the count after the test).
    torch.set_num_threads(2)
    model = rrsis.from_pretrained(tmp_path / "m")
    io = load_file(SAVED_02 / f"{name}-io.safetensors")
    enc = model.tokenizer(["the large white storage tank north of the road", "ship left of the building"])
    assert torch.equal(enc["input_ids"], io["input_ids"]) and torch.equal(enc["attention_mask"], io["attention_mask"])
    with torch.no_grad():
        out = model(io["pixel_values"], io["input_ids"], io["attention_mask"])
    torch.testing.assert_close(out.logits, io["logits"], rtol=0.0, atol=1e-6)
    aux = sorted(k for k in io if k.startswith("aux_"))
    assert len(out.aux_logits) == len(aux)
    for a, k in zip(out.aux_logits, aux):
        torch.testing.assert_close(a, io[k], rtol=0.0, atol=1e-6)
    monkeypatch.setattr(eager, "elsa_aggregate_no_grad", fast)
    with torch.no_grad():
        now = model(io["pixel_values"], io["input_ids"], io["attention_mask"])
    torch.testing.assert_close(now.logits, io["logits"], rtol=1e-5, atol=1e-6)
    saved = json.loads((SAVED_02 / name / "config.json").read_text())["model_args"]
    assert model.config["backbone"]["embed_dim"] == saved["backbone"]["embed_dim"] == 8


@pytest.mark.parametrize("name", ["lavt-tiny", "rmsin-tiny"])
def test_legacy_baseline_configs_rebuild_the_same_tensors(name):
    saved = json.loads((LEGACY / f"{name}.json").read_text())
    with torch.device("meta"):
        model = model_from_config(saved["config"])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == saved["state_shapes"]


def test_bad_config_json_is_refused_naming_the_key(tmp_path):
    shutil.copytree(LEGACY / "gl-msin-tiny", tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_args"]["refine_stepz"] = cfg["model_args"].pop("refine_steps")
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"'refine_stepz'.*did you mean 'refine_steps'"):
        rrsis.from_pretrained(tmp_path / "m")


def test_lavt_label_on_a_gl_msin_config_is_refused(tmp_path):
    shutil.copytree(LEGACY / "gl-msin-tiny", tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["architecture"] = "lavt-tiny"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"not describe a valid 'lavt-tiny'.*by definition"):
        rrsis.from_pretrained(tmp_path / "m")


def test_recipes_model_sections_are_valid():
    from rrsis.engine import list_configs, load_config
    from rrsis.engine.trainer import build_model

    names = list_configs()
    assert len(names) == len(list(RECIPES.glob("*.json")))
    for name in names:
        recipe = load_config(name)
        section = {**recipe["model"], "pretrained": False}
        with torch.device("meta"):
            build_model(section, image_size=recipe["data"]["image_size"])
        with pytest.raises(rrsis.ConfigError, match="did you mean"):
            build_model({**section, "refine_stepz": 1})


# ---------------------------------------------------------------- tags


def test_tags_mean_something():
    tags = rrsis.list_pretrained()
    assert {"gl-msin.in22k", "gl-msin.elsa-in1k", "lavt.in22k", "rmsin.in22k"} <= set(tags)
    for tag in tags:
        cfg = rrsis.pretrained_cfg(tag)
        assert cfg.swin and cfg.license and cfg.notes and cfg.image_size % 32 == 0
    model = meta("gl-msin.in22k")
    assert model.pretrained_cfg.swin == "swin_base_patch4_window12_384.ms_in22k"
    with pytest.raises(rrsis.ConfigError, match=r"unknown pretrained tag 'lavt.rrsisd'"):
        meta("lavt.rrsisd")
    with pytest.raises(rrsis.ConfigError, match="official trained checkpoint.*rrsis convert"):
        rrsis.create_model("lavt.official", pretrained=True)


def test_cli_lists_tags(capsys):
    assert main(["models", "--pretrained", "gl-msin*"]) == 0
    out = capsys.readouterr().out
    assert "gl-msin.in22k" in out and "swin_base_patch4_window12_384.ms_in22k" in out and "lavt" not in out


# ---------------------------------------------------------------- CLI errors


def test_cli_expected_error_is_one_line_exit_2(capsys):
    assert main(["models", "--info", "gl-msin-tiny.nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rrsis models: error: unknown pretrained tag")


def test_cli_debug_shows_the_traceback():
    with pytest.raises(rrsis.ConfigError, match="unknown pretrained tag"):
        main(["--debug", "models", "--info", "gl-msin-tiny.nope"])


# ---------------------------------------------------------------- one config form


def test_model_config_is_a_plain_tree_without_alias_reads():
    model = meta("gl-msin-tiny", refine_steps=1, max_tokens=16)
    cfg = model.config
    assert type(cfg) is dict and type(cfg["head"]) is dict
    assert cfg["head"]["refine_steps"] == 1 and cfg["text"]["max_tokens"] == 16  # aliases resolved at the way in
    with pytest.raises(KeyError):
        cfg["refine_steps"]  # a flat alias is not a key of the tree
    assert "refine_steps" not in cfg and cfg.get("max_tokens") is None
    assert not hasattr(model, "_tree")


def test_recipe_and_model_values_raise_the_same_error():
    from rrsis.engine import load_config, validate_config

    recipe = load_config("gl-msin-tiny-synthetic")
    with pytest.raises(rrsis.ConfigError, match=r"optim\.lr must be a number, got 'abc'"):
        validate_config({**recipe, "optim": {**recipe["optim"], "lr": "abc"}})
    with pytest.raises(rrsis.ConfigError, match=r"train\.batch_size must be >= 1, got 0"):
        validate_config({**recipe, "train": {**recipe["train"], "batch_size": 0}})
    with pytest.raises(rrsis.ConfigError, match=r"loss\.class_weights must be a list of 2 entries"):
        validate_config({**recipe, "loss": {**recipe["loss"], "class_weights": [1.0]}})
    with pytest.raises(rrsis.ConfigError, match=r"image_size must be >= 32, got 0"):
        meta("gl-msin-tiny", image_size=0)
    assert issubclass(rrsis.ConfigError, ValueError)  # `except ValueError` keeps working
    with pytest.raises(ValueError, match=r"optim\.eps must be > 0"):
        validate_config({**recipe, "optim": {**recipe["optim"], "eps": 0}})


def test_recipe_unknown_key_suggests_the_closest(tmp_path):
    from rrsis.engine import load_config

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base": "gl-msin-tiny-synthetic", "optim": {"lr_": 1e-3}}))
    with pytest.raises(rrsis.ConfigError, match=r"'optim\.lr_'; did you mean 'lr'"):
        load_config(bad)


def test_max_tokens_is_one_setting_of_the_model(tmp_path):
    from rrsis.engine import load_config, validate_config
    from rrsis.engine.inputs import build_tokenizer
    from rrsis.engine.trainer import build_model
    from rrsis.text import MAX_TOKENS, TextConfig, Tokenizer

    assert TextConfig().max_tokens == Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}).max_tokens
    assert TextConfig().max_tokens == MAX_TOKENS
    recipe = load_config("gl-msin-tiny-synthetic", ["max_tokens=12"])
    assert recipe["model"]["max_tokens"] == 12 and "max_tokens" not in recipe["data"]
    # An rrsis 0.1 recipe sets data.max_tokens: moved to the model, with a warning.
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"base": "gl-msin-tiny-synthetic", "data": {"max_tokens": 14}}))
    with pytest.warns(DeprecationWarning, match="model.max_tokens"):
        migrated = load_config(old)
    assert migrated["model"]["max_tokens"] == 14 and "max_tokens" not in migrated["data"]
    with pytest.warns(DeprecationWarning):
        assert load_config("gl-msin-tiny-synthetic", ["data.max_tokens=15"])["model"]["max_tokens"] == 15
    with pytest.raises(rrsis.ConfigError, match="disagree"):
        load_config("gl-msin-tiny-synthetic", ["data.max_tokens=15", "model.max_tokens=16"])
    # A recipe dict handed to the trainer without load_config: refused, naming the right key.
    with pytest.raises(rrsis.ConfigError, match=r"data\.max_tokens.*model\.max_tokens"):
        validate_config({**recipe, "data": {**recipe["data"], "max_tokens": 14}})
    # The run's tokenizer takes the model's length.
    with torch.device("meta"):
        model = build_model(migrated["model"], image_size=64)
    assert model.config["text"]["max_tokens"] == 14

    data = SimpleNamespace(entries=[SimpleNamespace(sentences=[(0, "the white ship")])])
    assert build_tokenizer(None, model, data).max_tokens == 14
