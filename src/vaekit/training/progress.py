"""The live training display: a Rich progress bar with loss, recon and KL.

Kept apart from the trainer so the loop has no display code in it; disabled (a no-op)
for tests and library use with ``enabled=False``. Output goes to stderr, so piping a
command's stdout stays clean.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Redrawing the bar every step costs more than a small model's step; a few times a
# second is plenty for a person.
REFRESH_EVERY = 10


class TrainingProgress:
    def __init__(self, epochs: int, steps_per_epoch: int, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self._count = 0
        if not enabled:
            return
        self.console = Console(stderr=True, soft_wrap=True, highlight=False)
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}  recon {task.fields[recon]:.3f}  KL {task.fields[kl]:.3f}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None

    def __enter__(self) -> TrainingProgress:
        if self.enabled:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)

    def _ensure_task(self) -> None:
        if self.task is None:
            self.task = self.bar.add_task("train", total=self.steps_per_epoch, epoch=1, epochs=self.epochs,
                                          loss=float("nan"), recon=float("nan"), kl=float("nan"))

    def step(self, loss: float, recon: float, kl: float) -> None:
        if not self.enabled:
            return
        self._ensure_task()
        self._count += 1
        if self._count % REFRESH_EVERY == 0 or self._count == self.steps_per_epoch:
            self.bar.update(self.task, completed=self._count, loss=loss, recon=recon, kl=kl)

    def end_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._ensure_task()
        self._count = 0
        self.bar.update(self.task, completed=0, epoch=min(row["epoch"] + 1, self.epochs))
        # About twenty summary lines per run, plus the last: every epoch is in metrics.jsonl.
        every = max(1, self.epochs // 20)
        if row["epoch"] % every and row["epoch"] != self.epochs and not row.get("stopped_early"):
            return
        val = f"  val -ELBO {row['val_elbo']:.3f}" if "val_elbo" in row else ""
        self.console.print(
            f"epoch {row['epoch']:>3}  loss {row['train_loss']:.3f}  recon {row['train_recon']:.3f}  "
            f"KL {row['train_kl']:.3f}  beta {row['beta']:.3f}{val}  ({row['seconds']:.1f}s)"
        )
