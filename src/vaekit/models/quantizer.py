"""Vector quantization (van den Oord et al. 2017): encoder outputs -> their nearest codebook vectors.

The quantizer owns everything the codebook needs to stay healthy, so the VQ-VAE model
only sees ``quantize(z_e) -> Quantized``:

- **Straight-through gradients**: the decoder's gradient with respect to the quantized
  vectors is copied to the encoder outputs (``z_e + (z_q - z_e).detach()``).
- **Commitment loss** ``commitment * ||z_e - sg[e]||^2`` keeps the encoder near its codes.
- **Codebook updates**: exponential moving averages of each code's assigned count and
  sum (``ema``, the default: decay 0.99, Laplace-smoothed counts so a rarely used code
  never divides by zero), or the paper's codebook loss ``||sg[z_e] - e||^2`` with the
  codebook a trained parameter.
- **k-means initialisation** from the first training batch's encoder outputs
  (scikit-learn's k-means++ and a few Lloyd iterations), so no code starts far from the
  data, which is the usual cause of most codes never being used.
- **Dead-code revival**: a code unused for ``dead_code_steps`` training steps is moved
  onto a random encoder output of the current batch.

All state (EMA count and sum, steps since each code was last used, the init flag) lives
in buffers, so it is saved with the weights (safetensors) and restored exactly. Squared
errors are summed over the positions and dimensions of one example and averaged over the
batch, like the nats of the reconstruction term they are added to.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    """What one quantization gives: ``z_q`` the straight-through quantized vectors (the shape
    of the input), ``indices`` the chosen codes (the input's shape without the code axis),
    ``penalty`` the commitment (+ codebook) loss per example, batch mean, and ``counts`` how
    often each code was chosen in this batch ``(K,)``."""

    z_q: torch.Tensor
    indices: torch.Tensor
    penalty: torch.Tensor
    counts: torch.Tensor


def usage_figures(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """``codebook_usage`` (fraction of codes chosen at least once) and ``perplexity``
    (exp of the entropy of the code histogram: K when all codes are equally frequent, 1
    when one code takes everything) of per-code counts ``(K,)``, as 0-d tensors."""
    counts = counts.double()
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return {"perplexity": torch.exp(entropy).float(), "codebook_usage": (counts > 0).double().mean().float()}


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` (K) vectors of ``code_dim`` (D) values.

    ``forward``/``quantize`` take encoder outputs with the code axis at ``dim=1``
    (``(B, D, H, W)`` feature maps, or ``(N, D)`` rows) and return a ``Quantized``. The
    codebook, EMA and revival updates happen only in training mode, without gradients.
    """

    def __init__(self, num_codes: int = 512, code_dim: int = 64, *, commitment: float = 0.25, ema: bool = True,
                 decay: float = 0.99, eps: float = 1e-5, dead_code_steps: int = 0, kmeans_init: bool = True,
                 kmeans_iters: int = 10) -> None:
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        self.commitment, self.ema, self.decay, self.eps = commitment, ema, decay, eps
        self.dead_code_steps, self.kmeans_init, self.kmeans_iters = dead_code_steps, kmeans_init, kmeans_iters
        init = torch.empty(num_codes, code_dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        # With EMA the codebook is state, not a trained parameter: Adam never sees a gradient for it.
        self.codebook = nn.Parameter(init, requires_grad=not ema)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", init.clone())
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    # -- lookup ---------------------------------------------------------------------------
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) of each row of ``flat`` ``(N, D)``."""
        with torch.autocast(flat.device.type, enabled=False):  # bfloat16 distances would pick wrong codes
            flat, e = flat.float(), self.codebook.detach().float()
            distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)
        return distances.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``indices`` (any shape) with the code axis moved to ``dim=1``:
        ``(B, H, W)`` indices give ``(B, D, H, W)``."""
        e = F.embedding(indices, self.codebook)
        return e.movedim(-1, 1) if indices.dim() > 1 else e

    def forward(self, z_e: torch.Tensor) -> Quantized:
        return self.quantize(z_e)

    def quantize(self, z_e: torch.Tensor) -> Quantized:
        z_e = z_e.float()  # the codebook, its updates and the squared errors stay float32 under autocast
        flat = z_e.movedim(1, -1).reshape(-1, self.code_dim)
        if self.training and not bool(self.initialized):
            self.init_codebook(flat.detach())
        indices = self.nearest(flat.detach())
        counts = torch.bincount(indices, minlength=self.num_codes)
        index_shape = (z_e.shape[0], *z_e.shape[2:])
        indices = indices.reshape(index_shape)
        z_q = self.lookup(indices).float()
        per_example = tuple(range(1, z_e.dim()))
        penalty = self.commitment * (z_e - z_q.detach()).pow(2).sum(per_example).mean()
        if not self.ema:
            penalty = penalty + (z_e.detach() - z_q).pow(2).sum(per_example).mean()
        if self.training:
            self.update(flat.detach(), indices.reshape(-1), counts)
        return Quantized(z_q=z_e + (z_q - z_e).detach(), indices=indices, penalty=penalty, counts=counts)

    # -- training-time codebook maintenance ----------------------------------------------
    @torch.no_grad()
    def init_codebook(self, flat: torch.Tensor) -> None:
        """k-means (k-means++ seeding, ``kmeans_iters`` Lloyd iterations) of encoder outputs
        ``(N, D)`` as the codebook. With fewer outputs than codes, the rest are outputs
        drawn at random with a little noise. The EMA state starts at the clusters' sizes
        and sums, so the first updates average with the k-means result rather than zero."""
        from sklearn.cluster import KMeans

        k, data = self.num_codes, flat.double().cpu()
        seed = int(torch.randint(0, 2**31 - 1, ()))  # from torch's RNG: the trainer's seed decides it
        if len(data) >= k:
            with warnings.catch_warnings():  # duplicate outputs: fewer distinct clusters is fine here
                warnings.simplefilter("ignore")
                km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=self.kmeans_iters,
                            random_state=seed).fit(data.numpy())
            centers = torch.as_tensor(km.cluster_centers_)
            sizes = torch.bincount(torch.as_tensor(km.labels_).long(), minlength=k).double()
        else:
            g = torch.Generator().manual_seed(seed)
            pick = torch.cat([torch.arange(len(data)), torch.randint(len(data), (k - len(data),), generator=g)])
            noise = 0.01 * data.std().clamp_min(1e-3) * torch.randn(k, data.shape[1], generator=g, dtype=data.dtype)
            centers = data[pick] + noise * (torch.arange(k) >= len(data)).unsqueeze(1)
            sizes = torch.ones(k, dtype=torch.float64)
        sizes = sizes.clamp_min(1.0)
        self.codebook.data.copy_(centers.to(self.codebook))
        self.ema_count.copy_(sizes.to(self.ema_count))
        self.ema_sum.copy_((centers * sizes.unsqueeze(1)).to(self.ema_sum))
        self.unused_steps.zero_()
        self.initialized.fill_(True)

    @torch.no_grad()
    def update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        """One training step's codebook maintenance: the EMA update (if ``ema``), then the
        revival of codes unused for ``dead_code_steps`` steps (if set)."""
        if self.ema:
            sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat.to(self.ema_sum.dtype))
            self.ema_count.mul_(self.decay).add_(counts.to(self.ema_count.dtype), alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
            self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        if self.dead_code_steps > 0:
            self.revive(flat)

    @torch.no_grad()
    def revive(self, flat: torch.Tensor) -> int:
        """Move every code unused for ``dead_code_steps`` steps onto a random row of ``flat``
        (this batch's encoder outputs); returns how many were moved."""
        dead = (self.unused_steps >= self.dead_code_steps).nonzero().flatten()
        if len(dead) == 0:
            return 0
        rows = flat[torch.randint(len(flat), (len(dead),), device=flat.device)].to(self.codebook.dtype)
        self.codebook.data[dead] = rows
        self.ema_count[dead] = 1.0
        self.ema_sum[dead] = rows.to(self.ema_sum.dtype)
        self.unused_steps[dead] = 0
        return len(dead)
