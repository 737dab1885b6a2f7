"""A learned lossy image codec (Ballé et al. 2018, factorized prior) as a VAE.

The rate-distortion loss of a transform codec *is* an ELBO, so the codec is trained by the
same trainer as every other family:

- ``encode``: the analysis transform ``y = g_a(x)`` (a conv grid of ``latent_channels``);
  the posterior is the unit box ``U(y - 1/2, y + 1/2)`` (``UniformPosterior``): additive
  uniform noise in training, rounding at test time (what a file stores). ``log q = 0``.
- the prior over the latents is the learned factorized density of each channel convolved
  with the same unit box (``FactorizedDensity``), so ``-log2 p(y_hat)`` is the number of
  bits an entropy coder spends on the quantised latents: the KL term is the rate.
- ``decode``: the synthesis transform ``g_s(z)`` is the mean of a Gaussian whose variance
  is tied to ``lmbda``: ``sigma^2 = lmbda / (2 ln 2)``, so that
  ``-log p(x|z) + KL = (SSE + lmbda * bits) / (2 sigma^2) + const``. Minimising the ELBO
  minimises ``distortion + lmbda * rate`` with the distortion the squared error summed over
  pixels (values in [0, 1]) and the rate in bits; per pixel it reads ``MSE + lmbda * bpp``,
  so ``lmbda`` means the same at every image size: larger ``lmbda``, fewer bits.

    vaekit train mnist --model codec --lmbda 0.004 --epochs 10 --out runs/mnist-codec
    vaekit compress runs/mnist-codec digit.png -o digit.vkc

Quantised symbols are integers in one alphabet ``[lo, hi]`` shared by every channel, the
smallest that holds all but ``TAIL_MASS`` of every channel's density; ``quantize`` clamps to
it, so the reconstruction the model reports is the one a file decodes to.
``vaekit.compression`` turns the per-channel probability tables (``coding_tables``) into an
ANS stream. Unconditional only: ``cond`` is accepted and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.distributions import Gaussian, Likelihood, Posterior
from vaekit.errors import VaekitError
from vaekit.models.base import Inference, Model, ModelConfig

#: Probability mass a channel may leave outside the coding alphabet (clamped to its ends).
TAIL_MASS = 1e-9
#: The widest alphabet considered: symbols in [-SEARCH, SEARCH].
SEARCH = 255
#: The smallest probability the rate estimate assigns one symbol (keeps log finite).
MIN_LIKELIHOOD = 1e-9


@dataclass
class CodecConfig(ModelConfig):
    """A learned codec's transforms, entropy model and rate-distortion trade-off.

    ``channels``: width of the analysis/synthesis transforms; ``stages`` stride-2 stages
    (2 turns 28x28 into a 7x7 latent grid); ``latent_channels`` values per grid position.
    ``dense``: the grid is 1x1 instead: a dense layer maps the last stage's features to
    ``latent_channels`` latents describing the whole image (and back), so a picture from a
    narrow domain (digits, aligned faces) costs the bits of what distinguishes it, not of
    every position's background; the factorized density still models each latent alone.
    ``lmbda``: bits cost ``lmbda`` squared error each (loss per pixel ``MSE + lmbda * bpp``,
    pixel values in [0, 1]). ``density_filters``: hidden widths of each channel's
    factorized density (Ballé et al. 2018, appendix 6.1). ``latent_dim`` is derived
    (``latent_channels * h * w``): leave it unset.
    """

    model: ClassVar[str] = "codec"
    latent_dim: int = 0
    channels: int | list[int] = 32  # --conv-channels 64 arrives as [64]: one width, made an int below
    latent_channels: int = 16
    stages: int = 2
    lmbda: float = 0.004
    density_filters: tuple[int, ...] = (3, 3, 3)
    dense: bool = False

    #: The trainer's lr 1e-3, stated here because 3e-3, the earlier default,
    #: made the grid codec diverge on Fashion-MNIST: 13.6 dB after 24 epochs at lmbda 1e-4,
    #: against 24.1 dB after 2 epochs at 1e-3 (lmbda 1e-3). Dense latents tolerate 3e-3
    #: (23.7 against 23.5 dB after 2 MNIST epochs); pass ``--lr`` to use it.
    train_defaults: ClassVar[dict] = {"lr": 1e-3}

    def __post_init__(self) -> None:
        if isinstance(self.channels, (list, tuple)):  # --conv-channels 64 arrives as [64]
            if len(self.channels) != 1:
                raise VaekitError(f"channels: the codec takes one width for all stages, got {list(self.channels)}")
            self.channels = int(self.channels[0])
        if len(self.input_shape) != 3:
            raise VaekitError(f"input_shape: the codec needs image data (C, H, W), got {tuple(self.input_shape)}")
        for name in ("channels", "latent_channels", "stages"):
            if int(getattr(self, name)) < 1:
                raise VaekitError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if not self.lmbda > 0:
            raise VaekitError(f"lmbda: must be positive (bits cost lmbda squared error each), got {self.lmbda}")
        self.density_filters = tuple(int(f) for f in self.density_filters)
        if any(f < 1 for f in self.density_filters):
            raise VaekitError(f"density_filters: expected positive widths, got {list(self.density_filters)}")
        h, w = self.grid
        derived = self.latent_channels * h * w
        if self.latent_dim not in (0, derived):
            raise VaekitError(f"latent_dim: the codec's is latent_channels x {h} x {w} = {derived}, got "
                              f"{self.latent_dim} (leave it unset; set latent_channels)")
        self.latent_dim = derived

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["density_filters"] = list(self.density_filters)
        return d

    @property
    def feature_size(self) -> tuple[int, int]:
        """The last stage's feature map ``(h, w)``: each stride-2 stage maps a size s to ceil(s / 2)."""
        _, h, w = self.input_shape
        for _ in range(self.stages):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    @property
    def grid(self) -> tuple[int, int]:
        """The latent grid ``(h, w)``: the last feature map's, or 1x1 when ``dense``."""
        return (1, 1) if self.dense else self.feature_size

    @property
    def obs_logvar(self) -> float:
        """log sigma^2 of the Gaussian likelihood: sigma^2 = lmbda / (2 ln 2) (module notes)."""
        return math.log(self.lmbda / (2 * math.log(2)))


class GDN(nn.Module):
    """Simplified generalized divisive normalization (Johnston et al. 2019):
    ``y_i = x_i / (beta_i + sum_j gamma_ij |x_j|)``, or its inverse (multiply) in the
    synthesis transform. Nonnegative parameters through ``abs``; the identity-ish start."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels).reshape(channels, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = F.conv2d(x.abs(), self.gamma.abs(), self.beta.abs() + 1e-6)
        return x * norm if self.inverse else x / norm


class FactorizedDensity(nn.Module):
    """Each channel's univariate density, as a learned monotonic CDF (Ballé et al. 2018,
    appendix 6.1): a chain of 1->f1->...->1 maps with softplus'd (positive) matrices and
    tanh-gated nonlinearities, so the logit of the CDF increases in its input.

    ``likelihood(v)`` is P(v - 1/2 < Y < v + 1/2): the density convolved with the unit box,
    which is both the training prior of the noisy latents and the probability of an
    integer symbol at test time.
    """

    def __init__(self, channels: int, filters: tuple[int, ...], init_scale: float = 2.0) -> None:
        super().__init__()
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, widths[i + 1], 1) - 0.5))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))

    def cdf_logits(self, v: torch.Tensor) -> torch.Tensor:
        """Logit of each channel's CDF at ``v`` of shape (C, 1, M)."""
        h = v
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            h = torch.matmul(F.softplus(matrix), h) + bias
            if i < len(self.factors):
                h = h + torch.tanh(self.factors[i]) * torch.tanh(h)
        return h

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(symbol) of latents ``y`` (B, C, h, w) (noisy or integer), same shape."""
        b, c = y.shape[:2]
        v = y.transpose(0, 1).reshape(c, 1, -1)
        lower, upper = self.cdf_logits(v - 0.5), self.cdf_logits(v + 0.5)
        sign = -torch.sign(lower + upper).detach()  # evaluate in the tail where sigmoid is accurate
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return p.clamp_min(MIN_LIKELIHOOD).reshape(c, b, *y.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def pmf_table(self, lo: int, hi: int) -> torch.Tensor:
        """Each channel's probability of every integer in ``[lo, hi]``: (C, hi - lo + 1), float64."""
        c = self.biases[0].shape[0]
        v = torch.arange(lo, hi + 1, dtype=torch.float32, device=self.biases[0].device).expand(c, 1, -1)
        lower, upper = self.cdf_logits(v - 0.5).double(), self.cdf_logits(v + 0.5).double()
        return (torch.sigmoid(upper) - torch.sigmoid(lower)).clamp_min(0).squeeze(1)

    @torch.no_grad()
    def alphabet(self) -> tuple[int, int]:
        """The smallest ``[lo, hi]`` leaving at most ``TAIL_MASS`` of any channel outside."""
        c = self.biases[0].shape[0]
        v = torch.arange(-SEARCH, SEARCH + 1, dtype=torch.float32, device=self.biases[0].device)
        below = torch.sigmoid(self.cdf_logits((v - 0.5).expand(c, 1, -1)).double()).squeeze(1)  # P(Y < v - 1/2)
        above = torch.sigmoid(-self.cdf_logits((v + 0.5).expand(c, 1, -1)).double()).squeeze(1)  # P(Y > v + 1/2)
        ok_lo = (below <= TAIL_MASS).all(0)
        ok_hi = (above <= TAIL_MASS).all(0)
        lo = int(v[ok_lo].max()) if ok_lo.any() else -SEARCH
        hi = int(v[ok_hi].min()) if ok_hi.any() else SEARCH
        return min(lo, 0), max(hi, 0)


class UniformPosterior(Posterior):
    """q(z|x) = U(y - 1/2, y + 1/2) per latent, flattened to (B, latent_dim).

    ``mean`` is the analysis output ``y``; ``mode()`` the quantised latents (rounded,
    clamped to the coding alphabet), the point a file stores; ``rsample`` adds uniform
    noise. ``log_prob`` is 0 inside the box (unit width, density 1). ``kl_per_dim`` is the
    rate of the quantised latents in nats: KL(q || p) = -E_q log p for this posterior.
    ``logvar`` is the box's (variance 1/12).
    """

    def __init__(self, y: torch.Tensor, codec: Codec) -> None:
        self.mean = y
        self._codec = codec
        self.logvar = torch.full_like(y, -math.log(12.0))

    def mode(self) -> torch.Tensor:
        return self._codec.quantize(self.mean)

    def rsample(self, n: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        u = torch.rand(shape, dtype=self.mean.dtype, device=self.mean.device, generator=generator)
        return self.mean + u - 0.5

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        inside = ((z - self.mean).abs() <= 0.5).all(-1)
        return torch.where(inside, 0.0, -math.inf)

    def kl_per_dim(self) -> torch.Tensor:
        return -torch.log(self._codec.symbol_likelihood(self.mode()))


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)


class Codec(Model):
    """Analysis transform -> quantisation -> factorized entropy model; synthesis transform."""

    config: CodecConfig
    point_posterior: ClassVar[bool] = True  # the test-time posterior is the rounded point
    learned_prior: ClassVar[bool] = True  # the entropy model samples; no GMM over codes
    entropy_coded: ClassVar[bool] = True  # vaekit.compression codes its latents into files

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        c_in, height, width = config.input_shape
        n, c = config.channels, config.latent_channels
        layers: list[nn.Module] = []
        self.stage_sizes: list[tuple[int, int]] = []
        ch, h, w = c_in, height, width
        for _ in range(config.stages):
            self.stage_sizes.append((h, w))
            layers += [_conv(ch, n), GDN(n)]
            ch, h, w = n, (h + 1) // 2, (w + 1) // 2
        if config.dense:  # whole-image latents: (n, h, w) features <-> (c, 1, 1) latents
            self.analysis = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n * h * w, c), nn.Unflatten(1, (c, 1, 1)))
            self.synthesis_in = nn.Sequential(nn.Flatten(), nn.Linear(c, n * h * w), nn.Unflatten(1, (n, h, w)),
                                              GDN(n, inverse=True))
        else:
            self.analysis = nn.Sequential(*layers, nn.Conv2d(n, c, 3, padding=1))
            self.synthesis_in = nn.Sequential(nn.Conv2d(c, n, 3, padding=1), GDN(n, inverse=True))
        outs = [n] * (config.stages - 1) + [c_in]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(n, o, 5, stride=2, padding=2) for o in outs)
        self.inverse_gdns = nn.ModuleList(GDN(n, inverse=True) for _ in outs[:-1])
        self.density = FactorizedDensity(c, tuple(config.density_filters))
        self._alphabet_cache: tuple[tuple[int, ...], tuple[int, int]] | None = None

    # -- latent grid <-> flat latent ---------------------------------------------------------
    def _grid(self, z: torch.Tensor) -> torch.Tensor:
        h, w = self.config.grid
        return z.reshape(-1, self.config.latent_channels, h, w)

    # -- quantisation and the entropy model ------------------------------------------------------
    def alphabet(self) -> tuple[int, int]:
        """``(lo, hi)``: the integer symbols the coder handles (cached while the density's
        parameters are unchanged: keyed on their in-place version counters)."""
        key = tuple(p._version for p in self.density.parameters())
        if self._alphabet_cache is None or self._alphabet_cache[0] != key:
            self._alphabet_cache = (key, self.density.alphabet())
        return self._alphabet_cache[1]

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Round to integers and clamp to the coding alphabet: the latents a file stores."""
        lo, hi = self.alphabet()
        return torch.round(y).clamp(lo, hi)

    def symbol_likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """P of each latent of flat ``z`` (..., latent_dim) under the entropy model, same shape."""
        return self.density.likelihood(self._grid(z)).reshape(z.shape)

    def coding_tables(self) -> tuple[int, torch.Tensor]:
        """``(lo, pmf)``: the alphabet's first symbol and each channel's probabilities of the
        symbols ``lo, lo+1, ..., hi`` (C, hi - lo + 1), float64 — what the entropy coder uses."""
        lo, hi = self.alphabet()
        return lo, self.density.pmf_table(lo, hi)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """The integer latent grids (B, C, h, w) of images ``x``: what compression codes."""
        return self.quantize(self.analysis(x))

    def synthesise(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Latent grids (B, C, h, w) -> images clamped to [0, 1]: what decompression returns."""
        return self._synthesis(y_hat).clamp(0.0, 1.0)

    def _synthesis(self, grid: torch.Tensor) -> torch.Tensor:
        y = self.synthesis_in(grid)
        sizes = list(reversed(self.stage_sizes))
        for i, deconv in enumerate(self.deconvs):
            y = deconv(y, output_size=list(sizes[i]))
            if i < len(self.inverse_gdns):
                y = self.inverse_gdns[i](y)
        return y

    # -- the protocol ---------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> UniformPosterior:
        return UniformPosterior(self.analysis(x).flatten(1), self)

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> Likelihood:
        lead = z.shape[:-1]
        mean = self._synthesis(self._grid(z))
        logvar = torch.tensor(self.config.obs_logvar, device=mean.device)
        return Gaussian(mean.reshape(*lead, *mean.shape[1:]), logvar, self.event_ndim)

    def infer(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, n: int = 1,
              generator: torch.Generator | None = None) -> Inference:
        """Training: ``n`` noisy draws ``y + U(-1/2, 1/2)``; evaluation: the rounded latents
        (every draw the same point), so held-out figures are those of real files' contents."""
        posterior = self.encode(x, cond)
        if self.training:
            z = posterior.rsample(n, generator=generator)
        else:
            z = posterior.mode().unsqueeze(0).expand(n, *posterior.mean.shape)
        rate = -torch.log(self.symbol_likelihood(z))  # nats per latent, (n, B, D)
        b = x.shape[0]
        return Inference(z=z, log_px_z=self.decode(z).log_prob(x), log_pz=-rate.sum(-1),
                         log_qz=torch.zeros(n, b, device=z.device), kl_by_dim=rate[0],
                         extras={"bpp": rate[0].sum(-1).mean().detach() / (math.log(2) * x[0].numel())})

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded image of ``x``'s quantised latents, clamped to [0, 1]."""
        return self.synthesise(self.analyse(x))

    @torch.no_grad()
    def rate_bits(self, x: torch.Tensor) -> torch.Tensor:
        """The entropy model's estimate of each image's coded latents, bits (B,)."""
        y_hat = self.analyse(x)
        return -torch.log2(self.density.likelihood(y_hat)).flatten(1).sum(1)

    def prior_sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Flat latents of ``n`` grids drawn symbol by symbol from the entropy model (each
        channel's probabilities raised to ``1 / temperature`` and renormalised)."""
        lo, pmf = self.coding_tables()
        probs = pmf.float().clamp_min(0) ** (1.0 / temperature)
        h, w = self.config.grid
        c = self.config.latent_channels
        gen_device = generator.device if generator is not None else probs.device
        draws = torch.multinomial(probs.to(gen_device), n * h * w, replacement=True, generator=generator)
        grid = (draws.reshape(c, n, h, w).transpose(0, 1) + lo).float()
        return grid.flatten(1).to(probs.device)
