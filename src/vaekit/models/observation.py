"""p(x|z)'s family as a module: the part of a decoder every model family shares.

A decoder's network ends in ``params_per_element`` values per input element;
``Observation`` turns those into the likelihood object: Bernoulli logits, or the mean of a
Gaussian or a heavy-tailed Student-t with a fixed, a learned per-feature, or
(``heteroscedastic``) a per-example scale. The log of the squared scale is a parameter of
this module, so it saves and loads with the model whichever family uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.distributions import Bernoulli, Gaussian, Likelihood, StudentT
from vaekit.errors import VaekitError
from vaekit.models.config import ModelConfig

LIKELIHOODS = ("bernoulli", "gaussian", "student-t")
#: The families for real values, which have a scale (``obs_std``) and can learn it.
REAL_LIKELIHOODS = ("gaussian", "student-t")
#: A learned Student-t's degrees of freedom stay in [0.5, 200]. At df <= 1 the density has no
#: finite mean: ``mean`` is then its location (median and mode), which is what the decoder
#: reconstructs. Nearly constant features (shuttle's) reach the floor; one of 2 scored 0.001
#: higher there, within the spread of seeds (README, anomaly detection).
#: Above 200 it is a Gaussian to within the float precision of the fit.
LOG_DF_MIN, LOG_DF_MAX = math.log(0.5), math.log(200.0)


def check_likelihood(likelihood: str, obs_std: float, heteroscedastic: bool = False,
                     min_obs_std: float = 0.05, obs_df: float = 3.0, learn_obs_df: bool = False) -> None:
    """One-line errors for a config's likelihood fields (called from its ``__post_init__``)."""
    if likelihood not in LIKELIHOODS:
        raise VaekitError(f"likelihood: '{likelihood}' is not one of {', '.join(LIKELIHOODS)}")
    if obs_std <= 0:
        raise VaekitError(f"obs_std: must be positive, got {obs_std}")
    if not obs_df > 0:
        raise VaekitError(f"obs_df: the Student-t's degrees of freedom must be positive, got {obs_df}")
    if learn_obs_df and likelihood != "student-t":
        raise VaekitError(f"learn_obs_df: needs likelihood student-t (degrees of freedom), got {likelihood}")
    if heteroscedastic and likelihood not in REAL_LIKELIHOODS:
        raise VaekitError(f"heteroscedastic: needs likelihood {' or '.join(REAL_LIKELIHOODS)} (a per-example "
                          f"std), got {likelihood}")
    if heteroscedastic and not 0 < min_obs_std < obs_std:
        raise VaekitError(f"min_obs_std: must be positive and below obs_std ({obs_std:g}), got {min_obs_std}")


@dataclass
class LikelihoodConfig(ModelConfig):
    """The likelihood fields of a family whose decoder ends in an ``Observation`` (a mixin,
    as ``ConditionalConfig`` is), declared here once for all of them.

    ``likelihood``: ``bernoulli`` for data in [0, 1], ``gaussian`` or ``student-t`` for real
    values, with a fixed ``obs_std`` or, if ``learn_obs_std``, a learned per-feature standard
    deviation; ``heteroscedastic`` adds a std per example, output by the decoder and at least
    ``min_obs_std``; ``obs_df`` is the Student-t's degrees of freedom, per feature and learned
    with ``learn_obs_df``.
    """

    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    learn_obs_std: bool = False
    heteroscedastic: bool = False
    min_obs_std: float = 0.05
    obs_df: float = 3.0
    learn_obs_df: bool = False

    def check_likelihood(self) -> None:
        """One-line errors for these fields (called from the family's ``__post_init__``)."""
        check_likelihood(self.likelihood, self.obs_std, self.heteroscedastic, self.min_obs_std, self.obs_df,
                         self.learn_obs_df)

    def observation(self, shape: tuple[int, ...]) -> Observation:
        """The ``Observation`` these fields describe, for data of ``shape``."""
        return Observation(self.likelihood, shape, self.obs_std, self.learn_obs_std, self.heteroscedastic,
                           self.min_obs_std, self.obs_df, self.learn_obs_df)


class Observation(nn.Module):
    """Decoder output -> ``Bernoulli`` (data in [0, 1]), ``Gaussian`` or ``StudentT`` (real values).

    ``obs_std`` sets the Gaussian's standard deviation (the Student-t's scale, with
    ``obs_df`` degrees of freedom); with ``learn`` it is the start of a learned per-feature
    value, and with ``learn_df`` so is ``obs_df``: each feature gets the tails its errors
    have. ``heteroscedastic``: the decoder also outputs each element's std (An & Cho's
    "reconstruction probability" decoder), on top of the per-feature value and never below
    ``min_obs_std``: without a floor the likelihood grows without bound as a std shrinks
    onto a training point.
    """

    def __init__(self, likelihood: str, shape: tuple[int, ...], obs_std: float = 1.0, learn: bool = False,
                 heteroscedastic: bool = False, min_obs_std: float = 0.05, obs_df: float = 3.0,
                 learn_df: bool = False) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.obs_df = float(obs_df)
        self.event_ndim = len(shape)
        self.heteroscedastic = heteroscedastic
        # only a per-example std has a floor (the field is unchecked, and may be 0, otherwise)
        self.min_logvar = 2.0 * math.log(min_obs_std) if heteroscedastic else None
        if likelihood in REAL_LIKELIHOODS:
            self.obs_logvar = nn.Parameter(torch.full(shape, 2.0 * math.log(obs_std)),
                                           requires_grad=learn or heteroscedastic)
        self.learn_df = learn_df
        if learn_df:  # per feature, from obs_df on: each feature's own tail weight
            self.obs_logdf = nn.Parameter(torch.full(shape, math.log(obs_df)))

    @property
    def params_per_element(self) -> int:
        """Values the decoder outputs per input element (last dim when more than one)."""
        return 2 if self.heteroscedastic else 1

    def forward(self, out: torch.Tensor) -> Likelihood:
        if self.likelihood == "bernoulli":
            return Bernoulli(out, self.event_ndim)
        mean, logvar = out, self.obs_logvar
        if self.heteroscedastic:
            mean, raw = out.unbind(-1)
            logvar = self.min_logvar + F.softplus(raw + self.obs_logvar - self.min_logvar)
        if self.likelihood == "student-t":
            df = self.obs_logdf.clamp(LOG_DF_MIN, LOG_DF_MAX).exp() if self.learn_df else self.obs_df
            return StudentT(mean, logvar, self.event_ndim, df)
        return Gaussian(mean, logvar, self.event_ndim)
