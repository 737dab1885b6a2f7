"""Generating new examples from the prior, a fitted latent mixture or a latent flow model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from vaekit.distributions import Bernoulli
from vaekit.errors import VaekitError
from vaekit.latent.diffusion import DiffusionSampler, diffusion_sampler
from vaekit.latent.gmm import GMMSampler, gmm_sampler
from vaekit.models.base import Model

if TYPE_CHECKING:
    from vaekit.training.runs import Run

#: What ``--sampler`` accepts, for images, tables and molecules alike.
SAMPLERS = ("prior", "gmm", "diffusion")


def check_sampler(name: str, *, components: int | None = None, steps: int | None = None) -> None:
    """A one-line ``VaekitError`` for a ``--sampler`` that is not one of ``SAMPLERS`` or a flag
    of another sampler's, before anything is loaded or fitted."""
    if name not in SAMPLERS:
        raise VaekitError(f"--sampler: expected {', '.join(SAMPLERS)}, got '{name}'")
    if components is not None and name != "gmm":
        raise VaekitError("--components applies to --sampler gmm only")
    if steps is not None and name != "diffusion":
        raise VaekitError("--steps applies to --sampler diffusion only")


def preparing(name: str) -> str:
    """What a command shows while ``run_sampler`` loads a fitted sampler, or fits it first."""
    return f"{name} sampler: loading it, or fitting it to the training codes on first use (minutes)"


def run_sampler(run: Run, name: str, *, components: int | None = None, steps: int | None = None
                ) -> str | GMMSampler | DiffusionSampler:
    """What ``--sampler NAME`` draws a run's latents from: ``"prior"``, or the run's GMM or
    diffusion sampler, each fitted to its training codes and saved on first use
    (``components``: the mixture's; ``steps``: the diffusion sampler's integration steps)."""
    check_sampler(name, components=components, steps=steps)
    if name == "gmm":
        return gmm_sampler(run, n_components=components)
    if name == "diffusion":
        chosen = diffusion_sampler(run)
        if steps is not None:
            chosen.steps = steps
        return chosen
    return "prior"


@torch.no_grad()
def sample(model: Model, n: int, *, sampler: str | GMMSampler | DiffusionSampler = "prior",
           temperature: float = 1.0, seed: int = 0, binarize: bool = False,
           cond: torch.Tensor | int | None = None) -> torch.Tensor:
    """Decode ``n`` latents drawn from ``sampler``: ``"prior"``, a fitted ``GMMSampler`` (get
    the run's with ``gmm_sampler(run)``) or ``DiffusionSampler`` (``diffusion_sampler(run)``).

    Returns decoder means (``(n, *shape)``), or with ``binarize`` one Bernoulli draw per
    pixel: the binary images the model actually describes, rather than their grey
    probabilities. With the prior this equals ``model.sample(n, temperature=...,
    generator=torch.Generator().manual_seed(seed))``.

    A conditional model draws class ``cond`` (one label for all, or labels ``(n,)``); given
    none it cycles through its classes.
    """
    model.check_sample(n, temperature)
    generator = torch.Generator().manual_seed(seed)
    if isinstance(sampler, GMMSampler | DiffusionSampler):
        if sampler.latent_dim != model.config.latent_dim:
            raise VaekitError(f"{type(sampler).__name__} has {sampler.latent_dim} latent dimensions, the model "
                              f"{model.config.latent_dim}")
        z = sampler.sample(n, seed=seed, temperature=temperature)
    elif sampler == "prior":
        z = model.prior_sample(n, temperature=temperature, generator=generator)
    else:
        raise VaekitError(f"sampler: expected 'prior', a GMMSampler (vaekit.latent.gmm_sampler(run)) or a "
                          f"DiffusionSampler (vaekit.latent.diffusion_sampler(run)), got {sampler!r}")
    parameter = next(model.parameters())
    likelihood = model.decode(z.to(device=parameter.device, dtype=parameter.dtype), model.sample_cond(n, cond))
    if not binarize:
        return likelihood.mean
    if not isinstance(likelihood, Bernoulli):
        raise VaekitError(f"binarize needs a Bernoulli decoder; this model's is {type(likelihood).__name__}")
    return torch.bernoulli(likelihood.mean.cpu(), generator=generator).to(parameter.device)
