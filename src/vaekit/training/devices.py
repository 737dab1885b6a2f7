"""Which device a run uses: ``auto`` is CUDA when torch sees a GPU, else the CPU; and the
CPU's denormal handling while training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` is a CPU that multiplies bfloat16 matrices in hardware (AVX512-BF16
    or AMX), where bfloat16 training runs faster than float32 (elsewhere it is emulated, and
    slower). GPUs answer no: bfloat16 there is asked for explicitly."""
    if device.type != "cpu":
        return False
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


@contextlib.contextmanager
def denormals_flushed(enabled: bool = True) -> Iterator[None]:
    """Flush denormal floats to zero in the block (where the CPU supports it), then turn it
    off again. Weights and Adam's moments drift into denormal range as training goes on,
    and arithmetic on them is many times slower (docs/guides/training.md, "CPU threads");
    flushed, the step time stays that of a fresh model."""
    flushed = enabled and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
