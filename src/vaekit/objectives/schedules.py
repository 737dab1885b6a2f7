"""Pieces of the objective that are not distributions: KL schedules and free bits.

A KL schedule maps training progress (in epochs, fractional when applied per step) to
a weight in [0, 1] that multiplies beta. Specs are short strings so they fit on a
command line and in ``config.json``:

- ``none``                 weight 1 throughout
- ``brief``                0 -> 0.1 over epochs 0-10, 0.1 -> 1 over 10-50, then 1
- ``linear:N``             0 -> 1 linearly over the first N epochs (a warm-up)
- ``cyclical:M[:R]``       M cycles over the run; in each, 0 -> 1 over the first R
                           (default 0.5) of the cycle, then 1 (Fu et al. 2019)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.errors import VaekitError

SCHEDULE_HELP = "none | brief | linear:EPOCHS | cyclical:CYCLES[:RATIO]"


@dataclass(frozen=True)
class KLSchedule:
    """A KL weight as a function of (fractional) epoch; see the module docstring."""

    kind: str = "none"
    warmup_epochs: float = 0.0
    cycles: int = 1
    ratio: float = 0.5
    total_epochs: float = 1.0

    @classmethod
    def parse(cls, spec: str, total_epochs: int) -> KLSchedule:
        parts = spec.strip().lower().split(":")
        kind, args = parts[0], parts[1:]
        try:
            if kind in ("none", "constant", "") and not args:
                return cls("none", total_epochs=total_epochs)
            if kind == "brief" and not args:
                return cls("brief", total_epochs=total_epochs)
            if kind == "linear" and len(args) == 1 and float(args[0]) > 0:
                return cls("linear", warmup_epochs=float(args[0]), total_epochs=total_epochs)
            if kind == "cyclical" and 1 <= len(args) <= 2:
                cycles = int(args[0])
                ratio = float(args[1]) if len(args) == 2 else 0.5
                if cycles >= 1 and 0 < ratio <= 1:
                    return cls("cyclical", cycles=cycles, ratio=ratio, total_epochs=total_epochs)
        except ValueError:
            pass
        raise VaekitError(f"--kl-anneal: cannot read '{spec}' (expected {SCHEDULE_HELP})")

    def weight(self, epoch: float) -> float:
        """The KL weight at ``epoch`` (0-based; 2.5 means halfway through the third epoch)."""
        if self.kind == "none":
            return 1.0
        if self.kind == "brief":
            if epoch < 10:
                return 0.1 * epoch / 10
            if epoch < 50:
                return 0.1 + 0.9 * (epoch - 10) / 40
            return 1.0
        if self.kind == "linear":
            return min(1.0, epoch / self.warmup_epochs)
        period = self.total_epochs / self.cycles
        phase = math.fmod(epoch, period) / period
        return min(1.0, phase / self.ratio)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term of the objective with each latent dimension floored at ``free_bits`` nats.

    ``kl_per_dim`` is ``(B, D)``. The batch mean of each dimension is floored (Kingma et
    al. 2016), so a dimension below the floor gets no gradient pushing it to zero; the
    true KL is reported separately.
    """
    per_dim = kl_per_dim.mean(dim=0)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()
