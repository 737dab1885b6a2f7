"""Multi-process training with torch.distributed, started by ``torchrun``.

``torchrun --nproc_per_node 2 -m vaekit train ...`` sets RANK / WORLD_SIZE / MASTER_ADDR in
each process's environment; ``init_from_env`` joins the group (gloo on CPU, nccl on GPUs).
The same command scales to several nodes (``--nnodes``, ``--rdzv-endpoint``). In a plain
single process every helper here is a no-op, so the trainer has one code path.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> None:
    """Join the process group that torchrun describes in the environment, once."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 alone writes checkpoints, logs, pictures and the report."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all ranks (a copy; the input is unchanged)."""
    if not active():
        return values
    out = values.detach().clone()
    dist.all_reduce(out)
    return out


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module to call for training: DistributedDataParallel when running in a group."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)
