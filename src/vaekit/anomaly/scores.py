"""The anomaly scores, computed through the model protocol only (``infer``, ``reconstruct``,
``log_likelihood``, ``encode``), so every family is scored by its own inference.

Every score is "higher = more anomalous", in float64, one value per example:

- ``recon``: ||x - x̂||², x̂ the decoder mean at the posterior mean (deterministic). On
  one-class MNIST / Fashion-MNIST it beat the likelihood scores by a wide margin (see
  the README's benchmark), because a Bernoulli or Gaussian log-likelihood also rewards
  simple inputs (few lit pixels) whatever their class.
- ``elbo``: the negative ELBO, -E_q[log p(x|z)] + KL(q(z|x) || p(z)), from the model's
  ``infer``: the reconstruction term averaged over ``k`` posterior draws, the KL in closed
  form, per example, as the model's training loss computes them (``Model.loss``'s ``recon``
  and ``kl`` are their batch means). For a hierarchical VAE the draws come from its whole
  top-down posterior and the KL is each group's against its prior given the drawn parents,
  averaged over the draws: the hierarchical ELBO it was trained on.
- ``nll``: the importance-sampled negative log-likelihood -log p(x) with ``k`` samples
  (Burda et al. 2015), the model's own ``log_likelihood``.
- ``knn``: the mean distance from an example's posterior mean to the ``n_neighbors``
  nearest posterior means of the training examples. ``recon`` measures how far an
  example is from the decoder's manifold; ``knn`` how far it is, along the manifold, from
  the training data: a plain "1" that a decoder trained on "7"s redraws well still lands
  away from every training "7".
- ``resid``: the Mahalanobis distance of the reconstruction residual x - x̂ under the mean
  and covariance of the training examples' residuals (shrunk toward a multiple of the
  identity, so it is defined for any number of features, by as much as held-out residuals
  say: ``ResidualModel``). The decoder's likelihood treats features as
  independent given z, so a relation between features that the latent does not carry
  (two columns that move together) is invisible to ``recon`` and ``elbo``; the residuals'
  covariance sees it, and where the VAE did learn the relation the residuals are what is
  left to explain.
- a sum such as ``elbo+knn``: each part becomes its tail probability among the same part's
  scores of the training data, and the parts combine as Fisher's statistic -2 Σ log p
  (``tail_log_p``, ``combine``). Why this rule: the parts are in unrelated units (nats, squared
  distances, distances in a latent space) and differently skewed; a tail probability puts each
  on the one scale that means the same for every part and every data set ("how rare is a
  score this high among the training data"), it ignores a part's units and any increasing
  transform of it, so nothing is weighted or tuned per set, and Fisher's statistic is the
  standard way to pool independent p-values (an example needs only to be rare in one part to
  stand out, and is rarer still when it is rare in both). Below the training scores' top
  ``TAIL`` share the probability is the empirical one; within and beyond it, an exponential
  tail fitted to that share (peaks over a threshold, shape 0), so that examples beyond every
  training score are still ranked by how far beyond they are instead of tying.

The random scores draw from a generator seeded per call, so the same detector gives
the same scores for the same input (before and after save / load).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vaekit.models.base import Model

#: The scores a detector can compute; ``anomaly_score`` is one of them or a sum ("recon+knn").
SCORES = ("recon", "elbo", "nll", "knn", "resid")
#: Scores that draw posterior samples (seeded per call, but batch-dependent).
SAMPLED = ("elbo", "nll")
#: Elements (samples x batch x features) decoded at once: bounds memory for big ``k``.
_ELEMENTS_PER_BATCH = 1 << 24


def score_parts(name: str) -> tuple[str, ...]:
    """The scores a score name adds up: ``"recon+knn"`` -> ``("recon", "knn")``."""
    parts = tuple(part.strip() for part in str(name).split("+"))
    if any(part not in SCORES for part in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"expected {', '.join(SCORES)} or a sum of them such as recon+knn, got {name!r}")
    return parts


def draws_samples(name: str) -> bool:
    """Whether a score (or a sum) has a part that draws posterior samples (``elbo``, ``nll``)."""
    return any(part.strip() in SAMPLED for part in str(name).split("+"))


#: The share of the training scores, the highest, whose excesses fit a part's exponential tail.
TAIL = 0.1


def reference_scores(values: np.ndarray) -> np.ndarray:
    """A part's training scores as ``tail_log_p`` reads them: sorted, float64."""
    return np.sort(np.asarray(values, dtype=np.float64))


def tail_log_p(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """-log P(a training score >= value) for each value, ``reference`` the sorted training scores.

    Below the top ``TAIL`` share of ``reference`` (its ``m`` highest, above the threshold ``u``)
    it is the empirical tail probability (1 + #{reference >= value}) / (n + 1); above ``u`` the
    exponential tail that meets it there, q exp(-(value - u) / s), q = (1 + m) / (n + 1), s the
    mean excess of the ``m`` highest over ``u``: increasing without bound, so examples beyond
    every training score keep their order. Increasing in ``value``, and unchanged when a part
    and its reference are both multiplied by a positive number or shifted.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(reference)
    m = max(1, int(TAIL * n)) if n > 1 else 0
    above = n - np.searchsorted(reference, values, side="left")
    out = np.log(n + 1) - np.log1p(above)
    if m == 0:
        return out
    u = reference[n - m - 1]
    scale = float(np.mean(reference[n - m:] - u))
    scale = max(scale, 1e-12 * max(1.0, abs(float(u))))  # tied top scores: any excess counts heavily
    return np.where(values > u, np.log(n + 1) - np.log1p(m) + (values - u) / scale, out)


def combine(parts: dict[str, np.ndarray], references: dict[str, np.ndarray]) -> np.ndarray:
    """Fisher's statistic -2 Σ log p of the parts, each p the tail probability of its training
    ``references`` (``tail_log_p``); one part is returned as it is."""
    if len(parts) == 1:
        return next(iter(parts.values()))
    return 2.0 * sum(tail_log_p(values, references[name]) for name, values in parts.items())


@torch.no_grad()
def latent_codes(model: Model, x: torch.Tensor, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """Posterior means, one flat row per example: where ``knn`` measures distances."""
    model.eval()
    rows = [model.encode(xb.to(device)).mean.flatten(1).float().cpu() for xb in x.split(4096)]
    return torch.cat(rows) if rows else torch.zeros(0, 0)


def knn_distances(codes: torch.Tensor, reference: torch.Tensor, n_neighbors: int, *,
                  is_reference: np.ndarray | None = None) -> np.ndarray:
    """Mean distance of each row of ``codes`` to its ``n_neighbors`` nearest rows of ``reference``.

    ``is_reference`` marks rows of ``codes`` that are themselves in ``reference``: their
    nearest neighbour (themselves, at distance 0) is skipped, so a training example is
    measured as a new example would be (leave-one-out), and the training scores that set
    the threshold are not optimistic.
    """
    n = min(int(n_neighbors), max(1, len(reference) - 1))
    reference = reference.double()
    # rows per chunk: the distance matrix chunk stays near 2^24 elements
    per_chunk = max(1, _ELEMENTS_PER_BATCH // max(1, len(reference)))
    out = []
    for start in range(0, len(codes), per_chunk):
        d = torch.cdist(codes[start:start + per_chunk].double(), reference)
        nearest = d.topk(min(n + 1, len(reference)), dim=1, largest=False).values
        if is_reference is None:
            out.append(nearest[:, :n].mean(dim=1))
            continue
        skip = torch.from_numpy(np.asarray(is_reference[start:start + per_chunk], dtype=bool))
        out.append(torch.where(skip, nearest[:, 1:n + 1].mean(dim=1), nearest[:, :n].mean(dim=1)))
    return torch.cat(out).numpy() if out else np.zeros(0)


@torch.no_grad()
def residuals(model: Model, x: torch.Tensor, *, device: torch.device | str = "cpu") -> np.ndarray:
    """x - x̂ per example, flattened, in float64: x̂ the decoder mean at the posterior mean."""
    model.eval()
    rows = [(xb.to(device) - model.reconstruct(xb.to(device))).flatten(1).double().cpu() for xb in x.split(4096)]
    return torch.cat(rows).numpy() if rows else np.zeros((0, max(1, math.prod(x.shape[1:]))))


#: The shrinkages ``ResidualModel.fit`` chooses from: log-spaced, eight per decade, from 1e-5 to 1 (the
#: target alone). Zero is left out: with more features than rows the sample covariance is singular.
SHRINKAGES = np.logspace(-5, 0, 41)
#: The folds that score each shrinkage: every training residual is held out once.
SHRINKAGE_FOLDS = 5


@dataclass
class ResidualModel:
    """The mean and precision (inverse shrunk covariance) of a fit's training residuals: what ``resid``
    measures new residuals against."""

    mean: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, r: np.ndarray) -> ResidualModel:
        """The sample covariance of the residuals ``r`` (rows) shrunk toward a multiple of the identity
        (``sklearn.covariance.ShrunkCovariance``) by the shrinkage of ``SHRINKAGES`` under which held-out
        residuals are likeliest (``held_out_shrinkage``). Why held out: the Mahalanobis distance is the
        Gaussian log-likelihood of a residual, so the covariance that predicts unseen residuals best is
        the one that scores them; an exact relation between features (a direction of near-zero
        variance) keeps its small variance when new rows follow it, and is shrunk away when they do not."""
        from sklearn.covariance import ShrunkCovariance

        r = np.asarray(r, dtype=np.float64)
        shrunk = ShrunkCovariance(shrinkage=held_out_shrinkage(r)).fit(r)
        return cls(np.asarray(shrunk.location_, np.float64), np.asarray(shrunk.precision_, np.float64))

    def distances(self, r: np.ndarray) -> np.ndarray:
        """The squared Mahalanobis distance of each residual row."""
        centered = r - self.mean
        return np.einsum("ij,jk,ik->i", centered, self.precision, centered)


def held_out_shrinkage(r: np.ndarray) -> float:
    """The shrinkage of ``SHRINKAGES`` whose shrunk covariance gives the residuals ``r`` the highest
    ``SHRINKAGE_FOLDS``-fold held-out Gaussian log-likelihood: what ``ShrunkCovariance(shrinkage=s)
    .fit(train).score(held_out)`` summed over the folds (times each fold's rows) would pick, computed
    from one eigendecomposition per fold, since every shrinkage shares the sample covariance's
    eigenvectors. With too few rows to hold any out (fewer than two per fold), Ledoit-Wolf's."""
    from sklearn.covariance import ledoit_wolf_shrinkage
    from sklearn.model_selection import KFold

    n, d = r.shape
    folds = min(SHRINKAGE_FOLDS, n // 2)
    if folds < 2:
        return float(ledoit_wolf_shrinkage(r))
    total = np.zeros(len(SHRINKAGES))
    for train, held in KFold(folds, shuffle=True, random_state=0).split(r):
        mean = r[train].mean(axis=0)
        variances, vectors = np.linalg.eigh(np.cov(r[train], rowvar=False, bias=True).reshape(d, d))
        variances = np.clip(variances, 0.0, None)
        spread = (((r[held] - mean) @ vectors) ** 2).sum(axis=0)  # held-out squared deviations per eigenvector
        # each shrinkage's eigenvalues, one row per shrinkage
        shrunk = np.outer(1 - SHRINKAGES, variances) + (SHRINKAGES * variances.mean())[:, None]
        shrunk = np.maximum(shrunk, np.finfo(float).tiny)
        total -= len(held) * np.log(shrunk).sum(axis=1) + (spread / shrunk).sum(axis=1)
    return float(SHRINKAGES[int(np.argmax(total))])


@torch.no_grad()
def anomaly_scores(model: Model, x: torch.Tensor, *, score: str = "recon", k: int = 100, seed: int = 0,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Scores recon, elbo or nll (higher = more anomalous) of the examples ``x`` (in model space).

    ``knn`` needs the training codes, ``resid`` the training residuals, and sums their statistics:
    ``VAEAnomalyDetector`` keeps each.
    """
    if score not in ("recon", *SAMPLED):
        raise ValueError(f"score: expected recon, elbo or nll, got {score!r}")
    model.eval()
    features = max(1, math.prod(x.shape[1:]))
    draws = 1 if score == "recon" else min(k, 100)
    batch = max(1, min(4096, _ELEMENTS_PER_BATCH // (draws * features)))
    generator = torch.Generator(device=device).manual_seed(seed)
    out = []
    for xb in x.split(batch):
        xb = xb.to(device)
        if score == "recon":
            s = (model.reconstruct(xb) - xb).pow(2).flatten(1).sum(dim=1)
        elif score == "elbo":
            s = _negative_elbo(model, xb, k, generator)
        else:
            s = -model.log_likelihood(xb, k=k, chunk=draws, generator=generator)
        out.append(s.double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def _negative_elbo(model: Model, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """-ELBO per example from ``infer``: -log p(x|z) averaged over ``k`` draws (100 at a time) plus
    the closed-form KL (``kl_by_dim``, a draw-average for a hierarchy, so weighted by each chunk's draws)."""
    recon = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    kl = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for start in range(0, k, 100):
        n = min(100, k - start)
        draws = model.infer(x, n=n, generator=generator)
        recon -= draws.log_px_z.double().sum(dim=0)
        kl += n * draws.kl_by_dim.sum(dim=1).double()
    return recon / k + kl / k
