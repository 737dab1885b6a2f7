"""Sampling where the data actually is: a Gaussian mixture fitted to the encoder means.

A VAE's aggregate posterior rarely fills the N(0, I) prior: prior draws often land in
holes the decoder never saw and decode to blurry non-digits. Fitting a mixture to the
training set's posterior means (Ghosh et al. 2020, "ex-post density estimation") and
sampling from it gives latents the decoder knows. The fitted parameters are saved as
safetensors + JSON metadata next to the model (no pickle), tagged with the weights'
checksum so a retrained or resumed model gets a fresh fit. EM's cost grows with the number
of codes while the estimate stops improving long before a large training set is used up, so
a fit reads a seeded subset of at most ``max_samples`` codes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError
from vaekit.latent.inputs import MAX_CODES, sample_rows, training_codes
from vaekit.serialization import WEIGHTS_FILE

if TYPE_CHECKING:
    from vaekit.data.bundle import Dataset
    from vaekit.training.runs import Run

GMM_FILE = "gmm_sampler.safetensors"
FORMAT = "vaekit-gmm-1"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DEFAULT_COMPONENTS = 10


class GMMSampler:
    """A Gaussian mixture over latents, with scikit-learn conventions.

    Parameters go in ``__init__``; ``fit`` learns ``weights_`` ``(K,)``, ``means_``
    ``(K, D)`` and ``covariances_`` (scikit-learn's shape for ``covariance_type``), all
    float64, and returns ``self``. ``sample`` and ``log_density`` are pure torch, so a
    loaded sampler needs no scikit-learn object and gives the same draws as before saving.
    ``max_samples``: fit on a subset of at most this many latents, drawn with ``seed``
    (None: all of them).
    """

    def __init__(self, n_components: int = DEFAULT_COMPONENTS, covariance_type: str = "full", seed: int = 0,
                 max_samples: int | None = MAX_CODES) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.seed = seed
        self.max_samples = max_samples
        self.model_sha256_: str | None = None

    def fit_rows(self, n: int) -> torch.Tensor | None:
        """The rows of ``n`` latents a fit reads: a seeded subset of ``max_samples`` indices,
        or None (all) when there are no more than that."""
        return sample_rows(n, self.max_samples, self.seed)

    def _too_few_allowed(self) -> bool:
        """Whether ``max_samples`` itself leaves fewer latents than the components need (so the
        error names it, whether the subset was drawn here or by ``fit_gmm_sampler``)."""
        return self.max_samples is not None and self.max_samples < 2 * self.n_components

    # -- fitting ------------------------------------------------------------------------
    def fit(self, z: torch.Tensor) -> GMMSampler:
        """Fit ``sklearn.mixture.GaussianMixture`` to latents ``z`` ``(N, D)`` (encoder means),
        or to ``fit_rows`` of them."""
        from sklearn.mixture import GaussianMixture

        if self.covariance_type not in COVARIANCE_TYPES:
            raise VaekitError(f"covariance_type: '{self.covariance_type}' is not one of {', '.join(COVARIANCE_TYPES)}")
        if not isinstance(self.n_components, int) or self.n_components < 1:
            raise VaekitError(f"n_components: expected a positive integer, got {self.n_components!r}")
        rows = self.fit_rows(len(z))
        if rows is not None:
            z = z[rows]
        if z.dim() != 2 or len(z) < 2 * self.n_components:
            raise VaekitError(f"GMM sampler: {self.n_components} components need at least "
                              f"{2 * self.n_components} latents (N, D), got shape {tuple(z.shape)}"
                              + (f" (max_samples={self.max_samples})" if self._too_few_allowed() else ""))
        mixture = GaussianMixture(self.n_components, covariance_type=self.covariance_type, random_state=self.seed)
        mixture.fit(z.detach().double().cpu().numpy())
        self.weights_ = torch.from_numpy(mixture.weights_).double()
        self.means_ = torch.from_numpy(mixture.means_).double()
        self.covariances_ = torch.from_numpy(mixture.covariances_).double()
        return self

    # -- using it -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise VaekitError("GMM sampler: not fitted yet (call fit(z) or vaekit.latent.gmm_sampler(run))")

    def _full_covariances(self) -> torch.Tensor:
        """``(K, D, D)`` whatever ``covariance_type`` stores."""
        k, d = self.means_.shape
        c = self.covariances_
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "tied":
            return c.expand(k, d, d)
        if self.covariance_type == "diag":
            return torch.diag_embed(c)
        return c[:, None, None] * torch.eye(d, dtype=c.dtype)

    def _cholesky(self) -> torch.Tensor:
        return torch.linalg.cholesky(self._full_covariances())

    @property
    def latent_dim(self) -> int:
        self._check_fitted()
        return int(self.means_.shape[1])

    def sample(self, n: int, *, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` latents ``(n, D)`` (float32): pick a component by weight, then draw from it
        with its standard deviation scaled by ``temperature``."""
        self._check_fitted()
        if n < 1:
            raise VaekitError(f"n: expected at least 1 sample, got {n}")
        if temperature <= 0:
            raise VaekitError(f"temperature: expected a positive number, got {temperature}")
        g = torch.Generator().manual_seed(seed)
        component = torch.multinomial(self.weights_, n, replacement=True, generator=g)
        eps = torch.randn(n, self.latent_dim, dtype=torch.float64, generator=g)
        z = self.means_[component] + temperature * (self._cholesky()[component] @ eps[:, :, None])[:, :, 0]
        return z.float()

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the mixture, ``(N,)`` float64 (agrees with scikit-learn's ``score_samples``)."""
        self._check_fitted()
        z = z.detach().double().cpu()
        chol = self._cholesky()  # (K, D, D)
        diff = (z[None, :, :] - self.means_[:, None, :]).transpose(1, 2)  # (K, D, N)
        solved = torch.linalg.solve_triangular(chol, diff, upper=False)
        mahalanobis = solved.pow(2).sum(dim=1)  # (K, N)
        log_det = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(dim=1)  # (K,)
        log_normal = -0.5 * (self.latent_dim * math.log(2 * math.pi) + log_det[:, None] + mahalanobis)
        return torch.logsumexp(torch.log(self.weights_)[:, None] + log_normal, dim=0)

    # -- files --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the parameters (safetensors) and settings (its JSON metadata) atomically."""
        from safetensors.torch import save_file

        self._check_fitted()
        tensors = {"weights_": self.weights_, "means_": self.means_, "covariances_": self.covariances_}
        metadata = {"format": FORMAT, "n_components": str(self.n_components),
                    "covariance_type": self.covariance_type, "seed": str(self.seed),
                    "max_samples": str(self.max_samples)}
        if self.model_sha256_:
            metadata["model_sha256"] = self.model_sha256_
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> GMMSampler:
        """A sampler saved by ``save``; a missing or damaged file is a one-line ``VaekitError``."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise VaekitError(f"{path}: no such GMM sampler file")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata: dict[str, Any] = f.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise VaekitError(f"{path}: cannot read the GMM sampler (truncated or not safetensors): {e}") from None
        if metadata.get("format") != FORMAT or set(tensors) != {"weights_", "means_", "covariances_"}:
            raise VaekitError(f"{path}: not a vaekit GMM sampler file")
        max_samples = metadata.get("max_samples", "None")
        sampler = cls(int(metadata["n_components"]), metadata["covariance_type"], int(metadata["seed"]),
                      None if max_samples == "None" else int(max_samples))
        sampler.weights_, sampler.means_, sampler.covariances_ = (
            tensors["weights_"], tensors["means_"], tensors["covariances_"])
        sampler.model_sha256_ = metadata.get("model_sha256")
        return sampler

    def __repr__(self) -> str:
        fitted = f", D={self.latent_dim}" if hasattr(self, "means_") else ", not fitted"
        return f"GMMSampler(n_components={self.n_components}, covariance_type='{self.covariance_type}'{fitted})"


def weights_sha256(run: Run) -> str | None:
    """The checksum ``model.safetensors`` records for its weights (ties a fit to a model)."""
    from safetensors import safe_open


    try:
        with safe_open(str(run.path / WEIGHTS_FILE), framework="pt") as f:
            return (f.metadata() or {}).get("sha256")
    except Exception:  # a run being written, or weights from elsewhere: no tag, no error
        return None


def fit_gmm_sampler(run: Run, *, n_components: int = DEFAULT_COMPONENTS, data: Dataset | torch.Tensor | None = None,
                    seed: int = 0, max_samples: int | None = MAX_CODES) -> GMMSampler:
    """Fit a sampler on the posterior means of the run's training set (``training_codes``: only
    the ``max_samples`` the fit reads are encoded), save it as ``run.path / GMM_FILE`` and
    return it. ``data``: the run's ``Dataset`` if already loaded (or a training tensor)."""
    sampler = GMMSampler(n_components, seed=seed, max_samples=max_samples)
    sampler.fit(training_codes(run, data, max_samples=max_samples, seed=seed))
    sampler.model_sha256_ = weights_sha256(run)
    if not run.read_only:  # a pretrained model's sampler lives in memory only
        sampler.save(run.path / GMM_FILE)
    return sampler


def gmm_sampler(run: Run, *, n_components: int | None = None) -> GMMSampler:
    """The run's saved sampler; fitted and saved first if missing, if fitted with another
    ``n_components``, or if the model's weights changed since (resumed training)."""
    path = run.path / GMM_FILE
    if path.is_file():
        sampler = GMMSampler.load(path)
        same_model = sampler.model_sha256_ is None or sampler.model_sha256_ == weights_sha256(run)
        if same_model and n_components in (None, sampler.n_components) and sampler.latent_dim == \
                run.model.config.latent_dim:
            return sampler
    return fit_gmm_sampler(run, n_components=n_components or DEFAULT_COMPONENTS)
