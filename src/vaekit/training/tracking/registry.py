"""The tracking backends by name (``--log tensorboard,mlflow``; ``TrainConfig.loggers``).

A third backend is a module with a class of ``base.Logger``'s four methods and the modules
it needs, named here once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from vaekit.errors import VaekitError
from vaekit.extras import require
from vaekit.training.tracking import mlflow, tensorboard
from vaekit.training.tracking.base import Logger, Tracker

EXTRA = "track"


class Backend(NamedTuple):
    open: Callable[..., Logger]  # (run_dir, resume=...) -> Logger
    requires: Callable[[], tuple[str, ...]]  # the modules to import before training starts
    what: str  # how the refusal names it


LOGGERS: dict[str, Backend] = {
    "tensorboard": Backend(tensorboard.TensorBoardLogger, lambda: tensorboard.REQUIRES, "TensorBoard logs"),
    "mlflow": Backend(mlflow.MLflowLogger, mlflow.requirements, "MLflow tracking"),
}
NONE = "none"


def parse_loggers(spec: str | None) -> list[str]:
    """``"tensorboard,mlflow"`` -> the names; ``"none"`` (or empty) -> none; unknown names refused."""
    names = [n.strip().lower() for n in (spec or NONE).split(",") if n.strip()]
    names = [n for n in dict.fromkeys(names) if n != NONE]
    unknown = [n for n in names if n not in LOGGERS]
    if unknown:
        raise VaekitError(f"loggers: unknown {', '.join(map(repr, unknown))} (expected {' | '.join(LOGGERS)} | "
                          f"{NONE}, or several joined by commas)")
    return names


def check_loggers(spec: str | None) -> None:
    """Import what each named backend needs, so a missing extra is refused (one line naming
    the extra) before a run directory is touched or an epoch trained."""
    for name in parse_loggers(spec):
        backend = LOGGERS[name]
        for module in backend.requires():
            require(module, EXTRA, backend.what)


def open_tracker(spec: str | None, run_dir: str | Path, *, resume: bool = False,
                 config: dict[str, Any] | None = None) -> Tracker:
    """The loggers of ``spec`` opened on ``run_dir``; a new run also gets its settings
    (``config``) as hyper-parameters. The spec's extras are checked first by the caller
    (``check_loggers``, before the run directory is touched)."""
    run_dir = Path(run_dir)
    loggers = {}
    for name in parse_loggers(spec):
        try:
            loggers[name] = LOGGERS[name].open(run_dir, resume=resume)
        except Exception as e:  # before the first epoch: refused with the reason, nothing half-logged
            raise VaekitError(f"--log {name}: cannot open the tracker ({type(e).__name__}: {e})") from None
    tracker = Tracker(loggers)
    if tracker and not resume:
        tracker.log_params(config or {})
    return tracker


def log_pictures(spec: str | None, run_dir: str | Path, step: int) -> None:
    """The run's pictures (its PNG files) to the trackers it was trained with, once written."""
    names = parse_loggers(spec)
    pictures = sorted(Path(run_dir).glob("*.png"))
    if not names or not pictures:
        return
    tracker = open_tracker(spec, run_dir, resume=True)
    tracker.log_images(pictures, step)
    tracker.close()
