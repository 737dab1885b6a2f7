"""Saving and loading a fitted detector: ``save_detector`` and ``load_detector``.

The files and what they hold are ``vaekit.anomaly.saved``'s; this module turns them back
into a ``VAEAnomalyDetector``, ready to score. Imports run one way: storage -> detector ->
saved (``VAEAnomalyDetector.save`` writes through ``saved`` itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vaekit.anomaly import saved
from vaekit.anomaly.detector import VAEAnomalyDetector
from vaekit.errors import VaekitError
from vaekit.serialization import CONFIG_FILE
from vaekit.training.trainer import resolve_device


def save_detector(detector: VAEAnomalyDetector, path: str | Path, *, data: dict[str, Any] | None = None) -> Path:
    """Write a fitted ``detector`` into directory ``path``; ``data`` is an optional run "data" section."""
    return detector.save(path, data=data)


def load_detector(path: str | Path) -> VAEAnomalyDetector:
    """The detector saved in directory ``path``, ready to score."""
    state = saved.read(path)
    try:
        detector = VAEAnomalyDetector(**state.params)
    except TypeError as exc:
        raise VaekitError(f"{Path(path) / CONFIG_FILE}: anomaly parameters do not fit this vaekit version "
                          f"({exc})") from None
    device = resolve_device(detector.device)
    for fit in state.fits:
        fit.model.to(device).eval()
    detector.train_config_ = state.train_config
    detector.input_shape_ = state.input_shape
    detector.n_features_in_ = int(np.prod(state.input_shape))
    if state.feature_names is not None:
        detector.feature_names_in_ = np.asarray(state.feature_names, dtype=object)
    detector.scaler_ = state.scaler
    detector.decision_scores_ = state.decision_scores
    detector.holdout_scores_ = state.holdout_scores
    detector.fits_ = state.fits
    detector.threshold_ = state.threshold
    detector.threshold_source_ = state.threshold_source
    detector.n_fits_ = state.n_fits
    detector.collapsed_ = state.collapsed
    if detector.anomaly_score == "auto" and state.score and detector.score_ != state.score:
        # fitted when "auto" meant another score: it keeps scoring as it was fitted to
        detector.set_params(anomaly_score=state.score)
    detector._update_labels()
    return detector
