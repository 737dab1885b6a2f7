"""Experiment tracking: ``--log tensorboard|mlflow|none`` (``TrainConfig.loggers``).

The trainer logs each epoch's metrics.jsonl row, the run's settings as hyper-parameters and,
once written, its pictures, through each library's own API (the ``track`` extra).
``base.Logger`` is the protocol a backend implements; ``registry.LOGGERS`` names them.
"""

from vaekit.training.tracking.base import Logger, Tracker, flatten_params, metric_scalars
from vaekit.training.tracking.registry import LOGGERS, check_loggers, log_pictures, open_tracker, parse_loggers

__all__ = ["LOGGERS", "Logger", "Tracker", "check_loggers", "flatten_params", "log_pictures", "metric_scalars",
           "open_tracker", "parse_loggers"]
