"""The processes of a run: one, or a DistributedDataParallel group under torchrun.

``torchrun --nproc_per_node=N -m refinenet train CONFIG`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; :func:`join` joins them into a group
(NCCL on CUDA, gloo on CPU). A plain ``refinenet train`` is a group of one and never touches
``torch.distributed``.

Everything the trainer does differently with several processes is a method of the group, so
the trainer has no rank branches: :class:`SingleProcess` implements each as the identity (or
as "do it here"), :class:`ProcessGroup` with collectives. Only rank 0 writes files or prints;
the other ranks hold :data:`ABSENT` where rank 0 holds a writer or a progress bar.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .reproducibility import seed_everything

__all__ = ["ABSENT", "DistInfo", "ProcessGroup", "SingleProcess", "current", "from_env", "join"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

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


class _Absent:
    """Stands in for an object only rank 0 holds: every method call does nothing, returns None."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _nothing

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


ABSENT = _Absent()


class SingleProcess:
    """A group of one: collectives return their input, rank-0 work is done here."""

    def __init__(self, info: DistInfo = DistInfo()) -> None:
        self.info = info

    @property
    def rank(self) -> int:
        return self.info.rank

    @property
    def world_size(self) -> int:
        return self.info.world_size

    @property
    def is_main(self) -> bool:
        return self.info.is_main

    def only_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on rank 0 (its result); :data:`ABSENT` on the other ranks."""
        return fn(*args, **kwargs)

    def from_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` computed on rank 0 and sent to every rank (picklable result)."""
        return fn(*args, **kwargs)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (picklable objects)."""
        return [obj]

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of ``tensor`` (any shape) over the ranks, in place."""
        return tensor

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum over the ranks, in place (exact for integer tensors)."""
        return tensor

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def shard(self, n: int) -> range:
        """This rank's share of ``n`` items: every ``world_size``-th from ``rank``."""
        return range(self.rank, n, self.world_size)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train: ``model`` itself, or its DistributedDataParallel wrapper."""
        return model

    def sync_batchnorm(self, model: nn.Module) -> nn.Module:
        """``model`` with BatchNorm statistics computed over every rank's batch (SyncBatchNorm);
        a group of one has nothing to synchronise."""
        return model

    def reseed(self, seed: int) -> None:
        """Give each rank its own random stream (dropout) once the initial weights are drawn;
        a group of one keeps the stream it has."""

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm statistics) to every rank."""


class ProcessGroup(SingleProcess):
    """The ``torch.distributed`` group of a torchrun launch (already initialised)."""

    def only_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if self.is_main else ABSENT

    def from_main(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        box = [fn(*args, **kwargs) if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        tensor /= self.world_size
        return tensor

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor

    def barrier(self) -> None:
        dist.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def sync_batchnorm(self, model: nn.Module) -> nn.Module:
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def reseed(self, seed: int) -> None:
        # Every rank drew the same initial weights (DDP also broadcasts rank 0's); dropout
        # must differ between ranks.
        seed_everything(seed + 1_000_003 * self.rank)

    def sync_buffers(self, model: nn.Module) -> None:
        # DDP broadcasts rank 0's buffers at the start of each forward, so after the last step
        # every rank holds BatchNorm statistics of its own last batch.
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def current() -> SingleProcess:
    """The group this process already belongs to (a group of one outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return ProcessGroup(DistInfo(dist.get_rank(), dist.get_world_size(), from_env().local_rank))
    return SingleProcess()


@contextlib.contextmanager
def join(backend: str = "auto", device: torch.device | None = None) -> Iterator[SingleProcess]:
    """The group of this process for the ``with`` block.

    Without torchrun: a :class:`SingleProcess`. Under torchrun: a :class:`ProcessGroup`,
    initialising ``torch.distributed`` if nobody has (``backend="auto"``: NCCL on CUDA, else
    gloo) and destroying it on exit if it was initialised here.
    """
    info = from_env()
    if not info.enabled:
        yield SingleProcess(info)
        return
    started = not dist.is_initialized()
    if started:
        if backend == "auto":
            backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    try:
        yield ProcessGroup(info)
    finally:
        if started:
            dist.destroy_process_group()
