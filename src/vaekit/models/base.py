"""The model protocol every vaekit model speaks, and the parts all models share.

A model implements ``encode`` (x -> a ``vaekit.distributions.Posterior``) and ``decode``
(z -> a ``Likelihood``). From those two this base class derives the rest of the protocol
the same way for every family: the training loss (computed by ``vaekit.objectives.bounds``),
sampling from the prior, importance-sampled log-likelihood, and save/load. What a family
can do is declared by capability flags (``Model.gaussian_posterior``, ``learned_prior``,
``entropy_coded``, ...; ``ModelConfig.conditional``, ``sequences``). Tools talk only to
this protocol and read those flags, never a family's class or name.

Conditions: every protocol method takes ``cond``. An unconditional model ignores it. A
conditional model (``config.conditional``; its config is a ``ConditionalConfig``) needs
the class labels of the examples as ``cond`` (int64 ``(B,)``, or float class weights
``(B, num_classes)``) in ``encode``, ``decode``, ``loss``, ``reconstruct`` and
``log_likelihood``; ``sample`` takes labels (or one label for all) and, given none, cycles
through the classes. The trainer, evaluation and the latent tools pass a split's labels
whenever ``config.conditional`` is true, so a new conditional family needs no change there.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from vaekit.distributions import Likelihood, Posterior, standard_normal_log_prob
from vaekit.errors import VaekitError
from vaekit.memory import check_memory
from vaekit.models.checks import check_sampling
from vaekit.models.config import CONDITIONS, ConditionalConfig, ModelConfig
from vaekit.objectives.bounds import Inference, Loss, check_objective, log_mean_exp, objective_loss
from vaekit.serialization import save_model
from vaekit.sharing import push_to_hub, save_pretrained

if TYPE_CHECKING:
    from vaekit.objectives.image_terms import ReconstructionTerm
    from vaekit.objectives.regularizers import LatentRegularizer


class Model(nn.Module):
    """Base class of all vaekit models: subclasses implement ``encode`` and ``decode``.

    Families differ in what they can do, never in how a tool asks: each declares its
    capabilities here (class-level flags, or properties of its config), and tools read
    those instead of testing a family's class or name.
    """

    config: ModelConfig

    #: ``encode`` returns the whole posterior as a ``DiagonalGaussian``, against the N(0, I)
    #: prior: what bits-back coding (``vaekit.compression.bitsback``) needs. False for a
    #: family whose ``encode`` is a summary (a hierarchy's mean path) or not a Gaussian.
    gaussian_posterior: ClassVar[bool] = False

    #: The posterior is a point mass (a VQ-VAE's codes, a codec's rounded latents): ``evaluate``
    #: then skips active units and the mutual-information estimate, which assume spread.
    point_posterior: ClassVar[bool] = False

    #: The prior is fitted to the training codes after the networks (a VQ-VAE's autoregressive
    #: prior, a codec's entropy model): samples come from it, so the run's GMM sampler is not fitted.
    learned_prior: ClassVar[bool] = False

    #: The model is a learned codec: its integer latents are entropy coded into files
    #: (``analyse`` / ``synthesise`` / ``coding_tables``: ``vaekit.compression``, lossy mode).
    entropy_coded: ClassVar[bool] = False

    #: False for a family whose training updates state outside the gradients (a VQ-VAE's
    #: EMA codebook) that would drift apart across torchrun processes.
    distributed_training: ClassVar[bool] = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A family's ``encode`` and ``infer`` check their input first (``check_input``), so
        every public method that reads data (``loss``, ``reconstruct``, ``log_likelihood``,
        ``vaekit.evaluate``...) refuses a bad ``x`` with one line, in every family."""
        super().__init_subclass__(**kwargs)
        for name in ("encode", "infer"):
            own = cls.__dict__.get(name)
            if own is not None and not getattr(own, "checks_input", False):
                setattr(cls, name, _checking_input(own))

    def check_input(self, x: Any) -> None:
        """Refuse ``x`` that is not a tensor of shape ``(batch, *input_shape)`` (or its flat
        rows) or, outside training, holds NaN or infinite values (a sequence model's
        missing property targets are NaN by design)."""
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
            return
        shape = tuple(self.config.input_shape)
        expected = f"(batch, {', '.join(map(str, shape))})"
        if not isinstance(x, torch.Tensor):
            raise VaekitError(f"x: expected a tensor of shape {expected}, got {type(x).__name__}")
        if tuple(x.shape[1:]) != shape and not (x.dim() == 2 and x.shape[1] == math.prod(shape)):
            raise VaekitError(f"x: expected shape {expected} (the model's input_shape {shape}), "
                              f"got {tuple(x.shape)}")
        if not self.training and not self.config.sequences and x.is_floating_point() and \
                not bool(torch.isfinite(x).all()):
            raise VaekitError("x: holds NaN or infinite values (expected finite numbers)")

    @property
    def conditional(self) -> bool:
        """``encode`` / ``decode`` need ``cond`` (class labels): the config's ``conditional``."""
        return self.config.conditional

    @property
    def sequences(self) -> bool:
        """The model takes and decodes token sequences: the config's ``sequences``."""
        return self.config.sequences

    @property
    def event_ndim(self) -> int:
        return len(self.config.input_shape)

    # -- the two methods each family implements -------------------------------------
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> Posterior:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> Likelihood:
        raise NotImplementedError

    # -- conditions --------------------------------------------------------------------
    def check_cond(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        """``cond`` as a conditional model's networks take it (``None`` for an unconditional model).

        A conditional model refuses a missing condition and, outside training (where the
        trainer has checked the dataset's labels once), labels outside ``0..num_classes-1``,
        with a one-line ``VaekitError`` rather than an index error deep in the network.
        """
        if not self.config.conditional:
            return None
        k = self.config.num_classes
        if cond is None:
            raise VaekitError(f"cond: model '{self.config.model}' is conditional and needs class labels "
                              f"(int64, one per example, 0..{k - 1})")
        device = next(self.parameters()).device
        if cond.is_floating_point():
            if cond.shape[-1] != k:
                raise VaekitError(f"cond: class weights need {k} columns, got shape {tuple(cond.shape)}")
            return cond.to(device)
        cond = cond.to(device=device, dtype=torch.long)
        if not self.training and cond.numel():
            low, high = (int(v) for v in torch.aminmax(cond))  # one host sync for both ends
            if low < 0 or high >= k:
                raise VaekitError(f"cond: labels must lie in 0..{k - 1}, got values from {low} to {high}")
        return cond

    def sample_cond(self, n: int, cond: torch.Tensor | int | None = None) -> torch.Tensor | None:
        """The labels for ``n`` samples: ``cond`` itself, one label (an int or a 0-d tensor)
        for all ``n``, or, for a conditional model given none, the classes in turn
        (``0, 1, ..., K-1, 0, ...``: every class equally often). ``None`` for unconditional models."""
        if not self.config.conditional:
            return None
        if cond is None:
            return torch.arange(n) % self.config.num_classes
        cond = torch.as_tensor(cond)
        return cond.expand(n) if cond.dim() == 0 else cond

    # -- derived, shared by every family --------------------------------------------
    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, **objective: Any) -> Loss:
        """Calling a model computes its training loss, so DistributedDataParallel (which
        synchronizes gradients of what ``forward`` computes) wraps any model unchanged."""
        return self.loss(x, cond, **objective)

    def prior_sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """z ~ N(0, temperature^2 I)."""
        device = next(self.parameters()).device
        return temperature * torch.randn(n, self.config.latent_dim, device=device, generator=generator)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def fit_prior(self, train: torch.Tensor, labels: torch.Tensor | None = None, *, seed: int = 0,
                  progress: bool = False) -> dict[str, Any] | None:
        """Fit the prior to the training set's codes once the networks are trained.

        Called by ``vaekit.train`` on the best weights, which are then saved again with
        the prior; returns the figures of the fit for the run summary. A fixed prior
        (N(0, I), as here) needs no fit: ``None``.
        """
        return None

    def infer(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, n: int = 1,
              generator: torch.Generator | None = None) -> Inference:
        """Draw ``n`` latents z ~ q(z|x) per example, with the log densities every bound is made of.

        This is the one place a family's inference enters the objectives: ``loss`` (ELBO and
        IWAE), ``log_likelihood`` and ``vaekit.evaluate`` are built on it. This version is
        the single-Gaussian posterior of ``encode``; a family whose posterior is not one
        diagonal Gaussian (a hierarchy of latent groups, discrete codes) overrides it.
        """
        return self.infer_from(self.encode(x, cond), x, cond, n=n, generator=generator)

    def infer_from(self, posterior: Posterior, x: torch.Tensor, cond: torch.Tensor | None = None, *,
                   n: int = 1, generator: torch.Generator | None = None) -> Inference:
        """``infer`` given the posterior ``encode`` returned: a family that adds terms of its own
        (a sequence VAE's property head reads the posterior mean) encodes once and calls this."""
        if n == 1 and generator is None:
            z = posterior.rsample().unsqueeze(0)  # randn_like: traceable by torch.compile
        else:
            z = posterior.rsample(n, generator=generator)
        likelihood = self.decode(z, cond)
        return Inference(z=z, log_px_z=likelihood.log_prob(x), log_pz=self.prior_log_prob(z),
                         log_qz=posterior.log_prob(z), kl_by_dim=posterior.kl_per_dim().flatten(1),
                         posterior=posterior, likelihood=likelihood)

    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, beta: float = 1.0,
             free_bits: float = 0.0, iw_samples: int = 1, regularizer: LatentRegularizer | None = None,
             recon_term: ReconstructionTerm | None = None, recon_weight: float = 1.0) -> Loss:
        """The training objective, nats per example, from ``infer``: the ELBO (recon + beta * KL,
        free bits), with ``iw_samples > 1`` the importance-weighted bound, a ``regularizer``'s
        term in place of beta * KL, a ``recon_term`` added (``vaekit.objectives.bounds``).
        ``recon`` and ``kl`` always report the ELBO's terms, ``total`` the objective.
        """
        check_objective(free_bits=free_bits, iw_samples=iw_samples, regularizer=regularizer)
        return objective_loss(self.infer(x, cond, n=iw_samples), x, beta=beta, free_bits=free_bits,
                              iw_samples=iw_samples, regularizer=regularizer, recon_term=recon_term,
                              recon_weight=recon_weight)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | int | None = None, *, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n prior draws; returns the likelihood means (probabilities for Bernoulli).

        A conditional model draws class ``cond`` (labels ``(n,)`` or one label for all);
        without ``cond`` it cycles through the classes (see ``sample_cond``)."""
        self.check_sample(n, temperature)
        z = self.prior_sample(n, temperature=temperature, generator=generator)
        return self.decode(z, self.sample_cond(n, cond)).mean

    def check_sample(self, n: Any, temperature: Any = 1.0) -> None:
        """Refuse ``n < 1``, a temperature that is not finite and positive, and, before
        allocating, ``n`` draws whose decoding cannot fit in memory (with the estimate)."""
        check_sampling(n, temperature)
        values = math.prod(self.config.input_shape)
        check_memory(n * (self.config.latent_dim + values) * 4 * 4, f"sample: {n} samples of {values} values",
                     "draw fewer", next(self.parameters(), torch.empty(0)).device)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder mean at the posterior mean: the deterministic reconstruction."""
        return self.decode(self.encode(x, cond).mode(), cond).mean

    @property
    def levels(self) -> int:
        """Latent levels, top first: 1 for a flat latent, one per group for a hierarchy."""
        return 1

    def check_levels(self, keep: Any) -> None:
        """Refuse a ``keep`` that is not a count of levels (0 to ``levels``)."""
        if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= self.levels:
            raise VaekitError(f"keep: expected a number of levels from 0 to {self.levels}, got {keep!r}")

    @torch.no_grad()
    def resample_below(self, x: torch.Tensor, keep: int, cond: torch.Tensor | None = None, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means of ``x`` with its top ``keep`` latent levels inferred (posterior
        means) and the levels below drawn from the prior given them: what the kept levels
        fix and what the others vary. ``keep = levels`` is the reconstruction, ``keep = 0``
        a prior sample (with a flat latent these are the only two)."""
        self.check_levels(keep)
        if keep == self.levels:
            return self.reconstruct(x, cond)
        return self.sample(len(x), cond, generator=generator)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, k: int = 1000,
                       chunk: int = 100, generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-sampled log p(x) per example, in nats (Burda et al. 2015).

        log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], z_k ~ q(z|x).
        Samples are drawn ``chunk`` at a time (through ``infer``, so the proposal is the
        family's full posterior) and the log-mean-exp accumulated in float64.
        """
        for name, value in (("k", k), ("chunk", chunk)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise VaekitError(f"log_likelihood: {name} must be an integer of at least 1, got {value!r}")
        self.check_input(x)  # once: the chunks' ``infer`` calls skip it (``_input_checked``)
        with _input_checked(self):
            return log_mean_exp([self.infer(x, cond, n=min(chunk, k - start), generator=generator).log_weights
                                 for start in range(0, k, chunk)])

    def values_per_example(self, x: torch.Tensor) -> torch.Tensor:
        """How many values the likelihood scores in each example of ``x``, ``(B,)`` float64:
        what bits per dim divides by. Every pixel or column here; a sequence VAE counts each
        row's predicted tokens, not its padding."""
        return torch.full((len(x),), float(math.prod(self.config.input_shape)), dtype=torch.float64)

    @torch.no_grad()
    def held_out_figures(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, Any]:
        """Figures of this family that ``vaekit.evaluate`` reports besides the bounds (a
        VQ-VAE's codebook usage and perplexity over ``x``); none for a VAE."""
        return {}

    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` and the model section of ``config.json`` into ``path``."""
        save_model(self, path)

    def save_pretrained(self, path: str | Path) -> Path:
        """``save`` plus a model card (README.md): the folder ``vaekit.from_pretrained`` reads
        (``vaekit.hub.save_pretrained`` adds a run's data, figures and pictures)."""
        return save_pretrained(self, path)

    def push_to_hub(self, repo_id: str, **options: Any) -> str:
        """Upload ``save_pretrained``'s folder to the Hugging Face Hub (the ``hub`` extra);
        ``options``: ``token``, ``private``, ``commit_message``. Returns the commit's URL."""
        return push_to_hub(self.save_pretrained, repo_id, **options)


__all__ = ["CONDITIONS", "ConditionalConfig", "Inference", "Loss", "Model", "ModelConfig"]


#: The models (by id) inside a checked call on this thread: a nested ``encode`` / ``infer``
#: (a codec's ``infer`` calls ``encode``; ``log_likelihood`` calls ``infer`` per chunk) reads
#: the ``x`` its outermost call already checked, so only that one checks.
_CHECKING = threading.local()


def _inside_check(model: Model) -> bool:
    return id(model) in getattr(_CHECKING, "models", ())


@contextlib.contextmanager
def _input_checked(model: Model) -> Iterator[None]:
    """Run the body as inside a checked call of ``model`` (nested checks skipped)."""
    models = _CHECKING.__dict__.setdefault("models", set())
    if id(model) in models:
        yield
        return
    models.add(id(model))
    try:
        yield
    finally:
        models.discard(id(model))


def _checking_input(method: Any) -> Any:
    @functools.wraps(method)
    def checked(self: Model, x: Any, *args: Any, **kwargs: Any) -> Any:
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export() \
                or _inside_check(self):
            return method(self, x, *args, **kwargs)  # traced: no checks; nested: checked already
        self.check_input(x)
        with _input_checked(self):
            return method(self, x, *args, **kwargs)

    checked.checks_input = True  # type: ignore[attr-defined]
    return checked
