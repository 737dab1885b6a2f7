"""Run directories: the unit users share, and the Python API over them.

``train`` turns settings into a run directory (config.json, model.safetensors,
checkpoint.pt, metrics.jsonl, pictures); ``open_run`` and ``load`` rebuild what a run
holds from that directory alone. The CLI is a thin layer over these functions.
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from vaekit import data as vdata
from vaekit.training import distributed
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.config import DataConfig
from vaekit.data.standardize import Standardizer
from vaekit.errors import VaekitError
from vaekit.models import MODELS, Model, ModelConfig, build
from vaekit.serialization import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    load_weights,
    read_json,
    read_metrics,
    save_weights,
    write_json,
)
from vaekit.training.trainer import TrainConfig, Trainer, resolve_device

SUMMARY_FILE = "summary.json"
VERSION = "0.1.0"


@dataclass
class Run:
    """A trained run opened from its directory."""

    path: Path
    config: dict[str, Any]
    model: Model

    def _section(self, name: str) -> dict[str, Any]:
        if name not in self.config:
            raise VaekitError(f"{self.path / CONFIG_FILE}: no '{name}' section (a model saved without training "
                              "data; this needs a run made by `vaekit train`)")
        return self.config[name]

    @property
    def data_info(self) -> DataInfo:
        return DataInfo.from_dict(self._section("data")["info"])

    @property
    def data_config(self) -> DataConfig:
        return DataConfig.from_dict(self._section("data")["config"])

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self._section("train"))

    @property
    def standardizer(self) -> Standardizer | None:
        s = self._section("data").get("standardizer")
        return Standardizer.from_dict(s) if s else None

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path / METRICS_FILE)

    @property
    def summary(self) -> dict[str, Any]:
        p = self.path / SUMMARY_FILE
        return read_json(p) if p.is_file() else {}

    def load_data(self, **overrides: Any) -> Dataset:
        """The run's dataset, split exactly as in training (overrides e.g. ``limit``)."""
        return vdata.load(self.data_config.replace(**overrides))


def open_run(path: str | Path) -> Run:
    """Open a run directory: its config and its model with the saved weights."""
    path = Path(path)
    if not path.is_dir():
        raise VaekitError(f"{path}: no such run directory")
    config = read_json(path / CONFIG_FILE)
    if "model" not in config:
        raise VaekitError(f"{path / CONFIG_FILE}: missing the 'model' section")
    model = build(config["model"])
    load_weights(model, path / WEIGHTS_FILE)
    model.eval()
    return Run(path=path, config=config, model=model)


def load(path: str | Path) -> Model:
    """The trained model of a run directory, in eval mode."""
    return open_run(path).model


def save(model: Model, path: str | Path) -> None:
    """Write ``model`` to a directory: ``model.safetensors`` and the model part of ``config.json``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config_path = path / CONFIG_FILE
    config = read_json(config_path) if config_path.is_file() else {"vaekit_version": VERSION}
    config["model"] = model.config.to_dict()
    save_weights(model, path / WEIGHTS_FILE)
    write_json(config_path, config)


def model_config_for(info: DataInfo, options: dict[str, Any], data: Dataset | None = None) -> ModelConfig:
    """A model config whose input shape and likelihood come from the data unless set.

    A conditional family (``config.conditional``) also takes its classes from the data:
    ``num_classes`` and ``class_names`` from ``info.class_names``, or for integer labels
    without names from the largest label in ``data``; data without labels is refused.
    """
    options = dict(options)
    name = options.pop("model", "vae")
    if name not in MODELS:
        raise VaekitError(f"model: unknown model '{name}' (known: {', '.join(MODELS)})")
    config_cls = MODELS[name][1]
    if info.kind == "sequence" and not config_cls.accepts_sequences:
        sequence_models = ", ".join(n for n, (_, c) in MODELS.items() if c.accepts_sequences)
        raise VaekitError(f"model '{name}' does not take sequence data ('{info.name}'); use --model {sequence_models}")
    if config_cls.accepts_sequences and info.kind != "sequence":
        raise VaekitError(f"model '{name}' takes sequences (molecules: moses, zinc250k, a .smi file or SMILES with "
                          f"--tokens), not the {info.kind} data of '{info.name}'")
    options.setdefault("input_shape", tuple(info.shape))
    for key, value in config_cls.data_options(info).items():
        options.setdefault(key, value)
    if config_cls.conditional:
        if data is not None and data.train_labels is None:
            raise VaekitError(f"model '{name}' is conditional and needs class labels, but dataset '{info.name}' has "
                              "none (use mnist, fashion-mnist, digits, an image folder with one sub-folder per "
                              "class, or a table with --label-column)")
        if "num_classes" not in options:
            options["num_classes"], class_names = data_classes(info, data, name)
            options.setdefault("class_names", class_names)
    if "likelihood" not in {f.name for f in fields(config_cls)}:  # a family with one likelihood of its own
        return config_cls.from_dict(options)
    if options.get("likelihood") in (None, "auto"):
        options["likelihood"] = info.likelihood
    lo, hi = info.value_range
    if options["likelihood"] == "bernoulli" and (lo < 0 or hi > 1):
        raise VaekitError(f"likelihood bernoulli needs data in [0, 1]; '{info.name}' spans [{lo:g}, {hi:g}] "
                          "(use --likelihood gaussian)")
    return config_cls.from_dict(options)


def data_classes(info: DataInfo, data: Dataset | None, model: str) -> tuple[int, list[str] | None]:
    """``(num_classes, class_names)`` of a labelled dataset: its class names, or for integer
    labels without names ``max label + 1`` over all splits."""
    labels = [] if data is None else [t for t in (data.train_labels, data.val_labels, data.test_labels)
                                      if t is not None and t.numel()]
    if info.class_names:
        return len(info.class_names), list(info.class_names)
    if not labels:
        raise VaekitError(f"model '{model}' is conditional: dataset '{info.name}' has no class names or labels "
                          "to count its classes (set num_classes)")
    low = min(int(t.min()) for t in labels)
    if low < 0:
        raise VaekitError(f"dataset '{info.name}': labels must be non-negative class indices for model '{model}', "
                          f"found {low}")
    return max(int(t.max()) for t in labels) + 1, None


def check_output_directory(out: Path, *, overwrite: bool, what: str = "directory",
                           hint: str = "use --overwrite to replace it") -> None:
    """Refuse ``out`` when it is a file, or a non-empty directory without ``overwrite``.

    Called before any work, so bad input never costs a user an existing directory; the
    caller clears it only once the new contents are ready to be written.
    """
    if out.exists() and not out.is_dir():
        raise VaekitError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise VaekitError(f"{out}: {what} already exists ({hint})")


def _prepare_directory(out: Path, *, overwrite: bool) -> None:
    check_output_directory(out, overwrite=overwrite, what="run directory",
                           hint="use --overwrite to replace it or --resume to continue it")
    if out.is_dir() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def default_run_name(source: str, arch: str) -> Path:
    """``runs/<data>-<arch>``, numbered when taken, so a plain ``vaekit train`` never clobbers."""
    stem = Path(source).stem if ("/" in source or "." in source) else source
    base = Path("runs") / f"{stem}-{arch}"
    candidate, i = base, 2
    while candidate.exists():
        candidate, i = base.with_name(f"{base.name}-{i}"), i + 1
    return candidate


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
    bundle = vdata.load(data_config)
    model_config = model_config_for(bundle.info, model or {}, bundle)
    distributed.init_from_env(resolve_device(train_config.device))
    if out is None:  # every rank must agree on the name: rank 0 picks it
        name = getattr(model_config, "arch", model_config.model)  # runs/mnist-conv, runs/mnist-hvae
        out = distributed.gather_objects(default_run_name(data_config.source, name))[0]
    out = Path(out)
    if distributed.is_main():
        _prepare_directory(out, overwrite=overwrite)
    torch.manual_seed(train_config.seed)  # the initial weights depend on the seed too
    net = build(model_config)
    config = {
        "vaekit_version": VERSION,
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
    from vaekit.latent import fit_gmm_sampler
    from vaekit.plotting.pictures import write_run_pictures
    from vaekit.report.page import write_report

    steps = [lambda: write_run_pictures(run, bundle), lambda: write_report(run, data=bundle)]
    if not run.model.learned_prior:  # a fitted prior of its own samples better than a GMM over codes
        steps.insert(1, lambda: fit_gmm_sampler(run, data=bundle))
    for step in steps:
        try:
            step()
        except VaekitError as e:
            warnings.warn(f"{run.path}: {e}", stacklevel=2)


def _with_data_defaults(config: DataConfig, config_cls: type[ModelConfig]) -> DataConfig:
    """``config`` with the family's data defaults for the fields left unset (a seqvae reads a
    CSV as SMILES). A named dataset of images or tables keeps its own reading, so that the
    model and the data are refused with the message that names both (``model_config_for``)."""
    unset = {k: v for k, v in config_cls.data_defaults.items() if getattr(config, k) is None}
    if not unset or vdata.registry.normalize_name(config.source) in vdata.registry.DATASETS:
        return config
    return config.replace(**unset)


def _as_data_config(data: str | DataConfig | dict[str, Any]) -> DataConfig:
    if isinstance(data, DataConfig):
        return data
    if isinstance(data, dict):
        return DataConfig.from_dict(data)
    return DataConfig(source=str(data))
