"""p(x|z)'s family as a module: the part of a decoder every model family shares.

A decoder's network ends in ``params_per_element`` values per input element;
``Observation`` turns those into the likelihood object: Bernoulli logits, or a Gaussian
mean with a fixed, a learned per-feature, or (``heteroscedastic``) a per-example variance.
The Gaussian's log-variance is a parameter of this module, so it saves and loads with the
model whichever family uses it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.distributions import Bernoulli, Gaussian, Likelihood
from vaekit.errors import VaekitError

LIKELIHOODS = ("bernoulli", "gaussian")


def check_likelihood(likelihood: str, obs_std: float, heteroscedastic: bool = False,
                     min_obs_std: float = 0.05) -> None:
    """One-line errors for a config's likelihood fields (called from its ``__post_init__``)."""
    if likelihood not in LIKELIHOODS:
        raise VaekitError(f"likelihood: '{likelihood}' is not one of {', '.join(LIKELIHOODS)}")
    if obs_std <= 0:
        raise VaekitError(f"obs_std: must be positive, got {obs_std}")
    if heteroscedastic and likelihood != "gaussian":
        raise VaekitError(f"heteroscedastic: needs likelihood gaussian (a per-example std), got {likelihood}")
    if heteroscedastic and not 0 < min_obs_std < obs_std:
        raise VaekitError(f"min_obs_std: must be positive and below obs_std ({obs_std:g}), got {min_obs_std}")


class Observation(nn.Module):
    """Decoder output -> ``Bernoulli`` (data in [0, 1]) or ``Gaussian`` (real values).

    ``obs_std`` sets the Gaussian's standard deviation; with ``learn`` it is the start of a
    learned per-feature value. ``heteroscedastic``: the decoder also outputs each element's
    std (An & Cho's "reconstruction probability" decoder), on top of the per-feature value
    and never below ``min_obs_std``: without a floor the likelihood grows without bound as a
    std shrinks onto a training point.
    """

    def __init__(self, likelihood: str, shape: tuple[int, ...], obs_std: float = 1.0, learn: bool = False,
                 heteroscedastic: bool = False, min_obs_std: float = 0.05) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.event_ndim = len(shape)
        self.heteroscedastic = heteroscedastic
        # only a per-example std has a floor (the field is unchecked, and may be 0, otherwise)
        self.min_logvar = 2.0 * math.log(min_obs_std) if heteroscedastic else None
        if likelihood == "gaussian":
            self.obs_logvar = nn.Parameter(torch.full(shape, 2.0 * math.log(obs_std)),
                                           requires_grad=learn or heteroscedastic)

    @property
    def params_per_element(self) -> int:
        """Values the decoder outputs per input element (last dim when more than one)."""
        return 2 if self.heteroscedastic else 1

    def forward(self, out: torch.Tensor) -> Likelihood:
        if self.likelihood == "bernoulli":
            return Bernoulli(out, self.event_ndim)
        if not self.heteroscedastic:
            return Gaussian(out, self.obs_logvar, self.event_ndim)
        mean, raw = out.unbind(-1)
        logvar = self.min_logvar + F.softplus(raw + self.obs_logvar - self.min_logvar)
        return Gaussian(mean, logvar, self.event_ndim)
