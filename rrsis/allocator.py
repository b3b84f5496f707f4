"""glibc allocator tuning for processes that exist to train on the CPU (``rrsis train``, the demo)."""

from __future__ import annotations

import ctypes

__all__ = ["keep_freed_memory"]


def keep_freed_memory(keep_mb: int = 256) -> bool:
    """Let the C library keep freed memory for reuse instead of handing it back to the system
    (glibc's ``mallopt``; elsewhere nothing changes). Returns whether it applied.

    A training step frees and allocates the same large buffers again. By default glibc returns
    freed memory at the top of its heap to the system and asks for it again in the next step,
    and every page it gets back costs a page fault the kernel fills with zeros: measured on the
    demo model (one thread, batch 8), 1,500–4,200 page faults and 5–14 ms of system time per
    step, and a few dozen faults and under 1 ms with this setting. Results are unchanged (only where buffers live changes).

    Args:
        keep_mb: free memory kept at the top of the heap before any is returned, in MiB.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded in this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    # Buffers up to 32 MiB (glibc's ceiling) come from the heap rather than fresh mappings.
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, int(keep_mb) << 20))
