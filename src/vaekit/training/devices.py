"""Which device a run uses: ``auto`` is CUDA when torch sees a GPU, else the CPU."""

from __future__ import annotations

import torch

from vaekit.errors import VaekitError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def valid_device(name: str) -> bool:
    """Whether ``name`` is a device setting vaekit accepts (checked before anything runs)."""
    return name in ("auto", "cpu", "cuda") or name.startswith("cuda:")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VaekitError(f"device: '{name}' asked for but torch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(name)
