"""Ctrl-C in the middle of a run, for the resume tests of every family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vaekit
from vaekit.training.trainer import Trainer, TrainingInterrupted


def train_interrupted(args: tuple[Any, ...], out: Path, monkeypatch: pytest.MonkeyPatch, after_epochs: int) -> None:
    """``vaekit.train(*args, out)`` with Ctrl-C arriving right after epoch ``after_epochs`` has
    been checkpointed (the interrupted run the resumed one is compared against)."""
    original = Trainer._end_epoch

    def end_epoch_then_interrupt(self, row, optimizer, generator):
        original(self, row, optimizer, generator)
        if self.state.epoch == after_epochs:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_end_epoch", end_epoch_then_interrupt)
    with pytest.raises(TrainingInterrupted, match=f"interrupted after {after_epochs} complete epoch"):
        vaekit.train(*args, out, progress=False)
    monkeypatch.setattr(Trainer, "_end_epoch", original)
