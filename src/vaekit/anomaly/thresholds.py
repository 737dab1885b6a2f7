"""Where "anomalous" starts: a threshold on the anomaly score, three ways.

- ``contamination``: the expected share of anomalies in the training data; the
  threshold is that upper quantile of the training scores (PyOD's rule), so about that
  share of the training data is flagged.
- ``target_fpr``: the false-positive rate wanted on normal data; the threshold is the
  ``1 - target_fpr`` quantile of the scores of a held-out slice of the (normal) training
  data that the model never saw, which estimates the rate on new normal data honestly
  (training scores are optimistic: the model has fitted them).
- by hand: a number on the score's scale.
"""

from __future__ import annotations

import numpy as np

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
