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
    score: Annotated[str, typer.Option(help="auto (recon+knn for images, elbo for tables: the winners on "
                                            "validation splits), recon (squared reconstruction error), elbo "
                                            "(negative ELBO), nll (importance-sampled negative log-likelihood), "
                                            "knn (distance to the nearest training codes) or a sum such as "
                                            "recon+knn (each part standardized on the training data).")] = "auto",
    contamination: Annotated[float, typer.Option(help="Expected share of anomalies in DATA: the threshold "
                                                      "flags that share of it.")] = 0.1,
    target_fpr: Annotated[Optional[float], typer.Option(help="Instead: threshold at this false-positive rate on a "
                                                             "held-out slice of DATA (which must be normal).")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Instead: this anomaly score is the threshold.")] = None,
    holdout_fraction: Annotated[float, typer.Option(help="Share of DATA held out for --target-fpr.")] = 0.1,
    model: Annotated[str, typer.Option(help="vae, or hvae (a hierarchical VAE).")] = "vae",
    latent_dim: Annotated[str, typer.Option(help="Latent dimensions: auto (16 for images, 2 for tables) or a "
                                                 "number.")] = "auto",
    latent_groups: Annotated[Optional[str], typer.Option(help="hvae: latent dims per group, top first "
                                                              "(default: latent-dim twice).")] = None,
    arch: Annotated[str, typer.Option(help="Network: mlp or conv (images).")] = "mlp",
    hidden: Annotated[Optional[str], typer.Option(help="Hidden layer sizes, e.g. 512,256 (default: 512,256 for "
                                                       "images, 128,64,32 for tables).")] = None,
    beta: Annotated[str, typer.Option(help="KL weight: auto (1 for images, 3 for tables) or a number.")
                    ] = "auto",
    likelihood: Annotated[str, typer.Option(help="The decoder's family: auto (bernoulli for images in [0, 1], "
                                                 "student-t for tables), bernoulli, gaussian or student-t.")
                          ] = "auto",
    obs_df: Annotated[str, typer.Option(help="student-t: degrees of freedom, auto (10 for tables) or a "
                                             "number; with --learn-obs-df, where learning starts.")] = "auto",
    learn_obs_df: Annotated[str, typer.Option(help="student-t: learn the degrees of freedom per feature: auto "
                                                   "(yes for tables), yes or no.")] = "auto",
    learn_obs_std: Annotated[str, typer.Option(help="Gaussian decoder (tables): learn a std per feature: auto "
                                                    "(yes for tables, no for images), yes or no.")] = "auto",
    heteroscedastic: Annotated[bool, typer.Option(help="Gaussian decoder: also output a std per example "
                                                       "(An & Cho's reconstruction probability).")] = False,
    min_obs_std: Annotated[float, typer.Option(help="--heteroscedastic: the smallest std (in standardized "
                                                    "units for tables).")] = 0.05,
    epochs: Annotated[str, typer.Option(help="Training epochs: auto (200 for images, 50 for tables) or a "
                                             "number.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    k: Annotated[int, typer.Option("--k", help="Posterior samples per example for elbo and nll.")] = 100,
    neighbors: Annotated[int, typer.Option(help="Nearest training codes averaged over by knn.")] = 10,
    trim: Annotated[str, typer.Option(help="Share of DATA (the highest scores) left out of each refit, for "
                                           "anomalies mixed into it: auto (0.3 for tables, 0 for images), "
                                           "or a number in [0, 0.5).")] = "auto",
    trim_rounds: Annotated[str, typer.Option(help="How many times --trim refits, each without the share of DATA "
                                                  "that the latest fit scores highest: auto (3 for tables, 1 "
                                                  "for images) or a number.")] = "auto",
    standardize: Annotated[str, typer.Option(help="How each feature is scaled, fitted once on DATA: auto "
                                                  "(robust for tables, none for images), robust (median, and "
                                                  "IQR/1.349 or the std, the smaller: anomalies in DATA do not "
                                                  "inflate it), standard (mean and std) or none.")] = "auto",
    ensemble: Annotated[str, typer.Option(help="Which fits score, their scores averaged: refits (every --trim "
                                               "refit), last (the last fit) or all (the first fit on all of "
                                               "DATA too).")] = "refits",
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

    options.use_threads(threads)
    channels = options.color_channels(color)
    params = {"anomaly_score": score, "contamination": contamination, "target_fpr": target_fpr, "threshold": threshold,
              "holdout_fraction": holdout_fraction, "model": model, "latent_dim": _latent_dim(latent_dim),
              "groups": options.int_list(latent_groups, "--latent-groups"), "arch": arch,
              "hidden": options.int_list(hidden, "--hidden"), "beta": _beta(beta),
              "likelihood": likelihood, "obs_df": _obs_df(obs_df), "learn_obs_df": _learn_obs_df(learn_obs_df),
              "learn_obs_std": _learn_obs_std(learn_obs_std), "heteroscedastic": heteroscedastic,
              "min_obs_std": min_obs_std, "epochs": _epochs(epochs),
              "batch_size": batch_size, "lr": lr, "k": k, "n_neighbors": neighbors, "trim": _trim(trim),
              "trim_rounds": _trim_rounds(trim_rounds), "standardize": standardize,
              "ensemble": ensemble, "random_state": seed, "device": device, "threads": threads,
              "verbose": not quiet and not json_output}
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


_trim = _auto_or(float, "--trim", "a number in [0, 0.5)")
_trim_rounds = _auto_or(int, "--trim-rounds", "a positive integer")
_epochs = _auto_or(int, "--epochs", "a positive integer")
_latent_dim = _auto_or(int, "--latent-dim", "a positive integer")
_beta = _auto_or(float, "--beta", "a number >= 0")
_obs_df = _auto_or(float, "--obs-df", "a positive number")


def yes_or_no(value: str) -> bool:
    """``yes`` / ``no`` as a bool; a ``ValueError`` otherwise, which ``_auto_or`` words as an error."""
    if value not in ("yes", "no"):
        raise ValueError(value)
    return value == "yes"


_learn_obs_std = _auto_or(yes_or_no, "--learn-obs-std", "yes or no")
_learn_obs_df = _auto_or(yes_or_no, "--learn-obs-df", "yes or no")
