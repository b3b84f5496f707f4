"""Shared pytest setup.

``triton.jit`` decides between compiling and interpreting when a kernel is *defined*, i.e. when
``rrsis.kernels.triton_ops`` is first imported, possibly by any test that touches the kernel
dispatcher. Switching the interpreter on here, before any test module is imported, lets the
Triton kernels run on CPU tensors in CI; an explicit ``TRITON_INTERPRET=0`` (e.g. on a GPU
machine) is respected.
"""

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

# One thread per test process (and per child it starts) unless OMP_NUM_THREADS says otherwise:
# the tests' tensors are small, and on a busy 2-core machine two OpenMP threads wait for each
# other. Measured on the shared development machine, minutes apart: tests/models/test_models.py
# and tests/scene/test_scene.py took 151 s with two threads and 24 s with one.
if "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

WORDS = (  # noqa: SIM905
    "the a an of in on at to left right north south east west top bottom largest smallest "
    "red blue green white gray storage tank tanks building plane ship vehicle court road "
    "all two three near next road hangar middle centre"
).split()


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that changes torch's thread count (training, the demo) must not change the next
    test's arithmetic: reductions split by thread count round differently."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from rrsis import Tokenizer

    return Tokenizer.from_words(WORDS, max_tokens=12)


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory, tiny_tokenizer):
    """``gl-msin-tiny`` (seed 0) with the tiny vocabulary, saved with ``save_pretrained``: its
    folder, for the command-line tests (``rrsis predict --model``)."""
    import rrsis
    from rrsis.hub import save_pretrained

    out = tmp_path_factory.mktemp("saved_tiny") / "model"
    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer))
    model.tokenizer = tiny_tokenizer
    save_pretrained(model, out)
    return out


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    """``gl-msin-tiny`` (seed 0, eval mode) with the tiny vocabulary attached: one per test module."""
    import rrsis

    torch.manual_seed(0)
    model = rrsis.create_model("gl-msin-tiny", text_vocab_size=len(tiny_tokenizer)).eval()
    model.tokenizer = tiny_tokenizer
    return model


@pytest.fixture(scope="session")
def benchmark_module():
    """``load(name)``: the script ``benchmarks/<name>.py`` imported as module ``name``."""

    here = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(here) not in sys.path:  # the scripts import their neighbours (``_common``)
        sys.path.append(str(here))

    def load(name: str):
        path = here / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    return load
