"""The detector's parameters checked, and the VAE config a fit builds from its settings.

``check_params`` validates a detector's parameters in one-line errors, before any data is read
(its settings for both kinds of data, ``vaekit.anomaly.presets``); ``model_spec`` turns the
fitted data's settings into the config of the VAE that each fit trains.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch

from vaekit.anomaly import thresholds
from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.presets import PRESETS, Preset, resolve
from vaekit.anomaly.scores import score_parts
from vaekit.data.bundle import DataInfo
from vaekit.errors import VaekitError
from vaekit.models import MODELS
from vaekit.threads import parse_threads


def check_params(detector: Any) -> None:
    """Each parameter of a ``VAEAnomalyDetector`` checked, and its settings for either kind of data
    (``presets.resolve``), or an ``AnomalyInputError`` naming the parameter or field."""
    d = detector
    if d.preset not in ("auto", *PRESETS):
        raise AnomalyInputError(f"preset: expected auto, {', '.join(PRESETS)}, got {d.preset!r}")
    if d.anomaly_score != "auto":
        try:
            score_parts(d.anomaly_score)
        except ValueError as exc:
            message = str(exc).replace("expected ", "expected auto, ", 1)
            raise AnomalyInputError(f"anomaly_score: {message}") from None
    for name in ("epochs", "latent_dim"):
        if getattr(d, name) != "auto":
            check_positive_int(name, getattr(d, name), "'auto' or a positive integer")
    thresholds.check_rate("contamination", d.contamination, 0.5)
    if d.target_fpr is not None:
        thresholds.check_rate("target_fpr", d.target_fpr, 1.0)
        thresholds.check_rate("holdout_fraction", d.holdout_fraction, 0.9)
    if d.threshold is not None and not np.isfinite(as_float("threshold", d.threshold)):
        raise AnomalyInputError(f"threshold: expected a finite number, got {d.threshold!r}")
    try:
        parse_threads(d.threads)
    except VaekitError as exc:
        raise AnomalyInputError(str(exc)) from None
    for kind in PRESETS:
        settings_for(d, kind)


def settings_for(detector: Any, kind: str) -> Preset:
    """The settings ``detector`` fits data of ``kind`` (images / tables) with."""
    d = detector
    return resolve(d.preset, kind, d.model, latent_dim=d.latent_dim, epochs=d.epochs, score=d.anomaly_score)


def model_spec(detector: Any, xm: torch.Tensor) -> tuple[dict[str, Any], DataInfo]:
    """The build config of the VAE a fitted ``detector`` trains on ``xm`` (its data in model space)
    and the data info it trains with, the same for every fit (a saved detector stores one model
    config for all its fits)."""
    s: Preset = detector.settings_
    likelihood = likelihood_for(s, xm, detector.scaler_ is not None)
    options: dict[str, Any] = {"input_shape": detector.input_shape_, "hidden": list(s.hidden),
                               "likelihood": likelihood, "obs_std": s.obs_std, "learn_obs_std": s.learn_obs_std,
                               "heteroscedastic": s.heteroscedastic, "min_obs_std": s.min_obs_std,
                               "obs_df": s.obs_df, "learn_obs_df": s.learn_obs_df and likelihood == "student-t"}
    # what the family's config takes, never its name: latent groups (a hierarchy) set the
    # latent size in place of latent_dim; arch and channels go to a family that has them
    takes = {f.name for f in fields(MODELS[s.family][1])}
    if "groups" in takes:
        options["groups"] = list(s.groups if s.groups is not None else (s.latent_dim, s.latent_dim))
    else:
        options["latent_dim"] = s.latent_dim
    architecture = {"arch": s.arch, "channels": list(s.channels)}
    options.update({name: value for name, value in architecture.items() if name in takes})
    info = DataInfo(name="anomaly-fit", shape=detector.input_shape_, kind="table" if xm.dim() == 2 else "image",
                    likelihood=likelihood)
    return {"model": s.family, **options}, info


def likelihood_for(settings: Preset, xm: torch.Tensor, standardized: bool) -> str:
    """The decoder's likelihood: the settings', or for ``auto`` Bernoulli for data in [0, 1] that is
    not standardized (unless ``heteroscedastic``), else Gaussian."""
    lo, hi = float(xm.min()), float(xm.max())
    if settings.likelihood == "auto":
        in_unit_range = not standardized and lo >= 0.0 and hi <= 1.0
        return "bernoulli" if in_unit_range and not settings.heteroscedastic else "gaussian"
    if settings.likelihood == "bernoulli" and (lo < 0.0 or hi > 1.0):
        raise AnomalyInputError(f"likelihood bernoulli needs data in [0, 1]; this data spans [{lo:g}, {hi:g}] "
                                "(use likelihood='gaussian')")
    return settings.likelihood


def check_positive_int(name: str, value: Any, expected: str = "a positive integer") -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise AnomalyInputError(f"{name}: expected {expected}, got {value!r}")


def as_float(name: str, value: Any) -> float:
    """``value`` as a float, or an error naming the parameter."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnomalyInputError(f"{name}: expected a number, got {value!r}") from None
