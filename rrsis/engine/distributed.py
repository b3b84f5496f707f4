"""torchrun / DistributedDataParallel plumbing and a resumable, seeded data order.

The same command runs as one process or under ``torchrun --nproc_per_node N``: when torchrun
sets ``WORLD_SIZE`` > 1 the process group is initialised (NCCL on GPUs, Gloo on CPU), each
rank reads its shard of every epoch, and only rank 0 writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

__all__ = [
    "DistInfo",
    "ResumableSampler",
    "ShardSampler",
    "all_gather_objects",
    "all_reduce_mean",
    "cleanup_distributed",
    "resolve_device",
    "setup_distributed",
]


@dataclass
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, its device, whether it writes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(spec: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """The device a ``--device`` value names, checked against this machine.

    Args:
        spec: ``"auto"`` (the local GPU, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
            ``"mps"``.
        local_rank: the GPU of ``"cuda"`` without an index (one per process under torchrun).

    Raises:
        ValueError: not a device name, or a device this machine does not have.
    """
    from .validate import DEVICE_PATTERN

    text = str(spec) if isinstance(spec, torch.device) else spec
    if not isinstance(text, str) or not DEVICE_PATTERN.match(text):
        raise ValueError(f"device {spec!r} is not a device (auto, cpu, cuda, cuda:N, mps)")
    if text == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {text!r}: CUDA is not available on this machine (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}); use --device cpu or auto"
            )
        index = local_rank if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {text!r}: this machine has {torch.cuda.device_count()} GPU(s)")
        dev = torch.device("cuda", index)
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {text!r}: MPS is not available on this machine; use --device cpu")
    return dev


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; otherwise a single process.

    Args:
        device: ``"auto"`` (the local GPU, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world <= 1:
        return DistInfo(device=dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        here = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, here)


def cleanup_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (a one-element list outside distributed runs)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(value: float, info: DistInfo) -> float:
    """Mean of a float over ranks (for logging the loss of the whole batch)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (seeded per-epoch shuffle, one shard per rank) that can start
    part-way through an epoch.

    The order of epoch ``e`` is a function of ``(seed, e)`` only, so a checkpoint that records
    ``epoch`` and the number of samples already consumed reproduces the rest of the epoch
    exactly. With one process it is an ordinary seeded shuffle.

    Args:
        dataset: the dataset (only its length is used).
        seed: shuffle seed (the run's seed).
        rank, world_size: this process's shard.
        shuffle: shuffle each epoch.
    """

    def __init__(self, dataset, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's order in the current epoch."""
        self.start = int(start)

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.seed), "epoch": int(self.epoch), "start": int(self.start)}

    def __iter__(self) -> Iterator[int]:
        it = super().__iter__()
        for _ in range(self.start):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class ShardSampler(Sampler[int]):
    """Sequential indices ``rank, rank + world, ...``: every sample exactly once over all ranks
    (no padding duplicates, so gathered metrics count each sample once)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
