"""Train a run end to end: data -> model -> trainer -> the fitted prior -> pictures, sampler, report.

This is the one place that strings the layers together; each step is a lower layer's
public function (``data.load``, ``models.build``, ``training.Trainer``,
``latent.fit_gmm_sampler``, ``report.write_report``), so the same run can be made step by
step from Python.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from vaekit import data as vdata
from vaekit.atomic import building
from vaekit.data.bundle import Dataset
from vaekit.data.config import DataConfig
from vaekit.errors import VaekitError
from vaekit.evaluation.labels import run_label_finding
from vaekit.latent import fit_gmm_sampler
from vaekit.memory import check_memory
from vaekit.models import MODELS, Model, ModelConfig, build
from vaekit.report import write_report, write_run_pictures
from vaekit.serialization import CHECKPOINT_FILE, CONFIG_FILE, load_checkpoint, read_json, write_json
from vaekit.threads import kept as threads_kept
from vaekit.training import distributed
from vaekit.training.runs import (
    SUMMARY_FILE,
    Run,
    default_run_name,
    load,
    model_config_for,
    open_run,
    prepare_directory,
    save,
)
from vaekit.training.tracking import check_loggers, log_pictures
from vaekit.training.trainer import TrainConfig, Trainer, TrainingInterrupted, resolve_device
from vaekit.version import __version__


@threads_kept()  # the trainer sets torch's threads for the run; the caller gets its own count back
def train(
    data: str | DataConfig | dict[str, Any] = "digits",
    model: dict[str, Any] | None = None,
    train: TrainConfig | dict[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Run:
    """Train a model and write its run directory; returns the opened run.

    ``data`` is a dataset name, a path or a ``DataConfig``; ``model`` the model options
    (``latent_dim``, ``arch``, ``hidden``...; shape and likelihood come from the data);
    ``train`` a ``TrainConfig`` or its fields. Bad settings and bad data are rejected
    before anything is written.
    """
    data_config = _as_data_config(data)
    family = MODELS.get((model or {}).get("model", "vae"))
    if family is not None:  # a family's own defaults for settings left unset (a seqvae's KL annealing)
        config_cls = family[1]
        if not isinstance(train, TrainConfig):
            train = {**config_cls.train_defaults, **(train or {})}
        data_config = _with_data_defaults(data_config, config_cls)
    train_config = train if isinstance(train, TrainConfig) else TrainConfig.from_dict(train or {})
    check_loggers(train_config.loggers)  # a missing tracking extra: refused before anything is written
    bundle = vdata.load(data_config)
    train_config = train_config.for_data(len(bundle.train))  # epochs "auto": config.json records the count
    device = resolve_device(train_config.device)
    train_config = train_config.for_device(device)  # precision "auto", likewise
    model_config = checked_config(model_config_for(bundle.info, model or {}, bundle))
    distributed.init_from_env(device)
    if out is None:  # every rank must agree on the name: rank 0 picks it
        out = distributed.gather_objects(default_run_name(data_config.source, model_config.run_name))[0]
    out = Path(out)
    # a new run is built in place; one that replaces a run is built beside it and swapped in
    # only once complete, so a failed or interrupted training leaves the old run as it was
    build_dir = distributed.gather_objects(prepare_directory(out, overwrite=overwrite)
                                           if distributed.is_main() else None)[0]
    try:
        with building(build_dir, out, swap=distributed.is_main()):
            _train_in(build_dir, data_config, model_config, train_config, bundle, progress=progress)
    except TrainingInterrupted:
        if build_dir == out:
            raise
        raise TrainingInterrupted(f"interrupted: {out} is unchanged (the new run was discarded)") from None
    distributed.barrier()
    return _finish(out, bundle)


def _train_in(out: Path, data_config: DataConfig, model_config: ModelConfig, train_config: TrainConfig,
              bundle: Dataset, *, progress: bool) -> None:
    torch.manual_seed(train_config.seed)  # the initial weights depend on the seed too
    net = build(model_config)
    config = {
        "vaekit_version": __version__,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": {
            "config": data_config.to_dict(),
            "info": bundle.info.to_dict(),
            "standardizer": bundle.standardizer.to_dict() if bundle.standardizer else None,
        },
    }
    if distributed.is_main():
        write_json(out / CONFIG_FILE, config)
    distributed.barrier()
    _fit(net, train_config, out, bundle, resume=False, progress=progress)


@threads_kept()
def resume(path: str | Path, *, epochs: int | None = None, progress: bool = True,
           settings: dict[str, dict[str, Any]] | None = None) -> Run:
    """Continue a run from its last checkpoint, optionally to a new total of ``epochs``.

    The result equals that of an uninterrupted run with the same settings and seed.
    ``settings`` (sections ``model`` / ``train`` / ``data``, as ``train`` takes them) are
    what the caller asked for: any that differ from the run's are refused, since a resumed
    run keeps its settings. Every check, the checkpoint's included, comes before
    config.json is rewritten, so a refused resume changes nothing.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise VaekitError(f"{path}: no run to resume here (expected a run directory with {CONFIG_FILE})")
    config = read_json(path / CONFIG_FILE)
    if not (path / CHECKPOINT_FILE).is_file():
        raise VaekitError(f"{path}: no {CHECKPOINT_FILE} to resume from")
    for section, values in (settings or {}).items():
        check_same_settings(path, section, config.get(section, {}), values)
    net = build(checked_config(config["model"], origin=path / CONFIG_FILE))
    checkpoint = load_checkpoint(path / CHECKPOINT_FILE)
    done = _checked_epochs(path / CHECKPOINT_FILE, checkpoint, net)
    if epochs is not None:
        if epochs < done:
            raise VaekitError(f"--epochs {epochs}: the run in {path} has already done {done} epochs (a resumed "
                              f"run only continues: give a total of at least {done})")
        config["train"]["epochs"] = epochs
    asked = (settings or {}).get("train", {})
    # where and how it runs and who watches: what check_same_settings lets differ applies to this session
    session = {name: asked[name] for name in ("device", "threads", "loggers") if asked.get(name) is not None}
    train_config = TrainConfig.from_dict({**config["train"], **session})
    check_loggers(train_config.loggers)
    distributed.init_from_env(resolve_device(train_config.device))
    bundle = vdata.load(DataConfig.from_dict(config["data"]["config"]))
    if epochs is not None and distributed.is_main():
        write_json(path / CONFIG_FILE, config)
    _fit(net, train_config, path, bundle, resume=True, progress=progress, checkpoint=checkpoint)
    return _finish(path, bundle, loggers=train_config.loggers)


def check_same_settings(path: Path, section: str, recorded: dict[str, Any], asked: dict[str, Any]) -> None:
    """Refuse a resume asked with a setting that differs from the run's (``epochs``, the
    device, the threads and the trackers excepted: the one extends the run, the others say
    where and how it runs and who watches)."""
    for name, value in asked.items():
        if value is None or name in ("epochs", "device", "threads", "loggers") or value == "auto":
            continue
        have = recorded.get(name)
        if json.loads(json.dumps(value)) != have:
            raise VaekitError(f"{section}.{name} {value!r}: the run in {path} has {have!r}, and a resumed run keeps "
                              "its settings (train a new run with --out to change it)")


def _checked_epochs(where: Path, checkpoint: dict[str, Any], net: Model) -> int:
    """The epochs a checkpoint holds, once its weights are known to fit the run's model."""
    try:
        net.load_state_dict(checkpoint["model"])
        return int(checkpoint["state"]["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VaekitError(f"{where}: does not fit this run's model ({reason})") from None


def _fit(net: Model, train_config: TrainConfig, out: Path, bundle: Dataset, *, resume: bool,
         progress: bool, checkpoint: dict[str, Any] | None = None) -> None:
    started = time.perf_counter()
    trainer = Trainer(net, train_config, out, progress=progress and distributed.is_main())
    history = trainer.fit(bundle, resume=resume, checkpoint=checkpoint)  # a resume's checkpoint, read once
    summary: dict[str, Any] = {
        "epochs": trainer.state.epoch,
        "best_epoch": trainer.state.best_epoch,
        "stopped_early": trainer.state.stopped_early,
        "train_examples": len(bundle.train),
        "seconds_this_session": time.perf_counter() - started,
        "seconds_total": sum(r["seconds"] for r in history),
    }
    if distributed.is_main() and net.learned_prior:
        best = load(out)  # the prior is fitted to the codes of the weights the run keeps
        fitted = best.fit_prior(bundle.train, bundle.train_labels, seed=train_config.seed, progress=progress)
        if fitted is not None:
            save(best, out)
            summary["prior"] = fitted
            trainer.model.load_state_dict(best.state_dict())  # test figures under the fitted prior
    if bundle.test is not None and len(bundle.test):
        test = trainer.evaluate(bundle.test, bundle.test_labels)  # collective under torchrun: every rank takes part
        summary["test"] = {k: test[k] for k in ("elbo", "recon", "kl", "kl_per_dim")}
    trainer.close_tracking(summary)
    if distributed.is_main():
        write_json(out / SUMMARY_FILE, summary)
    distributed.barrier()


def checked_config(config: ModelConfig | dict[str, Any], origin: Path | None = None) -> ModelConfig:
    """The model config, refused with one line when it is bad (naming ``origin``, the file it
    came from) or when training the model cannot fit in memory: its weights are counted on
    the meta device, and training holds them four times (gradients, Adam's two moments)."""
    if not isinstance(config, ModelConfig):
        try:
            config = _model_config(config)
        except VaekitError as e:
            raise VaekitError(f"{origin}: {e}" if origin else str(e)) from None
    try:
        with torch.device("meta"):
            weights = sum(p.numel() for p in build(config).parameters())
    except Exception:  # a family that cannot be built on the meta device: no estimate
        weights = 0
    check_memory(weights * 4 * 4, f"model '{config.model}' ({weights:,} weights, latent_dim {config.latent_dim}):"
                 " its weights, gradients and optimizer state", "choose a smaller --latent-dim or --hidden")
    return config


def _model_config(d: dict[str, Any]) -> ModelConfig:
    name = d.get("model", "vae")
    if name not in MODELS:
        raise VaekitError(f"model: unknown model '{name}' (known: {', '.join(MODELS)})")
    return MODELS[name][1].from_saved(d)


def _finish(out: Path, bundle: Dataset, *, loggers: str | None = None) -> Run:
    """The finished run in its final place: its pictures, sampler and report, and the run opened
    (the pictures go to ``loggers``, a resumed session's trackers, else the run's own)."""
    if distributed.is_main():
        _write_run_extras(open_run(out), bundle, loggers=loggers)
    distributed.barrier()
    return open_run(out)


def _write_run_extras(run: Run, bundle: Dataset, *, loggers: str | None = None) -> None:
    """Pictures, the GMM sampler and report.html: what a person opens after training.

    They are derived from the finished run, so a failure here is reported as a warning
    (``vaekit report RUN`` can redo it) rather than turning a trained run into an error.
    """
    steps = [lambda: write_run_pictures(run, bundle), lambda: write_report(run, data=bundle)]
    if not run.model.learned_prior:  # a fitted prior of its own samples better than a GMM over codes
        steps.insert(1, lambda: fit_gmm_sampler(run, data=bundle))
    loggers = run.train_config.loggers if loggers is None else loggers
    steps.append(lambda: log_pictures(loggers, run.path, step=run.summary.get("epochs", 0)))
    steps.append(lambda: _warn_label_ignored(run, bundle))
    for step in steps:
        try:
            step()
        except VaekitError as e:
            warnings.warn(f"{run.path}: {e}", stacklevel=2)


def _warn_label_ignored(run: Run, bundle: Dataset) -> None:
    """A conditional run whose samples do not follow their label gets one warning, with the
    remedies (``evaluation.labels``: a few seconds, a classifier of the run's own labels)."""
    finding = run_label_finding(run, bundle, seed=run.train_config.seed)
    if finding is not None:
        warnings.warn(f"{run.path}: {finding}", stacklevel=3)


def _with_data_defaults(config: DataConfig, config_cls: type[ModelConfig]) -> DataConfig:
    """``config`` with the family's data defaults for the fields left unset (a seqvae reads a
    CSV as SMILES). A named dataset of images or tables keeps its own reading, so that the
    model and the data are refused with the message that names both (``model_config_for``)."""
    current = config.to_dict()
    unset = {k: v for k, v in config_cls.data_defaults.items() if current[k] is None}
    if not unset or vdata.registry.normalize_name(config.source) in vdata.registry.DATASETS:
        return config
    return config.replace(**unset)


def _as_data_config(data: str | DataConfig | dict[str, Any]) -> DataConfig:
    if isinstance(data, DataConfig):
        return data
    if isinstance(data, dict):
        return DataConfig.from_dict(data)
    return DataConfig(source=str(data))
