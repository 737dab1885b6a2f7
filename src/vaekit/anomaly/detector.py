"""``VAEAnomalyDetector``: a VAE fitted on normal data, scoring how unlike it new data is.

It follows scikit-learn's estimator contract (parameters in ``__init__``, ``fit`` returns
``self``, learned attributes end in ``_``, ``clone`` / ``get_params`` work) and PyOD's
conventions for what it returns, because PyOD is what users of this kind of detector know:

- ``decision_function(X)``: the anomaly score, **higher = more anomalous** (PyOD);
- ``score_samples(X)``: ``-decision_function(X)``, **higher = more normal** (scikit-learn);
- ``predict(X)``: **1 = anomaly, 0 = normal** (PyOD's ``labels_``), i.e.
  ``decision_function(X) > threshold_``;
- after ``fit``: ``decision_scores_`` and ``labels_`` of the training data, ``threshold_``,
  ``n_fits_`` (1 plus the trimmed refits made, see ``trim_rounds``) and ``fits_`` (the
  fits whose scores are averaged, see ``ensemble``: ``vaekit.anomaly.fits.Fit``, each a VAE
  with its training codes for ``knn`` and each part's training scores for sums such as
  ``elbo+knn``); ``model_``, ``codes_`` and ``references_`` are the last fit's; ``collapsed_``: True (and
  a warning) when every scoring fit left its latent unused or the training scores barely vary.

scikit-learn's own outlier detectors predict -1 / +1 instead; the two checks of
``check_estimator`` that test that convention are the documented exceptions (see the tests).

Inputs are ``(N, D)`` rows (standardized with ``scaler_``, fitted on the training rows,
Student-t likelihood) or images ``(N, H, W)`` / ``(N, C, H, W)`` in [0, 1] (Bernoulli).
``vaekit.anomaly.inputs`` reads image folders, arrays and CSV / Parquet tables into these.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from vaekit.anomaly import presets, saved, settings
from vaekit.anomaly.arrays import as_examples, check_shape, column_names, match_columns, reject_sparse
from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.fits import Fit, chosen_fits, collapse_message, references_of
from vaekit.anomaly.presets import DETECTOR_MODELS, SCALINGS, capped_epochs
from vaekit.anomaly.scores import ResidualModel, draws_samples, latent_codes, residuals, score_parts
from vaekit.anomaly.thresholds import Thresholds
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.splits import holdout
from vaekit.data.standardize import Standardizer
from vaekit.models import build
from vaekit.threads import used as threads_used
from vaekit.training.trainer import TrainConfig, Trainer, resolve_device

#: ``DETECTOR_MODELS`` and ``SCALINGS`` (``vaekit.anomaly.presets``) are read from here too.
__all__ = ["DETECTOR_MODELS", "SCALINGS", "VAEAnomalyDetector"]


#: The fewest rows ``fit`` accepts: one example leaves nothing to learn a spread from.
MIN_EXAMPLES = 2


class VAEAnomalyDetector(Thresholds, OutlierMixin, BaseEstimator):
    """Anomaly detection with a VAE trained on normal data.

    Parameters
    ----------
    preset : {"auto", "images", "tables"}
        Every setting of a fit at once (``vaekit.anomaly.presets``: the network, latent,
        likelihood, scaling, score, trimmed refits and training): ``images`` for one-class
        image sets, ``tables`` for rows of features with anomalies left in them; ``auto``
        picks ``images`` for ``(N, H, W)`` / ``(N, C, H, W)`` input and ``tables`` for rows.
        ``settings_`` holds the settings in use.
    latent_dim, epochs : int or "auto"
        Latent dimensions and training epochs; ``auto``: the preset's. The preset's ``max_updates``
        (tables: 10,000) trains fewer epochs where the rows are so many that they would pass it.
    anomaly_score : {"auto", "recon", "elbo", "nll", "knn", "resid"} or a sum such as "recon+knn"
        ``recon``: squared reconstruction error ||x - x̂||² (decoder mean at the posterior
        mean); ``elbo``: negative ELBO; ``nll``: importance-sampled negative log-likelihood;
        ``knn``: mean distance from the posterior mean to the ``n_neighbors`` nearest
        posterior means of the training data; ``resid``: Mahalanobis distance of the
        reconstruction residual under the training residuals' covariance. A sum is Fisher's
        -2 Σ log p of its parts, each p the part's tail probability among its training
        scores (``vaekit.anomaly.scores``).
        ``auto``: the preset's (``score_``).
    contamination : float in (0, 0.5]
        Expected share of anomalies in the training data: the threshold flags that share
        of the training scores. Used unless ``target_fpr`` or ``threshold`` is given.
    target_fpr : float in (0, 1) or None
        Threshold at this false-positive rate on a held-out slice (``holdout_fraction``)
        of the training data, which must then be normal.
    threshold : float or None
        A threshold on the anomaly score set by hand (overrides the two above).
    holdout_fraction : float
        Share of the training data held out for ``target_fpr``.
    model : dict, ``presets.Preset`` or None
        For experts: preset fields to replace (``{"hidden": (64, 32), "trim": 0}``), or a whole
        ``Preset``; ``vaekit.anomaly.presets.FIELDS`` lists them. ``latent_dim``, ``epochs`` and
        ``anomaly_score`` other than ``auto`` win over it.
    random_state : int
        Seeds the weights, the training order and the score's samples: the same seed,
        the same detector on CPU.
    device : str
        ``auto`` (CUDA when torch sees a GPU, else the CPU, as for ``vaekit train``), ``cpu``
        or ``cuda``. On a machine without a GPU ``auto`` is the CPU, with the same results.
    threads : int or str
        torch's CPU threads while fitting and scoring: ``auto`` (``vaekit.threads``: the
        ``VAEKIT_THREADS`` variable if set, else one thread unless the work is large and
        cores are free) or a count. torch's own setting is given back afterwards.
    verbose : bool
        Show the training progress bar.
    """

    def __init__(self, *, preset: str = "auto", latent_dim: int | str = "auto", epochs: int | str = "auto",
                 anomaly_score: str = "auto", contamination: float = 0.1, target_fpr: float | None = None,
                 threshold: float | None = None, holdout_fraction: float = 0.1, model: Any = None,
                 random_state: int = 0, device: str = "auto", threads: int | str = "auto",
                 verbose: bool = False) -> None:
        self.preset = preset
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.anomaly_score = anomaly_score
        self.contamination = contamination
        self.target_fpr = target_fpr
        self.threshold = threshold
        self.holdout_fraction = holdout_fraction
        self.model = model
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, feature_names: list[str] | None = None) -> VAEAnomalyDetector:
        """Train the VAE on ``X`` (normal data; ``y`` is ignored) and set the threshold.

        ``feature_names`` names the columns of an array ``X`` (a DataFrame brings its own);
        data scored later must then have these columns (reordered by name if needed).
        """
        reject_sparse(X)
        columns = column_names(X) or (list(feature_names) if feature_names is not None else None)
        x = as_examples(X)
        self._check_params()
        if len(x) < MIN_EXAMPLES:
            raise AnomalyInputError(f"X: n_samples = {len(x)}; a detector needs at least {MIN_EXAMPLES} normal "
                                    "examples to learn from and to set its threshold")
        with threads_used(self.threads):
            self._fit_examples(torch.from_numpy(x), columns)
        return self

    def _check_params(self) -> None:
        """Every parameter checked before any data is read (``vaekit.anomaly.settings.check_params``)."""
        settings.check_params(self)

    def _fit_examples(self, x: torch.Tensor, columns: list[str] | None) -> None:
        """Fit on raw examples ``(N, D)`` or ``(N, C, H, W)`` (float32), ``columns`` naming D."""
        self.input_shape_ = tuple(int(s) for s in x.shape[1:])
        self.n_features_in_ = int(np.prod(self.input_shape_))
        if columns is not None:
            self.feature_names_in_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        seed = int(self.random_state or 0)
        fraction = float(self.holdout_fraction) if self.threshold is None and self.target_fpr is not None else 0.0
        train_idx, holdout_idx = holdout(len(x), fraction, seed)
        if fraction and len(holdout_idx) == 0:
            raise AnomalyInputError(f"target_fpr: {len(x)} example(s) are too few to hold out "
                                    f"{self.holdout_fraction:g} of them and train on the rest")
        s = self.settings_
        self.train_config_ = TrainConfig(epochs=capped_epochs(s, len(train_idx)), batch_size=s.batch_size, lr=s.lr,
                                         beta=s.beta, kl_anneal=s.kl_anneal, seed=seed, device=self.device,
                                         threads=self.threads, likelihood_lr_factor=s.likelihood_lr_factor)
        # the scaler once, on all training rows: the refits below change which rows the VAE learns from
        self.scaler_ = (Standardizer.fit(x[train_idx], columns, robust=s.standardize == "robust")
                        if s.standardize != "none" else None)
        xm = self.scaler_.transform(x) if self.scaler_ is not None else x
        rounds = s.trim_rounds if s.trim > 0 else 0
        rows = train_idx
        if rounds:
            self._announce(f"fit 1 of {rounds + 1}: all {len(rows)} training examples")
        spec = settings.model_spec(self, xm)
        fits, scores = [], []  # each fit, and its scores of all training rows
        for round_ in range(rounds + 1):
            if round_:
                # fit again (same scaler) without the training rows that the latest fit finds most anomalous
                latest = scores[-1][train_idx]
                kept = train_idx[latest <= np.quantile(latest, 1.0 - s.trim)]
                if np.array_equal(kept, rows):  # a fixed point: the same rows and seed would give the same model
                    self._announce("the last fit kept the rows it was trained on: no more refits")
                    break
                if len(kept) < MIN_EXAMPLES:  # too few rows left to learn from (and for knn to leave one out)
                    break
                rows = kept
                self._announce(f"fit {round_ + 1} of {rounds + 1}: {len(rows)} of {len(train_idx)} training "
                               f"examples, without the {s.trim:.0%} that the last fit scored highest")
            fit, training_scores = self._fit_on(xm, rows, spec)
            fits.append(fit)
            scores.append(training_scores)
        self.n_fits_ = len(fits)
        chosen = chosen_fits(len(fits), s.ensemble)
        self.fits_ = [fits[i] for i in chosen]
        self.decision_scores_ = np.mean([scores[i] for i in chosen], axis=0)
        self.holdout_scores_ = self.decision_scores_[holdout_idx] if len(holdout_idx) else np.zeros(0)
        self._set_threshold()
        # collapsed_: the fits left their latent unused or the scores barely vary; said once, with the remedy
        message = collapse_message(self.fits_, xm[train_idx], self.decision_scores_)
        self.collapsed_ = message is not None
        if message is not None:
            warnings.warn(f"VAEAnomalyDetector: {message}", UserWarning, stacklevel=3)

    def _announce(self, text: str) -> None:
        """With ``verbose``, a line on stderr before each fit, so the successive progress bars are told apart."""
        if self.verbose:
            Console(stderr=True, soft_wrap=True, highlight=False).print(text)

    def _fit_on(self, xm: torch.Tensor, rows: np.ndarray, spec: tuple[dict[str, Any], DataInfo]
                ) -> tuple[Fit, np.ndarray]:
        """The VAE of ``spec`` (``settings.model_spec``) fitted on ``xm[rows]`` (scaled), and its scores of
        every row."""
        config, info = spec
        device = resolve_device(self.device)
        gpu = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpu):  # the user's global RNG (CPU, and the GPU used) is left as it was
            torch.manual_seed(self.train_config_.seed)
            model = build(config)
            Trainer(model, self.train_config_, progress=bool(self.verbose)).fit(Dataset(train=xm[rows], info=info))
        model.eval()
        codes = latent_codes(model, xm, device=device)
        is_training = np.zeros(len(xm), dtype=bool)
        is_training[rows] = True
        s = self.settings_
        # the residuals' d x d covariance only where the score reads it: an image's d is large
        resid = residuals(model, xm, device=device) if "resid" in score_parts(s.score) else None
        fit = Fit(model, codes[rows], {}, None if resid is None else ResidualModel.fit(resid[rows]))
        parts = self._parts(fit, xm, s, codes=codes, is_training=is_training, resid=resid)
        fit.references = references_of(parts, rows)
        return fit, fit.combine(parts, s.score)

    # -- scoring ------------------------------------------------------------------------
    def transform_input(self, X: Any) -> torch.Tensor:
        """``X`` checked against the training data and brought into the model's space (scaled)."""
        check_is_fitted(self)
        reject_sparse(X)
        X = match_columns(X, list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None)
        x = as_examples(X)
        check_shape(x, self.input_shape_)
        t = torch.from_numpy(x)
        return self.scaler_.transform(t) if self.scaler_ is not None else t

    @property
    def settings_(self) -> presets.Preset:
        """The settings in use: the preset for the fitted data's kind with ``model``, ``latent_dim``,
        ``epochs`` and ``anomaly_score`` applied (read from the parameters, so ``set_params`` of a
        scoring setting such as ``anomaly_score`` or ``model={"k": 8}`` takes effect)."""
        check_is_fitted(self, "input_shape_")
        return settings.settings_for(self, "images" if len(self.input_shape_) == 3 else "tables")

    score_ = property(lambda self: self.settings_.score, doc="The score in use.")

    # the last fit's VAE, training codes and score statistics (``fits_`` has every scoring fit)
    model_ = property(lambda self: self.fits_[-1].model, doc="The last fit's VAE.")
    codes_ = property(lambda self: self.fits_[-1].codes, doc="The last fit's posterior means of its training rows.")
    references_ = property(lambda self: self.fits_[-1].references,
                           doc="The last fit's sorted training scores of each score part.")

    def _parts(self, fit: Fit, xm: torch.Tensor, s: presets.Preset, **known: Any) -> dict[str, np.ndarray]:
        """Each part of the score of the settings ``s`` (``settings_``, resolved once per call by the caller:
        each read of ``settings_`` re-resolves the preset), of ``xm`` under ``fit`` (``known``: codes /
        resid / is_training)."""
        return fit.parts(xm, score_parts(s.score), k=s.k, n_neighbors=s.n_neighbors,
                         seed=int(self.random_state or 0), device=resolve_device(self.device), **known)

    def _scores(self, xm: torch.Tensor) -> np.ndarray:
        """The mean over ``fits_`` of each fit's score of ``xm``."""
        s = self.settings_
        with threads_used(self.threads):
            return np.mean([fit.combine(self._parts(fit, xm, s), s.score) for fit in self.fits_], axis=0)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores, higher = more anomalous (PyOD's convention); compare with ``threshold_``."""
        return self._scores(self.transform_input(X))

    def score_samples(self, X: Any) -> np.ndarray:
        """``-decision_function(X)``: higher = more normal (scikit-learn's convention)."""
        return -self.decision_function(X)

    # -- persistence --------------------------------------------------------------------
    def save(self, path: str | Path, *, data: dict[str, Any] | None = None) -> Path:
        """Write the fitted detector into directory ``path`` (safetensors + JSON: ``vaekit.anomaly.saved``);
        ``data`` is an optional run "data" section. ``load_detector`` reads it back."""
        check_is_fitted(self)
        return saved.write(path, saved.SavedDetector.of(self), data=data)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # elbo / nll (and auto, which has elbo for tables) draw samples: seeded, but batch-dependent
        try:
            scores = [settings.settings_for(self, kind).score for kind in presets.PRESETS]
        except AnomalyInputError:  # parameters that fit will refuse
            scores = ["elbo"]
        tags.non_deterministic = any(draws_samples(score) for score in scores)
        return tags

