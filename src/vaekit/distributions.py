"""Distributions as objects: every numerical detail of the objective lives here once.

The posteriors (``Posterior``: ``DiagonalGaussian``, ``PointMass``; the codec's uniform box
in ``models/codec.py``) give the KL and the reparameterized sample, the Gaussian's in
closed form; the likelihoods (``Bernoulli``, ``Gaussian``, ``StudentT``, ``Categorical``)
give ``log_prob`` computed stably (Bernoulli from logits, never from probabilities) and a
``mean`` for pictures. Shapes: a distribution has ``batch`` dims in front and
``event_ndim`` trailing dims that ``log_prob`` and ``kl`` sum over, so the same object
works for one sample ``(B, ...)`` and for ``k`` importance samples ``(k, B, ...)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
# exp(-30) ~ 1e-13 and exp(20) ~ 5e8: wide enough for any sane posterior, narrow enough
# that exp() never overflows and the KL never becomes inf during an unstable step.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """Half-precision network outputs (bfloat16 autocast) as float32: every density and
    KL is computed in at least float32, so a low-precision forward never costs the loss
    its accuracy. Float32 and float64 pass through untouched."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _sum_event(t: torch.Tensor, event_ndim: int) -> torch.Tensor:
    return t.sum(dim=tuple(range(-event_ndim, 0))) if event_ndim > 0 else t


class Posterior(ABC):
    """q(z|x): what ``Model.encode`` returns, and all a tool may ask of it.

    ``mean`` (the code a tool plots, interpolates, exports), ``logvar`` / ``var`` / ``std``
    (each dimension's spread around it), ``mode()`` (the point a reconstruction decodes),
    ``rsample(n)`` / ``sample(n)`` (draws, ``(n, *mean.shape)`` with ``n``), ``log_prob(z)``,
    and ``kl()`` / ``kl_per_dim()`` against the model's prior. ``gaussian`` says whether it
    is a ``DiagonalGaussian`` (what the closed forms of the total-correlation objectives and
    bits-back coding need). Shapes as every distribution here: batch dims in front,
    ``event_ndim`` trailing dims that ``log_prob`` and ``kl`` sum over.
    """

    #: True for a diagonal Gaussian (``DiagonalGaussian``), False for every other posterior.
    gaussian: ClassVar[bool] = False
    mean: torch.Tensor
    logvar: torch.Tensor
    event_ndim: int = 1

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def mode(self) -> torch.Tensor:
        """The most probable z (the posterior mean unless a family says otherwise)."""
        return self.mean

    @abstractmethod
    def rsample(self, n: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw z ~ q(z|x), differentiable in q's parameters; ``n`` draws with a leading dim."""

    def sample(self, n: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(n, generator=generator)

    @abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x), summed over the event dims."""

    @abstractmethod
    def kl_per_dim(self) -> torch.Tensor:
        """Elementwise KL(q || prior); shape of ``mean``."""

    def kl(self) -> torch.Tensor:
        """KL(q || prior) summed over the event dims: one value per example."""
        return _sum_event(self.kl_per_dim(), self.event_ndim)


class DiagonalGaussian(Posterior):
    """q(z|x) = N(mean, diag(exp(logvar))), the VAE posterior.

    ``kl()`` is the closed form against N(0, I):
    KL = 0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1); ``kl(other)`` the closed form
    against another diagonal Gaussian (hierarchical priors).
    """

    gaussian: ClassVar[bool] = True

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, event_ndim: int = 1) -> None:
        self.mean = full_precision(mean)
        self.logvar = full_precision(logvar).clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.event_ndim = event_ndim

    def rsample(self, n: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): differentiable in mu and logvar.

        With ``n`` the result has a leading sample dimension ``(n, *mean.shape)``.
        """
        if n is None and generator is None:
            eps = torch.randn_like(self.mean)  # the same draw; also traceable by torch.compile
        else:
            shape = self.mean.shape if n is None else (n, *self.mean.shape)
            eps = torch.randn(shape, dtype=self.mean.dtype, device=self.mean.device, generator=generator)
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x), summed over the event dims."""
        elem = -0.5 * (LOG_2PI + self.logvar + (z - self.mean) ** 2 / self.var)
        return _sum_event(elem, self.event_ndim)

    def kl_per_dim(self, other: DiagonalGaussian | None = None) -> torch.Tensor:
        """Elementwise KL(q || p), p = N(0, I) unless ``other`` is given; shape of ``mean``."""
        if other is None:
            return 0.5 * (self.mean.pow(2) + self.var - self.logvar - 1.0)
        return 0.5 * (
            other.logvar - self.logvar + (self.var + (self.mean - other.mean).pow(2)) / other.var - 1.0
        )

    def kl(self, other: DiagonalGaussian | None = None) -> torch.Tensor:
        """KL(q || p) summed over the event dims: one value per example."""
        return _sum_event(self.kl_per_dim(other), self.event_ndim)


class PointMass(Posterior):
    """q(z|x) = delta(z - point): a deterministic encoder's posterior (a VQ-VAE's codes).

    Every draw is the point itself (gradients flow through it), ``log_prob`` is 0 (the
    log-mass of its one atom), and the spread is none: ``logvar`` is ``LOGVAR_MIN``, the
    smallest any posterior reports. ``kl_per_dim`` is the model's, given as a function
    (computed when asked): against a discrete prior over codes, KL(delta || p) = -log p(code).
    """

    def __init__(self, point: torch.Tensor, kl_per_dim: Callable[[], torch.Tensor], event_ndim: int = 1) -> None:
        self.mean = point
        self.logvar = torch.full_like(point, LOGVAR_MIN)
        self.event_ndim = event_ndim
        self._kl_per_dim = kl_per_dim

    def rsample(self, n: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean if n is None else self.mean.unsqueeze(0).expand(n, *self.mean.shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[:z.dim() - self.event_ndim], dtype=z.dtype, device=z.device)

    def kl_per_dim(self) -> torch.Tensor:
        return self._kl_per_dim()


def standard_normal_log_prob(z: torch.Tensor, event_ndim: int = 1) -> torch.Tensor:
    """log N(z; 0, I), summed over the event dims (the prior's density)."""
    return _sum_event(-0.5 * (LOG_2PI + z.pow(2)), event_ndim)


class Likelihood(ABC):
    """p(x|z): what a decoder returns."""

    event_ndim: int

    @property
    @abstractmethod
    def mean(self) -> torch.Tensor:
        """E[x|z]: the picture to show, the reconstruction to score."""

    @abstractmethod
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over the event dims, in nats."""

    @abstractmethod
    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw x ~ p(x|z)."""


class Bernoulli(Likelihood):
    """Independent Bernoulli pixels parameterized by logits.

    log p(x|z) = sum[x log p + (1 - x) log(1 - p)], computed as minus the BCE from
    logits, which is exact for x in [0, 1] (grey levels too) and never takes log(0).
    """

    def __init__(self, logits: torch.Tensor, event_ndim: int) -> None:
        self.logits = full_precision(logits)
        self.event_ndim = event_ndim

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand_as(self.logits)
        bce = F.binary_cross_entropy_with_logits(self.logits, x, reduction="none")
        return -_sum_event(bce, self.event_ndim)

    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean, generator=generator)


class Gaussian(Likelihood):
    """Independent Gaussian outputs with a fixed or learned log-variance.

    ``logvar`` broadcasts against ``mean``: a scalar for a fixed variance (with
    variance 1 the loss is half the squared error plus a constant), or a per-feature
    learned parameter.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, event_ndim: int) -> None:
        self._mean = full_precision(mean)
        self.logvar = full_precision(logvar).clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.event_ndim = event_ndim

    @property
    def mean(self) -> torch.Tensor:
        return self._mean

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        elem = -0.5 * (LOG_2PI + self.logvar + (x - self._mean).pow(2) * torch.exp(-self.logvar))
        return _sum_event(elem, self.event_ndim)

    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(self._mean.shape, dtype=self._mean.dtype, device=self._mean.device, generator=generator)
        return self._mean + torch.exp(0.5 * self.logvar) * eps


class StudentT(Gaussian):
    """Independent Student-t outputs: a ``Gaussian`` with heavy tails (``df`` degrees of freedom).

    ``logvar`` is the log of the squared *scale* (the variance is ``scale² df / (df - 2)``
    for ``df`` > 2). A value far from the mean costs log(distance) rather than distance²,
    so a few extreme training values (outliers, anomalies mixed into the data) pull the fit
    less, and one extreme feature does not outweigh all the others when scoring (Takahashi et
    al. 2018, "Student-t Variational Autoencoder for Robust Density Estimation"). ``df``: a
    number, or a tensor that broadcasts against ``mean`` (degrees of freedom learned per feature).
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, event_ndim: int, df: float | torch.Tensor) -> None:
        super().__init__(mean, logvar, event_ndim)
        self.df = df if isinstance(df, torch.Tensor) else float(df)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        df = torch.as_tensor(self.df, dtype=self._mean.dtype, device=self._mean.device)
        const = torch.lgamma((df + 1) / 2) - torch.lgamma(df / 2) - 0.5 * torch.log(df * math.pi)
        squared = (x - self._mean).pow(2) * torch.exp(-self.logvar) / df
        elem = const - 0.5 * self.logvar - 0.5 * (df + 1) * torch.log1p(squared)
        return _sum_event(elem, self.event_ndim)

    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        # t = normal / sqrt(chi²_df / df); torch's chi² sampler takes no generator, so the
        # chi² draw is seeded from it (the CPU RNG, forked: the global state is left as it was)
        eps = torch.randn(self._mean.shape, dtype=self._mean.dtype, device=self._mean.device, generator=generator)
        seed = None if generator is None else int(torch.randint(2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            df = torch.as_tensor(self.df, dtype=self._mean.dtype, device=self._mean.device).detach()
            chi2 = torch.distributions.Chi2(df.expand_as(self._mean)).sample()
        return self._mean + torch.exp(0.5 * self.logvar) * eps * torch.rsqrt(chi2 / df)


class Categorical(Likelihood):
    """Independent categorical tokens; ``logits`` has the classes in the last dim.

    For sequences (molecules): x holds integer class indices of shape ``logits.shape[:-1]``.
    ``mean`` is the class probabilities (the most useful 'expected value' to show).
    ``mask`` (boolean, broadcastable to ``logits.shape[:-1]``): the positions that count;
    the others (padding after a sequence's end) add exactly 0 to ``log_prob`` whatever
    token they hold.
    """

    def __init__(self, logits: torch.Tensor, event_ndim: int, mask: torch.Tensor | None = None) -> None:
        self.logits = full_precision(logits)
        self.event_ndim = event_ndim
        self.mask = mask

    @property
    def mean(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self.logits, dim=-1)
        index = x.long().expand(logp.shape[:-1])
        if self.mask is not None:
            index = index.masked_fill(~self.mask, 0)  # any class: the position is zeroed below
        elem = logp.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        if self.mask is not None:
            elem = elem.masked_fill(~self.mask, 0.0)
        return _sum_event(elem, self.event_ndim)

    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = self.mean.reshape(-1, self.logits.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(self.logits.shape[:-1])
