"""What ``reconstruct`` and ``info`` produce from a run (and the CSV writer ``sample`` uses),
for the CLI and Python alike.

Image runs give PNG grids; table runs give CSV files in the data's original units (the
run's standardizer undone), with the training columns as header.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from vaekit.atomic import atomic_write_text
from vaekit.errors import VaekitError
from vaekit.plotting.pictures import is_image_run, paired_rows, save_grid
from vaekit.training.runs import Run


def _default_output(run: Run, stem: str) -> Path:
    """Where an output the user did not name goes: in the run, replacing nothing there (the run's
    own ``reconstructions.png`` stays: ``reconstructions-2.png``)."""
    return run.new_output_paths(f"{stem}.png" if is_image_run(run.data_info.shape) else f"{stem}.csv")[0]


def write_table(run: Run, rows: torch.Tensor, path: Path) -> Path:
    """Rows in model space -> original units -> CSV with the run's column names."""
    if path.suffix.lower() != ".csv":
        raise VaekitError(f"{path}: this run models tables; expected an output file ending in .csv")
    flat = rows.reshape(len(rows), -1)
    if run.standardizer is not None:
        flat = run.standardizer.inverse_transform(flat)
    columns = run.data_info.columns or [f"x{i}" for i in range(flat.shape[1])]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows([[f"{v:.6g}" for v in row] for row in flat.tolist()])
    atomic_write_text(path, buf.getvalue())
    return path


def write_reconstructions(run: Run, *, n: int = 32, split: str = "test", output: Path | None = None
                          ) -> tuple[Path, float]:
    """Reconstruct ``n`` examples of ``split``; returns the file written and the mean squared error."""
    if n < 1:
        raise VaekitError(f"-n: expected at least 1, got {n}")
    if run.model.sequences:
        raise VaekitError(f"{run.path} models sequences (molecules): its report.html shows held-out molecules and "
                          "their reconstructions; in Python: m = MoleculeModel.load(run); m.decode(m.encode(smiles))")
    bundle = run.load_data()
    x = bundle.split(split)[:n]
    labels = getattr(bundle, f"{split}_labels")
    recon = run.model.reconstruct(x, labels[:n] if labels is not None else None)
    error = (recon - x).pow(2).mean().item()
    path = Path(output) if output else _default_output(run, "reconstructions")
    if is_image_run(run.data_info.shape):
        pairs, per_row = paired_rows(x, recon)
        return save_grid(pairs, path, nrow=per_row), error
    return write_table(run, recon, path), error


#: How the training summary's test -ELBO is estimated (``Trainer.evaluate``), as ``info`` states it.
TEST_ELBO_ESTIMATE = ("one draw of z per example, at the end of training (vaekit evaluate averages the "
                      "reconstruction term over several draws, so its -ELBO differs slightly)")


def describe_run(run: Run) -> dict[str, Any]:
    """A run's settings and results as nested plain values."""
    metrics = run.metrics
    last = metrics[-1] if metrics else {}
    n_params = sum(p.numel() for p in run.model.parameters())
    summary = run.summary
    return {
        "run": {"path": str(run.path), "vaekit_version": run.config.get("vaekit_version", "?"),
                "parameters": n_params},
        "data": {**run.config["data"]["config"], "shape": run.data_info.shape,
                 "likelihood": run.data_info.likelihood},
        "model": run.config["model"],
        "train": run.config["train"],
        "results": {
            "epochs_done": last.get("epoch", 0),
            "final_train_elbo": last.get("train_elbo"),
            "final_val_elbo": last.get("val_elbo"),
            "best_epoch": summary.get("best_epoch"),
            "threads": last.get("threads"),  # the compute threads training used (train.threads resolved)
            "test_elbo": summary.get("test", {}).get("elbo"),
            "test_recon": summary.get("test", {}).get("recon"),
            "test_kl": summary.get("test", {}).get("kl"),
            # say how the figure was made: `vaekit evaluate` averages several draws, so it differs a little
            "test_elbo_estimate": TEST_ELBO_ESTIMATE,
        },
    }
