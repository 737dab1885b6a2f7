"""The pictures every image run gets after training: reconstructions of held-out examples and
random samples, next to config.json, for a person browsing the run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from vaekit.data.bundle import Dataset
from vaekit.plotting.pictures import is_image_run, paired_rows, save_grid
from vaekit.training.runs import Run

RECONSTRUCTIONS_FILE = "reconstructions.png"
SAMPLES_FILE = "samples.png"


def write_run_pictures(run: Run, bundle: Dataset, n: int = 32) -> list[Path]:
    """Reconstructions of held-out examples and random samples, saved in the run directory."""
    info = run.data_info
    if not is_image_run(info.shape):
        return []
    test = bundle.test is not None and len(bundle.test)
    held_out, labels = (bundle.test, bundle.test_labels) if test else (bundle.train, bundle.train_labels)
    x = held_out[:n]
    config = run.model.config
    cond = labels[:n] if labels is not None else None  # a conditional model's condition; others ignore it
    generator = torch.Generator().manual_seed(0)
    recon = run.model.reconstruct(x, cond)
    # A conditional model given no labels cycles through its classes: one class per column.
    per_class = config.num_classes if config.conditional and config.num_classes <= 16 else 0
    samples = run.model.sample(8 * per_class or 64, generator=generator)
    pairs, per_row = paired_rows(x, recon)
    return [save_grid(pairs, run.path / RECONSTRUCTIONS_FILE, nrow=per_row),
            save_grid(samples, run.path / SAMPLES_FILE, nrow=per_class or 8)]
