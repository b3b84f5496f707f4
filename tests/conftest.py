"""Shared pytest setup.

``triton.jit`` decides between compiling and interpreting when a kernel is *defined*, i.e. when
``rrsis.kernels.triton_ops`` is first imported, possibly by any test that touches the kernel
dispatcher. Switching the interpreter on here, before any test module is imported, lets the
Triton kernels run on CPU tensors in CI; an explicit ``TRITON_INTERPRET=0`` (e.g. on a GPU
machine) is respected.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
