"""A learned prior in the latent space: a small flow-matching model over the encoder means.

The idea behind latent diffusion (Rombach et al. 2022, Stable Diffusion): let the VAE
compress, and let a generative model that can fit any shape learn where the codes
really lie. A GMM (``gmm.py``) fits blobs; this fits the aggregate posterior's actual
shape. The model is a rectified flow / flow matching (Liu et al. 2022; Lipman et al.
2022), the deterministic form of a diffusion model: codes are standardised, a network
learns the velocity ``noise - code`` along straight paths ``(1 - t) code + t noise``, and
sampling integrates that velocity from noise at t = 1 to a code at t = 0 with Heun's
method in ``steps`` steps (more steps: closer to the learned flow, slower). Temperature
scales the starting noise. Saved as safetensors with JSON metadata, tagged with the VAE
weights' checksum like the GMM sampler.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError
from vaekit.latent.gmm import weights_sha256
from vaekit.latent.inputs import MAX_CODES, training_codes

if TYPE_CHECKING:
    from vaekit.data.bundle import Dataset
    from vaekit.training.runs import Run

DIFFUSION_FILE = "diffusion_sampler.safetensors"
FORMAT = "vaekit-latent-flow-1"
TIME_FEATURES = 32
#: ``train_loss_`` is the mean flow-matching loss over this many last training steps.
LOSS_WINDOW = 100


def time_features(t: torch.Tensor) -> torch.Tensor:
    """Sinusoidal features of the flow time ``t`` ``(B,)`` in [0, 1]: ``(B, TIME_FEATURES)``."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), half, device=t.device))
    angles = t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class VelocityNet(nn.Module):
    """An MLP with residual blocks: (code at time t, t) -> velocity."""

    def __init__(self, latent_dim: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(latent_dim + TIME_FEATURES, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(blocks))
        self.time = nn.ModuleList(nn.Linear(TIME_FEATURES, hidden) for _ in range(blocks))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, latent_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        features = time_features(t)
        h = self.inp(torch.cat([x, features], dim=1))
        for block, time in zip(self.blocks, self.time, strict=True):
            h = h + block(h + time(features))
        return self.out(h)


class DiffusionSampler:
    """A flow-matching prior over latents, with scikit-learn conventions like ``GMMSampler``.

    ``fit(z)`` learns from latents ``z`` ``(N, D)`` (encoder means) for ``train_steps``
    Adam steps of ``batch_size``; the weights used for sampling are an exponential moving
    average (decay ``ema``), which gives steadier samples than the last step's. After
    fitting, ``train_loss_`` is the mean flow-matching loss of the last steps (saved with
    the sampler), the figure to compare when choosing ``train_steps`` or ``hidden``.
    """

    def __init__(self, hidden: int = 256, blocks: int = 3, train_steps: int = 6000, batch_size: int = 512,
                 lr: float = 2e-3, ema: float = 0.999, steps: int = 32, seed: int = 0) -> None:
        self.hidden, self.blocks, self.train_steps, self.batch_size = hidden, blocks, train_steps, batch_size
        self.lr, self.ema, self.steps, self.seed = lr, ema, steps, seed
        self.model_sha256_: str | None = None

    # -- fitting ------------------------------------------------------------------------
    def fit(self, z: torch.Tensor) -> DiffusionSampler:
        if z.dim() != 2 or len(z) < 2:
            raise VaekitError(f"diffusion sampler: needs latents (N, D) with N >= 2, got shape {tuple(z.shape)}")
        if self.train_steps < 1 or self.batch_size < 1:
            raise VaekitError("diffusion sampler: train_steps and batch_size must be at least 1")
        z = z.detach().float().cpu()
        self.center_, self.scale_ = z.mean(dim=0), z.std(dim=0).clamp(min=1e-6)
        data = (z - self.center_) / self.scale_
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)  # the network's initial weights
        net = VelocityNet(z.shape[1], self.hidden, self.blocks)
        average = VelocityNet(z.shape[1], self.hidden, self.blocks)
        average.load_state_dict(net.state_dict())
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)
        recent: list[torch.Tensor] = []  # the last steps' losses: how well the flow fits, for the record
        for step in range(self.train_steps):
            for group in optimizer.param_groups:  # cosine decay: the last steps refine
                group["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * step / self.train_steps))
            x0 = data[torch.randint(len(data), (self.batch_size,), generator=g)]
            noise = torch.randn(x0.shape, generator=g)
            t = torch.rand(len(x0), generator=g)
            xt = (1 - t[:, None]) * x0 + t[:, None] * noise
            loss = (net(xt, t) - (noise - x0)).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent = [*recent[-(LOSS_WINDOW - 1):], loss.detach()]
            decay = min(self.ema, (1 + step) / (10 + step))  # warm-up: early averages forget the random start
            with torch.no_grad():
                for avg, p in zip(average.parameters(), net.parameters(), strict=True):
                    avg.lerp_(p, 1 - decay)
        self.net_ = average.eval()
        self.train_loss_ = float(torch.stack(recent).mean())
        return self

    # -- using it -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise VaekitError("diffusion sampler: not fitted yet (call fit(z) or "
                              "vaekit.latent.diffusion_sampler(run))")

    @property
    def latent_dim(self) -> int:
        self._check_fitted()
        return int(self.center_.shape[0])

    @torch.no_grad()
    def sample(self, n: int, *, seed: int = 0, temperature: float = 1.0, steps: int | None = None) -> torch.Tensor:
        """``n`` latents ``(n, D)``: noise scaled by ``temperature`` carried to t = 0 by Heun steps."""
        self._check_fitted()
        steps = self.steps if steps is None else steps
        if n < 1:
            raise VaekitError(f"n: expected at least 1 sample, got {n}")
        if temperature <= 0:
            raise VaekitError(f"temperature: expected a positive number, got {temperature}")
        if steps < 1:
            raise VaekitError(f"steps: expected at least 1 integration step, got {steps}")
        g = torch.Generator().manual_seed(seed)
        x = temperature * torch.randn(n, self.latent_dim, generator=g)
        times = torch.linspace(1.0, 0.0, steps + 1)
        for t_now, t_next in itertools.pairwise(times):
            dt = float(t_next - t_now)
            v = self.net_(x, t_now.expand(n))
            guess = x + dt * v
            if float(t_next) > 0:  # Heun: average the slopes at both ends (the last step stays Euler)
                v = 0.5 * (v + self.net_(guess, t_next.expand(n)))
                guess = x + dt * v
            x = guess
        return x * self.scale_ + self.center_

    # -- files --------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "blocks": self.blocks, "train_steps": self.train_steps,
                "batch_size": self.batch_size, "lr": self.lr, "ema": self.ema, "steps": self.steps,
                "seed": self.seed}

    def save(self, path: str | Path) -> None:
        """Write the network, the standardisation (safetensors) and the settings (JSON metadata) atomically."""
        import json

        from safetensors.torch import save_file

        self._check_fitted()
        tensors = {f"net.{k}": v.contiguous() for k, v in self.net_.state_dict().items()}
        tensors |= {"center_": self.center_.contiguous(), "scale_": self.scale_.contiguous()}
        metadata = {"format": FORMAT, "settings": json.dumps(self.settings()), "train_loss": repr(self.train_loss_)}
        if self.model_sha256_:
            metadata["model_sha256"] = self.model_sha256_
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> DiffusionSampler:
        """A sampler saved by ``save``; a missing or damaged file is a one-line ``VaekitError``."""
        import json

        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise VaekitError(f"{path}: no such diffusion sampler file")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata: dict[str, Any] = f.metadata() or {}
            tensors = load_file(str(path))
            if metadata.get("format") != FORMAT:
                raise ValueError("wrong format tag")
            sampler = cls(**json.loads(metadata["settings"]))
            sampler.center_, sampler.scale_ = tensors.pop("center_"), tensors.pop("scale_")
            net = VelocityNet(len(sampler.center_), sampler.hidden, sampler.blocks)
            net.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items()})
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as e:
            raise VaekitError(f"{path}: not a readable vaekit diffusion sampler ({str(e).splitlines()[0]})") from None
        sampler.net_ = net.eval()
        sampler.model_sha256_ = metadata.get("model_sha256")
        sampler.train_loss_ = float(metadata.get("train_loss", "nan"))
        return sampler

    def __repr__(self) -> str:
        fitted = f", D={self.latent_dim}" if hasattr(self, "net_") else ", not fitted"
        return f"DiffusionSampler(hidden={self.hidden}, blocks={self.blocks}, steps={self.steps}{fitted})"


def fit_diffusion_sampler(run: Run, *, data: Dataset | torch.Tensor | None = None, max_samples: int | None = MAX_CODES,
                          **settings: Any) -> DiffusionSampler:
    """Fit a sampler on the posterior means of the run's training set (``training_codes``: a
    seeded subset of at most ``max_samples``), save it as ``run.path / DIFFUSION_FILE`` and
    return it (``settings``: ``DiffusionSampler``'s)."""
    sampler = DiffusionSampler(**settings)
    sampler.fit(training_codes(run, data, max_samples=max_samples, seed=sampler.seed))
    sampler.model_sha256_ = weights_sha256(run)
    if not run.read_only:  # a pretrained model's sampler lives in memory only
        sampler.save(run.path / DIFFUSION_FILE)
    return sampler


def diffusion_sampler(run: Run) -> DiffusionSampler:
    """The run's saved sampler; fitted and saved first if missing or if the model's weights
    changed since (about a minute on a CPU core for MNIST-sized runs)."""
    path = run.path / DIFFUSION_FILE
    if path.is_file():
        sampler = DiffusionSampler.load(path)
        same_model = sampler.model_sha256_ is None or sampler.model_sha256_ == weights_sha256(run)
        if same_model and sampler.latent_dim == run.model.config.latent_dim:
            return sampler
    return fit_diffusion_sampler(run)
