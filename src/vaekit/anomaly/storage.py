"""Saving and loading a fitted detector: safetensors + JSON, never pickle.

A detector directory is also a vaekit model directory (``vaekit.load(dir)`` gives its VAE):

```
config.json          "model" (the VAE), "train", "anomaly" (parameters, threshold, input
                     shape, feature names, standardizer) and, when fitted from a file by
                     the CLI, "data" (so `vaekit sample/info` work on it too)
model.safetensors    the last fit's VAE weights (with their sha256)
fit-<i>.safetensors  the weights of the other fits whose scores are averaged (``ensemble``),
                     i = 0, 1, ... in the order of ``fits_``
anomaly.safetensors  training and held-out anomaly scores (float64), for re-thresholding, and
                     each fit's training posterior means (float32, ``codes-<i>``), for knn
```

Every file is written atomically; the standardizer and the threshold are plain JSON
numbers, which round-trip exactly, so a loaded detector gives identical scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaekit.anomaly.detector import VAEAnomalyDetector
from vaekit.anomaly.fits import Fit
from vaekit.atomic import atomic_path
from vaekit.data.standardize import Standardizer
from vaekit.errors import VaekitError
from vaekit.models import build
from vaekit.serialization import CONFIG_FILE, WEIGHTS_FILE, load_weights, read_json, save_weights, write_json
from vaekit.training.trainer import TrainConfig, resolve_device

SCORES_FILE = "anomaly.safetensors"
#: 3: several fits (``ensemble``), score statistics per fit; 2 had one fit; 1 no knn codes.
FORMAT = 3


def save_detector(detector: VAEAnomalyDetector, path: str | Path, *, data: dict[str, Any] | None = None) -> Path:
    """Write a fitted ``detector`` into directory ``path``; ``data`` is an optional run "data" section."""
    from sklearn.utils.validation import check_is_fitted

    from vaekit.version import __version__ as VERSION

    check_is_fitted(detector)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = detector.get_params()
    for name in ("hidden", "channels", "groups"):
        if params[name] is not None:
            params[name] = [int(v) for v in params[name]]
    names = getattr(detector, "feature_names_in_", None)
    section = {
        "format": FORMAT,
        "params": params,
        "threshold": detector.threshold_,
        "threshold_source": detector.threshold_source_,
        "input_shape": list(detector.input_shape_),
        "feature_names_in": None if names is None else [str(n) for n in names],
        "standardizer": detector.scaler_.to_dict() if detector.scaler_ is not None else None,
        "training_scores": _quantiles(detector.decision_scores_),
        "score_stats": [{name: list(stat) for name, stat in fit.score_stats.items()} for fit in detector.fits_],
        "n_fits": detector.n_fits_,
    }
    config: dict[str, Any] = {"vaekit_version": VERSION, "model": detector.model_.config.to_dict(),
                              "train": detector.train_config_.to_dict(), "anomaly": section}
    if data is not None:
        config["data"] = data
    for i, fit in enumerate(detector.fits_):
        save_weights(fit.model, path / _weights_file(i, len(detector.fits_)))
    tensors = {"decision_scores": torch.from_numpy(np.ascontiguousarray(detector.decision_scores_, np.float64)),
               "holdout_scores": torch.from_numpy(np.ascontiguousarray(detector.holdout_scores_, np.float64)),
               **{f"codes-{i}": fit.codes.contiguous() for i, fit in enumerate(detector.fits_)}}
    with atomic_path(path / SCORES_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": str(FORMAT)})
    write_json(path / CONFIG_FILE, config)  # last: a directory with config.json is complete
    return path


def load_detector(path: str | Path) -> VAEAnomalyDetector:
    """The detector saved in directory ``path``, ready to score."""
    path = Path(path)
    if not path.is_dir():
        raise VaekitError(f"{path}: no such detector directory (expected the --out of `vaekit anomaly fit`)")
    config = read_json(path / CONFIG_FILE)
    section = config.get("anomaly")
    if not isinstance(section, dict) or "model" not in config:
        raise VaekitError(f"{path / CONFIG_FILE}: no 'anomaly' section (a run of `vaekit train`, not an anomaly "
                          "detector; make one with `vaekit anomaly fit DATA --out RUN`)")
    if section.get("format") != FORMAT:
        raise VaekitError(f"{path / CONFIG_FILE}: anomaly format {section.get('format')!r} is not {FORMAT} "
                          "(written by another vaekit version: fit the detector again with this one)")
    params = dict(section["params"])
    for name in ("hidden", "channels", "groups"):  # JSON lists back to the tuples the parameters were
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    try:
        detector = VAEAnomalyDetector(**params)
    except TypeError as exc:
        raise VaekitError(f"{path / CONFIG_FILE}: anomaly parameters do not fit this vaekit version ({exc})") from None
    stats = section["score_stats"]
    models = []
    for i in range(len(stats)):
        model = build(config["model"])
        load_weights(model, path / _weights_file(i, len(stats)))
        models.append(model.to(resolve_device(detector.device)).eval())
    try:
        scores = load_file(str(path / SCORES_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise VaekitError(f"{path / SCORES_FILE}: cannot read the training scores ({exc})") from None
    detector.train_config_ = TrainConfig.from_dict(config["train"])
    detector.input_shape_ = tuple(int(s) for s in section["input_shape"])
    detector.n_features_in_ = int(np.prod(detector.input_shape_))
    if section.get("feature_names_in") is not None:
        detector.feature_names_in_ = np.asarray(section["feature_names_in"], dtype=object)
    s = section.get("standardizer")
    detector.scaler_ = Standardizer.from_dict(s) if s else None
    detector.decision_scores_ = scores["decision_scores"].numpy()
    detector.holdout_scores_ = scores["holdout_scores"].numpy()
    try:
        detector.fits_ = [Fit(model, scores[f"codes-{i}"], {name: (float(mean), float(std))
                                                             for name, (mean, std) in stat.items()})
                          for i, (model, stat) in enumerate(zip(models, stats, strict=True))]
    except KeyError as exc:
        raise VaekitError(f"{path / SCORES_FILE}: no training codes {exc} for the fits in {CONFIG_FILE}") from None
    detector.threshold_ = float(section["threshold"])
    detector.threshold_source_ = str(section["threshold_source"])
    detector.n_fits_ = int(section["n_fits"])
    detector._update_labels()
    return detector


def _weights_file(i: int, n_fits: int) -> str:
    """Fit ``i`` of ``n_fits``: the last in ``model.safetensors`` (so ``vaekit.load`` gives it), the others beside."""
    return WEIGHTS_FILE if i == n_fits - 1 else f"fit-{i}.safetensors"


def _quantiles(scores: np.ndarray) -> dict[str, float]:
    """A glance at the training scores in config.json (the exact ones are in anomaly.safetensors)."""
    qs = {"min": 0.0, "q50": 0.5, "q90": 0.9, "q99": 0.99, "max": 1.0}
    return {name: float(np.quantile(scores, q)) for name, q in qs.items()}
