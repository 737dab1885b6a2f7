"""`vaekit anomaly fit` and `vaekit anomaly score`: thin commands over ``vaekit.anomaly.commands``.

Registered on the main app in ``vaekit.cli.app``; errors surface through its ``main`` as one
line and exit status 2, like every other command. ``vaekit.anomaly`` is imported inside the
commands: it imports scikit-learn, which every other command would pay for at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import out_console as console
from vaekit.errors import VaekitError

app = typer.Typer(
    name="anomaly",
    help="Anomaly detection: fit a VAE on normal data, score new data, flag what is above a threshold.\n\n"
         "Example: vaekit anomaly fit normal.csv --out runs/detector && "
         "vaekit anomaly score runs/detector new.csv --labels is_anomaly",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command(epilog="Examples:  vaekit anomaly fit normal.csv --out runs/detector  |  "
                    "vaekit anomaly fit good_parts/ --out runs/parts --target-fpr 0.01  |  "
                    "vaekit anomaly fit x.npy --out runs/x --score nll --contamination 0.02")
def fit(
    data: Annotated[str, typer.Argument(help="Normal data: an image folder, .npy/.npz, .csv/.tsv or .parquet.")],
    out: Annotated[Path, options.out("Directory for the detector (created).")],
    score: Annotated[str, typer.Option(help="auto (the preset's: recon+knn for images, "
                                            "elbo+knn+resid for tables), recon (squared reconstruction error), elbo "
                                            "(negative ELBO), nll (importance-sampled negative log-likelihood), "
                                            "knn (distance to the nearest training codes), resid (Mahalanobis "
                                            "distance of the reconstruction residual) or a sum such as recon+knn "
                                            "(Fisher's rule on each part's tail probability among the training "
                                            "scores).")] = "auto",
    contamination: Annotated[float, typer.Option(help="Expected share of anomalies in DATA: the threshold "
                                                      "flags that share of it.")] = 0.1,
    target_fpr: Annotated[Optional[float], typer.Option(help="Instead: threshold at this false-positive rate on a "
                                                             "held-out slice of DATA (which must be normal).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Instead: this anomaly score is the threshold.")] = None,
    holdout_fraction: Annotated[float, typer.Option(help="Share of DATA held out for --target-fpr.")] = 0.1,
    preset: Annotated[str, typer.Option(help="Every setting at once: auto (images for an image folder or "
                                             "(N, H, W) arrays, tables for rows), images or tables.")] = "auto",
    latent_dim: Annotated[str, typer.Option(help="Latent dimensions: auto (the preset's) or a number.")] = "auto",
    epochs: Annotated[str, typer.Option(help="Training epochs: auto (the preset's) or a number.")] = "auto",
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="For experts: replace one of the preset's settings, FIELD=VALUE (repeat the option), e.g. "
                      "--set hidden=64,32 --set trim=0 --set likelihood=gaussian; fields: "
                      "vaekit.anomaly.presets.FIELDS.")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Tables: a column to leave out of the features "
                                                             "(e.g. labels).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Resize image folders to this square size.")] = None,
    color: Annotated[str, typer.Option(help="Image folders: auto, gray or rgb.")] = "auto",
    seed: Annotated[int, options.seed("Random seed (same seed, same detector on CPU).")] = 0,
    device: options.Device = options.DEFAULT_DEVICE,
    threads: options.Threads = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Fit a VAE anomaly detector on normal data and save it (safetensors + JSON)."""
    from vaekit.anomaly import commands  # scikit-learn: only when a detector is fitted
    from vaekit.anomaly.presets import parse_override

    options.use_threads(threads)
    channels = options.color_channels(color)
    params = {"preset": preset, "anomaly_score": score, "contamination": contamination, "target_fpr": target_fpr,
              "threshold": threshold, "holdout_fraction": holdout_fraction, "latent_dim": _latent_dim(latent_dim),
              "epochs": _epochs(epochs), "model": parse_override(set_ or []) or None, "random_state": seed,
              "device": device, "threads": threads, "verbose": not quiet and not json_output}
    summary = commands.fit(data, out, params, label_column=label_column, image_size=image_size,
                           channels=channels, overwrite=overwrite)
    if json_output:
        print(json.dumps(summary))
        return
    console.print(f"fitted on {summary['examples']} examples of shape {tuple(summary['shape'])} "
                  f"(score: {summary['score']}; {_fits_in_words(summary['fits'], summary['scoring_fits'])})")
    console.print(f"threshold {summary['threshold']:.6g} ({summary['threshold_source']}): flags "
                  f"{summary['flagged_in_training']} of the training examples "
                  f"({100 * summary['flagged_fraction_in_training']:.1f}%)")
    console.print(f"wrote {out}   (next: vaekit anomaly score {out} DATA)")


@app.command(epilog="Examples:  vaekit anomaly score runs/detector new.csv  |  "
                    "vaekit anomaly score runs/detector test.csv --labels is_anomaly --json  |  "
                    "vaekit anomaly score runs/parts parts/ --labels labels.txt")
def score(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A detector directory (from vaekit anomaly fit).")],
    data: Annotated[str, typer.Argument(help="Data to score: an image folder, .npy/.npz, .csv/.tsv or .parquet.")],
    labels: Annotated[Optional[str], typer.Option(help="Known labels (1 = anomaly) for ROC / PR curves: a column "
                                                       "of a table, or a file with one label per example.")] = None,
    out: Annotated[Optional[Path], options.out("Directory for the outputs (default RUN/scores-<data>).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Use this threshold instead of the detector's.")
                         ] = None,
    top: Annotated[int, typer.Option(help="Images: how many of the most anomalous to show.")] = 32,
    threads: options.Threads = "auto",
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Score data: scores.csv, histogram.png, most_anomalous.png (images), roc_pr.png (--labels)."""
    from vaekit.anomaly import commands  # scikit-learn: only when data is scored

    options.use_threads(threads)
    summary = commands.score(run, data, labels=labels, out=out, threshold=threshold, top=top)
    if json_output:
        print(json.dumps(summary))
        return
    console.print(f"{summary['examples']} examples scored ({summary['score']}); threshold "
                  f"{summary['threshold']:.6g}: {summary['flagged']} flagged "
                  f"({100 * summary['flagged_fraction']:.1f}%)")
    if "auroc" in summary:
        auroc, ap = summary["auroc"], summary["average_precision"]
        console.print("AUROC " + ("n/a (one class only)" if auroc is None else f"{auroc:.4f}")
                      + ", average precision " + ("n/a" if ap is None else f"{ap:.4f}")
                      + f" ({summary['anomalies_labelled']} labelled anomalies)")
    for path in summary["files"].values():
        console.print(f"wrote {path}")


def _fits_in_words(fits: int, scoring: int) -> str:
    """"1 fit", "4 fits, the last 3 averaged" or "4 fits, the last scoring"."""
    if fits == 1:
        return "1 fit"
    if scoring == 1:
        return f"{fits} fits, the last scoring"
    return f"{fits} fits, " + ("all averaged" if scoring == fits else f"the last {scoring} averaged")


def _auto_or(kind: Callable[[str], Any], option: str, expected: str) -> Any:
    """A parser for an option that takes ``auto`` or a ``kind`` (the detector checks its range)."""

    def parse(value: str) -> Any:
        if value == "auto":
            return value
        try:
            return kind(value)
        except ValueError:
            raise VaekitError(f"{option}: expected auto or {expected}, got '{value}'") from None

    return parse


_epochs = _auto_or(int, "--epochs", "a positive integer")
_latent_dim = _auto_or(int, "--latent-dim", "a positive integer")
