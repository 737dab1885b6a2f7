"""The bounds every family is trained and scored with, computed from an ``Inference``.

A family's inference (``Model.infer``) draws z ~ q(z|x) and gives the log densities the
bounds are made of; this module turns them into the objective: the ELBO (recon + beta * KL,
free bits flooring each dimension's KL), the importance-weighted bound (IWAE), a latent
regularizer in place of beta * KL and a reconstruction term added on top
(``objective_loss``), and the importance-sampled log-likelihood (``log_mean_exp``).
``Model.loss`` and ``Model.log_likelihood`` are these, over the model's ``infer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from vaekit.distributions import Likelihood, Posterior
from vaekit.errors import VaekitError
from vaekit.objectives.schedules import free_bits_kl

if TYPE_CHECKING:
    from vaekit.objectives.image_terms import ReconstructionTerm
    from vaekit.objectives.regularizers import LatentRegularizer


@dataclass
class Loss:
    """One batch's objective and its parts, in nats per example (batch means).

    ``total`` is what the optimizer minimizes (with beta, annealing and free bits
    applied); ``recon`` and ``kl`` are the true terms, so ``recon + kl`` is the negative
    ELBO whatever the settings.
    """

    total: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def elbo(self) -> torch.Tensor:
        """The negative ELBO (recon + KL), nats per example."""
        return self.recon + self.kl


@dataclass
class Inference:
    """``n`` draws z ~ q(z|x) for each of B examples and the log densities the bounds need.

    Shapes: ``z`` (n, B, latent_dim); ``log_px_z``, ``log_pz``, ``log_qz`` (n, B);
    ``kl_by_dim`` (B, latent_dim), each latent dimension's KL(q || p) in closed form where
    the family has one (for a hierarchy, conditional on the parents' first draw).
    ``penalty``: a term the objective adds that is not part of the bound (a VQ-VAE's
    codebook and commitment losses), 0 for a VAE. ``extras``: figures the family reports
    along (a VQ-VAE's codebook perplexity), batch means.
    """

    z: torch.Tensor
    log_px_z: torch.Tensor
    log_pz: torch.Tensor
    log_qz: torch.Tensor
    kl_by_dim: torch.Tensor
    penalty: torch.Tensor | float = 0.0
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    #: The posterior the draws came from, for a family whose ``infer`` draws from one
    #: ``Posterior`` (the total-correlation objectives of ``vaekit.objectives.regularizers``
    #: need it to be ``gaussian``); else None.
    posterior: Posterior | None = None
    #: p(x|z) for the draws (its ``mean`` is the decoded image the sharpness terms of
    #: ``vaekit.objectives.image_terms`` compare with the input), for a family that keeps it; else None.
    likelihood: Likelihood | None = None

    @property
    def log_weights(self) -> torch.Tensor:
        """log p(x|z) + log p(z) - log q(z|x) per draw, (n, B): importance weights in log space."""
        return self.log_px_z + self.log_pz - self.log_qz


def check_objective(*, free_bits: float = 0.0, iw_samples: int = 1,
                    regularizer: LatentRegularizer | None = None) -> None:
    """A one-line error for objective settings that do not combine."""
    if sum((free_bits > 0, iw_samples > 1, regularizer is not None)) > 1:
        raise VaekitError("free_bits, iwae and the regularized objectives (btcvae, factorvae, capacity) "
                          "do not combine: set one of them")


def objective_loss(draws: Inference, x: torch.Tensor, *, beta: float = 1.0, free_bits: float = 0.0,
                   iw_samples: int = 1, regularizer: LatentRegularizer | None = None,
                   recon_term: ReconstructionTerm | None = None, recon_weight: float = 1.0) -> Loss:
    """The training objective, nats per example, from ``iw_samples`` draws of ``x``'s posterior.

    With ``iw_samples == 1``: recon + beta * KL through one reparameterized sample (free
    bits floor each dimension's KL). With ``iw_samples = K > 1``: the importance weighted
    bound of Burda et al. 2015, -logmeanexp_k [log p(x|z_k) + beta (log p(z_k) - log
    q(z_k|x))], which is the IWAE objective at beta = 1 and tighter than the ELBO. A
    ``regularizer`` (capacity annealing, beta-TCVAE, FactorVAE) replaces beta * KL with its
    own term and adds its parts to ``extras``; a ``recon_term`` (SSIM, perceptual) adds
    ``recon_weight`` times its own comparison of the decoded images with ``x``. ``recon``
    and ``kl`` always report the ELBO's terms, ``total`` the objective (plus the family's
    ``penalty``).
    """
    kl_elem = draws.kl_by_dim
    kl = kl_elem.sum(dim=1).mean()
    kl_per_dim = kl_elem.mean(dim=0).detach()
    recon = -draws.log_px_z.mean()
    extras = draws.extras
    if iw_samples > 1:
        log_w = draws.log_px_z + beta * (draws.log_pz - draws.log_qz)
        bound = torch.logsumexp(log_w, dim=0) - math.log(iw_samples)
        total = -bound.mean()
    elif regularizer is not None:
        term, parts = regularizer.term(draws, beta)
        total, extras = recon + term, {**extras, **parts}
    else:
        total = recon + beta * (free_bits_kl(kl_elem, free_bits) if free_bits > 0 else kl)
    if recon_term is not None:
        term, parts = recon_term.term(x, draws)
        total, extras = total + recon_weight * term, {**extras, **parts}
    return Loss(total=total + draws.penalty, recon=recon, kl=kl, kl_per_dim=kl_per_dim, extras=extras)


def log_mean_exp(log_weights: list[torch.Tensor]) -> torch.Tensor:
    """log p(x) ~ logmeanexp_k of importance weights given in chunks ``(k_i, B)``: float64
    accumulation, float32 result ``(B,)`` (Burda et al. 2015)."""
    stacked = torch.cat([w.double() for w in log_weights], dim=0)
    return (torch.logsumexp(stacked, dim=0) - math.log(len(stacked))).float()
