"""The refinement head's GPU switches (channels-last, input channels padded to a multiple of 8)
compute what the default head computes, forward and backward, and leave the weights alone."""

import copy

import pytest
import torch

from rrsis.heads.refine import IterativeRefinementHead


def _head(upscale: int) -> IterativeRefinementHead:
    torch.manual_seed(0)
    head = IterativeRefinementHead([8, 16, 24, 32], hidden=9, steps=2, upscale=upscale).double()
    for p in head.parameters():  # no zero-initialised rows: every weight matters to the gradients
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
    return head


def _feats(b: int = 2, side: int = 8):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(b, c, side >> i, side >> i, generator=g, dtype=torch.float64)
            for i, c in enumerate((8, 16, 24, 32))]


def _run(head, feats):
    feats = [f.clone().requires_grad_() for f in feats]
    logits, earlier = head(feats)
    loss = sum((t * torch.linspace(-1, 1, t.numel(), dtype=t.dtype).view_as(t)).sum() for t in [logits, *earlier])
    loss.backward()
    grads = {n: p.grad.clone() for n, p in head.named_parameters()}
    return logits.detach(), [e.detach() for e in earlier], grads, [f.grad for f in feats]


@pytest.mark.parametrize("upscale", [1, 2])
@pytest.mark.parametrize("switch", ["pad", "channels_last", "both"])
def test_switches_match_the_default_head(upscale, switch):
    base = _head(upscale)
    other = copy.deepcopy(base)
    if switch in ("pad", "both"):
        other.pad_channels_to = 8
    if switch in ("channels_last", "both"):
        other.use_channels_last()
    feats = _feats()
    for mode in ("train", "eval"):
        getattr(base, mode)(), getattr(other, mode)()
        want, got = _run(base, feats), _run(other, feats)
        torch.testing.assert_close(got[0], want[0], rtol=1e-9, atol=1e-9)
        for a, b in zip(got[1], want[1]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        assert got[2].keys() == want[2].keys()
        for name in want[2]:
            torch.testing.assert_close(got[2][name], want[2][name], rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")
        for a, b in zip(got[3], want[3]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        base.zero_grad(), other.zero_grad()
    # The weights keep their shapes (no padded copies stored), values and state-dict keys; the
    # batch-norm running statistics agree up to the layout's summation order.
    sd, sd_other = base.state_dict(), other.state_dict()
    params = dict(base.named_parameters())
    assert sd.keys() == sd_other.keys()
    for k in sd:
        assert sd[k].shape == sd_other[k].shape
        tol = 0 if k in params else 1e-9
        torch.testing.assert_close(sd_other[k], sd[k], rtol=tol, atol=tol)


def test_padding_reaches_a_multiple_of_eight_and_channels_last_holds():
    head = _head(1)  # 2·9 + 2 = 20 input channels per refinement block → 24
    head.pad_channels_to = 8
    head.use_channels_last()
    seen = []
    conv = head.refine[0][0][0]
    hook = torch.nn.functional.conv2d

    def spy(inp, weight, *a, **k):
        if weight.shape[-1] == 3 and weight.shape[1] >= conv.in_channels:  # a block's first conv
            seen.append((inp.shape[1], weight.shape[1], inp.is_contiguous(memory_format=torch.channels_last)))
        return hook(inp, weight, *a, **k)

    torch.nn.functional.conv2d = spy
    try:
        head.eval()(_feats())
    finally:
        torch.nn.functional.conv2d = hook
    assert seen == [(24, 24, True), (24, 24, True)]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    head.use_channels_last(False)
    assert conv.weight.is_contiguous() and not head.channels_last
