"""One fitted VAE of a detector and how it scores; a detector averages the scores of its ``fits_``.

A detector with trimmed refits (``trim``) trains several VAEs, each on a different share of
the training data. ``VAEAnomalyDetector(ensemble=...)`` says which of them score new data:
their scores are averaged, as in the outlier ensembles of Aggarwal (2013) and the
subsampled models of an isolation forest. Each fit keeps what its own scores need: the
training data's posterior means (``knn``) and each score part's training scores, sorted
(``references``: what a sum such as ``elbo+knn`` reads its parts' tail probabilities from).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.scores import (
    ResidualModel,
    anomaly_scores,
    combine,
    knn_distances,
    latent_codes,
    reference_scores,
    residuals,
)
from vaekit.latent.encoding import mean_kl_per_dim
from vaekit.models.base import Model
from vaekit.training.diagnosis import active_dims

#: Which fits ``ensemble`` averages: every trimmed refit (or the one fit when nothing was
#: refitted), only the last fit, or the first fit (on all training data) too.
ENSEMBLES = ("refits", "last", "all")


@dataclass
class Fit:
    """A fitted VAE, the posterior means of the rows it was trained on, each score part's
    sorted scores of those rows (``references``; a detector saved before format 5 has each
    part's training ``(mean, std)`` instead, and its sums stay the sums of z-scores it was
    fitted with) and the statistics of those rows' residuals (``residual``, for ``resid``)."""

    model: Model
    codes: torch.Tensor
    references: dict[str, np.ndarray | tuple[float, float]]
    residual: ResidualModel | None = field(default=None)

    def parts(self, xm: torch.Tensor, names: tuple[str, ...], *, k: int, n_neighbors: int, seed: int,
              device: torch.device | str, codes: torch.Tensor | None = None, resid: np.ndarray | None = None,
              is_training: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each named score of ``xm`` (``codes`` / ``resid``: its posterior means / residuals under this
        fit, if already computed); ``is_training`` marks rows whose codes are in ``self.codes`` (left out by knn)."""
        out = {}
        for name in names:
            if name == "knn":
                if len(self.codes) < 2:
                    raise AnomalyInputError("anomaly_score knn: the detector needs at least 2 training examples")
                codes = latent_codes(self.model, xm, device=device) if codes is None else codes
                out[name] = knn_distances(codes, self.codes, n_neighbors, is_reference=is_training)
            elif name == "resid":
                if self.residual is None:
                    raise AnomalyInputError("anomaly_score resid: this detector kept no training residuals (it "
                                            "was fitted with a score without resid); fit it with anomaly_score="
                                            "'resid' or a sum that has it")
                resid = residuals(self.model, xm, device=device) if resid is None else resid
                out[name] = self.residual.distances(resid)
            else:
                out[name] = anomaly_scores(self.model, xm, score=name, k=k, seed=seed, device=device)
        return out

    def combine(self, parts: dict[str, np.ndarray], score: str) -> np.ndarray:
        """One part as it is; several by ``scores.combine`` against this fit's training references."""
        if len(parts) == 1:
            return next(iter(parts.values()))
        missing = [name for name in parts if name not in self.references]
        if missing:
            raise AnomalyInputError(f"anomaly_score {score}: the training scores of {', '.join(missing)} "
                                    f"were not computed when this detector was fitted (with "
                                    f"{', '.join(self.references)}); fit it with anomaly_score={score!r}")
        if any(isinstance(ref, tuple) for ref in self.references.values()):  # saved before format 5
            return sum((values - self.references[name][0]) / self.references[name][1]
                       for name, values in parts.items())
        return combine(parts, self.references)


def chosen_fits(n_fits: int, ensemble: str) -> list[int]:
    """The indices of the fits that ``ensemble`` averages, of the ``n_fits`` made (the first on all
    training data, then the trimmed refits)."""
    if ensemble == "last" or n_fits == 1:
        return [n_fits - 1]
    return list(range(0 if ensemble == "all" else 1, n_fits))


def unused_latent(model: Model, xm: torch.Tensor, *, batch_size: int = 4096) -> bool:
    """Whether ``model``'s posterior of the rows ``xm`` stays at the prior: no dimension of its mean KL
    (``mean_kl_per_dim``, on the model's device) is active (``active_dims``: ``COLLAPSED_KL`` nats or more).
    For an hvae that is the KL of its mean-path posterior (``encode``, all groups) against N(0, I)."""
    return len(xm) > 0 and active_dims(mean_kl_per_dim(model, xm, batch_size=batch_size)) == 0


def collapse_message(fits: list[Fit], xm: torch.Tensor, scores: np.ndarray) -> str | None:
    """What went wrong, with the remedy, when every fit left its latent unused (``unused_latent`` on
    the training rows ``xm``) or the training ``scores`` barely vary; None when neither."""
    if all(unused_latent(fit.model, xm) for fit in fits):
        what = ("the VAE left its latent unused (KL below 0.01 nats on every dimension), so it scores like the "
                "distance to the training mean and misses relations between features")
    elif np.ptp(scores) <= 1e-6 * max(1.0, float(np.abs(scores).max())):
        what = "the training scores barely vary, so they rank nothing"
    else:
        return None
    return (f"{what}; try a weaker KL weight (model={{'beta': 0.1}}), more epochs or another anomaly_score, "
            "and compare with a plain method (Mahalanobis distance, PCA, kNN)")


def references_of(parts: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each score part's sorted scores of the rows a fit was trained on."""
    return {name: reference_scores(values[rows]) for name, values in parts.items()}
