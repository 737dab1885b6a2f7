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
  with its training codes for ``knn`` and score statistics for sums such as ``recon+knn``);
  ``model_``, ``codes_`` and ``score_stats_`` are the last fit's.

scikit-learn's own outlier detectors predict -1 / +1 instead; the two checks of
``check_estimator`` that test that convention are the documented exceptions (see the tests).

Inputs are ``(N, D)`` rows (standardized with ``scaler_``, fitted on the training rows,
Student-t likelihood) or images ``(N, H, W)`` / ``(N, C, H, W)`` in [0, 1] (Bernoulli).
``vaekit.anomaly.inputs`` reads image folders, arrays and CSV / Parquet tables into these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from rich.console import Console
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from vaekit.anomaly import thresholds
from vaekit.anomaly.arrays import as_examples, check_shape, column_names, match_columns
from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.fits import ENSEMBLES, Fit, chosen_fits, stats_of
from vaekit.anomaly.scores import draws_samples, latent_codes, score_parts
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.splits import holdout
from vaekit.data.standardize import Standardizer
from vaekit.models import build
from vaekit.models.observation import LIKELIHOODS
from vaekit.training.trainer import TrainConfig, Trainer, resolve_device

#: The families a detector can train: their likelihood is the ELBO's, with no second stage.
DETECTOR_MODELS = ("vae", "hvae")
#: Hidden layers when ``hidden`` is None: images get the MNIST-sized MLP of ``vaekit train``;
#: rows of a few dozen features a small network (wider ones only memorized the anomalies
#: that ADBench leaves in the training part); with the 2-dim latent of ``AUTO_LATENT``, three
#: narrowing layers scored 0.811 against 0.806 for (64, 32) on the ADBench validation splits.
IMAGE_HIDDEN = (512, 256)
TABLE_HIDDEN = (128, 64, 32)
#: What ``anomaly_score="auto"`` uses, chosen on validation splits, never test data (README):
#: on one-class MNIST / Fashion-MNIST the reconstruction error beat the likelihood scores by
#: 4-5 AUROC points, and recon+knn beat recon by 0.8 (MNIST) and 1.8 (Fashion-MNIST); on the
#: ADBench tables the negative ELBO beat recon by 11 (and tied the NLL).
AUTO_SCORE = {"image": "recon+knn", "rows": "elbo"}
#: What ``trim="auto"`` uses. Rows: ADBench leaves its anomalies in the training data; on
#: its validation splits a second fit without the top 20% beat one fit by 1.3 AUROC points on
#: average (0.801 vs 0.788; 10% gave 0.794, 30% 0.796) with a fixed std; with the learned std
#: and beta 3 of ``AUTO_BETA``, 30% beat 20% (0.832 vs 0.828 over seeds 100-103; 10% scored
#: lower on 6 of the 7 sets measured, seeds 100 and 101), all with one refit; with the 3
#: of ``AUTO_TRIM_ROUNDS`` 20% tied 30% (0.823, seeds 100-101). Images: one-class training data is
#: normal, and trimming would only drop its hard cases (not measured, so not done).
AUTO_TRIM = {"image": 0.0, "rows": 0.3}
#: What ``trim_rounds="auto"`` uses. Rows: each refit leaves out the rows that the latest fit
#: scores highest, so anomalies that the first fit had learned to reconstruct (and so kept)
#: can go in a later round, as in the concentration steps of FAST-MCD. On the ADBench
#: validation splits (9 sets, shuttle aside) the mean AUROC was 0.812 / 0.815 with 1 refit
#: (seeds 100-101 / 102-103), 0.822 / 0.826 with 2, 0.823 / 0.828 with 3, and 0.816 with 5
#: (seeds 100-101); 3 lifted annthyroid from 0.80 to 0.93 and pendigits from 0.954 to 0.968,
#: and cost cardio (0.933 to 0.907) and mammography (0.861 to 0.826). Each refit costs a
#: whole fit: the ADBench test run took 1.8 times as long as with 1 (fitting and scoring).
#: Images: trim is 0, so there is no refit to repeat.
AUTO_TRIM_ROUNDS = {"image": 1, "rows": 3}
#: What ``epochs="auto"`` uses, on the same validation splits. Images: 200 epochs, the best
#: measured (mean one-class AUROC with 5 neighbours, MNIST / Fashion-MNIST: 0.9823 / 0.9340;
#: 100 epochs 0.9819 / 0.9328, 50 epochs 0.9784 / 0.9303, and 20 epochs 0.971 on MNIST), at
#: about 2.5 minutes per MNIST class (6,000 images) on one core. Rows: 100 scored below 50
#: (mean 0.791 vs 0.801 over the ADBench sets, worse on 6 of 10), likely by fitting the
#: anomalies left in the rows; with the 3 refits of ``AUTO_TRIM_ROUNDS`` too (seeds 100-101,
#: 9 sets: 25 epochs 0.821, 50 0.823, 100 0.809).
AUTO_EPOCHS = {"image": 200, "rows": 50}
#: What ``latent_dim="auto"`` uses. Rows: on the ADBench validation splits (trim 0.2, hidden
#: (128, 64, 32)) a 2-dim latent scored a mean AUROC of 0.811, against 0.786 with 4 and 0.801
#: with 16 (and (64, 32)), better than 16 on 6 sets and worse on 3 (cardio 0.841 vs 0.929): a
#: tight bottleneck cannot also encode the anomalies left in the rows. Measured with a fixed
#: std and beta 1; with the learned std (beta 4) 4 dims were no better on the first 5 sets
#: (0.846 vs 0.852), the only re-check. Images: 16; 32 scored 0.9325 against 0.9337 on
#: Fashion-MNIST (100 epochs).
AUTO_LATENT = {"image": 16, "rows": 2}
#: What ``learn_obs_std="auto"`` and ``beta="auto"`` use. Rows: a Gaussian decoder with a
#: learned std per feature (a calibrated decoder: each feature's error is weighed by how well
#: the normal rows reconstruct it) and a KL weight of 3. On the ADBench validation splits
#: (seeds 100-103, trim 0.2) the pair scored a mean AUROC of 0.828, against 0.813 for a fixed
#: std of 1 and beta 1, and 0.826 with beta 4. Where the latent does not pay for its KL the
#: decoder falls back to the mean and the std to about 1 (cardio), and the score becomes the
#: distance to the mean in z-scores. With beta 1 the learned std (about 0.5) acts as a KL 4
#: times weaker: the bottleneck then encodes the anomalies left in the rows too (seeds 100 and
#: 101: 0.797; pendigits 0.724 against 0.940). Images: Bernoulli, which has no std; beta 1.
AUTO_LEARN_OBS_STD = {"image": False, "rows": True}
AUTO_BETA = {"image": 1.0, "rows": 3.0}
#: The family ``likelihood="auto"`` gives data that is not Bernoulli (not in [0, 1], or
#: standardized), and its degrees of freedom (``obs_df``: fixed, or where learning starts;
#: ``learn_obs_df``: learned per feature). Rows: a Student-t whose df each feature learns,
#: from 10. ADBench leaves anomalies in the training rows; a Gaussian's squared error lets
#: them set the learned scale, and lets one extreme feature decide a row's score, where the
#: Student-t charges log(distance) on features whose errors have heavy tails. On the
#: validation splits (seeds 100-103, the 9 sets other than shuttle, the other defaults as
#: they are) it lifted SpamBase (40% anomalies) from 0.548 to 0.677 and optdigits from 0.745
#: to 0.787, and cost annthyroid 0.932 -> 0.911 (mean 0.847 against 0.8255): at or above the best peer on 7 sets against
#: the Gaussian's 5. A fixed df of 10 won SpamBase too (0.655) but fell on optdigits (0.703:
#: 0.62 on seeds 102-103); 3 (seeds 100-101) lost optdigits as well (0.725). Images: Gaussian
#: (not measured with the Student-t). A per-example std (``heteroscedastic``) stays Gaussian,
#: as it was measured.
AUTO_REAL_LIKELIHOOD = {"image": "gaussian", "rows": "student-t"}
AUTO_OBS_DF = {"image": 3.0, "rows": 10.0}
AUTO_LEARN_OBS_DF = {"image": False, "rows": True}
#: What ``standardize="auto"`` uses. Rows: robust scaling (the median, and the smaller of IQR /
#: 1.349 and the std), fitted once on all training rows. Before, a mean / std scaler was
#: refitted on each trimmed refit's rows, so the trim set the scale; on shuttle, whose normal
#: rows are nearly constant in some features, the kept rows' std there fell near 0 and blew
#: those features up. On the ADBench validation splits (9 sets, seeds 100-103) the mean AUROC
#: went from 0.847 to 0.863 (optdigits 0.787 to 0.876, annthyroid 0.911 to 0.939, SpamBase
#: 0.677 to 0.694; Waveform 0.800 to 0.796, the only set lower by more than 0.001), shuttle
#: (seeds 100, 101) from 0.9943 / 0.9959 to 0.9970 / 0.9969. Measured and not kept: the first fit's mean / std kept
#: through the refits (annthyroid 0.691: its anomalies inflate the std of the features they
#: stand out in); the IQR alone (pendigits 0.885: its evenly spread features' IQR overstates
#: their spread). Images: pixels are left as they are.
AUTO_STANDARDIZE = {"image": "none", "rows": "robust"}
#: The ``standardize`` values besides auto (True / False: standard / none).
SCALINGS = ("robust", "standard", "none")


def _scaling_name(standardize: str | bool) -> str:
    """``standardize`` as one of ``SCALINGS``: True is standard, False none."""
    return {True: "standard", False: "none"}.get(standardize, standardize)  # type: ignore[call-overload]


class _Resolved:
    """A learned attribute ``<param>_``: the parameter, with ``auto`` resolved by the table for the
    fitted data's kind (images / rows) and cast by ``kind`` (a type, or a function such as
    ``_scaling_name``); read-only, like a property."""

    def __init__(self, param: str, auto: dict[str, Any], kind: Callable[[Any], Any], doc: str) -> None:
        self.param, self.auto, self.kind = param, auto, kind
        self.__doc__ = f"{doc} ``{param}``, ``auto`` resolved for the fitted data."

    def __get__(self, detector: Any, owner: type | None = None) -> Any:
        if detector is None:
            return self
        return self.kind(detector._resolved(getattr(detector, self.param), self.auto))

    def __set__(self, detector: Any, value: Any) -> None:
        raise AttributeError(f"{self.param}_ is derived from {self.param}: set that with set_params")


class VAEAnomalyDetector(OutlierMixin, BaseEstimator):
    """Anomaly detection with a VAE trained on normal data.

    Parameters
    ----------
    anomaly_score : {"auto", "recon", "elbo", "nll", "knn"} or a sum such as "recon+knn"
        ``recon``: squared reconstruction error ||x - x̂||² (decoder mean at the posterior
        mean); ``elbo``: negative ELBO; ``nll``: importance-sampled negative log-likelihood;
        ``knn``: mean distance from the posterior mean to the ``n_neighbors`` nearest
        posterior means of the training data. A sum adds its parts, each standardized by
        its mean and std on the training data. ``auto`` (default): ``recon+knn`` for images
        and ``elbo`` for rows of features, the winners on validation splits (``score_``
        says which is in use).
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
    model : "vae" or "hvae"
        The family: a VAE, or a hierarchical VAE (``vaekit.HVAEConfig``) whose ``groups``
        (latent dims per group, top first; None: ``(latent_dim_, latent_dim_)``) replace
        ``latent_dim``, ``arch`` and ``channels``. (A VQ-VAE's likelihood needs its code
        prior fitted, which the detector does not do.)
    latent_dim : int or "auto"
        Latent dimensions; ``auto``: 16 for images, 2 for rows of features, the better on
        validation splits (``latent_dim_``).
    groups, arch, hidden, channels, likelihood, obs_df, learn_obs_df, obs_std, learn_obs_std, beta, kl_anneal
        The VAE and its objective (``vaekit.VAEConfig``, ``vaekit.TrainConfig``);
        ``hidden=None`` picks (512, 256) for images and (128, 64, 32) for rows;
        ``likelihood="auto"``: Bernoulli for data in [0, 1] that is not standardized, else
        a Student-t for rows and a Gaussian for images, or with ``heteroscedastic``
        (``AUTO_REAL_LIKELIHOOD``); ``obs_df``: the Student-t's degrees of freedom (``auto``:
        10, ``obs_df_``), learned per feature from there if ``learn_obs_df`` (``auto``: yes
        for rows, ``learn_obs_df_``);
        ``obs_std`` / ``learn_obs_std``: the Gaussian's std (the Student-t's scale), fixed or learned per
        feature from ``obs_std`` on; ``learn_obs_std="auto"``: learned for rows of features,
        fixed for images (``learn_obs_std_``); ``beta="auto"``: 3 for rows of features,
        1 for images (``beta_``), the better on validation splits.
    heteroscedastic, min_obs_std
        The decoder outputs a std per example and feature too, never below ``min_obs_std``
        (An & Cho's reconstruction probability); ``likelihood="auto"`` is then Gaussian,
        as measured (a Student-t works too, when asked for). Off by
        default: on the ADBench validation splits it won annthyroid by far (0.95 against
        0.80) but lost on most other sets (README).
    epochs : int or "auto"
        Training epochs; ``auto``: 200 for images, 50 for rows of features, the better on
        validation splits (``epochs_``).
    batch_size, lr
        Training (Adam, cosine learning-rate decay).
    k : int
        Posterior samples per example for ``elbo`` and ``nll``.
    n_neighbors : int
        Training codes averaged over by ``knn``. On the validation splits, with 100-epoch
        image fits, recon+knn scored 0.9818 (MNIST) and 0.9337 (Fashion-MNIST) with 10,
        against 0.9818 / 0.9328 with 5, 0.9812 / 0.9284 with 1 and 0.9816 / 0.9341 with 20;
        on the ADBench tables (one fit, no trim, 16-dim latent) ``knn`` alone scored 0.716 with 10,
        0.695 with 5.
    trim : float in [0, 0.5) or "auto"
        Robust fitting: after a first fit, leave out this share of the training data (the
        highest scores, likely anomalies mixed in) and fit again (``trim_rounds`` times); 0
        fits once. ``auto``: 0.3 for rows of features, 0 for images (``trim_``).
    trim_rounds : int or "auto"
        How many times ``trim`` refits, each time without the share of the training data
        that the latest fit scores highest, so anomalies the first fit had absorbed (and so
        kept) can still go; it stops early when a refit would see the very rows of the last
        fit. ``auto``: 3 for rows of features, 1 for images (``trim_rounds_``).
    ensemble : {"refits", "last", "all"}
        Which fits score new data, their scores averaged (``fits_``): ``refits`` (default)
        every trimmed refit, ``last`` the last fit only, ``all`` the first fit (on all the
        training data) too; with no refit (``trim`` 0, as for images) each is the one fit.
        Each refit models the normal data from a different share of it, and their average
        is steadier than any one of them. On the ADBench validation splits (seeds 100-103)
        ``refits`` lifted shuttle from 0.9969 to 0.9985 (seeds 100-101; IsolationForest
        0.9974) and mammography from 0.870 to 0.874, and cost the other 8 sets 0.003 or less
        each (SpamBase 0.694 to 0.688, annthyroid 0.939 to 0.933): mean over the 9 sets
        other than shuttle 0.8615 against 0.8630 for ``last``; ``all`` 0.8578.
    standardize : {"auto", "robust", "standard", "none"}, True or False
        Scale each feature, fitted once on the training data: ``robust`` by its median and
        the smaller of IQR / 1.349 and its std, which the anomalies mixed into the training
        data do not inflate; ``standard`` (or True) by its mean and std; ``none`` (or False)
        leaves the data as it is. ``auto``: robust for rows, none for images (``standardize_``).
    random_state : int
        Seeds the weights, the training order and the score's samples: the same seed,
        the same detector on CPU.
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    verbose : bool
        Show the training progress bar.
    """

    def __init__(self, *, anomaly_score: str = "auto", contamination: float = 0.1, target_fpr: float | None = None,
                 threshold: float | None = None, holdout_fraction: float = 0.1, model: str = "vae",
                 latent_dim: int | str = "auto", groups: tuple[int, ...] | list[int] | None = None, arch: str = "mlp",
                 hidden: tuple[int, ...] | list[int] | None = None,
                 channels: tuple[int, ...] | list[int] = (32, 64), likelihood: str = "auto",
                 obs_std: float = 1.0, learn_obs_std: bool | str = "auto", heteroscedastic: bool = False,
                 min_obs_std: float = 0.05, obs_df: float | str = "auto", learn_obs_df: bool | str = "auto",
                 beta: float | str = "auto",
                 kl_anneal: str = "none", epochs: int | str = "auto", batch_size: int = 64, lr: float = 1e-3,
                 k: int = 100, n_neighbors: int = 10, trim: float | str = "auto", trim_rounds: int | str = "auto",
                 standardize: str | bool = "auto", ensemble: str = "refits", random_state: int = 0, device: str = "cpu",
                 verbose: bool = False) -> None:
        self.anomaly_score = anomaly_score
        self.contamination = contamination
        self.target_fpr = target_fpr
        self.threshold = threshold
        self.holdout_fraction = holdout_fraction
        self.latent_dim = latent_dim
        self.model = model
        self.groups = groups
        self.arch = arch
        self.hidden = hidden
        self.channels = channels
        self.likelihood = likelihood
        self.obs_std = obs_std
        self.learn_obs_std = learn_obs_std
        self.heteroscedastic = heteroscedastic
        self.min_obs_std = min_obs_std
        self.obs_df = obs_df
        self.learn_obs_df = learn_obs_df
        self.beta = beta
        self.kl_anneal = kl_anneal
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.k = k
        self.n_neighbors = n_neighbors
        self.trim = trim
        self.trim_rounds = trim_rounds
        self.standardize = standardize
        self.ensemble = ensemble
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, feature_names: list[str] | None = None) -> VAEAnomalyDetector:
        """Train the VAE on ``X`` (normal data; ``y`` is ignored) and set the threshold.

        ``feature_names`` names the columns of an array ``X`` (a DataFrame brings its own);
        data scored later must then have these columns (reordered by name if needed).
        """
        _reject_sparse(X)
        columns = column_names(X) or (list(feature_names) if feature_names is not None else None)
        x = as_examples(X)
        self._check_params()
        self._fit_examples(torch.from_numpy(x), columns)
        return self

    def _check_params(self) -> None:
        if self.anomaly_score != "auto":
            try:
                score_parts(self.anomaly_score)
            except ValueError as exc:
                message = str(exc).replace("expected ", "expected auto, ", 1)
                raise AnomalyInputError(f"anomaly_score: {message}") from None
        thresholds.check_rate("contamination", self.contamination, 0.5)
        if self.trim != "auto" and not (isinstance(self.trim, (int, float)) and 0 <= self.trim < 0.5):
            raise AnomalyInputError(f"trim: expected 'auto' or a number in [0, 0.5), got {self.trim!r}")
        if self.target_fpr is not None:
            thresholds.check_rate("target_fpr", self.target_fpr, 1.0)
            thresholds.check_rate("holdout_fraction", self.holdout_fraction, 0.9)
        if self.threshold is not None and not np.isfinite(_float("threshold", self.threshold)):
            raise AnomalyInputError(f"threshold: expected a finite number, got {self.threshold!r}")
        if self.model not in DETECTOR_MODELS:
            raise AnomalyInputError(f"model: expected {' or '.join(DETECTOR_MODELS)}, got {self.model!r}")
        if self.likelihood not in ("auto", *LIKELIHOODS):
            raise AnomalyInputError(f"likelihood: expected auto, {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.obs_df != "auto" and not _float("obs_df", self.obs_df) > 0:
            raise AnomalyInputError(f"obs_df: expected 'auto' or a positive number, got {self.obs_df!r}")
        if self.ensemble not in ENSEMBLES:
            raise AnomalyInputError(f"ensemble: expected {', '.join(ENSEMBLES)}, got {self.ensemble!r}")
        if self.standardize not in ("auto", *SCALINGS, True, False):
            raise AnomalyInputError(f"standardize: expected auto, {', '.join(SCALINGS)}, True or False, "
                                    f"got {self.standardize!r}")
        if self.learn_obs_df not in ("auto", True, False):
            raise AnomalyInputError(f"learn_obs_df: expected 'auto', True or False, got {self.learn_obs_df!r}")
        if self.learn_obs_std not in ("auto", True, False):
            raise AnomalyInputError(f"learn_obs_std: expected 'auto', True or False, got {self.learn_obs_std!r}")
        if self.heteroscedastic not in (True, False):
            raise AnomalyInputError(f"heteroscedastic: expected True or False, got {self.heteroscedastic!r}")
        if self.heteroscedastic and self.likelihood == "bernoulli":
            raise AnomalyInputError("heteroscedastic: needs a Gaussian or Student-t likelihood (a std per "
                                    "example), got likelihood='bernoulli'")
        if self.heteroscedastic and not 0 < _float("min_obs_std", self.min_obs_std) < _float("obs_std", self.obs_std):
            raise AnomalyInputError(f"min_obs_std: expected a number in (0, obs_std={self.obs_std!r}), "
                                    f"got {self.min_obs_std!r}")
        if self.beta != "auto" and not (isinstance(self.beta, (int, float, np.number))
                                        and not isinstance(self.beta, bool) and self.beta >= 0):
            raise AnomalyInputError(f"beta: expected 'auto' or a number >= 0, got {self.beta!r}")
        for name in ("epochs", "latent_dim", "trim_rounds"):
            if getattr(self, name) != "auto":
                _check_positive_int(name, getattr(self, name), "'auto' or a positive integer")
        for name in ("batch_size", "k", "n_neighbors"):
            _check_positive_int(name, getattr(self, name))

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
        self.train_config_ = TrainConfig(epochs=self.epochs_, batch_size=int(self.batch_size), lr=float(self.lr),
                                         beta=self.beta_, kl_anneal=self.kl_anneal, seed=seed,
                                         device=self.device)
        # the scaler once, on all training rows: the refits below change which rows the VAE learns from
        scaling = self.standardize_
        self.scaler_ = (Standardizer.fit(x[train_idx], columns, robust=scaling == "robust")
                        if scaling != "none" else None)
        xm = self.scaler_.transform(x) if self.scaler_ is not None else x
        rounds = self.trim_rounds_ if self.trim_ > 0 else 0
        rows = train_idx
        if rounds:
            self._announce(f"fit 1 of {rounds + 1}: all {len(rows)} training examples")
        spec = self._model_spec(xm)
        fits, scores = [], []  # each fit, and its scores of all training rows
        for round_ in range(rounds + 1):
            if round_:
                # fit again (same scaler) without the training rows that the latest fit finds most anomalous
                latest = scores[-1][train_idx]
                kept = train_idx[latest <= np.quantile(latest, 1.0 - self.trim_)]
                if np.array_equal(kept, rows):  # a fixed point: the same rows and seed would give the same model
                    self._announce("the last fit kept the rows it was trained on: no more refits")
                    break
                rows = kept
                self._announce(f"fit {round_ + 1} of {rounds + 1}: {len(rows)} of {len(train_idx)} training "
                               f"examples, without the {self.trim_:.0%} that the last fit scored highest")
            fit, training_scores = self._fit_on(xm, rows, spec)
            fits.append(fit)
            scores.append(training_scores)
        self.n_fits_ = len(fits)
        chosen = chosen_fits(len(fits), self.ensemble)
        self.fits_ = [fits[i] for i in chosen]
        self.decision_scores_ = np.mean([scores[i] for i in chosen], axis=0)
        self.holdout_scores_ = self.decision_scores_[holdout_idx] if len(holdout_idx) else np.zeros(0)
        self._set_threshold()

    def _announce(self, text: str) -> None:
        """With ``verbose``, a line on stderr before each fit, so the successive progress bars are told apart."""
        if self.verbose:
            Console(stderr=True, soft_wrap=True, highlight=False).print(text)

    def _model_spec(self, xm: torch.Tensor) -> tuple[dict[str, Any], DataInfo]:
        """The VAE's build config and the data info it trains with, the same for every fit (a
        saved detector stores one model config for all its fits)."""
        likelihood = self._likelihood(xm, self.scaler_ is not None)
        table = xm.dim() == 2
        hidden = self.hidden if self.hidden is not None else (TABLE_HIDDEN if table else IMAGE_HIDDEN)
        options: dict[str, Any] = {"input_shape": self.input_shape_, "hidden": [int(h) for h in hidden],
                                   "likelihood": likelihood, "obs_std": float(self.obs_std),
                                   "learn_obs_std": self.learn_obs_std_, "heteroscedastic": bool(self.heteroscedastic),
                                   "min_obs_std": float(self.min_obs_std), "obs_df": self.obs_df_,
                                   "learn_obs_df": self.learn_obs_df_ and likelihood == "student-t"}
        if self.model == "hvae":
            groups = self.groups if self.groups is not None else (self.latent_dim_, self.latent_dim_)
            options["groups"] = [int(d) for d in groups]
        else:
            options.update(latent_dim=self.latent_dim_, arch=self.arch, channels=[int(c) for c in self.channels])
        info = DataInfo(name="anomaly-fit", shape=self.input_shape_, kind="table" if table else "image",
                        likelihood=likelihood)
        return {"model": self.model, **options}, info

    def _fit_on(self, xm: torch.Tensor, rows: np.ndarray, spec: tuple[dict[str, Any], DataInfo]
                ) -> tuple[Fit, np.ndarray]:
        """The VAE of ``spec`` (``_model_spec``) fitted on ``xm[rows]`` (scaled), and its scores of every row."""
        config, info = spec
        with torch.random.fork_rng(devices=[]):  # the user's global RNG is left as it was
            torch.manual_seed(self.train_config_.seed)
            model = build(config)
            Trainer(model, self.train_config_, progress=bool(self.verbose)).fit(Dataset(train=xm[rows], info=info))
        model.eval()
        codes = latent_codes(model, xm, device=resolve_device(self.device))
        is_training = np.zeros(len(xm), dtype=bool)
        is_training[rows] = True
        fit = Fit(model, codes[rows], {})
        parts = self._parts(fit, xm, codes=codes, is_training=is_training)
        fit.score_stats = stats_of(parts, rows)
        return fit, fit.combine(parts, self.score_)

    def _likelihood(self, xm: torch.Tensor, standardized: bool) -> str:
        lo, hi = float(xm.min()), float(xm.max())
        if self.likelihood == "auto":
            in_unit_range = not standardized and lo >= 0.0 and hi <= 1.0
            if in_unit_range and not self.heteroscedastic:
                return "bernoulli"
            return "gaussian" if self.heteroscedastic else str(self._resolved("auto", AUTO_REAL_LIKELIHOOD))
        if self.likelihood == "bernoulli" and (lo < 0.0 or hi > 1.0):
            raise AnomalyInputError(f"likelihood bernoulli needs data in [0, 1]; this data spans [{lo:g}, {hi:g}] "
                                    "(use likelihood='gaussian')")
        return self.likelihood

    def _set_threshold(self) -> None:
        if self.threshold is not None:
            self.threshold_, self.threshold_source_ = float(self.threshold), "manual"
        elif self.target_fpr is not None:
            self.threshold_ = thresholds.from_false_positive_rate(self.holdout_scores_, float(self.target_fpr))
            self.threshold_source_ = "target_fpr"
        else:
            self.threshold_ = thresholds.from_contamination(self.decision_scores_, float(self.contamination))
            self.threshold_source_ = "contamination"
        self._update_labels()

    def _update_labels(self) -> None:
        """``labels_``: the training examples the current threshold flags (PyOD's 1 = anomaly)."""
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def set_threshold(self, threshold: float | None = None, *, contamination: float | None = None,
                      target_fpr: float | None = None) -> VAEAnomalyDetector:
        """Move the threshold of a fitted detector without retraining (exactly one argument).

        ``target_fpr`` needs the held-out scores, i.e. a detector fitted with ``target_fpr``.
        """
        check_is_fitted(self)
        given = [v is not None for v in (threshold, contamination, target_fpr)]
        if sum(given) != 1:
            raise AnomalyInputError("set_threshold: give exactly one of threshold, contamination, target_fpr")
        if threshold is not None:
            self.threshold_, self.threshold_source_ = _float("threshold", threshold), "manual"
        elif contamination is not None:
            rate = thresholds.check_rate("contamination", contamination, 0.5)
            self.threshold_ = thresholds.from_contamination(self.decision_scores_, rate)
            self.threshold_source_ = "contamination"
        else:
            rate = thresholds.check_rate("target_fpr", target_fpr, 1.0)
            if len(self.holdout_scores_) == 0:
                raise AnomalyInputError("target_fpr: this detector kept no held-out normal data "
                                        "(fit it with target_fpr=... to hold some out)")
            self.threshold_ = thresholds.from_false_positive_rate(self.holdout_scores_, rate)
            self.threshold_source_ = "target_fpr"
        self._update_labels()
        return self

    # -- scoring ------------------------------------------------------------------------
    def transform_input(self, X: Any) -> torch.Tensor:
        """``X`` checked against the training data and brought into the model's space (scaled)."""
        check_is_fitted(self)
        _reject_sparse(X)
        X = match_columns(X, list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None)
        x = as_examples(X)
        check_shape(x, self.input_shape_)
        t = torch.from_numpy(x)
        return self.scaler_.transform(t) if self.scaler_ is not None else t

    # learned attributes: each parameter with ``auto`` resolved for the fitted data's kind
    score_ = _Resolved("anomaly_score", AUTO_SCORE, str, "The score in use.")
    trim_ = _Resolved("trim", AUTO_TRIM, float, "The share of training data left out of each refit.")
    trim_rounds_ = _Resolved("trim_rounds", AUTO_TRIM_ROUNDS, int,
                             "How many trimmed refits ``fit`` makes when ``trim_`` > 0.")
    epochs_ = _Resolved("epochs", AUTO_EPOCHS, int, "The training epochs.")
    latent_dim_ = _Resolved("latent_dim", AUTO_LATENT, int, "The latent dimensions.")
    learn_obs_std_ = _Resolved("learn_obs_std", AUTO_LEARN_OBS_STD, bool,
                               "Whether a Gaussian or Student-t decoder learns its std (scale).")
    obs_df_ = _Resolved("obs_df", AUTO_OBS_DF, float, "A Student-t decoder's degrees of freedom (or their start).")
    learn_obs_df_ = _Resolved("learn_obs_df", AUTO_LEARN_OBS_DF, bool,
                              "Whether a Student-t decoder learns its degrees of freedom.")
    beta_ = _Resolved("beta", AUTO_BETA, float, "The KL weight.")
    standardize_ = _Resolved("standardize", AUTO_STANDARDIZE, _scaling_name,
                             "How each feature is scaled: robust, standard or none.")

    def _resolved(self, value: Any, auto: dict[str, Any]) -> Any:
        """``value``, or if it is ``auto`` the choice in ``auto`` for the data's kind (image / rows)."""
        check_is_fitted(self, "input_shape_")
        return auto["image" if len(self.input_shape_) == 3 else "rows"] if value == "auto" else value

    # the last fit's VAE, training codes and score statistics (``fits_`` has every scoring fit)
    model_ = property(lambda self: self.fits_[-1].model, doc="The last fit's VAE.")
    codes_ = property(lambda self: self.fits_[-1].codes, doc="The last fit's posterior means of its training rows.")
    score_stats_ = property(lambda self: self.fits_[-1].score_stats,
                            doc="The last fit's training mean and std of each score part.")

    def _parts(self, fit: Fit, xm: torch.Tensor, **known: Any) -> dict[str, np.ndarray]:
        """Each part of the score in use, of ``xm`` under ``fit`` (``known``: codes / is_training)."""
        return fit.parts(xm, score_parts(self.score_), k=int(self.k), n_neighbors=int(self.n_neighbors),
                         seed=int(self.random_state or 0), device=resolve_device(self.device), **known)

    def _scores(self, xm: torch.Tensor) -> np.ndarray:
        """The mean over ``fits_`` of each fit's score of ``xm``."""
        return np.mean([fit.combine(self._parts(fit, xm), self.score_) for fit in self.fits_], axis=0)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores, higher = more anomalous (PyOD's convention); compare with ``threshold_``."""
        return self._scores(self.transform_input(X))

    def score_samples(self, X: Any) -> np.ndarray:
        """``-decision_function(X)``: higher = more normal (scikit-learn's convention)."""
        return -self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        """1 for an anomaly (score above ``threshold_``), 0 for normal, as PyOD's ``labels_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    # -- persistence --------------------------------------------------------------------
    def save(self, path: Any) -> Any:
        """Write the fitted detector to a directory (safetensors + JSON); see ``load_detector``."""
        from vaekit.anomaly.storage import save_detector

        return save_detector(self, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # elbo / nll (and auto, which is elbo for rows) draw samples: seeded, but batch-dependent
        tags.non_deterministic = self.anomaly_score == "auto" or draws_samples(self.anomaly_score)
        return tags


def _reject_sparse(X: Any) -> None:
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise AnomalyInputError("X: sparse input is not supported (convert it with X.toarray())")


def _check_positive_int(name: str, value: Any, expected: str = "a positive integer") -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise AnomalyInputError(f"{name}: expected {expected}, got {value!r}")


def _float(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnomalyInputError(f"{name}: expected a number, got {value!r}") from None
