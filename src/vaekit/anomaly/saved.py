"""A saved detector's files: safetensors + JSON, never pickle, written from and read into plain state.

A detector directory is also a vaekit model directory (``vaekit.load(dir)`` gives its VAE):

```
config.json          "model" (the VAE), "train", "anomaly" (parameters, threshold, input
                     shape, feature names, standardizer) and, when fitted from a file by
                     the CLI, "data" (so `vaekit sample/info` work on it too)
model.safetensors    the last fit's VAE weights (with their sha256)
fit-<i>.safetensors  the weights of the other fits whose scores are averaged (``ensemble``),
                     i = 0, 1, ... in the order of ``fits_``
anomaly.safetensors  training and held-out anomaly scores (float64), for re-thresholding,
                     each fit's training posterior means (float32, ``codes-<i>``), for knn,
                     and each fit's sorted training scores of each score part (float64,
                     ``reference-<i>-<part>``), for sums, and, when the score has
                     ``resid``, each fit's training residuals' mean and precision
                     (float64, ``residual-mean-<i>``, ``residual-precision-<i>``)
```

Every file is written atomically; the standardizer and the threshold are plain JSON
numbers, which round-trip exactly, so a loaded detector gives identical scores.

This module knows the files only: ``SavedDetector`` is what they hold (a detector's
parameters and learned attributes), ``write`` and ``read`` move it to and from a directory.
The detector makes one of itself to save (``VAEAnomalyDetector.save``), and
``vaekit.anomaly.storage.load_detector`` makes a detector of one read back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaekit.anomaly.fits import Fit
from vaekit.anomaly.presets import PRESETS, SEQUENCES, Preset
from vaekit.anomaly.scores import ResidualModel
from vaekit.atomic import atomic_path
from vaekit.data.standardize import Standardizer
from vaekit.errors import VaekitError
from vaekit.models import build
from vaekit.serialization import CONFIG_FILE, WEIGHTS_FILE, load_weights, read_json, save_weights, write_json
from vaekit.training.trainer import TrainConfig
from vaekit.version import __version__ as VERSION

SCORES_FILE = "anomaly.safetensors"
#: 5: each part's training scores (sums combine their tail probabilities); 4 (still read, its
#: sums of z-scores kept): a preset and a ``model`` override of its fields; 3 (still read): every
#: setting a parameter (``old_params``); 2 had one fit; 1 no knn codes.
FORMAT = 5
READ_FORMATS = (5, 4, 3)
#: What a format-3 detector's parameters are called now; its other settings are ``model`` fields.
KEPT_PARAMS = ("anomaly_score", "contamination", "target_fpr", "threshold", "holdout_fraction", "latent_dim",
               "epochs", "random_state", "device", "threads", "verbose")


@dataclass
class SavedDetector:
    """A fitted detector's parameters (``get_params()``) and learned attributes, as the files hold them.

    ``fits``: each scoring fit's VAE (on the CPU as read), training codes and score references,
    in the order of ``fits_``; the last one's VAE is ``model.safetensors``. ``score``: the score
    it was fitted with, so that ``anomaly_score="auto"`` keeps meaning that score after a
    preset's default changes.
    """

    params: dict[str, Any]
    train_config: TrainConfig
    input_shape: tuple[int, ...]
    feature_names: list[str] | None
    scaler: Standardizer | None
    decision_scores: np.ndarray
    holdout_scores: np.ndarray
    fits: list[Fit]
    n_fits: int
    threshold: float
    threshold_source: str
    collapsed: bool = False
    score: str = ""

    @classmethod
    def of(cls, detector: Any) -> SavedDetector:
        """What a fitted ``VAEAnomalyDetector`` saves."""
        d = detector
        names = getattr(d, "feature_names_in_", None)
        return cls(params=d.get_params(), train_config=d.train_config_, input_shape=d.input_shape_,
                   feature_names=None if names is None else list(names), scaler=d.scaler_,
                   decision_scores=d.decision_scores_, holdout_scores=d.holdout_scores_, fits=list(d.fits_),
                   n_fits=d.n_fits_, threshold=d.threshold_, threshold_source=d.threshold_source_,
                   collapsed=d.collapsed_, score=d.score_)


def write(path: str | Path, saved: SavedDetector, *, data: dict[str, Any] | None = None) -> Path:
    """Write ``saved`` into directory ``path``; ``data`` is an optional run "data" section."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = saved.params.get("model")
    whole = isinstance(model, Preset)
    fields = asdict(model) if whole else dict(model or {})
    fields = {name: list(value) if name in SEQUENCES and value is not None else value for name, value in fields.items()}
    params = {**saved.params, "model": fields if whole or model is not None else None}
    # A detector read from format 3/4 keeps its sums of z-scores ({part: (mean, std)}): it is
    # written back in format 4, which holds them, so re-saving never changes its scores.
    old_sums = any(isinstance(ref, tuple) for fit in saved.fits for ref in fit.references.values())
    written_format = 4 if old_sums else FORMAT
    section = {
        "format": written_format,
        "params": params,
        "model_is_preset": whole,
        "threshold": saved.threshold,
        "threshold_source": saved.threshold_source,
        "input_shape": list(saved.input_shape),
        "feature_names_in": None if saved.feature_names is None else [str(n) for n in saved.feature_names],
        "standardizer": saved.scaler.to_dict() if saved.scaler is not None else None,
        "training_scores": _quantiles(saved.decision_scores),
        **({"score_stats": [{name: list(ref) for name, ref in fit.references.items()} for fit in saved.fits]}
           if old_sums else {"score_parts": [list(fit.references) for fit in saved.fits]}),
        "n_fits": saved.n_fits,
        "collapsed": saved.collapsed,
        "score": saved.score,
    }
    config: dict[str, Any] = {"vaekit_version": VERSION, "model": saved.fits[-1].model.config.to_dict(),
                              "train": saved.train_config.to_dict(), "anomaly": section}
    if data is not None:
        config["data"] = data
    for i, fit in enumerate(saved.fits):
        save_weights(fit.model, path / _weights_file(i, len(saved.fits)))
    tensors = {"decision_scores": torch.from_numpy(np.ascontiguousarray(saved.decision_scores, np.float64)),
               "holdout_scores": torch.from_numpy(np.ascontiguousarray(saved.holdout_scores, np.float64)),
               **{f"codes-{i}": fit.codes.contiguous() for i, fit in enumerate(saved.fits)},
               **{f"reference-{i}-{name}": torch.from_numpy(np.ascontiguousarray(ref, np.float64))
                  for i, fit in enumerate(saved.fits) for name, ref in fit.references.items() if not old_sums},
               **{f"residual-{what}-{i}": torch.from_numpy(np.ascontiguousarray(getattr(fit.residual, what)))
                  for i, fit in enumerate(saved.fits) if fit.residual is not None for what in ("mean", "precision")}}
    with atomic_path(path / SCORES_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": str(written_format)})
    write_json(path / CONFIG_FILE, config)  # last: a directory with config.json is complete
    return path


def read(path: str | Path) -> SavedDetector:
    """What the detector directory ``path`` holds, or a one-line error naming the file at fault."""
    path = Path(path)
    if not path.is_dir():
        raise VaekitError(f"{path}: no such detector directory (expected the --out of `vaekit anomaly fit`)")
    config = read_json(path / CONFIG_FILE)
    section = config.get("anomaly")
    if not isinstance(section, dict) or "model" not in config:
        raise VaekitError(f"{path / CONFIG_FILE}: no 'anomaly' section (a run of `vaekit train`, not an anomaly "
                          "detector; make one with `vaekit anomaly fit DATA --out RUN`)")
    if section.get("format") not in READ_FORMATS:
        raise VaekitError(f"{path / CONFIG_FILE}: anomaly format {section.get('format')!r} is not "
                          f"{' or '.join(map(str, READ_FORMATS))} (written by another vaekit version: fit the "
                          "detector again with this one)")
    params = dict(section["params"]) if section["format"] != 3 else old_params(section["params"])
    if params.get("model") is not None:
        fields = {name: tuple(value) if name in SEQUENCES and isinstance(value, list) else value
                  for name, value in params["model"].items()}
        params["model"] = Preset(**fields) if section.get("model_is_preset") else fields
    parts = section["score_parts"] if section["format"] == FORMAT else section["score_stats"]
    models = []
    for i in range(len(parts)):
        model = build(config["model"])
        load_weights(model, path / _weights_file(i, len(parts)))
        models.append(model)
    try:
        scores = load_file(str(path / SCORES_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise VaekitError(f"{path / SCORES_FILE}: cannot read the training scores ({exc})") from None
    try:
        fits = [Fit(model, scores[f"codes-{i}"], _references(scores, i, fit_parts), _residual(scores, i))
                for i, (model, fit_parts) in enumerate(zip(models, parts, strict=True))]
    except KeyError as exc:
        raise VaekitError(f"{path / SCORES_FILE}: no training codes or scores {exc} for the fits in "
                          f"{CONFIG_FILE}") from None
    names = section.get("feature_names_in")
    scaler = section.get("standardizer")
    return SavedDetector(
        params=params,
        train_config=TrainConfig.from_dict(config["train"]),
        input_shape=tuple(int(s) for s in section["input_shape"]),
        feature_names=None if names is None else list(names),
        scaler=Standardizer.from_dict(scaler) if scaler else None,
        decision_scores=scores["decision_scores"].numpy(),
        holdout_scores=scores["holdout_scores"].numpy(),
        fits=fits,
        n_fits=int(section["n_fits"]),
        threshold=float(section["threshold"]),
        threshold_source=str(section["threshold_source"]),
        collapsed=bool(section.get("collapsed", False)),
        # the score it was fitted with; before it was written, the parts each fit kept statistics of
        score=str(section.get("score") or "+".join(parts[0] if parts else ())),
    )


def _references(scores: dict[str, torch.Tensor], i: int, parts: list[str] | dict[str, list[float]]
                ) -> dict[str, np.ndarray | tuple[float, float]]:
    """Fit ``i``'s references: its parts' training scores (format 5), or (formats 3, 4) the
    ``{part: [mean, std]}`` of config.json."""
    if isinstance(parts, dict):
        return {name: (float(mean), float(std)) for name, (mean, std) in parts.items()}
    return {name: scores[f"reference-{i}-{name}"].numpy() for name in parts}


def _residual(scores: dict[str, torch.Tensor], i: int) -> ResidualModel | None:
    """Fit ``i``'s residual statistics, kept when its score has ``resid``."""
    if f"residual-mean-{i}" not in scores:
        return None
    return ResidualModel(scores[f"residual-mean-{i}"].numpy(), scores[f"residual-precision-{i}"].numpy())


def old_params(params: dict[str, Any]) -> dict[str, Any]:
    """A format-3 detector's parameters (every setting a parameter, ``auto`` resolved per kind of
    data) as today's: the kept ones, and as ``model`` fields the settings it gave other than
    ``auto`` / None and other than what both presets hold."""
    renamed = {"model": "family"}
    fields = {renamed.get(name, name): value for name, value in params.items()
              if name not in KEPT_PARAMS and value is not None and not (isinstance(value, str) and value == "auto")}
    if params.get("likelihood") == "auto" and params.get("heteroscedastic"):
        fields["likelihood"] = "gaussian"  # what auto gave a per-example std
    if "standardize" in fields:
        fields["standardize"] = {True: "standard", False: "none"}.get(fields["standardize"], fields["standardize"])
    fields = {name: tuple(v) if name in SEQUENCES else v for name, v in fields.items()
              if not all(_same(v, getattr(preset, name)) for preset in PRESETS.values())}
    return {**{name: params[name] for name in KEPT_PARAMS if name in params}, "model": fields or None}


def _same(value: Any, preset_value: Any) -> bool:
    value = tuple(value) if isinstance(value, list) else value
    return value == preset_value and isinstance(value, bool) == isinstance(preset_value, bool)


def _weights_file(i: int, n_fits: int) -> str:
    """Fit ``i`` of ``n_fits``: the last in ``model.safetensors`` (so ``vaekit.load`` gives it), the others beside."""
    return WEIGHTS_FILE if i == n_fits - 1 else f"fit-{i}.safetensors"


def _quantiles(scores: np.ndarray) -> dict[str, float]:
    """A glance at the training scores in config.json (the exact ones are in anomaly.safetensors)."""
    qs = {"min": 0.0, "q50": 0.5, "q90": 0.9, "q99": 0.99, "max": 1.0}
    return {name: float(np.quantile(scores, q)) for name, q in qs.items()}
