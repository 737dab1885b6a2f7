"""The ``vaekit`` command: a thin layer over the Python API (no logic of its own).

Every user error surfaces as one line ``error: ...`` on stderr and exit status 2; Ctrl-C
during training exits with 130 after saying how to resume.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from vaekit.errors import VaekitError

app = typer.Typer(
    name="vaekit",
    help="Train, inspect and sample variational autoencoders.\n\nExample: vaekit train digits --epochs 30",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def _int_list(value: str | None, flag: str) -> list[int] | None:
    if value is None:
        return None
    try:
        items = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise VaekitError(f"{flag}: expected comma-separated integers like 512,256, got '{value}'") from None
    if not items or min(items) < 1:
        raise VaekitError(f"{flag}: expected positive integers like 512,256, got '{value}'")
    return items


COLOR_CHANNELS = {"auto": None, "gray": 1, "rgb": 3}


@app.command(epilog="Examples:  vaekit train digits --epochs 30 --out runs/digits  |  "
                    "vaekit train mnist-binarized --latent-dim 32 --epochs 10  |  "
                    "vaekit train photos/ --arch conv --image-size 64  |  vaekit train table.csv --latent-dim 4  |  "
                    "vaekit train --resume --out runs/digits --epochs 60  |  "
                    "vaekit train mnist --model cvae --epochs 10  |  "
                    "vaekit train fashion-mnist --model vqvae --epochs 10  |  "
                    "vaekit train mnist-binarized --model hvae --latent-groups 16,32  |  "
                    "vaekit train moses --model seqvae --limit 250000 --epochs 5  |  "
                    "vaekit train zinc250k --model seqvae --properties logP,qed --set decoder_hidden=768")
def train(
    data: Annotated[str, typer.Argument(help="Dataset name (digits, mnist, fashion-mnist, mnist-binarized, "
                                              "frey-faces, olivetti-faces; molecules: moses, zinc250k) or a "
                                              "path: image folder, .npy/.npz, .csv, .parquet, .smi.")] = "digits",
    model: Annotated[Optional[str], typer.Option(help="Model family: vae; cvae (conditioned on the data's "
                                                      "class labels); vqvae (discrete codes with a learned "
                                                      "autoregressive prior); hvae (a hierarchy of latent groups, "
                                                      "top-down inference); seqvae (molecules: a GRU sequence "
                                                      "VAE on SELFIES or SMILES tokens).")] = None,
    latent_groups: Annotated[Optional[str], typer.Option(help="hvae: latent dims per group, top group first, "
                                                              "e.g. 16,32.")] = None,
    codebook_size: Annotated[Optional[int], typer.Option(help="vqvae: codes in the codebook (K).")] = None,
    code_dim: Annotated[Optional[int], typer.Option(help="vqvae: dims of each code (D).")] = None,
    lmbda: Annotated[Optional[float], typer.Option(help="codec: bits cost LMBDA squared error each (loss per "
                                                        "pixel MSE + LMBDA * bpp; larger, smaller files).")] = None,
    condition: Annotated[Optional[str], typer.Option(help="cvae: how the label enters the networks, onehot or "
                                                          "embedding.")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Tables: the column holding class labels "
                                                             "(excluded from the features).")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Network: mlp or conv.")] = None,
    latent_dim: Annotated[Optional[int], typer.Option(help="Latent dimensions.")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="Hidden layer sizes, e.g. 512,256.")] = None,
    conv_channels: Annotated[Optional[str], typer.Option(help="Conv channels per stage, e.g. 32,64.")] = None,
    likelihood: Annotated[Optional[str], typer.Option(help="auto, bernoulli, gaussian or student-t (heavy "
                                                           "tails, for data with outliers).")] = None,
    obs_df: Annotated[Optional[float], typer.Option(help="student-t: degrees of freedom (default 3).")] = None,
    learn_obs_df: Annotated[Optional[bool], typer.Option(help="student-t: learn the degrees of freedom per "
                                                              "feature, from --obs-df on.")] = None,
    learn_obs_std: Annotated[Optional[bool], typer.Option(help="Gaussian / Student-t: learn the output "
                                                               "std (scale).")] = None,
    heteroscedastic: Annotated[Optional[bool], typer.Option(help="Gaussian: the decoder also outputs a std per "
                                                                 "example (at least model.min_obs_std).")] = None,
    beta: Annotated[Optional[float], typer.Option(help="KL weight (beta-VAE when > 1).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (with --resume: the new total).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(help="constant or cosine (decay to 0 over the run).")
                           ] = None,
    kl_anneal: Annotated[Optional[str], typer.Option(
        help="KL schedule: none | brief | linear:EPOCHS | cyclical:CYCLES[:RATIO].")] = None,
    anneal_per: Annotated[Optional[str], typer.Option(help="Apply the schedule per step or per epoch.")] = None,
    free_bits: Annotated[Optional[float], typer.Option(help="KL floor per latent dimension, nats.")] = None,
    objective: Annotated[Optional[str], typer.Option(help="elbo; iwae (importance-weighted bound, Burda et al. "
                                                          "2015); btcvae or factorvae (penalise the total "
                                                          "correlation of the latents: disentangling).")] = None,
    tc_weight: Annotated[Optional[float], typer.Option(help="btcvae/factorvae: weight on the total correlation "
                                                            "(default 6 / 35).")] = None,
    capacity: Annotated[Optional[str], typer.Option(help="With elbo: beta * |KL - C|, C rising linearly, given "
                                                         "as C_MAX:EPOCHS in nats (Burgess et al. 2018).")] = None,
    recon_term: Annotated[Optional[str], typer.Option(help="Images: none, ssim or perceptual (features of a CNN "
                                                           "trained on the data's labels first): an extra "
                                                           "reconstruction term for sharper images.")] = None,
    recon_weight: Annotated[Optional[float], typer.Option(help="Weight of --recon-term (1 weighs it like the "
                                                               "likelihood's per-pixel nats).")] = None,
    iw_samples: Annotated[Optional[int], typer.Option(help="Importance samples per example for --objective iwae."
                                                      )] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Max gradient norm (0 = off).")] = None,
    early_stopping: Annotated[Optional[int], typer.Option(help="Patience in epochs (0 = off).")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of training data for validation.")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Resize image folders to this square size.")] = None,
    color: Annotated[Optional[str], typer.Option(help="Image folders: auto, gray or rgb.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training examples (molecules: a "
                                                      "seeded random N of the source and of its test set).")
                     ] = None,
    tokens: Annotated[Optional[str], typer.Option(help="Molecules: selfies (default; every decoded string is a "
                                                       "molecule) or smiles (characters).")] = None,
    properties: Annotated[Optional[str], typer.Option(help="Molecules: numeric columns a property head learns "
                                                           "from z, e.g. logP,qed.")] = None,
    augment: Annotated[Optional[int], typer.Option(help="Molecules: randomised SMILES added per training "
                                                        "molecule.")] = None,
    smiles_column: Annotated[Optional[str], typer.Option(help="Molecules: the SMILES column of a CSV.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (same seed, same run on CPU).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.")] = None,
    precision: Annotated[Optional[str], typer.Option(
        help="float32, or bfloat16 (autocast matrix products; loss and optimizer stay float32).")] = None,
    compile_step: Annotated[Optional[bool], typer.Option(
        "--compile/--no-compile", help="torch.compile the training step (needs a C++ compiler).")] = None,
    fused_optimizer: Annotated[Optional[bool], typer.Option(help="Adam's fused single-kernel update.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default runs/<data>-<arch>).")
                   ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="YAML or TOML settings file; flags override it.")] = None,
    assignments: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="Any config field, repeatable: --set decoder_hidden=768 "
                                           "--set train.lr=0.0005 (over --config, under the flags).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar or preview.")] = False,
) -> None:
    """Train a VAE and write a run directory (config, weights, checkpoint, metrics, pictures)."""
    from vaekit import pipeline
    from vaekit.training import settings

    if resume:
        if out is None:
            raise VaekitError("--resume needs --out RUN_DIR (the run to continue)")
        run = pipeline.resume(out, epochs=epochs, progress=not quiet)
    else:
        base = settings.read_settings_file(config) if config else {s: {} for s in settings.SECTIONS}
        base = settings.merge(base, settings.parse_assignments(assignments or []))
        flags: dict[str, dict[str, Any]] = {
            "model": {"model": model, "arch": arch, "latent_dim": latent_dim, "hidden": _int_list(hidden, "--hidden"),
                      "channels": _int_list(conv_channels, "--conv-channels"), "likelihood": likelihood,
                      "obs_df": obs_df, "learn_obs_df": learn_obs_df, "learn_obs_std": learn_obs_std,
                      "heteroscedastic": heteroscedastic, "condition": condition,
                      "groups": _int_list(latent_groups, "--latent-groups"), "codebook_size": codebook_size,
                      "code_dim": code_dim, "lmbda": lmbda},
            "train": {"beta": beta, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                      "lr_schedule": lr_schedule, "kl_anneal": kl_anneal,
                      "anneal_per": anneal_per, "free_bits": free_bits, "objective": objective,
                      "tc_weight": tc_weight, "capacity": capacity, "recon_term": recon_term,
                      "recon_weight": recon_weight,
                      "iw_samples": iw_samples, "grad_clip": grad_clip,
                      "early_stopping": early_stopping, "seed": seed, "device": device,
                      "precision": precision, "compile": compile_step, "fused_optimizer": fused_optimizer},
            "data": {"val_fraction": val_fraction, "image_size": image_size, "limit": limit,
                     "channels": _color(color), "label_column": label_column, "tokens": tokens,
                     "properties": _names(properties), "augment": augment, "smiles_column": smiles_column},
        }
        if data != "digits" or "source" not in base["data"]:
            flags["data"]["source"] = data
        merged = settings.merge(base, flags)
        run = pipeline.train(merged["data"], merged["model"], merged["train"], out, overwrite=overwrite,
                         progress=not quiet)
    from vaekit.training import distributed

    if distributed.is_main():  # under torchrun, one process speaks
        _report_run(run, preview=not quiet)


def _names(value: str | None) -> list[str] | None:
    """``--properties logP,qed`` as a list of column names."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _color(value: str | None) -> int | None:
    if value is None:
        return None
    if value not in COLOR_CHANNELS:
        raise VaekitError(f"--color: expected auto, gray or rgb, got '{value}'")
    return COLOR_CHANNELS[value]


def _report_run(run: Any, preview: bool) -> None:
    from vaekit.report.pictures import RECONSTRUCTIONS_FILE, SAMPLES_FILE

    summary = run.summary
    out_console.print(f"run saved to [bold]{run.path}[/bold]")
    if "test" in summary:
        t = summary["test"]
        out_console.print(f"test: -ELBO {t['elbo']:.2f} nats (recon {t['recon']:.2f}, KL {t['kl']:.2f}) "
                          f"after {summary['epochs']} epochs, best epoch {summary['best_epoch']}, "
                          f"{summary['seconds_total']:.1f}s of training")
    from vaekit.report.page import REPORT_FILE

    for name in (RECONSTRUCTIONS_FILE, SAMPLES_FILE, REPORT_FILE):
        if (run.path / name).is_file():
            out_console.print(f"wrote {run.path / name}")
    if preview and (run.path / SAMPLES_FILE).is_file():
        _preview(run)


def _preview(run: Any) -> None:
    import torch

    from vaekit.plotting.pictures import terminal_preview

    bundle = run.load_data()
    x, labels = (bundle.test, bundle.test_labels) if bundle.test is not None else (bundle.train, bundle.train_labels)
    x = x[:8]
    cond = labels[:8] if labels is not None else None  # an unconditional model ignores them
    terminal_preview(x, "inputs")
    terminal_preview(run.model.reconstruct(x, cond), "reconstructions")
    terminal_preview(run.model.sample(8, generator=torch.Generator().manual_seed(0)), "random samples")


@app.command(epilog="Example:  vaekit reconstruct runs/digits -n 32 -o recon.png")
def reconstruct(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    n: Annotated[int, typer.Option("-n", help="How many examples.")] = 32,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG (images) or CSV (tables).")] = None,
) -> None:
    """Reconstruct held-out examples: a grid of inputs over reconstructions, or a CSV for tables."""
    from vaekit.latent.writers import write_reconstructions
    from vaekit.training import runs

    run = runs.open_run(run_dir)
    path, error = write_reconstructions(run, n=n, split=split, output=output)
    out_console.print(f"mean squared reconstruction error on {n} {split} examples: {error:.4f}")
    out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit sample runs/digits -n 64 -o samples.png --temperature 0.8 --seed 0  |  "
                    "vaekit sample runs/mnist --sampler gmm --components 10 --binarize  |  "
                    "vaekit sample runs/mnist --sampler diffusion --steps 16  |  "
                    "vaekit sample runs/mnist-cvae --label 5 -n 64")
def sample(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG (images) or CSV (tables).")] = None,
    temperature: Annotated[float, typer.Option(help="Scale of the sampler's standard deviation.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="prior (N(0, I)); gmm (mixture fitted to the training codes); "
                                              "diffusion (a flow-matching model of the training codes, "
                                              "latent diffusion). gmm and diffusion are fitted and saved in the "
                                              "run on first use.")] = "prior",
    steps: Annotated[Optional[int], typer.Option(help="--sampler diffusion: integration steps (default 32; "
                                                      "fewer is faster, coarser).")] = None,
    components: Annotated[Optional[int], typer.Option(help="GMM components (default: the saved fit, or 10).")
                          ] = None,
    binarize: Annotated[bool, typer.Option(help="Bernoulli draws (binary images) instead of mean images.")] = False,
    label: Annotated[Optional[str], typer.Option(help="Conditional runs (cvae): draw this class, by index or "
                                                      "name (default: every class in turn, one per column).")
                     ] = None,
) -> None:
    """Decode random draws from the prior or from a mixture fitted to the training codes."""
    from vaekit.latent.commands import write_samples
    from vaekit.training import runs

    path = write_samples(runs.open_run(run_dir), n=n, output=output, temperature=temperature, seed=seed,
                         sampler=sampler, components=components, binarize=binarize, label=label, steps=steps)
    out_console.print(f"wrote {path}")


@app.command(epilog="Example:  vaekit info runs/digits")
def info(run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
         json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Show a run's settings, training curve end points and test figures."""
    import json

    from vaekit.latent.writers import describe_run
    from vaekit.training import runs

    description = describe_run(runs.open_run(run_dir))
    if json_output:
        print(json.dumps(description))
        return
    for section, values in description.items():
        out_console.print(f"[bold]{section}[/bold]")
        for k, v in (values.items() if isinstance(values, dict) else [("", values)]):
            shown = f"{v:.3f}" if isinstance(v, float) else v
            out_console.print(f"  {k}: {shown}" if k else f"  {shown}", markup=False)  # SELFIES tokens look like markup


# -- latent space ---------------------------------------------------------------------------

SPLIT_HELP = "train, val or test."


@app.command(epilog="Examples:  vaekit interpolate runs/mnist --from 3 --to 17 --steps 10  |  "
                    "vaekit interpolate runs/mnist --from a.png --to b.png --method lerp  |  "
                    "vaekit interpolate runs/mnist --from-class 3 --to-class 8 -o interp.png")
def interpolate(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    start: Annotated[Optional[str], typer.Option("--from", help="Index into --split, or an image file.")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Index into --split, or an image file.")] = None,
    from_class: Annotated[Optional[str], typer.Option(help="Start at this class's mean code.")] = None,
    to_class: Annotated[Optional[str], typer.Option(help="End at this class's mean code.")] = None,
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    steps: Annotated[int, typer.Option(help="Images along the path, both ends included.")] = 10,
    method: Annotated[str, typer.Option(help="slerp (great circle) or lerp (straight line).")] = "slerp",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG strip; a .gif is written beside it.")
                      ] = None,
) -> None:
    """Decode the path between two examples' codes (or two classes' mean codes): a strip and a GIF."""
    from vaekit.latent.commands import write_interpolation
    from vaekit.training import runs

    for path in write_interpolation(runs.open_run(run_dir), start=start, end=end, from_class=from_class,
                                    to_class=to_class, split=split, steps=steps, method=method, output=output):
        out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit arithmetic runs/mnist --class 1 --alpha -2,-1,0,1,2  |  "
                    "vaekit arithmetic runs/faces --with smiling/ --without neutral/ --name smile  |  "
                    "vaekit arithmetic runs/faces --vector smile  |  vaekit arithmetic runs/mnist --analogy 3,17,42")
def arithmetic(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    target_class: Annotated[Optional[str], typer.Option("--class", help="Vector: this class's mean code minus "
                                                                       "the rest's (training labels).")] = None,
    with_dir: Annotated[Optional[str], typer.Option("--with", help="Vector: folder of images with the attribute...")
                        ] = None,
    without_dir: Annotated[Optional[str], typer.Option("--without", help="...minus a folder without it.")] = None,
    vector: Annotated[Optional[str], typer.Option(help="Vector: one saved before, by name.")] = None,
    analogy: Annotated[Optional[str], typer.Option(help="Three indices A,B,C: show decode(zA - zB + zC).")] = None,
    alpha: Annotated[str, typer.Option(help="Multiples of the vector to add, comma-separated.")] = "-2,-1,0,1,2",
    name: Annotated[Optional[str], typer.Option(help="Save the vector under this name.")] = None,
    n: Annotated[int, typer.Option("-n", help="How many inputs (rows).")] = 8,
    split: Annotated[str, typer.Option(help="Split the inputs come from: " + SPLIT_HELP)] = "test",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file.")] = None,
) -> None:
    """Move inputs along an attribute vector (rows = inputs, columns = alphas), or solve an analogy."""
    from vaekit.latent.commands import write_arithmetic
    from vaekit.training import runs

    done = write_arithmetic(runs.open_run(run_dir), target_class=target_class, with_dir=with_dir,
                            without_dir=without_dir, vector=vector, analogy_of=analogy, alphas=alpha, name=name,
                            n=n, split=split, output=output)
    if done.saved_as:
        out_console.print(f"saved vector '{done.saved_as}' in {done.vectors_file}")
    for path in done.paths:
        out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit restyle runs/mnist-cvae --from 0,1,2,3  |  vaekit restyle runs/mnist-cvae "
                    "-n 8 --seed 1 -o restyle.png")
def restyle(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A conditional run directory (--model cvae).")],
    examples: Annotated[Optional[str], typer.Option("--from", help="Comma-separated indices into --split: each "
                                                    "example's code, encoded with its own label.")] = None,
    n: Annotated[int, typer.Option("-n", help="Without --from: how many prior draws (rows).")] = 8,
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    seed: Annotated[int, typer.Option(help="Random seed of the prior draws.")] = 0,
    temperature: Annotated[float, typer.Option(help="Scale of the prior draws.")] = 1.0,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file.")] = None,
) -> None:
    """Conditional style transfer: keep each code z, change the label across every class (rows = codes,
    columns = classes)."""
    from vaekit.latent.commands import write_restyle
    from vaekit.training import runs

    path = write_restyle(runs.open_run(run_dir), examples=examples, n=n, split=split, seed=seed,
                         temperature=temperature, output=output)
    out_console.print(f"wrote {path}")


@app.command(epilog="Example:  vaekit traverse runs/mnist --index 0 --dims 10 --range 3 --steps 9 -o traverse.png")
def traverse(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    index: Annotated[int, typer.Option(help="Example of --split to start from.")] = 0,
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    dims: Annotated[int, typer.Option(help="How many dimensions (rows), most used (highest KL) first.")] = 10,
    span: Annotated[float, typer.Option("--range", help="Sweep each dimension from -RANGE to +RANGE.")] = 3.0,
    steps: Annotated[int, typer.Option(help="Values per dimension (columns).")] = 9,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file.")] = None,
) -> None:
    """Sweep one latent dimension at a time; collapsed (unused) dimensions are marked in red."""
    from vaekit.latent.commands import write_traversal
    from vaekit.training import runs
    from vaekit.training.diagnosis import COLLAPSED_KL

    done = write_traversal(runs.open_run(run_dir), index=index, split=split, dims=dims, span=span, steps=steps,
                           output=output)
    shown = [d for d in done.dims if d in done.collapsed]
    out_console.print(f"collapsed dimensions (KL < {COLLAPSED_KL} nats): {len(done.collapsed)} of {done.latent_dim}"
                      + (f": {', '.join(map(str, done.collapsed))}" if done.collapsed else "")
                      + (f" (shown: {', '.join(map(str, shown))})" if shown else ""))
    out_console.print(f"wrote {done.path}")


@app.command("latent-map", epilog="Example:  vaekit latent-map runs/mnist --split test --method tsne -o latent_map.png")
def latent_map(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    method: Annotated[str, typer.Option(help="auto (the latent itself if 2-D, else t-SNE up to 5000 points, "
                                             "else PCA), pca or tsne.")] = "auto",
    n: Annotated[int, typer.Option("-n", help="At most this many examples (a seeded random subset).")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (subset, t-SNE).")] = 0,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file; with a 2-D latent space "
                                                   "manifold.png is written beside it.")] = None,
) -> None:
    """Scatter the codes of a split in 2-D, coloured by class (tables too)."""
    from vaekit.latent.commands import write_latent_map
    from vaekit.training import runs

    for path in write_latent_map(runs.open_run(run_dir), split=split, method=method, n=n, seed=seed, output=output):
        out_console.print(f"wrote {path}")


@app.command(epilog="Example:  vaekit report runs/digits  (then open runs/digits/report.html)")
def report(run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")]) -> None:
    """Write the run's self-contained report.html (written automatically after training)."""
    from vaekit.report.page import write_report
    from vaekit.training import runs

    out_console.print(f"wrote {write_report(runs.open_run(run_dir))}")


@app.command(epilog="Examples:  vaekit evaluate runs/mnist  |  vaekit evaluate runs/mnist --k 5000 --json  |  "
                    "vaekit evaluate runs/digits --split val --limit 500  |  "
                    "vaekit evaluate runs/shapes --disentanglement")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    split: Annotated[str, typer.Option(help=SPLIT_HELP)] = "test",
    k: Annotated[int, typer.Option("--k", help="Importance samples per example for the NLL.")] = 1000,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N examples of the split.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    disentanglement: Annotated[bool, typer.Option(
        "--disentanglement", help="Instead: MIG, DCI, beta-VAE and FactorVAE scores on a dataset with factor labels "
                                  "(shapes), on --limit grid points (default 10000) drawn with --seed.")] = False,
) -> None:
    """Held-out figures (ELBO, importance-sampled NLL, bits/dim, active units, mutual information,
    blur) and a diagnosis of posterior collapse and blur with the flags to try."""
    import json

    from vaekit.evaluation.evaluate import evaluate_run, evaluation_table
    from vaekit.training import runs

    run = runs.open_run(run_dir)
    if disentanglement:
        from vaekit.evaluation import disentanglement as dis

        with err_console.status(f"scoring the disentanglement of {run_dir}"):
            scores = dis.evaluate_run(run, n=limit or dis.DEFAULT_POINTS, seed=seed, device=device)
        if json_output:
            print(json.dumps(scores))
        else:
            out_console.print(dis.disentanglement_table(run_dir, scores))
        return
    with err_console.status(f"evaluating {run_dir} ({split} split, k={k})"):
        metrics = evaluate_run(run, split=split, k=k, limit=limit, seed=seed, device=device)
    if json_output:
        print(json.dumps(metrics))
        return
    out_console.print(evaluation_table(run_dir, metrics))


from vaekit.cli.anomaly import app as _anomaly_app  # noqa: E402  (the `vaekit anomaly` sub-commands)

app.add_typer(_anomaly_app, name="anomaly")

from vaekit.cli.molecules import app as _molecules_app  # noqa: E402  (the `vaekit molecules` sub-commands)

app.add_typer(_molecules_app, name="molecules")

from vaekit.cli.compress import register as _register_compression  # noqa: E402  (compress, decompress)

_register_compression(app)

from vaekit.cli.serve import register as _register_serving  # noqa: E402  (serve, export)

_register_serving(app)

from vaekit.cli.codes import app as _codes_app  # noqa: E402  (`vaekit encode` and `vaekit decode`, top level)

app.add_typer(_codes_app)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Show a warning a user can act on (invalid SMILES dropped, a collapsed posterior) as one
    line: Python's default adds a file:line that points into vaekit, not at the user's input."""
    err_console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and an exit status.

    Typer runs in standalone mode, so its own usage errors (an unknown option, a missing
    argument) are printed as usual with exit status 2; vaekit's errors surface here.
    """
    from vaekit.training.trainer import TrainingInterrupted

    try:
        with warnings.catch_warnings():  # restores the default display when main returns
            warnings.showwarning = _one_line_warning
            app(args=argv, prog_name="vaekit")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except VaekitError as e:
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)  # '[nH]' stays
        return 2
    except TrainingInterrupted as e:
        err_console.print(f"[yellow]{e}[/yellow]", highlight=False, soft_wrap=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
