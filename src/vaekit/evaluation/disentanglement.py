"""Disentanglement metrics: how far single code dimensions capture single generative factors.

Four standard scores, as disentanglement_lib defines them (Locatello et al. 2019), each in
[0, 1] (1 = one code dimension per factor):

- ``mig(codes, factors)``: the mutual information gap (Chen et al. 2018). Each code
  dimension is discretised into ``bins`` equal-width bins; for every factor, the gap between
  the largest and second-largest mutual information with a code dimension, over the factor's
  entropy, averaged over factors. A factor with more values than ``bins`` cannot reach 1 (its
  binned code carries at most ``log bins`` nats): a perfect code of dSprites' 40 orientations
  scores log 20 / log 40 = 0.81 on that factor.
- ``dci(codes, factors)``: disentanglement, completeness and informativeness (Eastwood &
  Williams 2018). Gradient-boosted trees (scikit-learn) predict each factor from the codes;
  their feature importances form a (codes x factors) matrix R. Disentanglement: 1 minus the
  entropy (base = number of factors) of each code's row of R, weighted by the code's share of
  all importance; completeness: 1 minus the entropy (base = number of codes) of each factor's
  column; informativeness: the trees' mean accuracy on held-out rows (disentanglement_lib's
  convention; Eastwood & Williams report the error, 1 - this).
- ``beta_vae_score(represent, factor_sizes)`` (Higgins et al. 2017): pairs of examples share
  one factor, drawn at random; the mean absolute code difference over ``batch_size`` pairs is
  one training point, and a linear classifier (logistic regression) predicts the shared
  factor from it. The score is its held-out accuracy. It rewards codes whose dimensions can be
  told apart linearly, so even a rotated code can score well; MIG and DCI demand alignment.
- ``factor_vae_score(represent, factor_sizes)`` (Kim & Mnih 2018): fix one factor over
  ``batch_size`` examples, divide each code dimension's variance by its variance over the
  data, and vote for the dimension with the least; a majority-vote classifier (dimension ->
  factor) is fitted on the votes, and the score is its held-out accuracy. Dimensions whose
  standard deviation over the data is below 0.05 (collapsed units) never vote.

``mig`` and ``dci`` take plain arrays (codes ``(n, d)`` floats, factors ``(n, k)`` integer
indices) so any representation can be scored. The other two intervene on the factors, so
they take ``represent``: a function from factor indices ``(n, k)`` to codes ``(n, d)``, such as
``model_representation(model, sampler)``, which renders the examples of those factors with a
``FactorSampler`` (``vaekit.data.shapes.ShapesGrid`` is one) and encodes them to posterior
means. ``evaluate_run(run)`` computes all four for a run trained on a dataset with factor
labels (``shapes``, ``shapes-small``); ``vaekit evaluate RUN --disentanglement`` prints them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from vaekit.errors import VaekitError
from vaekit.latent.encoding import encode_means
from vaekit.training.devices import resolve_device

#: Factor indices (n, k) -> codes (n, d).
Representation = Callable[[np.ndarray], np.ndarray]

MIG_BINS = 20
#: Grid points drawn for MIG and DCI by ``evaluate_run`` (disentanglement_lib's 10,000).
DEFAULT_POINTS = 10_000
#: Collapsed units (std over the data below this) take no part in the FactorVAE score.
ACTIVE_STD = 0.05
#: Budget of the two intervention scores in ``evaluate_model``: points (train, held out), each
#: made of ``SCORE_BATCH`` examples, and the examples that estimate the codes' variances.
#: disentanglement_lib uses 10,000 / 5,000 points; this many keep a CPU evaluation near a minute.
SCORE_BATCH = 64
SCORE_POINTS = (300, 150)
VARIANCE_POINTS = 5000
#: ``represent`` is called on at most this many factor rows at once (rendered images cost 16 KB each).
CHUNK_ROWS = 2048


class FactorSampler(Protocol):
    """A dataset whose examples are made from a grid of known factors, any of which it can render."""

    @property
    def factor_names(self) -> tuple[str, ...]: ...

    @property
    def factor_sizes(self) -> tuple[int, ...]: ...

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Examples ``(n, *shape)`` float32 of factor indices ``(n, k)``."""
        ...

    def class_labels(self, factors: np.ndarray) -> np.ndarray:
        """The dataset's class labels ``(n,)`` of factor indices (a conditional model's ``cond``)."""
        ...


# --- checks --------------------------------------------------------------------------


def _check_arrays(codes: Any, factors: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(codes, dtype=np.float64)
    f = np.asarray(factors)
    if c.ndim != 2 or c.shape[1] < 1:
        raise VaekitError(f"codes: expected a 2-D array (examples x code dimensions), got shape {c.shape}")
    if f.ndim != 2 or f.shape[1] < 1:
        raise VaekitError(f"factors: expected a 2-D array (examples x factors), got shape {f.shape}")
    if not (np.issubdtype(f.dtype, np.integer) or np.issubdtype(f.dtype, np.bool_)):
        raise VaekitError(f"factors: expected integer factor indices (discrete factors), got {f.dtype}")
    if len(c) != len(f):
        raise VaekitError(f"codes and factors: expected one row per example in both, got {len(c)} and {len(f)} rows")
    if len(c) < 4:
        raise VaekitError(f"codes: expected at least 4 examples, got {len(c)}")
    if not np.isfinite(c).all():
        raise VaekitError("codes: contains NaN or infinite values")
    return c, f.astype(np.int64)


def _check_sizes(factor_sizes: Sequence[int]) -> np.ndarray:
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    if sizes.ndim != 1 or len(sizes) < 1 or (sizes < 1).any():
        raise VaekitError(f"factor_sizes: expected a list of positive grid sizes, got {list(factor_sizes)}")
    if (sizes < 2).all():
        raise VaekitError(f"factor_sizes: every factor is constant ({list(factor_sizes)}); nothing to score")
    return sizes


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise VaekitError(f"{name}: expected an integer of at least {minimum}, got {value!r}")


# --- MIG -----------------------------------------------------------------------------


def discretize(codes: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """Each code dimension cut into ``bins`` equal-width bins over its range: ``(n, d)`` int64."""
    c = np.asarray(codes, dtype=np.float64)
    out = np.empty(c.shape, dtype=np.int64)
    for j in range(c.shape[1]):
        edges = np.histogram_bin_edges(c[:, j], bins=bins)
        out[:, j] = np.digitize(c[:, j], edges[1:-1])
    return out


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """I(binned code_i; factor_j) in nats, ``(d, k)``."""
    from sklearn.metrics import mutual_info_score

    c, f = _check_arrays(codes, factors)
    binned = discretize(c, bins)
    return np.array([[mutual_info_score(f[:, j], binned[:, i]) for j in range(f.shape[1])]
                     for i in range(c.shape[1])])


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """The empirical entropy of each factor column, nats ``(k,)``."""
    f = np.asarray(factors)
    out = []
    for j in range(f.shape[1]):
        p = np.unique(f[:, j], return_counts=True)[1] / len(f)
        out.append(float(-(p * np.log(p)).sum()))
    return np.array(out)


def mig_per_factor(codes: np.ndarray, factors: np.ndarray, *, bins: int = MIG_BINS) -> np.ndarray:
    """Each factor's normalised gap ``(k,)``; NaN for a factor that is constant in ``factors``."""
    _check_count("bins", bins, 2)
    c, f = _check_arrays(codes, factors)
    mi = mutual_information_matrix(c, f, bins)
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(f.shape[1])
    entropy = factor_entropies(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(entropy > 0, (top[0] - second) / np.where(entropy > 0, entropy, 1.0), np.nan)


def mig(codes: np.ndarray, factors: np.ndarray, *, bins: int = MIG_BINS) -> float:
    """The mutual information gap (Chen et al. 2018) of ``codes`` ``(n, d)`` for ``factors``
    ``(n, k)`` (integer indices), averaged over the factors that vary; in [0, 1]."""
    gaps = mig_per_factor(codes, factors, bins=bins)
    if np.isnan(gaps).all():
        raise VaekitError("factors: every factor is constant over these examples; MIG needs a factor that varies")
    return float(np.nanmean(gaps))


# --- DCI -----------------------------------------------------------------------------


def _entropy_normalised(p: np.ndarray, base: int) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(base)) if base > 1 else 0.0


def dci(codes: np.ndarray, factors: np.ndarray, *, n_train: int = 2000, n_test: int = 1000, n_estimators: int = 20,
        max_depth: int = 3, seed: int = 0) -> dict[str, Any]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Gradient-boosted trees (``n_estimators`` rounds of depth ``max_depth``) are fitted per
    factor on ``n_train`` rows and scored on ``n_test`` other rows, drawn with ``seed`` (with
    fewer rows: two thirds for training, one third held out). Returns ``disentanglement``,
    ``completeness``, ``informativeness`` (held-out accuracy, mean over factors),
    ``informativeness_train`` and ``importance`` (the (d x k) matrix, as lists).
    """
    from sklearn.ensemble import GradientBoostingClassifier

    c, f = _check_arrays(codes, factors)
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_estimators", n_estimators),
                        ("max_depth", max_depth)):
        _check_count(name, value, 1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(c))
    if len(c) < n_train + n_test:
        n_train = (2 * len(c)) // 3
        n_test = len(c) - n_train
    train, test = order[:n_train], order[n_train:n_train + n_test]
    d, k = c.shape[1], f.shape[1]
    importance = np.zeros((d, k))
    acc_train, acc_test = [], []
    for j in range(k):
        y_train, y_test = f[train, j], f[test, j]
        if len(np.unique(y_train)) < 2:  # a constant factor: nothing to predict, nothing to attribute
            continue
        trees = GradientBoostingClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed)
        trees.fit(c[train], y_train)
        importance[:, j] = np.abs(trees.feature_importances_)
        acc_train.append(float(trees.score(c[train], y_train)))
        acc_test.append(float(trees.score(c[test], y_test)))
    if not acc_test:
        raise VaekitError("factors: every factor is constant over these examples; DCI needs a factor that varies")
    total = importance.sum()
    per_code = np.array([1.0 - _entropy_normalised(row / row.sum(), k) if row.sum() > 0 else 0.0
                         for row in importance])
    per_factor = np.array([1.0 - _entropy_normalised(col / col.sum(), d) if col.sum() > 0 else 0.0
                           for col in importance.T])
    code_weight = importance.sum(1) / total if total > 0 else np.zeros(d)
    factor_weight = importance.sum(0) / total if total > 0 else np.zeros(k)
    return {
        "disentanglement": float((per_code * code_weight).sum()),
        "completeness": float((per_factor * factor_weight).sum()),
        "informativeness": float(np.mean(acc_test)),
        "informativeness_train": float(np.mean(acc_train)),
        "importance": importance.tolist(),
    }


# --- scores that intervene on the factors ----------------------------------------------


def _codes(represent: Representation, factors: np.ndarray) -> np.ndarray:
    parts = []
    for start in range(0, len(factors), CHUNK_ROWS):
        z = np.asarray(represent(factors[start:start + CHUNK_ROWS]), dtype=np.float64)
        if z.ndim != 2 or len(z) != len(factors[start:start + CHUNK_ROWS]):
            raise VaekitError(f"represent: expected codes of shape (n, d) for n factor rows, got shape {z.shape}")
        parts.append(z)
    return np.concatenate(parts)


def _draw(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, sizes, size=(n, len(sizes)), dtype=np.int64)


def _varying(sizes: np.ndarray) -> np.ndarray:
    return np.flatnonzero(sizes > 1)


def beta_vae_score(represent: Representation, factor_sizes: Sequence[int], *, batch_size: int = 64,
                   n_train: int = 300, n_eval: int = 150, seed: int = 0) -> dict[str, float]:
    """The beta-VAE score (Higgins et al. 2017): ``eval_accuracy`` (the score) and ``train_accuracy``.

    ``n_train`` + ``n_eval`` points, each the mean absolute code difference of ``batch_size``
    pairs that share one random factor (a factor with more than one value); a logistic
    regression (scikit-learn's defaults, L2 with C = 1) predicts the shared factor.
    """
    from sklearn.linear_model import LogisticRegression

    sizes = _check_sizes(factor_sizes)
    for name, value in (("batch_size", batch_size), ("n_train", n_train), ("n_eval", n_eval)):
        _check_count(name, value, 1)
    rng = np.random.default_rng(seed)
    points = n_train + n_eval
    fixed = rng.choice(_varying(sizes), size=points)
    first = _draw(sizes, points * batch_size, rng)
    second = _draw(sizes, points * batch_size, rng)
    rows = np.arange(points * batch_size)
    shared = np.repeat(fixed, batch_size)
    second[rows, shared] = first[rows, shared]
    z1, z2 = _codes(represent, first), _codes(represent, second)
    features = np.abs(z1 - z2).reshape(points, batch_size, -1).mean(1)
    if len(np.unique(fixed[:n_train])) < 2:
        accuracy = float((fixed[n_train:] == fixed[0]).mean())
        return {"train_accuracy": 1.0, "eval_accuracy": accuracy}
    classifier = LogisticRegression(max_iter=5000)  # on the raw differences, as disentanglement_lib: codes whose
    # differences are tiny (a nearly collapsed unit) barely move the regularised classifier
    classifier.fit(features[:n_train], fixed[:n_train])
    return {"train_accuracy": float(classifier.score(features[:n_train], fixed[:n_train])),
            "eval_accuracy": float(classifier.score(features[n_train:], fixed[n_train:]))}


def factor_vae_score(represent: Representation, factor_sizes: Sequence[int], *, batch_size: int = 64,
                     n_train: int = 300, n_eval: int = 150, n_variance: int = 5000, active_std: float = ACTIVE_STD,
                     seed: int = 0) -> dict[str, float]:
    """The FactorVAE score (Kim & Mnih 2018): ``eval_accuracy`` (the score), ``train_accuracy``
    and ``active_dims`` (dimensions whose std over ``n_variance`` random examples reaches
    ``active_std``; with none, both accuracies are 0)."""
    sizes = _check_sizes(factor_sizes)
    for name, value in (("batch_size", batch_size), ("n_train", n_train), ("n_eval", n_eval)):
        _check_count(name, value, 1)
    _check_count("batch_size", batch_size, 2)
    _check_count("n_variance", n_variance, 2)
    rng = np.random.default_rng(seed)
    global_var = _codes(represent, _draw(sizes, n_variance, rng)).var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= active_std
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_dims": 0}
    points = n_train + n_eval
    fixed = rng.choice(_varying(sizes), size=points)
    batches = _draw(sizes, points * batch_size, rng).reshape(points, batch_size, -1)
    batches[np.arange(points), :, fixed] = batches[np.arange(points), 0, fixed][:, None]
    z = _codes(represent, batches.reshape(points * batch_size, -1)).reshape(points, batch_size, -1)
    ratio = z.var(axis=1, ddof=1)[:, active] / global_var[active]
    dims = np.flatnonzero(active)[ratio.argmin(axis=1)]
    d = len(global_var)
    votes_train = np.zeros((d, len(sizes)), dtype=np.int64)
    np.add.at(votes_train, (dims[:n_train], fixed[:n_train]), 1)
    votes_eval = np.zeros((d, len(sizes)), dtype=np.int64)
    np.add.at(votes_eval, (dims[n_train:], fixed[n_train:]), 1)
    classifier = votes_train.argmax(axis=1)  # each dimension -> the factor it was most often the answer for
    return {
        "train_accuracy": float(votes_train.max(axis=1).sum() / n_train),
        "eval_accuracy": float(votes_eval[np.arange(d), classifier].sum() / n_eval),
        "active_dims": int(active.sum()),
    }


# --- models and runs -----------------------------------------------------------------


def model_representation(model: Any, sampler: FactorSampler, *, batch_size: int = 512) -> Representation:
    """``represent`` for a trained model: render the factors' examples, encode them to posterior means."""
    import torch


    def represent(factors: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(sampler.observations(factors), dtype=np.float32))
        cond = torch.from_numpy(sampler.class_labels(factors)) if model.config.conditional else None
        return encode_means(model, x, cond, batch_size=batch_size).double().numpy()

    return represent


def factor_sampler_for(name: str) -> FactorSampler:
    """The factor grid of a dataset that carries factor labels, or a one-line error."""
    from vaekit.data.shapes import GRIDS

    if name not in GRIDS:
        raise VaekitError(f"dataset '{name}' carries no factor labels; the disentanglement metrics need data made "
                          f"from known factors ({', '.join(GRIDS)})")
    return GRIDS[name]


def evaluate_model(model: Any, sampler: FactorSampler, *, n: int = DEFAULT_POINTS, seed: int = 0,
                   scores: bool = True) -> dict[str, Any]:
    """All four metrics of ``model`` on ``sampler``'s factor grid (MIG and DCI on ``n`` seeded
    random grid points; ``scores=False`` leaves out the beta-VAE and FactorVAE scores)."""
    _check_count("n", n, 4)
    sizes = _check_sizes(sampler.factor_sizes)
    represent = model_representation(model, sampler)
    started = time.perf_counter()
    factors = _draw(sizes, n, np.random.default_rng(seed))
    codes = _codes(represent, factors)
    gaps = mig_per_factor(codes, factors)
    scores_dci = dci(codes, factors, seed=seed)
    out: dict[str, Any] = {
        "mig": float(np.nanmean(gaps)),
        "mig_per_factor": {name: None if np.isnan(g) else float(g)
                           for name, g in zip(sampler.factor_names, gaps, strict=True)},
        "dci_disentanglement": scores_dci["disentanglement"],
        "dci_completeness": scores_dci["completeness"],
        "dci_informativeness": scores_dci["informativeness"],
    }
    if scores:
        budget = {"batch_size": SCORE_BATCH, "n_train": SCORE_POINTS[0], "n_eval": SCORE_POINTS[1], "seed": seed}
        beta = beta_vae_score(represent, sizes, **budget)
        factor = factor_vae_score(represent, sizes, n_variance=VARIANCE_POINTS, **budget)
        out["beta_vae_score"] = beta["eval_accuracy"]
        out["factor_vae_score"] = factor["eval_accuracy"]
        out["active_dims"] = factor["active_dims"]
    out["n"] = n
    out["factor_names"] = list(sampler.factor_names)
    out["seconds"] = time.perf_counter() - started
    return out


def evaluate_run(run: Any, *, n: int = DEFAULT_POINTS, seed: int = 0, device: str = "cpu",
                 scores: bool = True) -> dict[str, Any]:
    """``evaluate_model`` for a run directory (``vaekit.runs.open_run``) trained on data with
    factor labels; the examples are rendered from the dataset's factor grid, not read from a split."""

    sampler = factor_sampler_for(run.data_info.name)
    run.model.to(resolve_device(device))
    return {"dataset": run.data_info.name, **evaluate_model(run.model, sampler, n=n, seed=seed, scores=scores)}


def disentanglement_table(run_dir: Any, metrics: dict[str, Any]) -> Any:
    """A rich table of ``evaluate_run``'s figures for the terminal."""
    from rich.table import Table

    table = Table(title=f"{run_dir}: disentanglement on {metrics.get('dataset', '?')} "
                        f"({metrics['n']} grid points)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    per_factor = ", ".join(f"{k} {v:.2f}" for k, v in metrics["mig_per_factor"].items() if v is not None)
    table.add_row("MIG", f"{metrics['mig']:.3f}", f"Chen et al. 2018; per factor: {per_factor}")
    table.add_row("DCI disentanglement", f"{metrics['dci_disentanglement']:.3f}", "Eastwood & Williams 2018")
    table.add_row("DCI completeness", f"{metrics['dci_completeness']:.3f}", "")
    table.add_row("DCI informativeness", f"{metrics['dci_informativeness']:.3f}", "held-out accuracy of the trees")
    if "beta_vae_score" in metrics:
        table.add_row("beta-VAE score", f"{metrics['beta_vae_score']:.3f}", "Higgins et al. 2017")
        table.add_row("FactorVAE score", f"{metrics['factor_vae_score']:.3f}",
                      f"Kim & Mnih 2018; {metrics['active_dims']} active dims")
    return table
