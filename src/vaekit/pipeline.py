"""Train a run end to end: data -> model -> trainer -> the fitted prior -> pictures, sampler, report.

This is the one place that strings the layers together; each step is a lower layer's
public function (``data.load``, ``models.build``, ``training.Trainer``,
``latent.fit_gmm_sampler``, ``report.write_report``), so the same run can be made step by
step from Python.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch

from vaekit import data as vdata
from vaekit.data.bundle import Dataset
from vaekit.data.config import DataConfig
from vaekit.errors import VaekitError
from vaekit.latent import fit_gmm_sampler
from vaekit.models import MODELS, Model, ModelConfig, build
from vaekit.report import write_report, write_run_pictures
from vaekit.serialization import CHECKPOINT_FILE, CONFIG_FILE, read_json, write_json
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
from vaekit.training.trainer import TrainConfig, Trainer, resolve_device
from vaekit.version import __version__


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
    model_config = model_config_for(bundle.info, model or {}, bundle)
    distributed.init_from_env(resolve_device(train_config.device))
    if out is None:  # every rank must agree on the name: rank 0 picks it
        out = distributed.gather_objects(default_run_name(data_config.source, model_config.run_name))[0]
    out = Path(out)
    if distributed.is_main():
        prepare_directory(out, overwrite=overwrite)
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
    return _fit(net, train_config, out, bundle, resume=False, progress=progress)


def resume(path: str | Path, *, epochs: int | None = None, progress: bool = True) -> Run:
    """Continue a run from its last checkpoint, optionally to a new total of ``epochs``.

    The result equals that of an uninterrupted run with the same settings and seed.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise VaekitError(f"{path}: no run to resume here (expected a run directory with {CONFIG_FILE})")
    config = read_json(path / CONFIG_FILE)
    if not (path / CHECKPOINT_FILE).is_file():
        raise VaekitError(f"{path}: no {CHECKPOINT_FILE} to resume from")
    if epochs is not None:
        config["train"]["epochs"] = epochs
    train_config = TrainConfig.from_dict(config["train"])
    check_loggers(train_config.loggers)
    distributed.init_from_env(resolve_device(train_config.device))
    if epochs is not None and distributed.is_main():
        write_json(path / CONFIG_FILE, config)
    bundle = vdata.load(DataConfig.from_dict(config["data"]["config"]))
    return _fit(build(config["model"]), train_config, path, bundle, resume=True, progress=progress)


def _fit(net: Model, train_config: TrainConfig, out: Path, bundle: Dataset, *, resume: bool,
         progress: bool) -> Run:
    started = time.perf_counter()
    trainer = Trainer(net, train_config, out, progress=progress and distributed.is_main())
    history = trainer.fit(bundle, resume=resume)
    summary: dict[str, Any] = {
        "epochs": trainer.state.epoch,
        "best_epoch": trainer.state.best_epoch,
        "stopped_early": trainer.state.stopped_early,
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
        _write_run_extras(open_run(out), bundle)
    distributed.barrier()
    return open_run(out)


def _write_run_extras(run: Run, bundle: Dataset) -> None:
    """Pictures, the GMM sampler and report.html: what a person opens after training.

    They are derived from the finished run, so a failure here is reported as a warning
    (``vaekit report RUN`` can redo it) rather than turning a trained run into an error.
    """
    steps = [lambda: write_run_pictures(run, bundle), lambda: write_report(run, data=bundle)]
    if not run.model.learned_prior:  # a fitted prior of its own samples better than a GMM over codes
        steps.insert(1, lambda: fit_gmm_sampler(run, data=bundle))
    steps.append(lambda: log_pictures(run.train_config.loggers, run.path, step=run.summary.get("epochs", 0)))
    for step in steps:
        try:
            step()
        except VaekitError as e:
            warnings.warn(f"{run.path}: {e}", stacklevel=2)


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
