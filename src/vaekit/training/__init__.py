"""Training: the ``Trainer`` and its ``TrainConfig``, run directories (``runs``), settings
files, torchrun process groups and the progress display, and the diagnosis of a finished
epoch (posterior collapse, blur)."""

from vaekit.training.runs import Run, load, open_run, save
from vaekit.training.trainer import TrainConfig, Trainer

__all__ = ["Run", "TrainConfig", "Trainer", "load", "open_run", "save"]
