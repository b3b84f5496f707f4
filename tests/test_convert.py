"""Official LAVT / RMSIN checkpoint conversion (rrsis/convert.py, ``rrsis convert``) and parity.

The fixtures hold the official code's outputs for a small checkpoint; converting that
checkpoint and running the rrsis model must reproduce the official logits.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from _fixtures import find_fixtures

import rrsis
from rrsis.cli import main as cli_main
from rrsis.convert import (
    conversion_origin,
    convert_checkpoint,
    load_official_checkpoint,
    map_official_key,
    plan_conversion,
)

FIXTURES = find_fixtures()
pytestmark = pytest.mark.skipif(
    not (FIXTURES / "rmsin" / "io.safetensors").exists(), reason="reference fixtures not available"
)
ARCHS = ["lavt", "rmsin"]
TOL = 1e-5  # max|Δ| / max|logits|, float32 on CPU


def _io(arch):
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / arch / "io.safetensors"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Each fixture checkpoint converted once (the fixtures' BERT has 4 heads)."""
    root = tmp_path_factory.mktemp("converted")
    return {
        arch: convert_checkpoint(
            FIXTURES / arch / "checkpoint.pth", root / arch, arch=arch, text_heads=4
        )
        for arch in ARCHS
    }


@pytest.fixture(scope="module")
def models(converted):
    return {arch: rrsis.from_pretrained(d) for arch, d in converted.items()}


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_converted_model_reproduces_official_logits(arch, models):
    model, io = models[arch], _io(arch)
    assert not model.training
    # Intermediate checks first, so a failure says where the two forwards part.
    words = model.text_encoder(io["input_ids"], io["attention_mask"])
    assert _rel(words, io["text_features"]) <= TOL, "BERT features differ"
    feats = model.backbone(io["image"], words, io["attention_mask"].float())
    for i, f in enumerate(feats, start=1):
        ref = io[f"swin_stage{i}"] if arch == "rmsin" else io[f"stage{i}"]
        assert _rel(f, ref) <= TOL, f"backbone stage {i} differs"
    if model.neck is not None:
        for i, f in enumerate(model.neck(feats), start=1):
            assert _rel(f, io[f"stage{i}"]) <= TOL, f"CIM output {i} differs"
    logits = model(io["image"], io["input_ids"], io["attention_mask"]).logits
    assert logits.shape == io["logits"].shape
    assert _rel(logits, io["logits"]) <= TOL


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [320, 640])
@torch.no_grad()
def test_tiny_models_run_at_other_sizes(arch, size, models):
    # The tiny registry configs share the fixtures' shapes, so the converted weights load.
    model = rrsis.create_model(f"{arch}-tiny").eval()
    model.load_state_dict(models[arch].state_dict(), strict=True)
    io = _io(arch)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, size, size, generator=g)
    out = model(x, io["input_ids"][1:], io["attention_mask"][1:])
    assert out.logits.shape == (1, 2, size, size)
    assert torch.isfinite(out.logits).all()


# ---------------------------------------------------------------- output directory


def test_output_directory_layout(converted):
    for arch, d in converted.items():
        assert {"config.json", "model.safetensors"} <= {p.name for p in d.iterdir()}
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["architecture"] == arch and cfg["rrsis_version"] == rrsis.__version__
        args = cfg["model_args"]
        bb, text = args["backbone"], args["text"]
        assert (bb["embed_dim"], bb["depths"], bb["num_heads"], bb["window_size"]) == (
            16, [2, 2, 2, 2], [2, 4, 8, 16], 12,
        )
        assert (text["hidden_size"], text["num_layers"], text["num_heads"]) == (64, 2, 4)
        assert (text["vocab_size"], text["max_positions"], "hidden" in args["head"]) == (512, 64, False)
        # The tiny registry config is exactly the fixtures' architecture.
        assert rrsis.create_model(f"{arch}-tiny").config == args
    assert json.loads((converted["rmsin"] / "config.json").read_text())["model_args"]["neck"]["grid"] == 15


def test_cli_convert_with_vocab(tmp_path, capsys):
    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(507)]
    vocab.write_text("\n".join(tokens) + "\n")
    out = tmp_path / "lavt-out"
    rc = cli_main([
        "convert", "--arch", "lavt", str(FIXTURES / "lavt" / "checkpoint.pth"), str(out),
        "--text-heads", "4", "--vocab", str(vocab),
    ])
    assert rc == 0, capsys.readouterr().err
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= {
        p.name for p in out.iterdir()
    }
    model = rrsis.from_pretrained(out)
    assert model.tokenizer is not None and len(model.tokenizer) == 512
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp dir left behind"
    assert "assumed" not in capsys.readouterr().out  # the count was given


def test_cli_convert_says_which_head_count_it_assumed(tmp_path, capsys):
    out = tmp_path / "lavt-out"
    assert cli_main(["convert", "--arch", "lavt", str(FIXTURES / "lavt" / "checkpoint.pth"), str(out)]) == 0
    printed = capsys.readouterr().out
    text = json.loads((out / "config.json").read_text())["model_args"]["text"]
    assumed = text["hidden_size"] // 64 or 1  # the fixtures' BERT: hidden 64 (it has 4 heads)
    assert text["num_heads"] == assumed
    assert (f"note: BERT attention heads: {assumed}, assumed (not stored in the checkpoint): hidden size "
            f"{text['hidden_size']} / 64") in printed
    assert "convert again with --text-heads N" in printed


def test_vocab_size_must_match(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nword\n")
    with pytest.raises(ValueError, match="5 tokens but the checkpoint's BERT has 512"):
        convert_checkpoint(
            FIXTURES / "lavt" / "checkpoint.pth", tmp_path / "out", arch="lavt", vocab=vocab
        )
    assert not (tmp_path / "out").exists()


def test_existing_directory_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    ckpt = FIXTURES / "lavt" / "checkpoint.pth"
    with pytest.raises(ValueError, match="not empty"):
        convert_checkpoint(ckpt, out, arch="lavt", text_heads=4)
    assert (out / "keep.txt").exists()
    convert_checkpoint(ckpt, out, arch="lavt", text_heads=4, overwrite=True)
    assert {"config.json", "model.safetensors", "keep.txt"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# ---------------------------------------------------------------- refusals


def _official(arch):
    return torch.load(FIXTURES / arch / "checkpoint.pth", weights_only=True)


def _save(tmp_path, ckpt, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("src, target, message", [
    ("lavt", "rmsin", "reads as LAVT, not RMSIN: use --arch lavt"),
    ("rmsin", "lavt", "reads as RMSIN, not LAVT: use --arch rmsin"),
])
def test_other_architecture_is_refused(tmp_path, src, target, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        convert_checkpoint(FIXTURES / src / "checkpoint.pth", out, arch=target, text_heads=4)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_reports_the_mismatch(tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli_main(["convert", "--arch", "lavt", str(FIXTURES / "rmsin" / "checkpoint.pth"), str(out)])
    assert rc == 2
    assert "reads as RMSIN, not LAVT" in capsys.readouterr().err
    assert not out.exists()


def test_corrupted_keys_and_shapes_are_listed(tmp_path):
    ckpt = _official("rmsin")
    sd = ckpt["model"]
    del sd["backbone.layers.1.fusion.project_mm.0.bias"]
    sd["classifier.conv1_4.weight"] = sd["classifier.conv1_4.weight"][:, :-1]
    sd["backbone.layers.2.extra.weight"] = torch.zeros(3)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        convert_checkpoint(_save(tmp_path, ckpt), out, arch="rmsin", text_heads=4)
    msg = str(err.value)
    assert "official keys not consumed: backbone.layers.2.extra.weight" in msg
    assert "rrsis keys not filled: backbone.layers.1.fusion.project_mm.0.bias" in msg
    assert "classifier.conv1_4.weight [64, 191, 3, 3]" in msg and "[64, 192, 3, 3]" in msg
    assert not out.exists()


@pytest.mark.parametrize("key, value, message", [
    ("backbone.layers.0.blocks.1.attn.relative_position_index", lambda t: t.flip(0), "relative position index"),
    ("classifier.conv1_1.bias", lambda t: t * float("nan"), "NaN or infinite"),
])
def test_corrupted_values_are_refused(tmp_path, key, value, message):
    ckpt = _official("lavt")
    ckpt["model"][key] = value(ckpt["model"][key])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"(?s)corrupted checkpoint:.*{key}.*{message}"):
        convert_checkpoint(_save(tmp_path, ckpt), out, arch="lavt", text_heads=4)
    assert not out.exists()


def test_unreadable_file_is_a_value_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights-only"):
        load_official_checkpoint(bad)


# ---------------------------------------------------------------- checkpoint layouts


def test_separate_bert_model_and_namespace_args(tmp_path):
    """LAVT's original ``lavt`` layout: BERT in ``bert_model``, args as a Namespace."""
    ckpt = _official("lavt")
    model = ckpt["model"]
    bert = {k[len("text_encoder."):]: model.pop(k) for k in list(model) if k.startswith("text_encoder.")}
    path = _save(tmp_path, {"model": model, "bert_model": bert, "args": argparse.Namespace(mha="", fusion_drop=0.0)})
    state, args = load_official_checkpoint(path)
    assert args == {"mha": "", "fusion_drop": 0.0}
    ref, _ = load_official_checkpoint(FIXTURES / "lavt" / "checkpoint.pth")
    assert set(state) == set(ref) and all(torch.equal(state[k], ref[k]) for k in ref)


def test_pwam_heads_come_from_official_args(tmp_path):
    ckpt = _official("lavt")
    ckpt["args"]["mha"] = "1-2-4-8"
    plan = plan_conversion("lavt", ckpt["model"], text_heads=4, official_args=ckpt["args"])
    assert plan.model_args["fusion_heads"] == [1, 2, 4, 8]


def test_key_mapping_rules():
    assert map_official_key("backbone.layers.0.downsample.reduction.weight") == "backbone.layers.1.downsample.reduction.weight"
    assert map_official_key("backbone.norm3.bias") == "backbone.out_norms.3.bias"
    assert map_official_key("backbone.cim.fusion.0.bn1.weight") == "neck.fusion.0.bn1.weight"
    assert map_official_key("text_encoder.encoder.layer.1.output.dense.weight") == (
        "text_encoder.bert.encoder.layer.1.output.dense.weight"
    )
    assert map_official_key("backbone.layers.2.blocks.3.attn.relative_position_index") is None
    assert map_official_key("classifier.conv2_4.rounting_func.fc_theta.weight") == (
        "classifier.conv2_4.rounting_func.fc_theta.weight"
    )


# ---------------------------------------------------------------- full-size coverage


def _full_shapes(arch, variant=""):
    spec = json.loads((FIXTURES / arch / f"full_keys{variant}.json").read_text())
    shapes = dict(spec["model"]["keys"])
    for k, v in spec.get("bert_model", {}).get("keys", {}).items():
        shapes["text_encoder." + k] = v
    return shapes


@pytest.mark.parametrize("arch, variant", [("lavt", ""), ("lavt", "_lavt_variant"), ("rmsin", "")])
def test_full_size_checkpoints_are_fully_covered(arch, variant):
    """Swin-B + BERT-base key lists map 1:1 onto the registered full-size models (meta device)."""
    shapes = _full_shapes(arch, variant)
    plan = plan_conversion(arch, shapes)  # raises on any unconsumed / unfilled key
    dropped = [k for k, v in plan.key_map.items() if v is None]
    assert dropped and all(k.endswith("relative_position_index") for k in dropped)
    assert len(dropped) == sum([2, 2, 18, 2])
    assert len(plan.expected) == len(shapes) - len(dropped)
    # The inferred architecture is the registered default one.
    with torch.device("meta"):
        default = rrsis.create_model(arch).config
    assert plan.config == default
    assert plan.model_args["text_heads"] == 12


# ---------------------------------------------------------------- what the CLI says


@pytest.mark.parametrize("change, names", [
    (lambda m: m.__setitem__("backbone.extra.weight", torch.zeros(3)), "backbone.extra.weight"),
    (lambda m: m.pop("backbone.layers.0.blocks.0.attn.qkv.weight"), "backbone.layers.0.blocks.0.attn.qkv.weight"),
    (lambda m: m["classifier.conv1_1.bias"].mul_(float("nan")), "classifier.conv1_1.bias has NaN"),
])
def test_cli_error_names_the_tensor(tmp_path, capsys, change, names):
    ckpt = _official("lavt")
    change(ckpt["model"])
    out = tmp_path / "out"
    assert cli_main(["convert", "--arch", "lavt", str(_save(tmp_path, ckpt)), str(out), "--text-heads", "4"]) == 2
    err = capsys.readouterr().err
    assert names in err and "--debug for all" not in err
    assert not out.exists()


def test_empty_file_says_so(tmp_path, capsys):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        load_official_checkpoint(empty)
    assert cli_main(["convert", "--arch", "lavt", str(empty), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"rrsis convert: error: cannot read {empty}: empty file (0 bytes)"


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("kind", ["payload", "garbage"])
def test_refusal_never_advises_weights_only_false(tmp_path, kind):
    marker = tmp_path / "ran"
    path = tmp_path / "bad.pth"
    if kind == "payload":
        torch.save({"model": {"x": torch.zeros(1)}, "args": _Payload(marker)}, path)
    else:
        path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(path)
    msg = str(err.value)
    assert not any(a in msg for a in ("weights_only=False", "set to `False`", "likely succeed", "safe_globals", "trust")), msg
    assert "never unpickles anything else" in msg and "argparse.Namespace" in msg
    if kind == "payload":
        assert "GLOBAL io.open was not an allowed global" in msg  # what torch refused, kept
    assert not marker.exists()


@pytest.mark.parametrize("arch", ARCHS)
def test_card_says_the_model_was_converted_and_where_its_licence_is(converted, arch):
    from rrsis.registry import list_pretrained, pretrained_cfg

    card = (converted[arch] / "README.md").read_text()
    source = card.split("## Source\n\n", 1)[1].split("\n\n", 1)[0]
    tag = next(t for t in list_pretrained(f"{arch}.*") if pretrained_cfg(t).extra.get("convert") == arch)
    assert f"official {arch.upper()} checkpoint (`checkpoint.pth`" in source
    assert pretrained_cfg(tag).license in source and f"rrsis models --info {tag}" in source
    assert pretrained_cfg(tag).swin.split(" (")[0] in source  # the official repository


def test_card_of_a_format_without_a_tag_names_no_licence():
    text = conversion_origin("nope", "/somewhere/weights.pth")
    assert "`weights.pth`" in text and "records no licence" in text and "Licence:" not in text


@pytest.mark.parametrize("arch", ARCHS[:1])
def test_a_resave_carries_the_source_and_says_when_the_weights_changed(converted, arch, tmp_path):
    from rrsis.hub.origin import card_origin

    def source(folder):
        return card_origin((folder / "README.md").read_text())

    original = source(converted[arch])
    model = rrsis.from_pretrained(converted[arch])
    assert model.origin == original and "rrsis did not train these weights" in original
    model.save_pretrained(tmp_path / "copy")
    assert source(tmp_path / "copy") == original
    model.save_pretrained(tmp_path / "copy")  # over its own generated card
    assert source(tmp_path / "copy") == original
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # as a training step would
    model.save_pretrained(tmp_path / "tuned")
    changed = source(tmp_path / "tuned")
    assert changed.startswith("These weights were changed (trained, edited or cast) after they were loaded")
    assert "\n> Converted with `rrsis convert" in changed and "rrsis models --info" in changed
    # The changed text is the next load's source, carried as it is while nothing changes again.
    rrsis.from_pretrained(tmp_path / "tuned").save_pretrained(tmp_path / "again")
    assert source(tmp_path / "again") == changed
    # Changed again after that load: still the one mark over the converted source, no deeper quote.
    tuned = rrsis.from_pretrained(tmp_path / "tuned")
    with torch.no_grad():
        next(tuned.parameters()).add_(0.01)
    tuned.save_pretrained(tmp_path / "twice")
    assert source(tmp_path / "twice") == changed
    # An explicit origin wins.
    rrsis.hub.save_pretrained(model, tmp_path / "mine", origin="Trained by us on our scenes.")
    assert source(tmp_path / "mine") == "Trained by us on our scenes."
    assert card_origin("# m\n\n| | |\n|---|---|\n| a | b |\n") is None
