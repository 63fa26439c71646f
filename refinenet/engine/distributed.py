"""Multi-process (DistributedDataParallel) plumbing.

``torchrun --nproc_per_node=N -m refinenet train CONFIG`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; :func:`init` joins them into a group
(NCCL on CUDA, gloo on CPU). A plain ``refinenet train`` is a group of one and never touches
``torch.distributed``. Only rank 0 writes files or prints progress.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init", "shutdown", "barrier", "all_gather_objects", "broadcast_object"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """Rank and world size from torchrun's environment (a group of one without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(backend: str = "auto", device: torch.device | None = None) -> DistInfo:
    """Join the process group torchrun set up; no-op (returns a group of one) without torchrun."""
    info = from_env()
    if not info.enabled or dist.is_initialized():
        return info
    if backend == "auto":
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
    if device is not None and device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return info


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list without a group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
