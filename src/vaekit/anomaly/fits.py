"""One fitted VAE of a detector and how it scores; a detector averages the scores of its ``fits_``.

A detector with trimmed refits (``trim``) trains several VAEs, each on a different share of
the training data. ``VAEAnomalyDetector(ensemble=...)`` says which of them score new data:
their scores are averaged, as in the outlier ensembles of Aggarwal (2013) and the
subsampled models of an isolation forest. Each fit keeps what its own scores need: the
training data's posterior means (``knn``) and each score part's training mean and std
(sums such as ``recon+knn``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.scores import anomaly_scores, combine, knn_distances, latent_codes, training_stats
from vaekit.latent.encoding import mean_kl_per_dim
from vaekit.models.base import Model
from vaekit.training.diagnosis import active_dims

#: Which fits ``ensemble`` averages: every trimmed refit (or the one fit when nothing was
#: refitted), only the last fit, or the first fit (on all training data) too.
ENSEMBLES = ("refits", "last", "all")


@dataclass
class Fit:
    """A fitted VAE, the posterior means of the rows it was trained on, and its score statistics."""

    model: Model
    codes: torch.Tensor
    score_stats: dict[str, tuple[float, float]]

    def parts(self, xm: torch.Tensor, names: tuple[str, ...], *, k: int, n_neighbors: int, seed: int,
              device: torch.device | str, codes: torch.Tensor | None = None,
              is_training: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each named score of ``xm`` (``codes``: its posterior means under this fit, if already
        computed); ``is_training`` marks rows whose codes are in ``self.codes`` (left out by knn)."""
        out = {}
        for name in names:
            if name == "knn":
                if len(self.codes) < 2:
                    raise AnomalyInputError("anomaly_score knn: the detector needs at least 2 training examples")
                codes = latent_codes(self.model, xm, device=device) if codes is None else codes
                out[name] = knn_distances(codes, self.codes, n_neighbors, is_reference=is_training)
            else:
                out[name] = anomaly_scores(self.model, xm, score=name, k=k, seed=seed, device=device)
        return out

    def combine(self, parts: dict[str, np.ndarray], score: str) -> np.ndarray:
        """One part as it is; several standardized by this fit's training statistics, then added."""
        if len(parts) == 1:
            return next(iter(parts.values()))
        missing = [name for name in parts if name not in self.score_stats]
        if missing:
            raise AnomalyInputError(f"anomaly_score {score}: the training statistics of {', '.join(missing)} "
                                    f"were not computed when this detector was fitted (with "
                                    f"{', '.join(self.score_stats)}); fit it with anomaly_score={score!r}")
        return combine(parts, self.score_stats)


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


def stats_of(parts: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, tuple[float, float]]:
    """Each score part's mean and std on the rows a fit was trained on."""
    return {name: training_stats(values[rows]) for name, values in parts.items()}
