"""Where "anomalous" starts: a threshold on the anomaly score, three ways.

- ``contamination``: the expected share of anomalies in the training data; the
  threshold is that upper quantile of the training scores (PyOD's rule), so about that
  share of the training data is flagged.
- ``target_fpr``: the false-positive rate wanted on normal data; the threshold is the
  ``1 - target_fpr`` quantile of the scores of a held-out slice of the (normal) training
  data that the model never saw, which estimates the rate on new normal data honestly
  (training scores are optimistic: the model has fitted them).
- by hand: a number on the score's scale.

``Thresholds`` gives a detector its threshold, its labels and ``predict`` from these rules;
the detector supplies the scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from vaekit.anomaly.errors import AnomalyInputError


def check_rate(name: str, value: float, high: float) -> float:
    """``value`` as a float in (0, high], or an error naming the parameter."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise AnomalyInputError(f"{name}: expected a number in (0, {high:g}], got {value!r}") from None
    if not 0.0 < rate <= high:
        raise AnomalyInputError(f"{name}: expected a number in (0, {high:g}], got {value!r}")
    return rate


def from_contamination(train_scores: np.ndarray, contamination: float) -> float:
    """The score above which ``contamination`` of the training scores lie."""
    return float(np.quantile(train_scores, 1.0 - contamination))


def from_false_positive_rate(normal_scores: np.ndarray, target_fpr: float) -> float:
    """The score above which ``target_fpr`` of held-out normal scores lie."""
    if len(normal_scores) == 0:
        raise AnomalyInputError("target_fpr: the held-out slice of normal data is empty "
                                "(raise holdout_fraction or give more data)")
    return float(np.quantile(normal_scores, 1.0 - target_fpr))


def resolve(source: str, value: float, train_scores: np.ndarray, holdout_scores: np.ndarray) -> float:
    """The threshold that ``source`` (``manual``, ``contamination`` or ``target_fpr``) and its ``value``
    give, from the training scores or the held-out normal ones; a bad value is a one-line error."""
    if source == "manual":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise AnomalyInputError(f"threshold: expected a number, got {value!r}") from None
    if source == "contamination":
        return from_contamination(train_scores, check_rate("contamination", value, 0.5))
    rate = check_rate("target_fpr", value, 1.0)
    if len(holdout_scores) == 0:
        raise AnomalyInputError("target_fpr: this detector kept no held-out normal data "
                                "(fit it with target_fpr=... to hold some out)")
    return from_false_positive_rate(holdout_scores, rate)


class Thresholds:
    """The threshold part of a detector: ``threshold_`` (and ``threshold_source_``) set by its
    ``threshold`` / ``target_fpr`` / ``contamination`` parameters or moved later by
    ``set_threshold``, ``labels_`` of its training scores ``decision_scores_`` (and
    ``holdout_scores_``), and ``predict`` through its ``decision_function``."""

    threshold: float | None
    target_fpr: float | None
    contamination: float
    decision_scores_: np.ndarray
    holdout_scores_: np.ndarray

    def _set_threshold(self) -> None:
        """The threshold the parameters ask for: ``threshold``, else ``target_fpr``, else ``contamination``."""
        given = ("manual", self.threshold), ("target_fpr", self.target_fpr), ("contamination", self.contamination)
        self._move_threshold(*next((source, value) for source, value in given if value is not None))

    def _move_threshold(self, source: str, value: float) -> None:
        """``threshold_`` from a ``source`` (manual, contamination or target_fpr; ``resolve``)
        and its ``value``, and ``labels_`` by it."""
        self.threshold_ = resolve(source, value, self.decision_scores_, self.holdout_scores_)
        self.threshold_source_ = source
        self._update_labels()

    def _update_labels(self) -> None:
        """``labels_``: the training examples the current threshold flags (PyOD's 1 = anomaly)."""
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    def set_threshold(self, threshold: float | None = None, *, contamination: float | None = None,
                      target_fpr: float | None = None) -> Any:
        """Move the threshold of a fitted detector without retraining (exactly one argument); returns it.

        ``target_fpr`` needs the held-out scores, i.e. a detector fitted with ``target_fpr``.
        """
        check_is_fitted(self)
        given = {"manual": threshold, "contamination": contamination, "target_fpr": target_fpr}
        chosen = [(source, value) for source, value in given.items() if value is not None]
        if len(chosen) != 1:
            raise AnomalyInputError("set_threshold: give exactly one of threshold, contamination, target_fpr")
        self._move_threshold(*chosen[0])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """1 for an anomaly (score above ``threshold_``), 0 for normal, as PyOD's ``labels_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)
