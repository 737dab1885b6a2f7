"""An autoregressive prior over VQ-VAE code grids: a small gated PixelCNN (van den Oord et al. 2016).

p(k) = prod_i p(k_i | k_<i) over the positions of an ``h x w`` grid of code indices in
raster order (row by row, left to right). The network embeds the indices, applies one
masked convolution of type A (a position sees only the positions before it) and then
gated residual masked convolutions of type B (a position also sees its own features,
which by then hold only earlier codes), and gives K logits per position. It is a plain
masked stack, without the vertical/horizontal split of the gated PixelCNN, and not a
transformer: both were measured against it on MNIST codes and were worse for their cost
(docs/benchmarks/samples.md).

``train_prior`` fits it by maximum likelihood (Adam, seeded); ``sample`` draws grids
position by position with ``temperature`` (logits / T: below 1 sharper, above 1 more varied).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel sees only earlier raster positions: type ``A`` excludes
    the centre (the position being predicted), type ``B`` includes it."""

    def __init__(self, mask_type: str, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k = kernel_size
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (mask_type == "B"):] = 0
        mask[k // 2 + 1:] = 0
        self.register_buffer("mask", mask, persistent=False)  # derived from the type: not saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class GatedBlock(nn.Module):
    """x + 1x1(tanh(a) * sigmoid(b)), with (a, b) from one masked type-B convolution."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = MaskedConv2d("B", channels, 2 * channels, kernel_size)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return x + self.out(torch.tanh(a) * torch.sigmoid(b))


class CodePrior(nn.Module):
    """Gated PixelCNN over ``(B, h, w)`` code indices -> ``(B, K, h, w)`` logits of p(k_i | k_<i)."""

    def __init__(self, num_codes: int, grid: tuple[int, int], channels: int = 64, layers: int = 4,
                 first_kernel: int = 5) -> None:
        super().__init__()
        self.num_codes, self.grid = num_codes, tuple(grid)
        self.embed = nn.Embedding(num_codes, channels)
        self.first = MaskedConv2d("A", channels, channels, first_kernel)
        self.blocks = nn.Sequential(*(GatedBlock(channels) for _ in range(layers)))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.embed(codes).movedim(-1, 1)
        return self.head(self.blocks(self.first(h)))

    def log_prob_by_position(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(k_i | k_<i) of every position, ``(B, h, w)``, in nats."""
        logp = torch.log_softmax(self(codes).float(), dim=1)
        return logp.gather(1, codes.unsqueeze(1)).squeeze(1)

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """``n`` grids ``(n, h, w)`` drawn position by position from softmax(logits / temperature)."""
        device = self.embed.weight.device
        h, w = self.grid
        parts = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            codes = torch.zeros(m, h, w, dtype=torch.long, device=device)
            for i in range(h):
                for j in range(w):
                    # Rows below i cannot reach row i through the masked kernels, so the
                    # net runs on rows 0..i only: the same logits for about half the work.
                    logits = self(codes[:, :i + 1])[:, :, i, j]
                    probs = torch.softmax(logits.float() / temperature, dim=1)
                    draw = torch.multinomial(probs if generator is None else probs.to(generator.device), 1,
                                             generator=generator)
                    codes[:, i, j] = draw.squeeze(1).to(device)
            parts.append(codes)
        return torch.cat(parts) if parts else torch.zeros(0, h, w, dtype=torch.long, device=device)


def mean_nll(prior: CodePrior, codes: torch.Tensor, batch_size: int = 1024) -> float:
    """Mean negative log-likelihood per grid (nats) of ``codes`` ``(N, h, w)``, without gradients."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(codes), batch_size):
            total -= prior.log_prob_by_position(codes[i:i + batch_size]).double().sum().item()
    return total / max(len(codes), 1)


def train_prior(prior: CodePrior, codes: torch.Tensor, *, epochs: int = 5, batch_size: int = 128,
                lr: float = 1e-3, seed: int = 0, val_fraction: float = 0.05, progress: bool = False
                ) -> dict[str, Any]:
    """Fit ``prior`` to code grids ``(N, h, w)`` by maximum likelihood: Adam, a seeded
    shuffle, a cosine-decayed rate over ``epochs``; the last ``val_fraction`` of the grids is
    held out. Returns the figures of the fit (NLL per grid in nats, epochs, seconds)."""
    started = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    device = prior.embed.weight.device
    codes = codes.to(device)
    n_val = int(len(codes) * val_fraction) if len(codes) >= 20 else 0
    train, val = codes[:len(codes) - n_val], codes[len(codes) - n_val:]
    was_training = prior.training
    prior.train()
    optimizer = torch.optim.Adam(prior.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps, step = max(1, epochs * steps_per_epoch), 0
    train_nll = float("nan")
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(seed)
        for epoch in range(epochs):
            order = torch.randperm(len(train), generator=g).to(device)
            nll_sum = 0.0
            for i in range(steps_per_epoch):
                batch = train[order[i * batch_size:(i + 1) * batch_size]]
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
                nll = -prior.log_prob_by_position(batch).sum((1, 2)).mean()
                optimizer.zero_grad(set_to_none=True)
                nll.backward()
                optimizer.step()
                step += 1
                nll_sum += nll.item() * len(batch)
            train_nll = nll_sum / max(len(train), 1)
            if progress:
                print(f"prior epoch {epoch + 1}/{epochs}: train NLL {train_nll:.2f} nats per grid", flush=True)
    prior.train(was_training)
    return {"epochs": epochs, "train_nll": train_nll, "val_nll": mean_nll(prior, val) if len(val) else None,
            "grids": len(codes), "seconds": time.perf_counter() - started}
