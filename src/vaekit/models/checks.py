"""Argument checks every model family shares, made before any tensor is allocated: the
sampling arguments and the memory a piece of work needs against what the device has."""

from __future__ import annotations

import os
from typing import Any

import torch

from vaekit.errors import VaekitError

#: The largest sampling temperature: prior draws scaled further only overflow the decoder.
MAX_TEMPERATURE = 100


def check_sampling(n: Any, temperature: Any) -> None:
    """``sample``'s arguments: at least one draw, a finite positive temperature."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise VaekitError(f"n: expected at least 1 sample, got {n!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not 0 < temperature <= MAX_TEMPERATURE:  # NaN fails the comparison too
        raise VaekitError(f"temperature: expected a number above 0 and at most {MAX_TEMPERATURE}, got {temperature!r}")


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


def check_memory(nbytes: int, what: str, advice: str, device: torch.device | str = "cpu") -> None:
    """Refuse, before allocating, work estimated at ``nbytes`` that the device cannot hold."""
    free = available_memory(device)
    if nbytes > free:
        raise VaekitError(f"{what} need about {_size(nbytes)} of memory, more than the {_size(free)} available "
                          f"on {torch.device(device).type}; {advice}")


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return ""
