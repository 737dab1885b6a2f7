"""The memory a piece of work needs against what the device has: one check, made before any
tensor is allocated, for every place that can refuse work too large (``Model.sample``, a
model's training in ``pipeline``, a synthetic dataset's split in ``data.shapes``)."""

from __future__ import annotations

import os

import torch

from vaekit.errors import VaekitError


def available_memory(device: torch.device | str = "cpu") -> int:
    """Bytes free for new tensors on ``device``: the GPU's free memory, or the machine's
    available memory (``MemAvailable``; physical memory where that cannot be read)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: refuse nothing


def memory_budget(device: torch.device | str = "cpu", share: int = 1) -> int:
    """The bytes a piece of work may take: ``1 / share`` of what ``device`` has free."""
    return available_memory(device) // share


def check_memory(nbytes: int, what: str, advice: str, device: torch.device | str = "cpu", *,
                 share: int = 1) -> None:
    """Refuse, before allocating, work estimated at ``nbytes`` that does not fit in ``1 / share``
    of the memory ``device`` has free (``share`` > 1 leaves room for the work beside it):
    ``"{what} need about ... of memory, more than ... available on cpu; {advice}"``."""
    budget = memory_budget(device, share)
    if nbytes > budget:
        part = "" if share == 1 else f"1/{share} of "
        raise VaekitError(f"{what} need about {_size(nbytes)} of memory, more than {part}the "
                          f"{_size(budget * share)} available on {torch.device(device).type}; {advice}")


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return ""
