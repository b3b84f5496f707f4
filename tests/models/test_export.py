"""torch.export of models that return SegmentationOutput / TextFeatures (rrsis/models/outputs.py)."""

import copy
import pickle

import pytest
import torch
from torch.utils import _pytree as pytree

import rrsis
from rrsis.models.outputs import SegmentationOutput, TextFeatures


def test_outputs_flatten_into_their_tensors_and_back():
    logits, aux = torch.randn(1, 2, 4, 4), [torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)]
    leaves, spec = pytree.tree_flatten(SegmentationOutput(logits, aux))
    assert len(leaves) == 3 and leaves[0] is logits and leaves[1] is aux[0] and leaves[2] is aux[1]
    back = pytree.tree_unflatten(leaves, spec)
    assert type(back) is SegmentationOutput and back.logits is logits and back.aux_logits == aux
    words, mask = torch.randn(1, 3, 8), torch.ones(1, 3)
    leaves, spec = pytree.tree_flatten(TextFeatures(words, mask))
    assert leaves == [words, mask]
    assert pytree.tree_unflatten(leaves, spec) == TextFeatures(words, mask)
    # mapping over an output keeps its type: what torch.export and torch.compile rely on
    doubled = pytree.tree_map(lambda t: t * 2, SegmentationOutput(logits, aux))
    assert torch.equal(doubled.logits, logits * 2) and torch.equal(doubled.aux_logits[1], aux[1] * 2)


def test_outputs_still_pickle_copy_and_compare():
    out = SegmentationOutput(torch.ones(1, 2, 2, 2), [torch.zeros(1, 2, 2, 2)])
    for other in (pickle.loads(pickle.dumps(out)), copy.deepcopy(out)):
        assert type(other) is SegmentationOutput
        assert torch.equal(other.logits, out.logits) and torch.equal(other.aux_logits[0], out.aux_logits[0])
    assert SegmentationOutput(out.logits) == SegmentationOutput(out.logits)
    assert SegmentationOutput(out.logits).aux_logits == []  # the default stays a fresh list
    text = TextFeatures(torch.ones(1, 2, 3), torch.ones(1, 2))
    assert pickle.loads(pickle.dumps(text)).words.shape == (1, 2, 3)


class _Toy(torch.nn.Module):
    """A module shaped like a model: SegmentationOutput with aux outputs."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return SegmentationOutput(logits=y, aux_logits=[y * 2, y.relu()])


def test_a_module_returning_segmentation_output_exports_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    toy, x = _Toy().eval(), torch.randn(2, 3, 8, 8)
    ep = torch.export.export(toy, (x,))
    torch.export.save(ep, tmp_path / "toy.pt2")  # needs the serialized type name
    for program in (ep, torch.export.load(tmp_path / "toy.pt2")):
        got, want = program.module()(x), toy(x)
        assert type(got) is SegmentationOutput and len(got.aux_logits) == 2
        for a, b in zip([got.logits, *got.aux_logits], [want.logits, *want.aux_logits]):
            torch.testing.assert_close(a, b)


# 8 s for gl-msin-tiny on 2 idle cores (30 s when busy); the baselines run in the slow suite.
@pytest.mark.parametrize("name", ["gl-msin-tiny", *(pytest.param(n, marks=pytest.mark.slow)
                                                    for n in ("lavt-tiny", "rmsin-tiny"))])
def test_a_model_exports_as_is_and_matches_eager(name):
    torch.manual_seed(0)
    model = rrsis.create_model(name).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, 64, generator=g)
    ids = torch.randint(1, 100, (2, 7), generator=g)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    ep = torch.export.export(model, (x, ids, mask))
    for pixels in (x, torch.randn(2, 3, 64, 64, generator=g)):  # a new input, not baked-in values
        with torch.no_grad():
            want = model(pixels, ids, mask)
        got = ep.module()(pixels, ids, mask)
        assert type(got) is SegmentationOutput and len(got.aux_logits) == len(want.aux_logits)
        for a, b in zip([got.logits, *got.aux_logits], [want.logits, *want.aux_logits]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.slow  # about 2 minutes on 2 cores
def test_onnx_dynamo_export_matches_eager_with_a_dynamic_batch(tmp_path):
    pytest.importorskip("onnxscript")  # the "onnx" extra
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny").eval()
    g = torch.Generator().manual_seed(2)
    args = (torch.randn(2, 3, 64, 64, generator=g), torch.randint(1, 100, (2, 7), generator=g),
            torch.ones(2, 7, dtype=torch.long))
    batch = torch.export.Dim("batch", min=1, max=8)
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, args, path, dynamo=True, input_names=["pixel_values", "input_ids", "attention_mask"],
                      dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))
    session = ReferenceEvaluator(str(path))
    for b in (2, 3):
        pixels, ids = torch.randn(b, 3, 64, 64, generator=g), torch.randint(1, 100, (b, 7), generator=g)
        mask = torch.ones(b, 7, dtype=torch.long)
        mask[0, 4:] = 0
        with torch.no_grad():
            want = model(pixels, ids, mask)
        got = session.run(None, {"pixel_values": pixels.numpy(), "input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        assert len(got) == 1 + len(want.aux_logits)  # the flattened SegmentationOutput: logits, then aux
        for a, w in zip(got, [want.logits, *want.aux_logits]):
            torch.testing.assert_close(torch.from_numpy(a), w, atol=1e-5, rtol=1e-5)
