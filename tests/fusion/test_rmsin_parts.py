"""RMSIN's parts: IIM (``rrsis.fusion.iim``), CIM (``rrsis.fusion.cim``), ARC (``rrsis.heads.arc``).

The CIM and ARC-decoder checks run the parts on the intermediate tensors stored by the
official RMSIN forward pass (``fixtures/rmsin/io.safetensors``) with the official weights.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _fixtures import find_fixtures

from rrsis.fusion.cim import CrossScaleInteraction, conv_out_size
from rrsis.fusion.iim import IntraScaleInteraction
from rrsis.heads.arc import (
    AdaptiveRotatedConv2d,
    AdaptiveRotatedDecoder,
    rotate_kernels,
    rotation_matrices,
)
from rrsis.registry import HEADS, NECKS, VISUAL_BRANCH

FIXTURES = find_fixtures() / "rmsin"
needs_fixture = pytest.mark.skipif(
    not (FIXTURES / "io.safetensors").exists(), reason="RMSIN reference fixture not available"
)
TINY = (16, 32, 64, 128)


@pytest.fixture(scope="module")
def official():
    from safetensors.torch import load_file

    state = torch.load(FIXTURES / "checkpoint.pth", weights_only=True)["model"]
    return state, load_file(str(FIXTURES / "io.safetensors"))


def _sub(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _randomise_bn(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.2 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)


# ---------------------------------------------------------------- parity with official RMSIN


def _official(module, state, prefix):
    """``module`` in eval mode with the official checkpoint's tensors under ``prefix``, all used."""
    module.eval().load_state_dict(_sub(state, prefix), strict=True)
    return module


@needs_fixture
@torch.no_grad()
def test_cim_matches_official_outputs(official):
    state, io = official
    cim = _official(CrossScaleInteraction(TINY, grid=15), state, "backbone.cim.")
    outs = cim([io[f"swin_stage{i}"] for i in range(1, 5)])
    for i, out in enumerate(outs, start=1):
        ref = io[f"stage{i}"]
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()


@needs_fixture
@torch.no_grad()
def test_arc_decoder_matches_official_logits_and_routing(official):
    state, io = official
    dec = _official(AdaptiveRotatedDecoder(TINY, hidden=64), state, "classifier.")
    routed = {}
    for name in ("conv2_4", "conv2_3", "conv2_2"):
        conv = getattr(dec, name)
        conv.register_forward_pre_hook(
            lambda m, args, name=name: routed.__setitem__(name, m.rounting_func(args[0]))
        )
    logits, aux = dec([io[f"stage{i}"] for i in range(1, 5)])
    assert aux == []
    logits = F.interpolate(logits, size=(480, 480), mode="bilinear", align_corners=True)
    ref = io["logits"]
    assert (logits - ref).abs().max() <= 1e-5 * ref.abs().max()
    # The fixture exercises both rotation branches (θ > 0 in conv2_4/3, θ < 0 in conv2_2).
    for name, (alphas, angles) in routed.items():
        torch.testing.assert_close(alphas, io[f"classifier.{name}.alphas"], rtol=0, atol=1e-6)
        torch.testing.assert_close(angles, io[f"classifier.{name}.angles"], rtol=0, atol=1e-7)


# ---------------------------------------------------------------- IIM


def _bn(x, bn):
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(
        bn.running_var.view(shape) + bn.eps
    ) * bn.weight.view(shape) + bn.bias.view(shape)


def _repblock_reference(m, x):
    """Scalar-channel RepBlock written out from its definition (float64)."""

    def unit(h, three, one, ident):
        a = _bn(F.conv2d(h, three.conv1.weight), three.bn1)
        a = _bn(F.conv2d(a, three.conv2.weight, padding=1), three.bn2)
        b = _bn(F.conv2d(h, one.conv.weight), one.bn)
        return a + b + _bn(h, ident)

    h = torch.relu(unit(x, m.brb_3x3, m.brb_1x1, m.brb_identity))
    return torch.sigmoid(unit(h, m.brb_3x3_2, m.brb_1x1_2, m.brb_identity_2))


@torch.no_grad()
def test_iim_matches_definition_on_non_square_map():
    torch.manual_seed(0)
    iim = IntraScaleInteraction(8)
    _randomise_bn(iim)
    iim = iim.double().eval()
    x = torch.randn(2, 8, 7, 11, dtype=torch.float64)
    v = iim(x)
    w = _repblock_reference(iim.repblock, x.mean(1, keepdim=True))
    assert v.shape == x.shape
    torch.testing.assert_close(v, x * w)
    assert ((w > 0) & (w < 1)).all()


def test_iim_keys_match_official_layout():
    keys = set(IntraScaleInteraction(16).state_dict())
    for branch in ("brb_3x3", "brb_3x3_2"):
        assert {f"repblock.{branch}.conv1.weight", f"repblock.{branch}.conv2.weight"} <= keys
    assert "repblock.brb_identity_2.running_var" in keys


# ---------------------------------------------------------------- CIM beyond 480×480


@pytest.mark.parametrize("image", [320, 640, 352])
@torch.no_grad()
def test_cim_runs_on_other_input_sizes(image):
    torch.manual_seed(0)
    cim = CrossScaleInteraction(TINY).eval()
    feats = [torch.randn(1, c, math.ceil(image / s), math.ceil(image / s)) for c, s in
             zip(TINY, (4, 8, 16, 32))]
    outs = cim(feats)
    assert [o.shape for o in outs] == [f.shape for f in feats]
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("grid, expected", [(15, 225 + 64 + 25), (10, 100 + 25 + 16), (20, 400 + 100 + 49)])
def test_cim_token_count_follows_grid(grid, expected):
    cim = CrossScaleInteraction(TINY, grid=grid)
    attn = cim.block[0].csa1.m
    assert attn.num_tokens == expected
    assert attn.attention.proj.weight.shape == (grid * grid, expected)
    assert conv_out_size(15, 3, 2, 1) == 8 and conv_out_size(15, 5, 3, 2) == 5


def test_cim_rejects_wrong_stage_count():
    with pytest.raises(ValueError, match="expected 4 maps"):
        CrossScaleInteraction(TINY)([torch.zeros(1, 16, 8, 8)])


def test_cim_backward():
    torch.manual_seed(0)
    cim = CrossScaleInteraction(TINY, grid=6)
    feats = [torch.randn(2, c, s, s, requires_grad=True) for c, s in zip(TINY, (24, 12, 6, 3))]
    sum(o.square().mean() for o in cim(feats)).backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all() for f in feats)
    assert cim.block[0].csa1.m.attention.proj.weight.grad is not None


# ---------------------------------------------------------------- ARC


def test_rotation_is_identity_at_zero_and_rows_are_convex():
    r = rotation_matrices(torch.tensor([0.0, -0.0]))
    torch.testing.assert_close(r, torch.eye(9).expand(2, 9, 9))
    thetas = torch.linspace(-math.pi / 4, math.pi / 4, 41, dtype=torch.float64)
    r = rotation_matrices(thetas)
    torch.testing.assert_close(r.sum(-1), torch.ones(41, 9, dtype=torch.float64))
    assert (r >= -1e-12).all()


def test_rotation_edge_taps_are_bilinear_samples_at_rotated_points():
    """Edge taps (top, left, right, bottom) sample the kernel at their rotated position."""
    torch.manual_seed(0)
    kernel = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    for theta in (0.3, 0.05, -0.2, -0.6):
        rotated = rotation_matrices(torch.tensor(theta, dtype=torch.float64)) @ kernel.flatten()
        for tap in (1, 3, 5, 7):
            r, c = tap // 3 - 1, tap % 3 - 1
            # kernel coordinates (row, col) rotate about the centre tap
            rr = r * math.cos(theta) + c * math.sin(theta)
            cc = -r * math.sin(theta) + c * math.cos(theta)
            grid = torch.tensor([[[[cc, rr]]]], dtype=torch.float64)
            ref = F.grid_sample(kernel, grid, mode="bilinear", align_corners=True).item()
            assert rotated[tap].item() == pytest.approx(ref, abs=1e-12), (theta, tap)


def test_negative_rotation_is_mirrored_positive_rotation():
    flip = torch.tensor([2, 1, 0, 5, 4, 3, 8, 7, 6])  # mirror columns of a 3×3 kernel
    for theta in (0.1, 0.4, 0.7):
        pos = rotation_matrices(torch.tensor(theta, dtype=torch.float64))
        neg = rotation_matrices(torch.tensor(-theta, dtype=torch.float64))
        torch.testing.assert_close(neg, pos[flip][:, flip])


def test_rotate_kernels_mixes_banks_per_sample():
    torch.manual_seed(0)
    w = torch.randn(2, 3, 4, 3, 3, dtype=torch.float64)
    alphas = torch.rand(5, 2, dtype=torch.float64)
    thetas = (torch.rand(5, 2, dtype=torch.float64) - 0.5) * 1.4
    out = rotate_kernels(w, alphas, thetas).view(5, 3, 4, 3, 3)
    for b in range(5):
        ref = sum(
            alphas[b, n] * (rotation_matrices(thetas[b, n]) @ w[n].reshape(12, 9).T).T.reshape(3, 4, 3, 3)
            for n in range(2)
        )
        torch.testing.assert_close(out[b], ref)


@torch.no_grad()
def test_arc_conv_equals_per_sample_conv():
    torch.manual_seed(0)
    conv = AdaptiveRotatedConv2d(6, 5, kernel_number=2).double().eval()
    torch.nn.init.normal_(conv.rounting_func.fc_theta.weight, std=2.0)
    x = torch.randn(3, 6, 9, 7, dtype=torch.float64)
    alphas, angles = conv.rounting_func(x)
    assert (angles.abs() <= math.radians(40) + 1e-12).all()
    out = conv(x)
    for b in range(3):
        k = rotate_kernels(conv.weight, alphas[b : b + 1], angles[b : b + 1])
        torch.testing.assert_close(out[b : b + 1], F.conv2d(x[b : b + 1], k, padding=1))


def test_arc_rejects_other_kernel_sizes():
    with pytest.raises(ValueError, match="kernel_size=3"):
        AdaptiveRotatedConv2d(4, 4, kernel_size=5)


@pytest.mark.parametrize("size", [(16, 16), (8, 24)])
def test_arc_decoder_shapes_and_backward(size):
    torch.manual_seed(0)
    dec = AdaptiveRotatedDecoder(TINY, hidden=32)
    h, w = size
    feats = [torch.randn(2, c, math.ceil(h / s), math.ceil(w / s)) for c, s in zip(TINY, (1, 2, 4, 8))]
    out, _ = dec(feats)
    assert out.shape == (2, 2, h, w)
    out.mean().backward()
    assert dec.conv2_4.weight.grad is not None
    assert dec.conv2_2.rounting_func.fc_theta.weight.grad is not None


@needs_fixture
def test_arc_decoder_keys_match_official_layout(official):
    state, _ = official
    ours = AdaptiveRotatedDecoder(TINY, hidden=64).state_dict()
    theirs = _sub(state, "classifier.")
    assert set(ours) == set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


# ---------------------------------------------------------------- registries


def test_parts_are_registered():
    assert isinstance(VISUAL_BRANCH.build("iim", dim=16), IntraScaleInteraction)
    cim = NECKS.build("cim", in_channels=list(TINY))
    assert isinstance(cim, CrossScaleInteraction) and cim.grid == 15
    head = HEADS.build("arc", in_channels=list(TINY), hidden=None)
    assert isinstance(head, AdaptiveRotatedDecoder)
    assert head.conv1_1.in_channels == 64  # RMSIN's hidden width: C4 // 2
