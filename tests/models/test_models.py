"""Every registered model, parametrised over the registry (rrsis/models/)."""

import pytest
import torch

import rrsis
from rrsis import ReferringLoss

# Shrinks any registered architecture to test size while keeping its part choices.
SMALL = {
    "image_size": 64, "embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8],
    "window_size": 4, "text_vocab_size": 128, "text_hidden_size": 32, "text_layers": 2,
    "text_heads": 2, "text_intermediate_size": 64, "text_max_positions": 32,
    "text_freeze_last_layers": 1,
}
# GL-MSIN's own knobs (ELSA, GEM, refinement): the baselines have no such parts and refuse them.
GL_MSIN_SMALL = {"elsa_kernel": 3, "gem_pool": 2, "head_hidden": 16, "refine_steps": 2}
MODELS = rrsis.list_models()


def build_small(name, **kw):
    torch.manual_seed(0)
    if name.endswith("tiny"):
        return rrsis.create_model(name, **kw)
    extra = GL_MSIN_SMALL if name.startswith("gl-msin") else {}
    return rrsis.create_model(name, **{**SMALL, **extra, **kw})


def inputs(model, b=2, size=64, length=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    vocab = model.config["text"]["vocab_size"]
    x = torch.randn(b, 3, size, size, generator=g)
    ids = torch.randint(5, vocab, (b, length), generator=g)
    mask = torch.ones(b, length, dtype=torch.long)
    mask[-1, length // 2 :] = 0
    ids[mask == 0] = 0
    return x, ids, mask


@pytest.mark.parametrize("name", MODELS)
def test_forward_contract(name):
    """Shapes at input size, eval determinism, and padded token ids being ignored."""
    model = build_small(name).eval()
    x, ids, mask = inputs(model)
    other = ids.clone()
    other[mask == 0] = torch.randint(5, model.config["text"]["vocab_size"], (int((mask == 0).sum()),))
    assert not torch.equal(other, ids)
    with torch.no_grad():
        out = model(x, ids, mask)
        again = model(x, ids, mask).logits
        padded = model(x, other, mask).logits
    assert out.logits.shape == (2, 2, 64, 64)
    assert all(a.shape == (2, 2, 64, 64) for a in out.aux_logits)
    assert torch.isfinite(out.logits).all()
    assert torch.equal(out.logits, again)
    torch.testing.assert_close(padded, out.logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_exactly_the_trainable_parameters(name):
    model = build_small(name).train()
    x, ids, mask = inputs(model)
    target = (torch.rand(2, 64, 64) > 0.5).long()
    ReferringLoss()(model(x, ids, mask), target).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
        else:
            assert p.grad is None, f"frozen {pname} got a gradient"
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("embeddings" in n for n in frozen)
    last = model.config["text"]["num_layers"] - 1
    assert any(f"encoder.layer.{last}." in n for n in frozen)


@pytest.mark.parametrize("name", MODELS)
def test_config_is_json_and_rebuilds(name):
    import json

    model = build_small(name)
    cfg = json.loads(json.dumps(model.config))
    again = rrsis.create_model(name, **cfg)
    assert again.config == model.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize("size", [96, 128])
def test_any_multiple_of_32(size):
    model = build_small("gl-msin").eval()
    x, ids, mask = inputs(model, b=1, size=size)
    with torch.no_grad():
        assert model(x, ids, mask).logits.shape == (1, 2, size, size)


def test_text_changes_the_output():
    model = build_small("gl-msin").eval()
    x, ids, mask = inputs(model, b=1)
    with torch.no_grad():
        a = model(x, ids, mask).logits
        b = model(x, (ids + 1) * mask, mask).logits
    assert not torch.allclose(a, b)


def test_gl_msin_full_size_parameter_count():
    # Built on the meta device: shapes only, no memory.
    with torch.device("meta"):
        model = rrsis.create_model("gl-msin")
    n = sum(p.numel() for p in model.parameters())
    text = sum(p.numel() for p in model.text_encoder.parameters())
    assert 200e6 <= n <= 230e6, n
    assert 108e6 < text < 110e6  # BERT-base without pooler
    assert model.config["backbone"]["embed_dim"] == 128 and model.config["backbone"]["depths"] == [2, 2, 18, 2]
    assert model.config["backbone"]["num_heads"] == [4, 8, 16, 32] and model.config["backbone"]["window_size"] == 12


def test_gl_msin_t_forward_full_size():
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-t").eval()
    # One image: batches of several are the tiny models' tests; this one is about full-size parts.
    x = torch.randn(1, 3, 320, 320)
    ids = torch.randint(1000, 2000, (1, 20))
    with torch.no_grad():
        out = model(x, ids, torch.ones(1, 20, dtype=torch.long))
    assert out.logits.shape == (1, 2, 320, 320)
    assert torch.isfinite(out.logits).all()


@pytest.mark.slow
def test_gl_msin_b_forward_480():
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin").eval()
    x = torch.randn(1, 3, 480, 480)
    with torch.no_grad():
        out = model(x, torch.randint(1000, 2000, (1, 20)), torch.ones(1, 20, dtype=torch.long))
    assert out.logits.shape == (1, 2, 480, 480)
    assert torch.isfinite(out.logits).all()


@pytest.mark.slow
def test_torch_compile_captures_one_graph():
    # fullgraph=True fails on any graph break; the eager backend keeps CPU compile time low.
    model = build_small("gl-msin").eval()
    x, ids, mask = inputs(model)
    with torch.no_grad():
        eager = model(x, ids, mask).logits
        compiled = torch.compile(model, backend="eager", fullgraph=True)(x, ids, mask).logits
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- bad input to forward
@pytest.fixture(scope="module")
def tiny():
    return build_small("gl-msin-tiny").eval()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda x, i, m: (x[0], i, m), r"pixel_values must be \[B, 3, H, W\]"),
        (lambda x, i, m: (x[:, :1], i, m), "1 channels but this model takes 3"),
        (lambda x, i, m: (x[:, :, :0], i, m), "zero-size"),
        (lambda x, i, m: (x[:, :, :48], i, m), "not a multiple of 32"),
        (lambda x, i, m: (x.long(), i, m), "must be a float tensor"),
        (lambda x, i, m: (x.double(), i, m), r"pixel_values is torch.float64 but the model's weights are torch.float32"),
        (lambda x, i, m: (x.half(), i, m), r"torch.float16 but the model's weights .* or run under torch.autocast"),
        (lambda x, i, m: (x.to("meta"), i, m), "pixel_values is on meta but the model is on cpu"),
        (lambda x, i, m: (x.index_fill(2, torch.tensor([3]), float("nan")), i, m), "NaN"),
        (lambda x, i, m: (x, i[0], m[0]), r"input_ids must be \[B, L\]"),
        (lambda x, i, m: (x, i.float(), m), "integer token ids"),
        (lambda x, i, m: (x, i, m[:, :4]), "attention_mask shape"),
        (lambda x, i, m: (x, i[:1], m[:1]), "2 images but 1 texts"),
        (lambda x, i, m: (x, i, m.index_fill(0, torch.tensor([1]), 0)), r"empty text .* \[1\]"),
        (lambda x, i, m: (x, i + 1000, m), "input_ids must lie in"),
        (lambda x, i, m: (x, i, m * 2), "only 0 and 1"),
    ],
)
def test_forward_rejects_bad_input(tiny, mutate, message):
    x, ids, mask = inputs(tiny)
    with pytest.raises(ValueError, match=message):
        tiny(*mutate(x, ids, mask))


def test_another_input_dtype_runs_under_autocast(tiny):
    x, ids, mask = inputs(tiny)
    with torch.no_grad():
        want = tiny(x, ids, mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = tiny(x.bfloat16(), ids, mask).logits  # autocast casts where it runs: no refusal
    assert got.shape == want.shape and torch.isfinite(got).all()


@pytest.mark.parametrize("name", ["gl-msin-tiny", "rmsin-tiny"])
def test_text_encoded_once_reused_across_images(name):
    """encode_text + forward_with_text (batch-1 text broadcast over images) equals the
    per-image forward with the expression repeated."""
    model = build_small(name).eval()
    x, ids, mask = inputs(model, b=3)
    ids1, mask1 = ids[:1], mask[:1]
    with torch.no_grad():
        text = model.encode_text(ids1, mask1)
        assert text.words.shape[:2] == ids1.shape
        shared = model.forward_with_text(x, text).logits
        full = model(x, ids1.expand(3, -1), mask1.expand(3, -1)).logits
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-5)
