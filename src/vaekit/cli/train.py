"""`vaekit train`: flags over a settings file over the config dataclasses' defaults.

Every flag that sets a config field defaults to ``None`` (so a ``--config`` file or ``--set``
can supply the value) and is listed once in ``FIELDS``: the body routes each flag by it, and
``--help`` shows the field's effective default, read from ``TrainConfig``, ``DataConfig`` and
the model configs of ``vaekit.models.MODELS`` (see ``shown_default``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import typer

from vaekit import pipeline
from vaekit.cli import options
from vaekit.cli.options import out_console
from vaekit.data.config import DataConfig
from vaekit.data.molecules.tokens import DEFAULT_TOKENS
from vaekit.errors import VaekitError
from vaekit.models import MODELS
from vaekit.objectives.regularizers import DEFAULT_TC_WEIGHT
from vaekit.plotting.pictures import terminal_preview
from vaekit.report.page import REPORT_FILE
from vaekit.report.pictures import RECONSTRUCTIONS_FILE, SAMPLES_FILE
from vaekit.training import TrainConfig, distributed, settings
from vaekit.training.config import AUTO_EPOCHS

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

#: Each parameter of ``train`` that sets a config field -> (settings section, field).
FIELDS: dict[str, tuple[str, str]] = {
    "data": ("data", "source"), "model": ("model", "model"),
    **{p: ("model", p) for p in ("arch", "latent_dim", "hidden", "likelihood", "obs_df", "learn_obs_df",
                                 "learn_obs_std", "heteroscedastic", "condition", "label_layers", "center_codes",
                                 "codebook_size", "code_dim", "lmbda")},
    "conv_channels": ("model", "channels"), "latent_groups": ("model", "groups"),
    **{p: ("train", p) for p in ("beta", "epochs", "batch_size", "lr", "lr_schedule", "kl_anneal", "anneal_per",
                                 "free_bits", "objective", "tc_weight", "capacity", "recon_term", "recon_weight",
                                 "iw_samples", "grad_clip", "early_stopping", "seed", "device", "precision",
                                 "fused_optimizer", "threads")},
    "compile_step": ("train", "compile"), "log": ("train", "loggers"),
    **{p: ("data", p) for p in ("val_fraction", "image_size", "limit", "label_column", "tokens", "properties",
                                "augment", "smiles_column")},
    "color": ("data", "channels"),
}
#: Parameters of ``train`` that set no config field: where the run goes and how settings are read.
CLI_ONLY = ("out", "overwrite", "resume", "config", "assignments", "quiet")
#: Flags whose text is not the field's value.
def epochs_value(value: str | None) -> int | str | None:
    """``--epochs``: a count, or ``auto`` (``TrainConfig.epochs``; the range is its check)."""
    if value is None or value.strip().lower() == AUTO_EPOCHS:
        return None if value is None else AUTO_EPOCHS
    try:
        return int(value)
    except ValueError:
        raise VaekitError(f"--epochs: expected auto or a count of at least 1, got '{value}'") from None


PARSERS: dict[str, Callable[[Any], Any]] = {
    "epochs": epochs_value,
    "hidden": lambda v: options.int_list(v, "--hidden"),
    "conv_channels": lambda v: options.int_list(v, "--conv-channels"),
    "latent_groups": lambda v: options.int_list(v, "--latent-groups"),
    "color": options.color_channels,
    "properties": options.names,
}
#: Effective defaults that no dataclass holds: the family ``pipeline.train`` builds when none is
#: named, what the pipeline puts in from the data (``runs.model_config_for``, ``data.load``),
#: and the total-correlation weight each objective implies.
SHOWN = {"model": "vae", "likelihood": "from the data", "color": "auto",
         "tc_weight": ", ".join(f"{k}: {v:g}" for k, v in DEFAULT_TC_WEIGHT.items())}


def _field_default(cls: type, name: str) -> Any:
    spec = {f.name: f for f in fields(cls)}[name]
    return spec.default_factory() if spec.default is MISSING else spec.default


def _shown(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return name.replace("_", "-") if value else "no-" + name.replace("_", "-")  # as click shows bool flags
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def shown_default(param: str) -> str | None:
    """What ``--help`` shows as ``param``'s default: its config field's default, then the model
    families' own defaults where they differ (a seqvae's batch size). ``None``: no default."""
    if param in SHOWN:
        return SHOWN[param]
    section, name = FIELDS[param]
    if section == "model":
        owners = [(family, c) for family, (_, c) in MODELS.items() if name in {f.name for f in fields(c)}]
        value = _field_default(owners[0][1], name)
        # other families' own defaults; 0, None and [] there mean "derived" (an hvae's latent_dim from its groups)
        others = {family: _field_default(c, name) for family, c in owners[1:]}
    else:
        cls, attr = (TrainConfig, "train_defaults") if section == "train" else (DataConfig, "data_defaults")
        value = _field_default(cls, name)
        others = {family: getattr(c, attr)[name] for family, (_, c) in MODELS.items() if name in getattr(c, attr)}
    extra = [f"{family}: {_shown(v, name)}" for family, v in others.items() if v and v != value]
    text = "; ".join(([] if value is None else [_shown(value, name)]) + extra)
    return text or None


def field(param: str, help: str, *decls: str) -> Any:
    """The option of ``train`` parameter ``param`` (a key of ``FIELDS``), showing its default."""
    default = shown_default(param)
    return typer.Option(*decls, help=help, show_default=default if default is not None else True)


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
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="Dataset name (digits, mnist, fashion-mnist, mnist-binarized, "
                                              "frey-faces, olivetti-faces; molecules: moses, zinc250k) or a "
                                              "path: image folder, .npy/.npz, .csv, .parquet, .smi.")] = "digits",
    model: Annotated[Optional[str], field("model", "Model family: vae; cvae (conditioned on the data's class "
                                                   "labels); vqvae (discrete codes with a learned autoregressive "
                                                   "prior); hvae (a hierarchy of latent groups, top-down "
                                                   "inference); seqvae (molecules: a GRU sequence VAE on SELFIES "
                                                   "or SMILES tokens); codec (a learned lossy image codec).")
                     ] = None,
    latent_groups: Annotated[Optional[str], field("latent_groups", "hvae: latent dims per group, top group first, "
                                                                   "e.g. 16,32.")] = None,
    codebook_size: Annotated[Optional[int], field("codebook_size", "vqvae: codes in the codebook (K).")] = None,
    code_dim: Annotated[Optional[int], field("code_dim", "vqvae: dims of each code (D).")] = None,
    lmbda: Annotated[Optional[float], field("lmbda", "codec: bits cost LMBDA squared error each (loss per pixel "
                                                     "MSE + LMBDA * bpp; larger, smaller files).")] = None,
    condition: Annotated[Optional[str], field("condition", "cvae: how the label enters the networks, onehot or "
                                                           "embedding.")] = None,
    label_layers: Annotated[Optional[str], field("label_layers", "cvae: where the label enters the networks: "
                                                                 "first (the first layer of each), decoder (also "
                                                                 "every later layer of the decoder, as a scale "
                                                                 "and shift of its output) or all (every layer of "
                                                                 "both).")] = None,
    center_codes: Annotated[Optional[bool], field("center_codes", "cvae: centre each class's codes on the "
                                                                  "prior's mean, so that the decoder reads the "
                                                                  "label (samples follow --label).")] = None,
    label_column: Annotated[Optional[str], field("label_column", "Tables: the column holding class labels "
                                                                 "(excluded from the features).")] = None,
    arch: Annotated[Optional[str], field("arch", "Network: mlp or conv.")] = None,
    latent_dim: Annotated[Optional[int], field("latent_dim", "Latent dimensions.")] = None,
    hidden: Annotated[Optional[str], field("hidden", "Hidden layer sizes, e.g. 512,256.")] = None,
    conv_channels: Annotated[Optional[str], field("conv_channels", "Conv channels per stage, e.g. 32,64.")] = None,
    likelihood: Annotated[Optional[str], field("likelihood", "auto, bernoulli, gaussian or student-t (heavy "
                                                             "tails, for data with outliers).")] = None,
    obs_df: Annotated[Optional[float], field("obs_df", "student-t: degrees of freedom.")] = None,
    learn_obs_df: Annotated[Optional[bool], field("learn_obs_df", "student-t: learn the degrees of freedom per "
                                                                  "feature, from --obs-df on.")] = None,
    learn_obs_std: Annotated[Optional[bool], field("learn_obs_std", "Gaussian / Student-t: learn the output "
                                                                    "std (scale).")] = None,
    heteroscedastic: Annotated[Optional[bool], field("heteroscedastic", "Gaussian: the decoder also outputs a "
                                                                        "std per example (at least "
                                                                        "model.min_obs_std).")] = None,
    beta: Annotated[Optional[float], field("beta", "KL weight (beta-VAE when > 1).")] = None,
    epochs: Annotated[Optional[str], field("epochs", "Epochs (with --resume: the new total); auto: at least 20 "
                                                     "epochs and 1,000 optimizer updates.")] = None,
    batch_size: Annotated[Optional[int], field("batch_size", "Batch size.")] = None,
    lr: Annotated[Optional[float], field("lr", "Adam learning rate.")] = None,
    lr_schedule: Annotated[Optional[str], field("lr_schedule", "constant or cosine (decay to 0 over the run).")
                           ] = None,
    kl_anneal: Annotated[Optional[str], field("kl_anneal", "KL schedule: none | brief | linear:EPOCHS | "
                                                           "cyclical:CYCLES[:RATIO].")] = None,
    anneal_per: Annotated[Optional[str], field("anneal_per", "Apply the schedule per step or per epoch.")] = None,
    free_bits: Annotated[Optional[float], field("free_bits", "KL floor per latent dimension, nats.")] = None,
    objective: Annotated[Optional[str], field("objective", "elbo; iwae (importance-weighted bound, Burda et "
                                                           "al. 2015); btcvae or factorvae (penalise the total "
                                                           "correlation of the latents: disentangling).")] = None,
    tc_weight: Annotated[Optional[float], field("tc_weight", "btcvae/factorvae: weight on the total "
                                                             "correlation.")] = None,
    capacity: Annotated[Optional[str], field("capacity", "With elbo: beta * |KL - C|, C rising linearly, given "
                                                         "as C_MAX:EPOCHS in nats (Burgess et al. 2018).")] = None,
    recon_term: Annotated[Optional[str], field("recon_term", "Images: none, ssim or perceptual (features of a "
                                                             "CNN trained on the data's labels first): an extra "
                                                             "reconstruction term for sharper images.")] = None,
    recon_weight: Annotated[Optional[float], field("recon_weight", "Weight of --recon-term (1 weighs it like the "
                                                                   "likelihood's per-pixel nats).")] = None,
    iw_samples: Annotated[Optional[int], field("iw_samples", "Importance samples per example for --objective "
                                                             "iwae.")] = None,
    grad_clip: Annotated[Optional[float], field("grad_clip", "Max gradient norm (0 = off).")] = None,
    early_stopping: Annotated[Optional[int], field("early_stopping", "Patience in epochs (0 = off).")] = None,
    val_fraction: Annotated[Optional[float], field("val_fraction", "Share of training data for validation.")
                            ] = None,
    image_size: Annotated[Optional[int], field("image_size", "Resize image folders to this square size.")] = None,
    color: Annotated[Optional[str], field("color", "Image folders: auto, gray or rgb.")] = None,
    limit: Annotated[Optional[int], field("limit", "Use only the first N training examples (molecules: a seeded "
                                                   "random N of the source and of its test set).")] = None,
    tokens: Annotated[Optional[str], field("tokens", "Molecules: smiles (characters), kekule (SMILES of the "
                                                     "Kekulé form: every bond spelled out) or selfies (every "
                                                     f"decoded string is a molecule); default {DEFAULT_TOKENS}.")
                      ] = None,
    properties: Annotated[Optional[str], field("properties", "Molecules: numeric columns a property head learns "
                                                             "from z, e.g. logP,qed.")] = None,
    augment: Annotated[Optional[int], field("augment", "Molecules: randomised SMILES added per training "
                                                       "molecule.")] = None,
    smiles_column: Annotated[Optional[str], field("smiles_column", "Molecules: the SMILES column of a CSV.")
                             ] = None,
    seed: Annotated[Optional[int], options.seed("Random seed (same seed, same run on CPU).",
                                                show_default=shown_default("seed"))] = None,
    device: Annotated[Optional[str], options.device(show_default=shown_default("device"))] = None,
    threads: Annotated[Optional[str], options.threads(show_default=shown_default("threads"))] = None,
    precision: Annotated[Optional[str], field("precision", "float32, bfloat16 (autocast matrix products; loss and "
                                                           "optimizer stay float32), or auto (bfloat16 on a CPU "
                                                           "with native bfloat16, else float32).")] = None,
    compile_step: Annotated[Optional[bool], field("compile_step", "torch.compile the training step (needs a C++ "
                                                                  "compiler).", "--compile/--no-compile")] = None,
    fused_optimizer: Annotated[Optional[bool], field("fused_optimizer", "Adam's fused single-kernel update.")
                               ] = None,
    log: Annotated[Optional[str], field("log", "Experiment tracking: tensorboard (RUN/tensorboard), mlflow "
                                               "(MLFLOW_TRACKING_URI, else RUN/mlflow), both as "
                                               "tensorboard,mlflow, or none. Needs the track extra.")] = None,
    out: Annotated[Optional[Path], options.out("Run directory (default runs/<data>-<arch>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="YAML or TOML settings file; flags override it.")] = None,
    assignments: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="Any config field, repeatable: --set decoder_hidden=768 "
                                           "--set train.lr=0.0005 (over --config, under the flags).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar or preview.")] = False,
) -> None:
    """Train a VAE and write a run directory (config, weights, checkpoint, metrics, pictures)."""
    base = settings.read_settings_file(config) if config else {s: {} for s in settings.SECTIONS}
    base = settings.merge(base, settings.parse_assignments(assignments or []))
    flags: dict[str, dict[str, Any]] = {s: {} for s in settings.SECTIONS}
    for param, (section, name) in FIELDS.items():
        value = ctx.params[param]
        flags[section][name] = PARSERS[param](value) if param in PARSERS else value
    if data == "digits" and (resume or "source" in base["data"]):  # the argument's default: not asked for
        del flags["data"]["source"]
    merged = settings.merge(base, flags)
    if resume:
        if out is None:
            raise VaekitError("--resume needs --out RUN_DIR (the run to continue)")
        if flags["train"]["epochs"] == AUTO_EPOCHS:
            raise VaekitError("--epochs auto: a resumed run continues to a new total; give it as a count")
        run = pipeline.resume(out, epochs=flags["train"]["epochs"], progress=not quiet, settings=merged)
    else:
        run = pipeline.train(merged["data"], merged["model"], merged["train"], out, overwrite=overwrite,
                             progress=not quiet)
    if distributed.is_main():  # under torchrun, one process speaks
        _report_run(run, preview=not quiet)


def _report_run(run: Any, preview: bool) -> None:
    summary = run.summary
    out_console.print(f"run saved to [bold]{run.path}[/bold]")
    if "test" in summary:
        t = summary["test"]
        out_console.print(f"test: -ELBO {t['elbo']:.2f} nats (recon {t['recon']:.2f}, KL {t['kl']:.2f}) "
                          f"after {summary['epochs']} epochs, best epoch {summary['best_epoch']}, "
                          f"{summary['seconds_total']:.1f}s of training")
    for name in (RECONSTRUCTIONS_FILE, SAMPLES_FILE, REPORT_FILE):
        if (run.path / name).is_file():
            out_console.print(f"wrote {run.path / name}")
    if preview and (run.path / SAMPLES_FILE).is_file():
        _preview(run)


def _preview(run: Any) -> None:
    bundle = run.load_data()
    x, labels = (bundle.test, bundle.test_labels) if bundle.test is not None else (bundle.train, bundle.train_labels)
    x = x[:8]
    cond = labels[:8] if labels is not None else None  # an unconditional model ignores them
    terminal_preview(x, "inputs")
    terminal_preview(run.model.reconstruct(x, cond), "reconstructions")
    terminal_preview(run.model.sample(8, generator=torch.Generator().manual_seed(0)), "random samples")
