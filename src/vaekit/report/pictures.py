"""The pictures every image run gets after training: reconstructions of held-out examples and
random samples, next to config.json, for a person browsing the run directory; a hierarchical
model also gets ``levels.png``, what its top level fixes and its lower levels vary."""

from __future__ import annotations

from pathlib import Path

import torch

from vaekit.data.bundle import Dataset
from vaekit.plotting.pictures import is_image_run, paired_rows, save_grid
from vaekit.training.runs import Run

RECONSTRUCTIONS_FILE = "reconstructions.png"
SAMPLES_FILE = "samples.png"
LEVELS_FILE = "levels.png"
#: ``levels_grid``: draws of the lower levels per input.
LEVEL_DRAWS = 6


def levels_grid(model: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None = None, *, keep: int = 1,
                draws: int = LEVEL_DRAWS, seed: int = 0) -> torch.Tensor:
    """One row per input: the input, its reconstruction, then ``draws`` decodings that keep its
    top ``keep`` levels and draw the levels below from the prior (``Model.resample_below``)."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    columns = [x, model.reconstruct(x, cond)]
    columns += [model.resample_below(x, keep, cond, generator=generator) for _ in range(draws)]
    return torch.stack(columns, dim=1).flatten(0, 1)


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
    written = [save_grid(pairs, run.path / RECONSTRUCTIONS_FILE, nrow=per_row),
               save_grid(samples, run.path / SAMPLES_FILE, nrow=per_class or 8)]
    if run.model.levels > 1:
        rows = 8
        written.append(save_grid(levels_grid(run.model, x[:rows], None if cond is None else cond[:rows]),
                                 run.path / LEVELS_FILE, nrow=LEVEL_DRAWS + 2))
    return written
