"""What the objective puts beside the reconstruction term when it is not beta * KL.

``Model.loss`` is recon + beta * KL by default (the ELBO; free bits floor each dimension).
The disentangling objectives change only that second term, so they are objects the
trainer builds from ``TrainConfig`` and hands to ``Model.loss`` as ``regularizer``; every
family whose ``infer`` returns a single diagonal-Gaussian posterior gets them unchanged.

- ``CapacityKL`` (Burgess et al. 2018, "Understanding disentangling in beta-VAE"):
  beta * |KL - C| with the capacity C rising linearly from 0 to ``C_MAX`` nats over
  ``EPOCHS`` epochs, so the code may carry more information as training goes on; used
  with a large beta (the paper's gamma, 1000 on dSprites).
- ``BetaTCVAE`` (Chen et al. 2018): the KL split per example into index-code mutual
  information, total correlation and dimension-wise KL, estimated over the minibatch
  with minibatch-weighted sampling (MWS); the total correlation is weighted alone.
- ``FactorVAE`` (Kim & Mnih 2018): beta * KL plus the total correlation as a
  discriminator between q(z) and the product of its marginals (dimensions shuffled
  across the batch) estimates it, trained alongside with its own optimizer.

Each returns the term to add and its parts, which the trainer logs to metrics.jsonl.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.errors import VaekitError
from vaekit.objectives.terms import ObjectiveTerm

if TYPE_CHECKING:
    from vaekit.objectives.bounds import Inference

CAPACITY_HELP = "C_MAX:EPOCHS (nats, epochs of linear growth), e.g. 25:50"


class LatentRegularizer(ObjectiveTerm):
    """The KL-side term of an objective: ``term(draws, beta) -> (term, parts)``."""

    def term(self, draws: Inference, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


def parse_capacity(spec: str) -> tuple[float, float] | None:
    """``"none"`` -> None; ``"C_MAX:EPOCHS"`` -> (C_MAX, EPOCHS), or a one-line error."""
    if spec.strip().lower() in ("", "none"):
        return None
    parts = spec.split(":")
    try:
        c_max, epochs = float(parts[0]), float(parts[1]) if len(parts) == 2 else math.nan
    except ValueError:
        c_max = epochs = math.nan
    if len(parts) != 2 or not (c_max >= 0 and epochs > 0):
        raise VaekitError(f"capacity: cannot read '{spec}' (expected none or {CAPACITY_HELP})")
    return c_max, epochs


class CapacityKL(LatentRegularizer):
    """beta * |KL - C(epoch)|, C growing linearly to ``c_max`` nats over ``epochs`` epochs."""

    def __init__(self, c_max: float, epochs: float) -> None:
        self.c_max, self.epochs = c_max, epochs

    def capacity(self) -> float:
        return self.c_max * min(1.0, self.epoch / self.epochs)

    def term(self, draws: Inference, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kl = draws.kl_by_dim.sum(dim=1).mean()
        c = self.capacity()
        return beta * (kl - c).abs(), {"capacity": torch.tensor(c)}


def log_density_matrix(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z_i,d | x_j) for every pair of examples in a batch: ``(B, B, D)``.

    ``z`` is one draw per example ``(B, D)``; ``mean``/``logvar`` the posteriors' ``(B, D)``.
    """
    diff = z.unsqueeze(1) - mean.unsqueeze(0)
    return -0.5 * (math.log(2 * math.pi) + logvar.unsqueeze(0) + diff.pow(2) * torch.exp(-logvar.unsqueeze(0)))


def tc_decomposition(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int
                     ) -> dict[str, torch.Tensor]:
    """Chen et al.'s split of the KL, batch means: ``mi``, ``tc``, ``dwkl``.

    With log q(z) and log q(z_d) estimated by minibatch-weighted sampling,
    log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N B), the three terms telescope: per
    example, mi + tc + dwkl = log q(z_i|x_i) - log p(z_i), a one-sample estimate of the
    KL whatever the estimates' bias. MWS's normaliser puts a constant (D - 1) log(N B) into
    ``tc`` (and log(N B) into ``mi``), which moves no gradient; compare values of one
    setting only. A batch of one has no aggregate to estimate from.
    """
    batch = len(z)
    if batch < 2:
        raise VaekitError("objective btcvae: needs batches of at least 2 examples to estimate q(z)")
    matrix = log_density_matrix(z, mean, logvar)
    log_norm = math.log(dataset_size * batch)
    log_qz_x = matrix.diagonal(dim1=0, dim2=1).sum(dim=0)  # diagonal -> (D, B); sum over D
    log_qz = torch.logsumexp(matrix.sum(dim=2), dim=1) - log_norm
    log_qz_marginals = (torch.logsumexp(matrix, dim=1) - log_norm).sum(dim=1)
    log_pz = (-0.5 * (math.log(2 * math.pi) + z.pow(2))).sum(dim=1)
    return {"mi": (log_qz_x - log_qz).mean(), "tc": (log_qz - log_qz_marginals).mean(),
            "dwkl": (log_qz_marginals - log_pz).mean()}


def gaussian_posterior(draws: Inference, objective: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The single draw and the diagonal-Gaussian posterior a total-correlation objective needs."""
    if draws.posterior is None or not draws.posterior.gaussian or draws.z.shape[0] != 1:
        raise VaekitError(f"objective {objective}: needs a model with one diagonal-Gaussian posterior "
                          "(vae or cvae) and one draw per example")
    return draws.z[0], draws.posterior.mean, draws.posterior.logvar


class BetaTCVAE(LatentRegularizer):
    """beta * (MI + dimension-wise KL) + tc_weight * total correlation (Chen et al. 2018)."""

    def __init__(self, tc_weight: float, dataset_size: int) -> None:
        self.tc_weight, self.dataset_size = tc_weight, dataset_size

    def term(self, draws: Inference, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, mean, logvar = gaussian_posterior(draws, "btcvae")
        parts = tc_decomposition(z, mean, logvar, self.dataset_size)
        return beta * (parts["mi"] + parts["dwkl"]) + self.tc_weight * parts["tc"], parts


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Each latent dimension shuffled across the batch on its own: draws of prod_d q(z_d)."""
    idx = torch.argsort(torch.rand(z.shape, device=z.device), dim=0)
    return torch.gather(z, 0, idx)


class FactorVAE(LatentRegularizer):
    """beta * KL + tc_weight * (discriminator's estimate of the total correlation) (Kim & Mnih 2018).

    The discriminator's logit on a code estimates log q(z) / prod_d q(z_d), so its batch
    mean is the total correlation. Each step first trains the discriminator on the batch's
    detached codes against their dimension-shuffled copies, then scores the codes with it
    (the order keeps the two updates apart in autograd).
    """

    def __init__(self, tc_weight: float, latent_dim: int, hidden: int = 256, layers: int = 3,
                 lr: float = 1e-4) -> None:
        self.tc_weight = tc_weight
        blocks: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.discriminator = nn.Sequential(*blocks, nn.Linear(width, 1))
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))

    def to(self, device: torch.device) -> FactorVAE:
        self.discriminator.to(device)
        return self

    def train_discriminator(self, z: torch.Tensor) -> torch.Tensor:
        """One step of the discriminator: joint codes labelled 1, shuffled codes 0; returns its loss."""
        z = z.detach().float()
        shuffled = permute_dims(z)
        with torch.enable_grad(), torch.autocast(z.device.type, enabled=False):
            logits = self.discriminator(torch.cat([z, shuffled]))
            target = torch.cat([torch.ones(len(z), 1, device=z.device), torch.zeros(len(z), 1, device=z.device)])
            loss = F.binary_cross_entropy_with_logits(logits, target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def term(self, draws: Inference, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, _, _ = gaussian_posterior(draws, "factorvae")
        d_loss = self.train_discriminator(z) if torch.is_grad_enabled() else torch.tensor(math.nan)
        for p in self.discriminator.parameters():
            p.requires_grad_(False)  # the VAE's gradient reaches the encoder, not the discriminator
        try:
            tc = self.discriminator(z.float()).mean()
        finally:
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
        kl = draws.kl_by_dim.sum(dim=1).mean()
        return beta * kl + self.tc_weight * tc, {"tc": tc.detach(), "discriminator_loss": d_loss}

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


#: The default weight on the total correlation: Chen et al.'s beta = 6 on dSprites; Kim &
#: Mnih's gamma = 35 (their dSprites range was 10-100).
DEFAULT_TC_WEIGHT = {"btcvae": 6.0, "factorvae": 35.0}


def build_regularizer(objective: str, *, tc_weight: float | None, capacity: str, latent_dim: int,
                      dataset_size: int) -> LatentRegularizer | None:
    """The regularizer a training configuration asks for, or None for the plain ELBO / IWAE."""
    weight = DEFAULT_TC_WEIGHT.get(objective, 0.0) if tc_weight is None else tc_weight
    if objective == "btcvae":
        return BetaTCVAE(weight, dataset_size)
    if objective == "factorvae":
        return FactorVAE(weight, latent_dim)
    limits = parse_capacity(capacity)
    return CapacityKL(*limits) if limits else None
