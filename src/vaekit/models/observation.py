"""p(x|z)'s family as a module: the part of a decoder every model family shares.

A decoder's network ends in one value per input element; ``Observation`` turns those
into the likelihood object (Bernoulli logits, or a Gaussian mean with a fixed or learned
per-feature variance). The Gaussian's log-variance is a parameter of this module, so it
saves and loads with the model whichever family uses it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaekit.distributions import Bernoulli, Gaussian, Likelihood
from vaekit.errors import VaekitError

LIKELIHOODS = ("bernoulli", "gaussian")


def check_likelihood(likelihood: str, obs_std: float) -> None:
    """One-line errors for a config's likelihood fields (called from its ``__post_init__``)."""
    if likelihood not in LIKELIHOODS:
        raise VaekitError(f"likelihood: '{likelihood}' is not one of {', '.join(LIKELIHOODS)}")
    if obs_std <= 0:
        raise VaekitError(f"obs_std: must be positive, got {obs_std}")


class Observation(nn.Module):
    """Decoder output -> ``Bernoulli`` (data in [0, 1]) or ``Gaussian`` (real values).

    ``obs_std`` sets the Gaussian's standard deviation; with ``learn`` it is the start of a
    learned per-feature value.
    """

    def __init__(self, likelihood: str, shape: tuple[int, ...], obs_std: float = 1.0, learn: bool = False) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.event_ndim = len(shape)
        if likelihood == "gaussian":
            self.obs_logvar = nn.Parameter(torch.full(shape, 2.0 * math.log(obs_std)), requires_grad=learn)

    def forward(self, out: torch.Tensor) -> Likelihood:
        if self.likelihood == "bernoulli":
            return Bernoulli(out, self.event_ndim)
        return Gaussian(out, self.obs_logvar, self.event_ndim)
