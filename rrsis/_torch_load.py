"""What ``torch.load(weights_only=True)`` found wrong with a file, without its advice.

PyTorch's refusal opens with advice to load the file anyway: rerun with ``weights_only=False``
("will likely succeed") or allowlist the refused global. Either runs whatever code the file
holds, so rrsis never passes that advice on; it keeps the sentences that say what was refused.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

__all__ = ["load_failure", "weights_only_load"]

# Sentences that advise loading anyway, or point to where that advice is.
_ADVICE = ("weights_only", "weights only", "safe_globals", "trust", "documentation", "file an issue",
           "can still be loaded", "alternatively")


def load_failure(exc: BaseException) -> str:
    """``exc``'s words, less PyTorch's advice to load the file anyway (the type name when nothing is left)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?:])\s+|\n", text) if s.strip()]
    kept = [re.sub(r"^\(\d\)\s*|^WeightsUnpickler error:\s*", "", s) for s in sentences
            if not any(a in s.lower() for a in _ADVICE)]
    kept = [s for s in kept if s and s != "WeightsUnpickler error:"]
    return " ".join(kept) or ("empty or truncated file" if isinstance(exc, EOFError) else type(exc).__name__)


def weights_only_load(path: Any, **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True, **kwargs)`` without PyTorch's warning about a pickle
    protocol other than its own ("... please file an issue ..."): a file of another protocol loads or
    is refused as any other, and the refusal says what was wrong, so the warning only preceded it."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected pickle protocol \d+ in the checkpoint", category=UserWarning)
        return torch.load(path, weights_only=True, **kwargs)
