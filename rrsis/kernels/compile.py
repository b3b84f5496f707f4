"""Whole-model ``torch.compile`` with the kernels' custom ops inside, the way rrsis does it.

The ``rrsis::`` ops (:mod:`.ops`) have fake implementations and registered backwards, so
Dynamo traces a whole forward (input checks included: under compile they read shapes only) and
AOTAutograd the whole backward, each as one graph with the ops as opaque nodes; Inductor fuses
the PyTorch code around them. :func:`compile_model` compiles the module in place
(``nn.Module.compile``), so ``state_dict`` keys, ``save_pretrained`` and the optimizer's
parameter list stay those of the plain model.
"""

from __future__ import annotations

from torch import nn

__all__ = ["compile_model"]

_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_model(model: nn.Module, *, fullgraph: bool = True, dynamic: bool | None = False,
                  mode: str | None = None, backend="inductor") -> nn.Module:
    """Compile ``model``'s forward in place and return it.

    Args:
        model: any ``nn.Module`` (an ``RRSISModel`` in the trainer).
        fullgraph: fail on a graph break instead of silently splitting the graph (the default:
            a break around a kernel op would undo the fusion it is there for).
        dynamic: ``False`` specialises on shapes (training uses one size; a new size
            recompiles); ``None`` lets Dynamo decide.
        mode: ``torch.compile``'s mode (``"reduce-overhead"`` adds CUDA graphs, which the
            host-sync-free input checks allow).
        backend: ``torch.compile``'s backend (tests use ``"aot_eager"`` on CPU).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"compile_model expects an nn.Module, got {type(model).__name__}")
    if mode not in _MODES:
        raise ValueError(f"compile mode {mode!r}; expected one of {_MODES}")
    # The provider table names devices; their names cannot be read inside a trace.
    from . import table

    table.load()
    model.compile(fullgraph=fullgraph, dynamic=dynamic, mode=mode, backend=backend)
    return model
