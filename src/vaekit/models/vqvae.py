"""The VQ-VAE (van den Oord et al. 2017): discrete codes, and a prior learned after the networks.

The encoder maps an image to an ``h x w`` grid of ``code_dim``-vectors; each is replaced by
its nearest codebook vector (``quantizer.VectorQuantizer``: straight-through gradients,
commitment loss, EMA codebook, k-means init, dead-code revival); the decoder maps the
quantized grid back to p(x|z). During training the prior over codes is uniform, so the
KL term is the constant ``h * w * log K``; after training ``fit_prior`` fits a small
PixelCNN over the training set's code grids (``code_prior``), which is what sampling uses.

    vaekit train fashion-mnist --model vqvae --epochs 10 --out runs/fashion-vqvae
    vaekit sample runs/fashion-vqvae -n 64 --temperature 0.8

How it speaks the protocol (``models.base``):

- **The latent** is the quantized embedding, flattened channel-first (``code_dim`` x
  ``h`` x ``w``), so ``latent_dim = code_dim * h * w`` (derived in ``__post_init__``). That
  keeps every latent tool (interpolation, arithmetic, traversal, maps) working in the
  continuous embedding space, and ``decode`` accepts any such vector, quantized or not.
- ``encode`` returns a ``PointMass`` at the quantized embedding: the encoder is
  deterministic, so posterior means, draws, reconstructions and the latent tools see
  exactly the codes; its KL is each position's ``-log p(k_i | k_<i)`` under the current
  prior, spread over the position's ``code_dim`` values (as ``infer``'s ``kl_by_dim``).
- ``infer``: ``log q = 0`` (point mass), ``log p(z)`` the prior's log-probability of the
  code grid (uniform ``-h*w*log K`` before ``fit_prior``), ``kl_by_dim`` each position's
  ``-log p(k_i | k_<i)`` spread evenly over that position's ``code_dim`` values, so
  ``recon + kl`` is the negative ELBO under the current prior and ``log_likelihood``
  (the base class's) is the valid bound ``log p(x|z_q) + log p(z_q)``. ``penalty`` is the
  commitment (+ codebook) loss; ``extras`` the batch's ``perplexity`` and ``codebook_usage``.
- ``prior_sample`` draws code grids from the fitted PixelCNN (``temperature`` divides its
  logits). Before the prior is fitted it falls back to uniformly random codes with a
  warning rather than failing, so pictures of an unfinished model can still be drawn.

Unconditional only: ``cond`` is accepted and ignored.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from vaekit.distributions import Likelihood, PointMass
from vaekit.errors import VaekitError
from vaekit.models.base import Inference, Model, ModelConfig
from vaekit.models.code_prior import CodePrior, mean_nll, train_prior
from vaekit.models.observation import Observation, check_likelihood
from vaekit.models.quantizer import VectorQuantizer, usage_figures
from vaekit.nn import _conv_out


def code_grid(input_shape: tuple[int, ...], stages: int) -> tuple[int, int]:
    """The ``(h, w)`` of the code grid: each stride-2 stage (kernel 4, padding 1) halves H and W."""
    _, h, w = input_shape
    for _ in range(stages):
        h, w = _conv_out(h), _conv_out(w)
    return h, w


@dataclass
class VQVAEConfig(ModelConfig):
    """A VQ-VAE's architecture, codebook and prior.

    ``channels``: conv channels, one stride-2 stage each ([32, 64] turns 28x28 into a 7x7
    code grid); ``res_blocks`` residual blocks of ``res_channels`` after the stages (and
    mirrored in the decoder). ``codebook_size`` K codes of ``code_dim`` D values;
    ``commitment`` the weight of ||z_e - sg[e]||^2. ``ema``: codebook by exponential moving
    averages with ``decay`` (else by the codebook loss); ``kmeans_init`` the codebook from the
    first batch's encoder outputs; ``dead_code_steps``: re-seed codes unused that many
    training steps (0: never). ``likelihood`` bernoulli|gaussian|student-t (fixed ``obs_std``; a Student-t
    with 3 degrees of freedom).
    ``prior_*``: the PixelCNN over code grids and its fit (``prior_epochs`` over the training set;
    0 keeps the uniform prior). Its 64 channels are as wide as it can be while its fit stays
    a small share of a default run: the prior, not the decoder, is what limits the samples
    (32 channels underfit the codes of a fully trained model; docs/benchmarks/samples.md).
    ``latent_dim`` is derived (``code_dim * h * w``): leave it unset.
    """

    model: ClassVar[str] = "vqvae"
    latent_dim: int = 0
    channels: list[int] = field(default_factory=lambda: [32, 64])
    res_blocks: int = 2
    res_channels: int = 32
    codebook_size: int = 512
    code_dim: int = 64
    commitment: float = 0.25
    ema: bool = True
    decay: float = 0.99
    kmeans_init: bool = True
    dead_code_steps: int = 100
    likelihood: str = "bernoulli"
    obs_std: float = 1.0
    prior_channels: int = 64
    prior_layers: int = 5
    prior_epochs: int = 4
    prior_batch_size: int = 128
    prior_lr: float = 1e-3

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3:
            raise VaekitError(f"input_shape: a VQ-VAE needs image data (C, H, W), got {tuple(self.input_shape)}")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise VaekitError(f"channels: expected one or more positive conv channel counts, got {self.channels}")
        for name in ("codebook_size", "code_dim", "res_channels", "prior_channels", "prior_batch_size"):
            if int(getattr(self, name)) < 1:
                raise VaekitError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("res_blocks", "prior_layers", "prior_epochs", "dead_code_steps"):
            if int(getattr(self, name)) < 0:
                raise VaekitError(f"{name}: must be 0 or more, got {getattr(self, name)}")
        if self.commitment < 0:
            raise VaekitError(f"commitment: must be 0 or more, got {self.commitment}")
        if not 0 < self.decay < 1:
            raise VaekitError(f"decay: must lie strictly between 0 and 1, got {self.decay}")
        if self.prior_lr <= 0:
            raise VaekitError(f"prior_lr: must be positive, got {self.prior_lr}")
        check_likelihood(self.likelihood, self.obs_std)
        h, w = code_grid(tuple(self.input_shape), len(self.channels))
        if h < 1 or w < 1:
            raise VaekitError(f"channels: {len(self.channels)} stride-2 stages shrink {tuple(self.input_shape[1:])} "
                              "images below 1x1 (use fewer stages)")
        derived = self.code_dim * h * w
        if self.latent_dim not in (0, derived):
            raise VaekitError(f"latent_dim: a VQ-VAE's is code_dim x {h} x {w} = {derived}, got {self.latent_dim} "
                              "(leave it unset; set --code-dim)")
        self.latent_dim = derived

    @property
    def grid(self) -> tuple[int, int]:
        return code_grid(tuple(self.input_shape), len(self.channels))


class ResidualBlock(nn.Module):
    """x + 1x1(ReLU(3x3(ReLU(x)))): the VQ-VAE paper's residual block."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class VQVAE(Model):
    """Conv encoder -> vector quantizer -> conv decoder, with a PixelCNN prior over the codes."""

    config: VQVAEConfig
    learned_prior: ClassVar[bool] = True
    distributed_training: ClassVar[bool] = False  # EMA codebook updates are per process
    point_posterior: ClassVar[bool] = True

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__(config)
        c_in, height, width = config.input_shape
        chans = [int(c) for c in config.channels]
        top, d = chans[-1], config.code_dim
        layers: list[nn.Module] = []
        self.stage_sizes: list[tuple[int, int]] = []
        c, h, w = c_in, height, width
        for out_c in chans:
            self.stage_sizes.append((h, w))
            layers += [nn.Conv2d(c, out_c, 4, 2, 1), nn.ReLU()]
            c, h, w = out_c, _conv_out(h), _conv_out(w)
        blocks = [ResidualBlock(top, config.res_channels) for _ in range(config.res_blocks)]
        self.encoder = nn.Sequential(*layers, *blocks, nn.ReLU(), nn.Conv2d(top, d, 1))
        self.quantizer = VectorQuantizer(config.codebook_size, d, commitment=config.commitment, ema=config.ema,
                                         decay=config.decay, dead_code_steps=config.dead_code_steps,
                                         kmeans_init=config.kmeans_init)
        blocks = [ResidualBlock(top, config.res_channels) for _ in range(config.res_blocks)]
        self.decoder_in = nn.Sequential(nn.Conv2d(d, top, 3, padding=1), *blocks, nn.ReLU())
        ins = list(reversed(chans))
        outs = [*ins[1:], c_in]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs, strict=True))
        self.observation = Observation(config.likelihood, tuple(config.input_shape), config.obs_std)
        self.prior = CodePrior(config.codebook_size, config.grid, config.prior_channels, config.prior_layers)
        self.prior.requires_grad_(False)  # fitted by fit_prior alone, never by the trainer's optimizer
        self.register_buffer("prior_fitted", torch.tensor(False))
        self._warned_unfitted = False

    # -- the grid <-> flat latent -----------------------------------------------------------
    def _flat(self, grid: torch.Tensor) -> torch.Tensor:
        return grid.flatten(1)  # (B, D, h, w) -> (B, D*h*w), channel first

    def _grid(self, z: torch.Tensor) -> torch.Tensor:
        h, w = self.config.grid
        return z.reshape(-1, self.config.code_dim, h, w)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid ``(B, h, w)`` of images ``x`` (nearest codes; no codebook update)."""
        z_e = self.encoder(x)
        flat = z_e.movedim(1, -1).reshape(-1, self.config.code_dim)
        return self.quantizer.nearest(flat).reshape(z_e.shape[0], *z_e.shape[2:])

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Code grids ``(B, h, w)`` -> the flat latents ``(B, latent_dim)`` that ``decode`` takes."""
        return self._flat(self.quantizer.lookup(codes))

    # -- the protocol ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> PointMass:
        codes = self.codes(x)
        return PointMass(self.embed_codes(codes), lambda: self._kl_by_dim(self.code_log_prob(codes).flatten(1)))

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> Likelihood:
        lead = z.shape[:-1]
        y = self.decoder_in(self._grid(z))
        for i, (deconv, size) in enumerate(zip(self.deconvs, reversed(self.stage_sizes), strict=True)):
            y = deconv(y, output_size=list(size))
            if i < len(self.deconvs) - 1:
                y = torch.relu(y)
        return self.observation(y.reshape(*lead, *y.shape[1:]))

    def code_log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(k_i | k_<i) per position ``(B, h, w)`` under the current prior: the PixelCNN
        once fitted, uniform ``-log K`` before."""
        if bool(self.prior_fitted):
            return self.prior.log_prob_by_position(codes)
        return torch.full(codes.shape, -math.log(self.config.codebook_size), device=codes.device)

    def _kl_by_dim(self, log_pos: torch.Tensor) -> torch.Tensor:
        """Each position's -log p(k_i | k_<i) (``log_pos``: ``(B, h*w)``) spread evenly over its
        ``code_dim`` values: ``(B, latent_dim)`` in the flat latent's (channel-first) order."""
        b, d = log_pos.shape[0], self.config.code_dim
        return (-log_pos / d).unsqueeze(1).expand(b, d, log_pos.shape[1]).reshape(b, -1)

    def infer(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, n: int = 1,
              generator: torch.Generator | None = None) -> Inference:
        """The point-mass posterior: every one of the ``n`` draws is the quantized embedding,
        so the decoder runs once and its log-likelihood is repeated (see the module notes)."""
        q = self.quantizer(self.encoder(x))  # EMA and revival updates when self.training
        z = self._flat(q.z_q)
        b = z.shape[0]
        log_px_z = self.decode(z).log_prob(x)
        log_pos = self.code_log_prob(q.indices).flatten(1)  # (B, h*w)
        kl_by_dim = self._kl_by_dim(log_pos)
        log_pz = log_pos.sum(1)
        return Inference(z=z.unsqueeze(0).expand(n, *z.shape), log_px_z=log_px_z.expand(n, b),
                         log_pz=log_pz.expand(n, b), log_qz=torch.zeros(n, b, device=z.device),
                         kl_by_dim=kl_by_dim, penalty=q.penalty, extras=usage_figures(q.counts))

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p of the codes nearest to flat latents ``z`` ``(..., latent_dim)``."""
        flat = self._grid(z).movedim(1, -1).reshape(-1, self.config.code_dim)
        h, w = self.config.grid
        codes = self.quantizer.nearest(flat).reshape(-1, h, w)
        return self.code_log_prob(codes).sum((1, 2)).reshape(z.shape[:-1])

    def prior_sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Flat latents of ``n`` code grids drawn from the fitted prior (uniform codes, with a
        warning, before ``fit_prior``)."""
        device = self.quantizer.codebook.device
        if bool(self.prior_fitted):
            codes = self.prior.sample(n, temperature=temperature, generator=generator)
        else:
            if not self._warned_unfitted:
                self._warned_unfitted = True
                warnings.warn("vqvae: the code prior is not fitted yet (fit_prior); sampling uniformly random codes",
                              stacklevel=2)
            h, w = self.config.grid
            gen_device = generator.device if generator is not None else device
            codes = torch.randint(self.config.codebook_size, (n, h, w), generator=generator, device=gen_device)
        return self.embed_codes(codes.to(device))

    @torch.no_grad()
    def code_grids(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Code grids ``(N, h, w)`` of ``x``, batch by batch on the model's device, in eval mode."""
        device = self.quantizer.codebook.device
        was_training = self.training
        self.eval()
        try:
            parts = [self.codes(x[i:i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        h, w = self.config.grid
        return torch.cat(parts) if parts else torch.zeros(0, h, w, dtype=torch.long, device=device)

    def fit_prior(self, train: torch.Tensor, labels: torch.Tensor | None = None, *, seed: int = 0,
                  progress: bool = False) -> dict[str, Any] | None:
        """Encode the training set to code grids and fit the PixelCNN to them (a fresh net,
        seeded); returns the fit's figures (NLL per grid in nats, epochs, seconds) and the
        training set's codebook usage. ``prior_epochs = 0`` skips the fit (``None``): the
        prior stays uniform."""
        cfg = self.config
        if cfg.prior_epochs == 0:
            return None
        started = time.perf_counter()
        grids = self.code_grids(train)
        device = self.quantizer.codebook.device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.prior = CodePrior(cfg.codebook_size, cfg.grid, cfg.prior_channels, cfg.prior_layers).to(device)
        uniform = grids[0].numel() * math.log(cfg.codebook_size) if len(grids) else 0.0
        figures = train_prior(self.prior, grids, epochs=cfg.prior_epochs, batch_size=cfg.prior_batch_size,
                              lr=cfg.prior_lr, seed=seed, progress=progress)
        self.prior.eval().requires_grad_(False)
        self.prior_fitted.fill_(True)
        usage = {k: float(v) for k, v in usage_figures(torch.bincount(grids.flatten(), minlength=cfg.codebook_size))
                 .items()}
        figures["seconds"] = time.perf_counter() - started  # encoding the training set included
        return {**figures, "uniform_nll": uniform, "train_codebook_usage": usage["codebook_usage"],
                "train_perplexity": usage["perplexity"]}

    @torch.no_grad()
    def held_out_figures(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, Any]:
        """Codebook usage (fraction of the K codes chosen for some position of ``x``), the
        perplexity of the code histogram over ``x``, and once the prior is fitted its NLL
        per code grid (nats)."""
        grids = self.code_grids(x)
        figures = {k: float(v) for k, v in
                   usage_figures(torch.bincount(grids.flatten(), minlength=self.config.codebook_size)).items()}
        if bool(self.prior_fitted):
            figures["prior_nll"] = mean_nll(self.prior, grids)
        return figures
