"""The logger protocol every tracking backend implements, and what they share: the config
flattened into hyper-parameters and a metrics row into scalars.

A backend is one small class: ``Backend(run_dir, resume=...)`` with the four methods of
``Logger``; ``registry.LOGGERS`` names it. ``Tracker`` runs several at once and makes sure
none can stop a training run: a backend that raises is reported once (a warning naming it)
and switched off, while ``metrics.jsonl`` keeps every figure.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Protocol

#: Hyper-parameter values a backend records as they are; anything else becomes its JSON text.
PLAIN = (bool, int, float, str)


class Logger(Protocol):
    """One experiment tracker, opened on a run directory (``resume``: the run continues)."""

    def log_params(self, params: dict[str, bool | int | float | str]) -> None:
        """The run's settings, flattened (``train.lr``, ``model.latent_dim``, ``data.source``)."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Scalars of epoch ``step`` under their metrics.jsonl names (``val_kl_per_dim/3``)."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """A picture of the run (a PNG file) under ``name``."""

    def close(self, status: str = "FINISHED") -> None:
        """Flush and release; ``status``: FINISHED, FAILED or KILLED."""


def flatten_params(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """``{"train": {"lr": 0.001}}`` -> ``{"train.lr": 0.001}``; lists and ``None`` as JSON text."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, name + "."))
        elif isinstance(value, PLAIN):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def metric_scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.jsonl row, lists spread over ``name/i`` (``epoch`` is the step)."""
    scalars: dict[str, float] = {}
    for key, value in row.items():
        if key == "epoch":
            continue
        values = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        for i, v in values:
            if isinstance(v, (bool, int, float)) and math.isfinite(float(v)):
                scalars[key if i is None else f"{key}/{i}"] = float(v)
    return scalars


class Tracker:
    """Several loggers behind one object; each call reaches every logger still working."""

    def __init__(self, loggers: dict[str, Logger]) -> None:
        self.loggers = dict(loggers)

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def _each(self, what: str, call: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                call(logger)
            except Exception as e:  # a tracker must never stop training: say so once, go on without it
                del self.loggers[name]
                warnings.warn(f"--log {name}: {what} failed ({type(e).__name__}: {e}); logging to {name} is off for "
                              "the rest of this run (metrics.jsonl has every figure)", stacklevel=3)

    def log_params(self, config: dict[str, Any]) -> None:
        params = flatten_params(config)
        self._each("logging the settings", lambda logger: logger.log_params(params))

    def log_metrics(self, step: int, row: dict[str, Any]) -> None:
        scalars = metric_scalars(row)
        self._each(f"logging epoch {step}", lambda logger: logger.log_metrics(step, scalars))

    def log_images(self, paths: list[Path], step: int) -> None:
        for path in paths:
            self._each(f"logging {path.name}", lambda logger, p=path: logger.log_image(p.stem, p, step))

    def close(self, status: str = "FINISHED") -> None:
        self._each("closing", lambda logger: logger.close(status))
        self.loggers.clear()
