"""``--log tensorboard``: event files in ``RUN/tensorboard`` through torch's ``SummaryWriter``
(``tensorboard --logdir runs`` shows every run beside the others)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vaekit.extras import require

#: The modules this backend needs (``registry.check_loggers`` imports them before training).
REQUIRES = ("tensorboard", "torch.utils.tensorboard")
LOG_DIR = "tensorboard"


class TensorBoardLogger:
    """Scalars per epoch, the settings as hyper-parameters (the HPARAMS tab) and as text,
    and the run's pictures as images."""

    def __init__(self, run_dir: Path, *, resume: bool = False) -> None:
        writer = require("torch.utils.tensorboard", "track", "--log tensorboard").SummaryWriter
        self.writer = writer(log_dir=str(Path(run_dir) / LOG_DIR))

    def log_params(self, params: dict[str, bool | int | float | str]) -> None:
        from torch.utils.tensorboard.summary import hparams

        # written into this run's own event file (SummaryWriter.add_hparams would start a second run)
        for summary in hparams(params, {"val_elbo": float("nan"), "train_elbo": float("nan")}):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in params.items()))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a dashboard open during training sees each epoch as it ends

    def log_image(self, name: str, path: Path, step: int) -> None:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(name, pixels, step, dataformats="HWC")

    def close(self, status: str = "FINISHED") -> None:
        self.writer.close()
