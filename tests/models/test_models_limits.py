"""Model sizes have upper bounds, and a configuration's cost is estimated and refused over a
limit the user can raise, before anything is allocated (issue 30)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from _fixtures import REPO
from _limits import run_limited

import rrsis

HOSTILE = {
    "depths": {"depths": [10**6, 1, 1, 1]},
    "embed_dim": {"embed_dim": 10**9},
    "window_size": {"window_size": 10**6},
    "refine_steps": {"refine_steps": 10**6},
    "num_heads": {"num_heads": [10**6, 2, 4, 8]},
    "stages": {"depths": [1] * 100, "num_heads": [1] * 100},
    "image_size": {"image_size": 32 * 10**6},
    "vocab": {"text_vocab_size": 10**9},
    "text_hidden": {"text_hidden_size": 10**8, "text_heads": 1},
    "text_layers": {"text_layers": 10**6},
    "max_positions": {"text_max_positions": 10**9},
    "max_tokens": {"max_tokens": 10**9},
    "gem_pool": {"gem_pool": 10**6},
    "head_hidden": {"head_hidden": 10**7},
    "elsa_kernel": {"elsa_kernel": 10**6 + 1},
    "upscale": {"head": {"name": "refine", "upscale": 10**5}},
}


# Over the default limits though every value is within its bound: refused by the estimates.
OVER_DEFAULT_LIMITS = {
    "params": ("gl-msin-tiny",
               {"embed_dim": 4096, "num_heads": [1, 2, 4, 8], "depths": [2, 2, 64, 2]}),
    "activations": ("gl-msin", {"image_size": 8192}),
}


@pytest.fixture(scope="module")
def refusals():
    """What one memory- and time-limited child says for every hostile configuration above: the
    ConfigError's message, or ``"built"``. One child for all cases (one interpreter start): a
    regression to unbounded building fails these tests within the harness's limits instead of
    taking the machine. The default limits apply (the limits' variables are unset)."""
    cases = {**{k: ("gl-msin-tiny", kw) for k, kw in HOSTILE.items()}, **OVER_DEFAULT_LIMITS}
    code = (
        "import json, os, sys\n"
        "for var in ('RRSIS_MAX_PARAMS', 'RRSIS_MAX_ACTIVATION_GIB'):\n"
        "    os.environ.pop(var, None)\n"
        "import rrsis\n"
        f"cases = {cases!r}\n"
        "out = {}\n"
        "for name, (arch, kw) in sorted(cases.items()):\n"
        "    try:\n"
        "        rrsis.create_model(arch, **kw)\n"
        "        out[name] = 'built'\n"
        "    except rrsis.ConfigError as exc:\n"
        "        out[name] = str(exc)\n"
        "print(json.dumps(out))\n"
    )
    r = run_limited(code, timeout=30.0)
    assert not r.timed_out and r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out.keys() == cases.keys()
    return out


def test_every_size_above_its_bound_is_refused_quickly_under_a_memory_limit(refusals):
    for name in HOSTILE:
        assert re.search(r"upper bound|must be <=", refusals[name]), (name, refusals[name])


def test_every_bound_is_reachable_and_documented():
    # each bound is a positive number, and the reliability page lists every one by name
    from rrsis._config import SIZE_LIMITS

    page = (REPO / "docs" / "reliability.md").read_text()
    for name, bound in SIZE_LIMITS.items():
        assert bound > 0
        assert f"`{name}`" in page, f"docs/reliability.md does not document the bound of {name}"


def test_params_estimated_on_meta_match_the_real_model():
    from rrsis.registry import estimate_model

    est = estimate_model("gl-msin-tiny", embed_dim=32, num_heads=[2, 4, 8, 16])
    model = rrsis.create_model("gl-msin-tiny", embed_dim=32, num_heads=[2, 4, 8, 16])
    assert est.params == sum(p.numel() for p in model.parameters())
    assert est.buffers == sum(b.numel() for b in model.buffers())


def _saved_activation_bytes(model) -> int:
    """Bytes of the tensors autograd keeps in one training forward, parameters excluded: an
    independent measurement to hold the estimate against."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    s, n = model.config["image_size"], model.config["text"]["max_tokens"]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.train()(torch.randn(1, 3, s, s), torch.randint(0, 100, (1, n)), torch.ones(1, n, dtype=torch.long))
    return sum(seen.values())


@pytest.mark.parametrize("kw", [{}, {"image_size": 96}, {"refine_steps": 4}])
def test_activation_estimate_within_a_small_factor_of_the_measured(kw):
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", **kw)
    ratio = model.estimate_activation_bytes() / _saved_activation_bytes(model)
    assert 0.33 < ratio < 3, ratio


def test_param_limit_refuses_and_names_how_to_raise_it(monkeypatch):
    monkeypatch.delenv("RRSIS_MAX_PARAMS", raising=False)
    with pytest.raises(rrsis.ConfigError, match=r"max_params=100,000.*RRSIS_MAX_PARAMS"):
        rrsis.create_model("gl-msin-tiny", max_params=100_000)
    model = rrsis.create_model("gl-msin-tiny", max_params=10**6)  # 838k parameters: fits
    assert sum(p.numel() for p in model.parameters()) < 10**6
    monkeypatch.setenv("RRSIS_MAX_PARAMS", "1000")
    with pytest.raises(rrsis.ConfigError, match=r"max_params=1,000"):
        rrsis.create_model("gl-msin-tiny")
    monkeypatch.setenv("RRSIS_MAX_PARAMS", "lots")
    with pytest.raises(rrsis.ConfigError, match=r"RRSIS_MAX_PARAMS must be a number"):
        rrsis.create_model("gl-msin-tiny")


def test_default_param_limit_refuses_a_config_within_the_size_bounds(refusals):
    # every value within its bound, together far too big: refused by the estimate, quickly
    msg = refusals["params"]
    assert "parameters" in msg and "max_params" in msg, msg


def test_activation_limit(monkeypatch, refusals):
    monkeypatch.delenv("RRSIS_MAX_ACTIVATION_GIB", raising=False)
    with pytest.raises(rrsis.ConfigError, match=r"GiB of activations.*max_activation_gib=0.001"):
        rrsis.create_model("gl-msin-tiny", max_activation_gib=0.001)
    # a large image_size within its bound: the default limit refuses it before allocating
    msg = refusals["activations"]
    assert "GiB of activations" in msg and "max_activation_gib=64" in msg, msg
    assert rrsis.create_model("gl-msin-tiny", max_activation_gib=math.inf) is not None
    with pytest.raises(rrsis.ConfigError, match=r"max_activation_gib must be > 0"):
        rrsis.create_model("gl-msin-tiny", max_activation_gib=0)
