"""The encoder and decoder in batches, without gradients: what every latent tool starts from.

Latent tools work on posterior *means* (the deterministic code of an input), never on
samples, so that the same input always lands on the same point and pictures are
reproducible. Batching keeps memory flat on MNIST-sized sets.
"""

from __future__ import annotations

import torch

from vaekit.models.base import Model


def _device(model: Model) -> torch.device:
    return next(model.parameters()).device


def _part(cond: torch.Tensor | None, i: int, batch_size: int) -> torch.Tensor | None:
    return None if cond is None else cond[i:i + batch_size]


@torch.no_grad()
def encode_means(model: Model, x: torch.Tensor, cond: torch.Tensor | None = None, *, batch_size: int = 1024
                 ) -> torch.Tensor:
    """Posterior means ``(N, D)`` of ``x`` ``(N, *shape)``, on ``x``'s device. ``cond``: the
    examples' labels ``(N,)``, which a conditional model needs (an unconditional one ignores them)."""
    device = _device(model)
    parts = [model.encode(x[i:i + batch_size].to(device), _part(cond, i, batch_size)).mean.flatten(1).to(x.device)
             for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, model.config.latent_dim, device=x.device)


@torch.no_grad()
def decode_means(model: Model, z: torch.Tensor, cond: torch.Tensor | None = None, *, batch_size: int = 1024
                 ) -> torch.Tensor:
    """Decoder means ``(N, *shape)`` of latents ``z`` ``(N, D)``, on ``z``'s device. ``cond``:
    labels ``(N,)`` (or class weights ``(N, K)``) to decode with; a conditional model given
    none cycles through its classes (``Model.sample_cond``)."""
    device = _device(model)
    dtype = next(model.parameters()).dtype
    cond = model.sample_cond(len(z), cond)
    parts = [model.decode(z[i:i + batch_size].to(device=device, dtype=dtype), _part(cond, i, batch_size)).mean
             .to(z.device) for i in range(0, len(z), batch_size)]
    return torch.cat(parts)


@torch.no_grad()
def mean_kl_per_dim(model: Model, x: torch.Tensor, cond: torch.Tensor | None = None, *, batch_size: int = 1024
                    ) -> torch.Tensor:
    """KL(q(z|x) || prior) per latent dimension, averaged over ``x``: ``(D,)`` in nats (float64)."""
    device = _device(model)
    total = torch.zeros(model.config.latent_dim, dtype=torch.float64)
    for i in range(0, len(x), batch_size):
        posterior = model.encode(x[i:i + batch_size].to(device), _part(cond, i, batch_size))
        total += posterior.kl_per_dim().flatten(1).double().sum(0).cpu()
    return total / max(len(x), 1)


def as_batch(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` with a leading batch dimension: one example ``shape`` becomes ``(1, *shape)``."""
    return x.unsqueeze(0) if tuple(x.shape) == tuple(shape) else x
