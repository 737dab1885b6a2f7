"""Argument checks every model family shares, made before any tensor is allocated: the
sampling arguments (the memory they need: ``vaekit.memory.check_memory``)."""

from __future__ import annotations

from typing import Any

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
